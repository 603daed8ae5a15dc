"""Step 4 of ``process_batch``: one endpoint call for the batch's new bars and the bars still
pending from an earlier outage. Any endpoint failure degrades to pending, never to a failure."""

from __future__ import annotations

import logging
import math
from collections.abc import Mapping
from typing import Any

from stocksage.config import STACK
from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import Ports, Prediction, PredictionFill
from stocksage.processing.results import (
    FEATURE_INDEX,
    features_defined,
    range_band,
    served_by_model,
)
from stocksage.processing.work import SymbolWork

__all__ = ["PENDING_FILL_LIMIT", "predict"]

logger = logging.getLogger(__name__)

PENDING_FILL_LIMIT = 1000
"""Pending predictions filled per symbol and batch (the rest in the next batches)."""


Target = tuple[SymbolWork, int | dict[str, Any]]
"""Where one request row's prediction goes: an index into ``SymbolWork.accepted`` (a bar of
this batch) or a stored results item still pending."""


def predict(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 4: one endpoint call for the batch's bars with finite features and the symbols'
    pending bars; bars of another interval than the model's are never sent (``no_model``).
    On any failure the bars stay pending (``endpoint_error`` says why).

    Fills ``SymbolWork.prob_up``/``range_forecast`` (None = pending) and ``SymbolWork.fills``
    (predictions for stored pending items), and sets ``outcome.model_version``.
    """
    rows, targets = _request_rows(work, ports)
    if not rows:
        _mark_pending_filled(work)
        return
    try:
        prediction = _call_endpoint(ports, rows)
    except Exception as exc:  # noqa: BLE001 -- any endpoint failure degrades to pending
        outcome.endpoint_error = f"{type(exc).__name__}: {exc}"[:500]
        for item, target in targets:
            if isinstance(target, int):
                outcome.symbols[item.state.symbol].pending_predictions += 1
        return
    _apply_prediction(prediction, targets, outcome)
    _mark_pending_filled(work)


def _request_rows(work: Mapping[str, SymbolWork],
                  ports: Ports) -> tuple[list[list[float]], list[Target]]:
    """The feature rows of one endpoint request and, row by row, where the answer goes: the
    batch's bars with finite features, then the symbols' pending items. Resets every symbol's
    ``prob_up``/``range_forecast`` to pending."""
    rows: list[list[float]] = []
    targets: list[Target] = []
    for item in work.values():
        item.prob_up = [None] * len(item.accepted)
        item.range_forecast = [None] * len(item.accepted)
        for index, (bar, values) in enumerate(zip(item.accepted, item.values, strict=True)):
            if features_defined(values) and served_by_model(bar):
                rows.append([values[i] for i in FEATURE_INDEX])
                targets.append((item, index))
    for item, stored in _pending_items(work, ports):
        stored_row = _feature_row(stored)
        if stored_row is not None:
            rows.append(stored_row)
            targets.append((item, stored))
    return rows, targets


def _call_endpoint(ports: Ports, rows: list[list[float]]) -> Prediction:
    """The endpoint's answer for ``rows``; ValueError when it does not have one per row."""
    prediction = ports.predictor.predict(STACK.features, rows)
    if len(prediction.probabilities) != len(rows):
        raise ValueError(f"endpoint returned {len(prediction.probabilities)} predictions "
                         f"for {len(rows)} rows")
    ranges = prediction.range_forecasts
    if ranges is not None and len(ranges) != len(rows):
        raise ValueError(f"endpoint returned {len(ranges)} range forecasts "
                         f"for {len(rows)} rows")
    return prediction


def _apply_prediction(prediction: Prediction, targets: list[Target],
                      outcome: BatchOutcome) -> None:
    """Hand each row's probability and range forecast to its target: this batch's bars get
    ``prob_up``/``range_forecast``, pending items a ``PredictionFill``."""
    outcome.model_version = prediction.model_version
    ranges = prediction.range_forecasts
    forecasts: list[float | None] = ([float(r) for r in ranges] if ranges is not None
                                     else [None] * len(targets))
    for (item, target), probability, forecast in zip(targets, prediction.probabilities,
                                                     forecasts, strict=True):
        counts = outcome.symbols[item.state.symbol]
        if isinstance(target, int):
            item.prob_up[target] = float(probability)
            item.range_forecast[target] = forecast
            counts.predicted += 1
        else:
            band = {} if forecast is None else range_band(float(target["close"]), forecast)
            item.fills.append(PredictionFill(item.state.symbol, str(target["bar_time"]),
                                             float(probability), prediction.model_version,
                                             forecast, band.get("range_low"),
                                             band.get("range_high")))
            counts.filled_predictions += 1


def _mark_pending_filled(work: Mapping[str, SymbolWork]) -> None:
    """Every pending item read this batch has had its chance (filled or left for later)."""
    for item in work.values():
        item.pending_filled = item.pending_read


def _pending_items(work: Mapping[str, SymbolWork],
                   ports: Ports) -> list[tuple[SymbolWork, dict[str, Any]]]:
    """The results items still waiting for a prediction, for symbols whose state says so."""
    found: list[tuple[SymbolWork, dict[str, Any]]] = []
    for item in work.values():
        since = item.state.pending_since
        if not since:
            continue
        try:
            stored = ports.results.pending(item.state.symbol, since, PENDING_FILL_LIMIT)
        except Exception as exc:  # noqa: BLE001 -- they stay pending; next batch tries again
            logger.warning("reading pending predictions of %s failed: %s",
                           item.state.symbol, exc)
            continue
        item.pending_read = True
        if len(stored) >= PENDING_FILL_LIMIT:
            item.still_pending = str(stored[-1]["bar_time"])
        found.extend((item, entry) for entry in stored)
    return found


def _feature_row(item: Mapping[str, Any]) -> list[float] | None:
    """The model features of a stored results item, or None when one is absent or not finite."""
    try:
        row = [float(item[name]) for name in STACK.features]
    except (KeyError, TypeError, ValueError):
        return None
    return row if all(math.isfinite(v) for v in row) else None
