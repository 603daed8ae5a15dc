"""The results-table item of one bar: keys, OHLCV, indicators, features and prediction.

Used by the processor (``process_batch``), by ``stocksage.operations.recovery`` (rebuild) and, for
the ``prediction_status`` values, by the result stores (``stocksage.adapters.dynamodb``,
``stocksage.adapters.memory``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

from stocksage.bars import Bar, format_time
from stocksage.config import STACK
from stocksage.indicators.definition import OUTPUT_COLUMNS

__all__ = [
    "FEATURE_INDEX",
    "MODEL_INTERVAL",
    "PREDICTION_NO_MODEL",
    "PREDICTION_PENDING",
    "PREDICTION_READY",
    "features_defined",
    "range_band",
    "result_item",
    "served_by_model",
]

PREDICTION_READY = "ready"
PREDICTION_PENDING = "pending"
PREDICTION_NO_MODEL = "no_model"
"""``prediction_status`` of a results item whose features are finite: ``ready`` with
``prob_up`` and ``model_version``, ``pending`` until the endpoint answers again, or
``no_model``: the bar's interval is not the one the model was trained and gated on
(``MODEL_INTERVAL``), so it gets no prediction, never another interval's model output."""

MODEL_INTERVAL: str = str(STACK.raw["model"]["interval"])
"""The bar interval the served model is trained on (``stack.json`` ``model.interval``; the
training job's ``interval`` hyperparameter): only bars of it are sent to the endpoint."""


FIRST_BAR = ""
"""``prev_bar_time`` of a symbol's first bar (an item without the attribute predates the
chain)."""


def served_by_model(bar: Bar) -> bool:
    """Whether the endpoint serves ``bar`` (its interval is ``MODEL_INTERVAL``)."""
    return bar.interval == MODEL_INTERVAL

FEATURE_INDEX = tuple(OUTPUT_COLUMNS.index(name) for name in STACK.features)
"""Positions of the model features (``STACK.features``) in ``OUTPUT_COLUMNS``."""


def features_defined(values: Sequence[float]) -> bool:
    """True when every model feature of an ``OUTPUT_COLUMNS`` row is finite."""
    return all(math.isfinite(values[i]) for i in FEATURE_INDEX)


def range_band(close: float, range_forecast: float) -> dict[str, float]:
    """``range_forecast`` (ln(high/low) of the next bar) and its price band around ``close``."""
    half = math.exp(range_forecast / 2)
    return {"range_forecast": float(range_forecast), "range_low": close / half,
            "range_high": close * half}


def result_item(bar: Bar, values: Sequence[float], prob_up: float | None,
                model_version: str, processed_at: str,
                range_forecast: float | None = None,
                prev_bar_time: str | None = None) -> dict[str, Any]:
    """One results-table item: keys, OHLCV, indicators, features, prediction.

    Args:
        bar: The bar.
        values: ``OUTPUT_COLUMNS`` values (NaN = not defined yet: left out of the item).
        prob_up: P(up) or None (no prediction yet).
        model_version: Version label of the model behind ``prob_up``.
        processed_at: ISO UTC time stamp (milliseconds, e.g. ``2026-12-03T08:40:01.123Z``).
        range_forecast: Forecast range ``ln(high/low)`` of the NEXT bar (log-price units) or
            None (no prediction, or the serving model has no range model).
        prev_bar_time: ``bar_time`` of the bar before this one in the symbol's accepted
            series (None for its first bar: stored as ``FIRST_BAR``): the items form a chain
            back from the state's ``last_bar_time``, so an item written by an invocation whose
            state write failed is off the chain (``stocksage.processing.intake``).

    With a prediction and a range forecast ``r`` the item also holds ``range_forecast = r`` and
    the band around the close ``range_low = close * exp(-r/2)``, ``range_high =
    close * exp(r/2)`` (prices: a next bar of the forecast range, centred on this close).

    ``prediction_status`` is ``ready`` (with ``prob_up``, ``model_version``), ``pending`` or,
    for a bar of another interval than the model's, ``no_model`` when the features are
    finite; absent during the features' warm-up.
    """
    keys = STACK.keys["results"]
    item: dict[str, Any] = {
        keys["partition"]: bar.symbol,
        keys["sort"]: format_time(bar.bar_time),
        "interval": bar.interval,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "processed_at": processed_at,
    }
    item["prev_bar_time"] = prev_bar_time or FIRST_BAR
    item.update({name: value for name, value in zip(OUTPUT_COLUMNS, values, strict=True)
                 if value == value})  # NaN (not defined yet) is the one value unequal to itself
    if prob_up is not None:
        item["prob_up"] = prob_up
        item["model_version"] = model_version
        item["prediction_status"] = PREDICTION_READY
        if range_forecast is not None:
            item.update(range_band(bar.close, range_forecast))
    elif features_defined(values):
        item["prediction_status"] = (PREDICTION_PENDING if served_by_model(bar)
                                     else PREDICTION_NO_MODEL)
    return item
