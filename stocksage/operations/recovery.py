"""Recovery: rebuild a symbol from its full bar history (late bars repaired into the series).

The stream accepts a bar only when it is newer than the symbol's newest bar, so a bar that
arrives late (after newer bars of its symbol) is reported, not processed (``LateBars``). The
raw bar still reaches the S3 history. ``rebuild`` recomputes the symbol from every bar known:
the OHLCV of its results items (what the stream processed) and the S3 history (which also
holds the late bars), and returns

- the results items whose values changed or that are new (the late bars and every later bar,
  whose indicators now include them), with their prediction left ``pending`` or filled by the
  predictor given, and
- the symbol's new state, to be written conditionally on the version that was read: if the
  stream advanced the symbol meanwhile the write fails and the repair is run again.

Pure domain code: the CLI (``stocksage repair``, ``stocksage redrive``) does the I/O.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from stocksage.bars import OHLCV, Bar, bar_from_mapping, epoch_micros, format_time
from stocksage.config import STACK
from stocksage.indicators.definition import OUTPUT_COLUMNS
from stocksage.indicators.incremental import Kernel
from stocksage.processing import (
    FEATURE_INDEX,
    FIRST_BAR,
    PREDICTION_READY,
    Predictor,
    features_defined,
    result_item,
)
from stocksage.state import RecentBars, SymbolState

__all__ = ["Rebuild", "bars_from_results", "rebuild"]

@dataclass
class Rebuild:
    """What ``rebuild`` computed for one symbol.

    Attributes:
        state: The symbol's new state (``version`` = the version read: write it conditionally).
        items: Results items to write (new or changed values), in time order.
        bars: Bars in the rebuilt series.
        inserted: Bars that were missing from the results (late bars repaired in).
        predicted: Items given a prediction now; the others with finite features are pending.
        endpoint_error: Why predictions were left pending ("" if none were).
    """

    state: SymbolState
    items: list[dict[str, Any]] = field(default_factory=list)
    bars: int = 0
    inserted: int = 0
    predicted: int = 0
    endpoint_error: str = ""


def bars_from_results(items: Iterable[Mapping[str, Any]], source: str = "results") -> list[Bar]:
    """Bars from results items (their OHLCV, symbol, bar_time, interval); bad items skipped."""
    bars = []
    for item in items:
        try:
            bars.append(bar_from_mapping({**{k: item[k] for k in (
                "symbol", "bar_time", *OHLCV)}, "interval": item.get("interval", "1d"),
                "source": source}))
        except Exception:  # noqa: BLE001 -- an unreadable item: the history has the bar
            continue
    return bars


def rebuild(symbol: str, processed: Sequence[Bar], history: Iterable[Bar],
            current: SymbolState | None, existing: Mapping[str, Mapping[str, Any]],
            *, keep: int = 0, predictor: Predictor | None = None,
            now: datetime) -> Rebuild:
    """Recompute ``symbol`` from all its known bars.

    Args:
        symbol: The symbol.
        processed: Bars the stream processed (from the results items): they win over history
            bars of the same time (first write wins, as on the stream).
        history: Bars of the S3 history (any order, duplicates allowed), late bars included.
        current: The symbol's stored state (None if it has none).
        existing: Results items by bar_time (to keep unchanged items and their predictions).
        keep: OHLCV bars the state must keep for the symbol's rules (``alerts.lookback_bars``).
        predictor: Used to predict the rebuilt bars; None leaves them pending.
        now: ``processed_at`` of the rewritten items.

    Returns:
        The :class:`Rebuild`.

    Raises:
        ValueError: when no bar of ``symbol`` is known.
    """
    interval = current.interval if current is not None and current.interval else ""
    by_time: dict[datetime, Bar] = {}
    for bar in (*processed, *history):
        if bar.symbol != symbol or (interval and bar.interval != interval):
            continue
        by_time.setdefault(bar.bar_time, bar)
    if not by_time:
        raise ValueError(f"no bar of {symbol} in the results or the history")
    series = [by_time[t] for t in sorted(by_time)]
    kernel = Kernel.empty(1)
    row = np.zeros(1, dtype=np.int64)
    outputs = [kernel.step(row, np.array([[b.open, b.high, b.low, b.close, b.volume]]))[0]
               for b in series]
    processed_times = {format_time(b.bar_time) for b in processed}
    result = Rebuild(state=SymbolState(symbol=symbol), bars=len(series))
    changed: list[int] = []
    prevs: list[str] = [FIRST_BAR] + [format_time(b.bar_time) for b in series[:-1]]
    for index, (bar, values) in enumerate(zip(series, outputs, strict=True)):
        stamp = format_time(bar.bar_time)
        if stamp not in processed_times:
            result.inserted += 1
        old = existing.get(stamp)
        if old is None or not _same_values(old, values) or \
                old.get("prev_bar_time") != prevs[index]:
            changed.append(index)  # also: relinked into the chain (stocksage.processing)
    probabilities = _predict(outputs, changed, predictor, result)
    stamp_now = now.strftime("%Y-%m-%dT%H:%M:%SZ")
    for index in changed:
        prob = probabilities.get(index)
        result.items.append(result_item(series[index], outputs[index].tolist(), prob,
                                        probabilities.get("version", ""), stamp_now,
                                        probabilities.get("range", {}).get(index),
                                        prevs[index]))
    last = outputs[-1]
    last_item = existing.get(format_time(series[-1].bar_time), {})
    last_prob = probabilities.get(len(series) - 1, last_item.get("prob_up"))
    last_range = probabilities.get("range", {}).get(len(series) - 1,
                                                    last_item.get("range_forecast"))
    state = result.state
    state.kernel = kernel
    state.last_values = np.array([*last, np.nan if last_prob is None else float(last_prob),
                                  np.nan if last_range is None else float(last_range)])
    state.version = current.version if current is not None else 0
    state.migrated_from = current.migrated_from if current is not None else 2
    state.interval = series[-1].interval
    state.last_bar_time = series[-1].bar_time
    tail = series[-keep:] if keep else []
    state.recent = RecentBars(
        np.array([epoch_micros(b.bar_time) for b in tail], dtype=np.int64),
        np.array([[b.open, b.high, b.low, b.close, b.volume] for b in tail]).reshape(-1, 5))
    if current is not None:
        state.outbox = list(current.outbox)
        state.last_fired = _reindex_fired(current, series)
    pending = [format_time(series[i].bar_time) for i in changed
               if i not in probabilities and features_defined(outputs[i])]
    old_pending = current.pending_since if current is not None else None
    state.pending_since = min([p for p in (*pending[:1], old_pending) if p], default=None)
    return result


def _same_values(item: Mapping[str, Any], values: np.ndarray) -> bool:
    row: list[float] = values.tolist()
    for name, value in zip(OUTPUT_COLUMNS, row, strict=True):
        stored = item.get(name)
        if math.isnan(value):
            if stored is not None:
                return False
        elif stored is None or abs(float(stored) - value) > 1e-12 * max(1.0, abs(value)):
            return False
    return item.get("prediction_status") == PREDICTION_READY or not features_defined(row)


def _predict(outputs: Sequence[np.ndarray], changed: Sequence[int],
             predictor: Predictor | None, result: Rebuild) -> dict[Any, Any]:
    rows = [i for i in changed if features_defined(outputs[i].tolist())]
    if predictor is None or not rows:
        return {}
    try:
        features = [[float(outputs[i][j]) for j in FEATURE_INDEX] for i in rows]
        prediction = predictor.predict(STACK.features, features)
    except Exception as exc:  # noqa: BLE001 -- left pending; the stream fills them later
        result.endpoint_error = f"{type(exc).__name__}: {exc}"[:500]
        return {}
    result.predicted = len(rows)
    found: dict[Any, Any] = dict(zip(rows, map(float, prediction.probabilities), strict=True))
    found["version"] = prediction.model_version
    if prediction.range_forecasts is not None:  # a two-output model (range forecast per row)
        found["range"] = dict(zip(rows, map(float, prediction.range_forecasts), strict=True))
    return found


def _reindex_fired(current: SymbolState, series: Sequence[Bar]) -> dict[str, int]:
    """Cooldown bar indexes of the old series mapped to the rebuilt one (by bar time)."""
    offset = current.bars_seen - 1  # old index of the old newest bar
    times = [b.bar_time for b in series]
    newest_old = current.last_bar_time
    if newest_old is None or newest_old not in times:
        return dict(current.last_fired)
    new_newest = times.index(newest_old)
    return {rule: index - offset + new_newest for rule, index in current.last_fired.items()}
