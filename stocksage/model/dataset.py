"""Labelled training rows from bar history, without look-ahead.

Per symbol, ``stocksage.indicators.features.enrich`` turns the OHLCV frame into features (every
feature at bar ``t`` uses bars ``<= t`` only, exactly what the processor computes when bar ``t``
arrives). The label of bar ``t`` is ``up = close[t+1] > close[t]``; ``ret_next`` is
``close[t+1] / close[t] - 1`` and ``label_time`` is the time of bar ``t+1``. The last bar of a
symbol has no label and is dropped, as are warm-up rows with a non-finite feature. Symbols are
then pooled and sorted by ``(bar_time, symbol)``.

Columns of a training frame: ``symbol``, ``bar_time``, ``label_time``, the features of
``STACK.features`` in order, ``last_ret`` (``close[t] / close[t-1] - 1``, for the persistence
baseline), ``ret_next`` and ``up`` (int 0/1), and the volatility columns of
``stocksage.model.volatility.range_columns``: ``log_range_next`` (target) and the baseline
forecasts ``range_last``, ``range_mean22``, ``range_ewma`` (NaN during the 22-bar warm-up).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stocksage.config import STACK

log = logging.getLogger(__name__)

LABEL = "up"
#: Below this many bars a symbol cannot give a single finished feature row (ADX/MACD warm-up).
MIN_SYMBOL_BARS = 60


def feature_names() -> list[str]:
    return list(STACK.features)


def label_symbol_frame(
    symbol: str, frame: pd.DataFrame, features: Sequence[str] | None = None
) -> pd.DataFrame:
    """Training rows of one symbol.

    Args:
        symbol: Symbol written into the ``symbol`` column.
        frame: OHLCV frame, index ``bar_time`` (tz-aware UTC, unique).
        features: Feature names (default ``STACK.features``).
    """
    from stocksage.indicators.features import enrich

    features = list(features or STACK.features)
    frame = frame.sort_index()
    if not frame.index.is_unique:
        raise ValueError(f"{symbol}: bar_time index has duplicates")
    enriched = enrich(frame)
    if len(enriched) != len(frame):
        raise ValueError(f"{symbol}: enrich returned {len(enriched)} rows for {len(frame)} bars")
    enriched.index = frame.index
    close = frame["close"].astype(float)
    next_close = close.shift(-1)
    times = pd.Series(frame.index, index=frame.index)
    out = pd.DataFrame(index=frame.index)
    out["symbol"] = symbol
    out["bar_time"] = frame.index
    out["label_time"] = times.shift(-1)
    for name in features:
        out[name] = enriched[name].astype(float)
    out["last_ret"] = close / close.shift(1) - 1.0
    out["ret_next"] = next_close / close - 1.0
    out[LABEL] = (next_close > close).astype("int64")
    from stocksage.model.volatility import RANGE_BASELINES, RANGE_TARGET, range_columns

    ranges = range_columns(frame)  # NaN allowed: the direction rows do not depend on them
    out[RANGE_TARGET] = ranges[RANGE_TARGET].to_numpy()
    for name in RANGE_BASELINES:
        out[f"range_{name}"] = ranges[f"range_{name}"].to_numpy()
    out = out.iloc[:-1]  # the last bar has no next close
    finite = np.isfinite(out[features].to_numpy()).all(axis=1)
    finite &= np.isfinite(out["last_ret"].to_numpy())
    return out.loc[finite].reset_index(drop=True)


def build_training_frame(
    frames: Mapping[str, pd.DataFrame],
    features: Sequence[str] | None = None,
    min_bars: int = MIN_SYMBOL_BARS,
) -> pd.DataFrame:
    """Pool the labelled rows of several symbols, sorted by ``(bar_time, symbol)``.

    Symbols with fewer than ``min_bars`` bars are skipped (logged).
    """
    parts = []
    for symbol in sorted(frames):
        frame = frames[symbol]
        if len(frame) < min_bars:
            log.warning("skipping %s: %d bars < %d", symbol, len(frame), min_bars)
            continue
        part = label_symbol_frame(symbol, frame, features)
        if len(part):
            parts.append(part)
    if not parts:
        raise ValueError("no symbol has enough bars to build a training frame")
    pooled = pd.concat(parts, ignore_index=True)
    return pooled.sort_values(["bar_time", "symbol"], kind="stable").reset_index(drop=True)


def frames_from_bars(bars: Iterable) -> dict[str, pd.DataFrame]:
    """Group ``stocksage.bars.Bar`` objects by symbol into OHLCV frames.

    Repeated bar times (history objects may hold duplicates) keep the last copy read.
    """
    from stocksage.bars import bars_to_frame

    by_symbol: dict[str, dict] = {}
    for bar in bars:
        by_symbol.setdefault(bar.symbol, {})[bar.bar_time] = bar
    frames = {}
    for symbol, by_time in by_symbol.items():
        ordered = [by_time[t] for t in sorted(by_time)]
        frames[symbol] = bars_to_frame(ordered).sort_index()
    return frames


def history_files(root: str | Path) -> list[Path]:
    """Every ``*.json.gz`` history object under ``root`` (sorted, any depth)."""
    return sorted(p for p in Path(root).rglob("*.json.gz") if p.is_file())


def read_history_dir(root: str | Path, skipped: Any = None) -> list:
    """Decode every history object under ``root`` (the S3 layout of ``stocksage.history``).

    Lines that are not valid bars are skipped and logged with the file and line number
    (recorded in ``skipped``, a ``stocksage.history.SkippedLines``, when given): one bad record
    in the delivered history must not fail a training job.
    """
    from stocksage.history import SkippedLines, decode_object

    skipped = skipped if skipped is not None else SkippedLines()
    bars = []
    for path in history_files(root):
        bars.extend(decode_object(path.read_bytes(),
                                  on_invalid=skipped.recorder(str(path.relative_to(root)))))
    return bars


__all__ = [
    "LABEL",
    "MIN_SYMBOL_BARS",
    "build_training_frame",
    "feature_names",
    "frames_from_bars",
    "history_files",
    "label_symbol_frame",
    "read_history_dir",
]
