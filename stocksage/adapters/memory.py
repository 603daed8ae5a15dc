"""In-memory implementations of the processor's ports, for tests, benchmarks and replays.

They follow the DynamoDB adapters' contracts (``stocksage.adapters.dynamodb``): state items go
through ``SymbolState.to_item``/``from_item`` (so the stored format is exercised), writes are
conditional on ``version``, results are keyed by (symbol, bar_time). Faults can be switched on
per port (``fail``: an exception to raise, or a predicate of the symbol) to test degradation.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

from stocksage.alerts import Rule, RuleError
from stocksage.processing import PREDICTION_PENDING, PREDICTION_READY, Prediction, PredictionFill
from stocksage.state import StateFormatError, SymbolState

__all__ = ["MemoryAlerts", "MemoryPredictor", "MemoryResults", "MemoryRules", "MemoryStates",
           "memory_ports"]


@dataclass
class MemoryStates:
    """State items by symbol (plain dicts, as DynamoDB would hold them).

    Attributes:
        items: ``{symbol: item}``.
        fail_write: Symbols whose writes fail (throttling stand-in).
        writes: Items written so far.
    """

    items: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail_write: Callable[[str], bool] = lambda _symbol: False
    writes: int = 0

    def get_states(self, symbols: Sequence[str]) -> tuple[dict[str, SymbolState], dict[str, str]]:
        found, failed = {}, {}
        for symbol in symbols:
            if symbol in self.items:
                try:
                    found[symbol] = SymbolState.from_item(self.items[symbol])
                except StateFormatError as err:
                    failed[symbol] = str(err)
        return found, failed

    def put_states(self, states: Sequence[SymbolState]) -> dict[str, str]:
        failed = {}
        for state in states:
            stored = self.items.get(state.symbol)
            stored_version = 0 if stored is None else int(stored.get("version", 0))
            if self.fail_write(state.symbol):
                failed[state.symbol] = "write failed (injected)"
            elif stored_version != state.version:
                failed[state.symbol] = (f"state version is {stored_version}, "
                                        f"expected {state.version}")
            else:
                self.items[state.symbol] = state.to_item()
                self.writes += 1
        return failed


@dataclass
class MemoryResults:
    """Results items by (symbol, bar_time)."""

    items: dict[tuple[str, str], dict[str, Any]] = field(default_factory=dict)
    fail_write: Callable[[str], bool] = lambda _symbol: False

    def put_results(self, items: Sequence[dict[str, Any]]) -> dict[str, str]:
        failed = {}
        for item in items:
            if self.fail_write(item["symbol"]):
                failed[item["symbol"]] = "write failed (injected)"
                continue
            self.items[(item["symbol"], item["bar_time"])] = dict(item)
        return failed

    def chain(self, symbol: str, since: str) -> dict[str, str | None] | None:
        return {t: item.get("prev_bar_time") for (s, t), item in self.items.items()
                if s == symbol and t >= since}

    def pending(self, symbol: str, since: str, limit: int) -> list[dict[str, Any]]:
        found = sorted((key[1], item) for key, item in self.items.items()
                       if key[0] == symbol and key[1] >= since
                       and item.get("prediction_status") == PREDICTION_PENDING)
        return [copy.deepcopy(item) for _, item in found[:limit]]

    def items_for(self, symbol: str) -> list[dict[str, Any]]:
        return [copy.deepcopy(item) for (s, _), item in sorted(self.items.items())
                if s == symbol]

    def fill_predictions(self, fills: Sequence[PredictionFill]) -> dict[str, str]:
        for fill in fills:
            item = self.items.get((fill.symbol, fill.bar_time))
            if item is not None and item.get("prediction_status") == PREDICTION_PENDING:
                item.update(prob_up=fill.prob_up, model_version=fill.model_version,
                            prediction_status=PREDICTION_READY)
                item.update(fill.range_attributes())
        return {}


@dataclass
class MemoryPredictor:
    """A stand-in model: P(up) = 0.5 + 5 * ``ret_1`` clipped to [0, 1] (deterministic).

    Attributes:
        fail: An exception to raise instead of answering (endpoint outage), or None.
        calls: Number of calls answered.
        ranges: Also answer range forecasts (a two-output model): ``2 * atr_norm`` per row,
            the ATR(14) as a fraction of the close doubled (log-price units).
    """

    fail: Exception | None = None
    calls: int = 0
    version: str = "memory-1"
    ranges: bool = False

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]) -> Prediction:
        if self.fail is not None:
            raise self.fail
        self.calls += 1
        index = list(feature_names).index("ret_1")
        forecasts = None
        if self.ranges:
            atr = list(feature_names).index("atr_norm")
            forecasts = [2 * abs(row[atr]) for row in rows]
        return Prediction([min(max(0.5 + 5 * row[index], 0.0), 1.0) for row in rows],
                          self.version, forecasts)


@dataclass
class MemoryRules:
    """Rules by symbol (``*`` applies to all)."""

    rules: dict[str, list[Rule]] = field(default_factory=dict)

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        wildcard = self.rules.get("*", [])
        return {s: [*self.rules.get(s, []),
                    *(Rule(r.rule_id, s, r.type, r.params, r.severity, r.cooldown_bars)
                      for r in wildcard)] for s in symbols}, []


@dataclass
class MemoryAlerts:
    """Published alert messages by id; at most one publish per id.

    Attributes:
        fail: An exception to raise (SNS outage), or None.
    """

    published: dict[str, dict[str, Any]] = field(default_factory=dict)
    fail: Exception | None = None

    def publish_message(self, message: dict[str, Any]) -> bool:
        if self.fail is not None:
            raise self.fail
        if message["alert_id"] in self.published:
            return False
        self.published[message["alert_id"]] = message
        return True


def memory_ports(rules: dict[str, list[Rule]] | None = None) -> Any:
    """A ``processing.Ports`` of fresh in-memory ports (rules optional)."""
    from stocksage.processing import Ports

    return Ports(states=MemoryStates(), results=MemoryResults(), predictor=MemoryPredictor(),
                 rules=MemoryRules(rules or {}), alerts=MemoryAlerts())
