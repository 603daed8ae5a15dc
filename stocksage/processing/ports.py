"""What ``process_batch`` exchanges with the outside: its input, the endpoint's answer, and the
ports (protocols) through which it reaches AWS.

``stocksage.adapters`` implements the ports with boto3, ``stocksage.adapters.memory`` in memory; the
domain only sees these protocols (it never imports boto3).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Protocol

from stocksage.alerts import Rule, RuleError
from stocksage.bars import Bar
from stocksage.bars.trade_parsing import TradeColumns
from stocksage.state import SymbolState

__all__ = [
    "AlertPublisher",
    "Ports",
    "Prediction",
    "PredictionFill",
    "Predictor",
    "ResultStore",
    "RuleSource",
    "StateStore",
    "StreamBar",
    "StreamTrades",
]


@dataclass(frozen=True)
class StreamBar:
    """A decoded bar with its position in the stream.

    Attributes:
        bar: The validated bar.
        sequence_number: Kinesis sequence number of the record (decimal string, per shard).
    """

    bar: Bar
    sequence_number: str


@dataclass(frozen=True)
class StreamTrades:
    """A decoded trades or watermark record with its position in the stream.

    Attributes:
        symbol: The record's symbol (= partition key).
        trades: Its valid trades, columnar, in record order (empty for a watermark).
        sequence_number: Kinesis sequence number (decimal string, per shard).
        shard_id: The shard it came from (``eventID`` before the ``:``); with the sequence
            number it is the record's stream identity (a redelivery is applied once).
        watermark_ns: For a watermark heartbeat, its event time (epoch ns); else None.
    """

    symbol: str
    trades: TradeColumns
    sequence_number: str
    shard_id: str
    watermark_ns: int | None = None


@dataclass(frozen=True)
class Prediction:
    """Endpoint output for a list of feature rows.

    Attributes:
        probabilities: P(next bar closes higher), one per input row, each in [0, 1].
        model_version: Version label of the model that served the request.
        range_forecasts: Forecast next-bar range ``ln(high/low)`` (log-price units, > 0), one
            per row, or None when the serving model has no range model
            (``stocksage.model.volatility``).
    """

    probabilities: list[float]
    model_version: str
    range_forecasts: list[float] | None = None


@dataclass(frozen=True)
class PredictionFill:
    """A prediction for a results item written earlier with ``prediction_status = pending``."""

    symbol: str
    bar_time: str
    prob_up: float
    model_version: str
    range_forecast: float | None = None  # ln(high/low) of the next bar, log-price units
    range_low: float | None = None  # price band of range_forecast around the bar's close
    range_high: float | None = None

    def range_attributes(self) -> dict[str, float]:
        """``range_forecast``/``range_low``/``range_high`` to set, or ``{}`` (one-output model)."""
        if self.range_forecast is None or self.range_low is None or self.range_high is None:
            return {}
        return {"range_forecast": self.range_forecast, "range_low": self.range_low,
                "range_high": self.range_high}


class StateStore(Protocol):
    """Symbol state (DynamoDB table ``window-state``)."""

    def get_states(self, symbols: Sequence[str]) -> tuple[dict[str, SymbolState], dict[str, str]]:
        """Return ``({symbol: state}, {symbol: reason})``: the stored states, and the symbols
        whose state could not be read (the reason). Symbols with no item are in neither."""

    def put_states(self, states: Sequence[SymbolState]) -> dict[str, str]:
        """Write each state if its stored version is still ``state.version``; return
        ``{symbol: reason}`` for the states not written (conflict, throttling, error)."""


class ResultStore(Protocol):
    """Per-bar results (DynamoDB table ``results``)."""

    def put_results(self, items: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Write items keyed by (symbol, bar_time), overwriting; return ``{symbol: reason}``
        for the symbols of which some item could not be written."""

    def chain(self, symbol: str, since: str) -> dict[str, str | None] | None:
        """``{bar_time: prev_bar_time}`` of ``symbol``'s items from ``since`` on (ISO,
        inclusive; None where an item has no ``prev_bar_time``), or None when they could not
        be read (the symbol is then retried)."""

    def pending(self, symbol: str, since: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` items of ``symbol`` from ``since`` on (ISO, inclusive) whose
        ``prediction_status`` is pending, oldest first (plain values, features included)."""

    def fill_predictions(self, fills: Sequence[PredictionFill]) -> dict[str, str]:
        """Set prob_up/model_version/ready on pending items (idempotent); ``{symbol: reason}``
        of the symbols with a fill not written."""


class Predictor(Protocol):
    """The SageMaker endpoint."""

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]) -> Prediction:
        """Return one probability per row; raise on endpoint, timeout or payload errors."""


class RuleSource(Protocol):
    """Alert rules per symbol (DynamoDB table ``alert-rules``)."""

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Return the rules of each symbol (and of ``*``) and the rules that could not be read."""


class AlertPublisher(Protocol):
    """SNS alerts topic, idempotent per alert id."""

    def publish_message(self, message: dict[str, Any]) -> bool:
        """Publish an ``Alert.message()`` once per ``alert_id``; False if sent before; raise
        on failure (nothing recorded as sent)."""


@dataclass
class Ports:
    """The AWS-facing dependencies of ``process_batch``."""

    states: StateStore
    results: ResultStore
    predictor: Predictor
    rules: RuleSource
    alerts: AlertPublisher
