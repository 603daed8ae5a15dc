"""Model features: scale-free ratios of OHLCV and indicator columns.

Training (``enrich`` over a whole series) calls ``compute_features``; the processor computes
the same definitions bar by bar in ``stocksage.indicators.incremental`` (O(1) per bar), and
tests/unit/indicators/test_incremental.py checks on every packaged series that both give the same
values (relative error <= 1e-9), so there is no train/serve skew. Every feature
of a bar uses only that bar and earlier ones (no look-ahead; tested by truncation).

| feature | definition | warm-up (first non-NaN row, 0-based) |
|---|---|---|
| ret_1 | close / previous close - 1 | 1 |
| ret_5 | close / close 5 bars earlier - 1 | 5 |
| rsi_14 | RSI(14), 0..100, as is | 13 |
| macd_diff_norm | macd_diff / close | 33 |
| bb_pband | Bollinger %B, as is | 19 |
| atr_norm | atr_14 / close | 13 |
| ema_gap | ema_12 / ema_26 - 1 | 25 |
| sma_gap | close / sma_20 - 1 | 19 |
| volume_ratio | volume / mean volume of the last 20 bars (incl. current) - 1 (1) | 19 |

(1) NaN when that mean is 0. Infinite results (a zero close or zero average) are reported as
NaN.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd
from numpy.lib.stride_tricks import sliding_window_view

from stocksage.bars import OHLCV
from stocksage.config import STACK
from stocksage.indicators.definition import (
    ATR,
    EMA_FAST,
    EMA_SLOW,
    INDICATOR_COLUMNS,
    RSI,
    SMA,
    compute_indicators,
)

__all__ = ["FEATURES", "VOLUME_WINDOW", "compute_features", "enrich"]

FEATURES: tuple[str, ...] = STACK.features
"""Ordered model feature names (stack.json ``features``)."""

VOLUME_WINDOW = 20
"""Bars in the mean volume of ``volume_ratio`` (current bar included)."""

Frame: TypeAlias = pd.DataFrame
Array: TypeAlias = npt.NDArray[np.float64]


def _ret(lag: int) -> Callable[[Frame], Array]:
    def feature(frame: Frame) -> Array:
        close = frame["close"].to_numpy(dtype=np.float64)
        out = np.full(len(close), np.nan)
        if len(close) > lag:
            with np.errstate(divide="ignore", invalid="ignore"):
                out[lag:] = close[lag:] / close[:-lag] - 1
        return out

    return feature


def _ratio(numerator: str, denominator: str, minus_one: bool = False) -> Callable[[Frame], Array]:
    def feature(frame: Frame) -> Array:
        top = frame[numerator].to_numpy(dtype=np.float64)
        bottom = frame[denominator].to_numpy(dtype=np.float64)
        with np.errstate(divide="ignore", invalid="ignore"):
            return top / bottom - (1.0 if minus_one else 0.0)

    return feature


def _column(name: str) -> Callable[[Frame], Array]:
    return lambda frame: frame[name].to_numpy(dtype=np.float64, copy=True)


def _volume_ratio(frame: Frame) -> Array:
    # An explicit 20-value sum per bar (not pandas' running rolling sum): the result depends
    # only on those 20 volumes, so the window and the full series give bit-identical values.
    volume = frame["volume"].to_numpy(dtype=np.float64)
    out = np.full(len(volume), np.nan)
    if len(volume) >= VOLUME_WINDOW:
        mean = sliding_window_view(volume, VOLUME_WINDOW).sum(axis=1) / VOLUME_WINDOW
        with np.errstate(divide="ignore", invalid="ignore"):
            out[VOLUME_WINDOW - 1 :] = np.where(
                mean > 0, volume[VOLUME_WINDOW - 1 :] / mean - 1, np.nan
            )
    return out


_DEFINITIONS: dict[str, Callable[[Frame], Array]] = {
    "ret_1": _ret(1),
    "ret_5": _ret(5),
    "rsi_14": _column(RSI),
    "macd_diff_norm": _ratio("macd_diff", "close"),
    "bb_pband": _column("bb_pband"),
    "atr_norm": _ratio(ATR, "close"),
    "ema_gap": _ratio(EMA_FAST, EMA_SLOW, minus_one=True),
    "sma_gap": _ratio("close", SMA, minus_one=True),
    "volume_ratio": _volume_ratio,
}
_unknown = [name for name in FEATURES if name not in _DEFINITIONS]
if _unknown:
    raise ValueError(f"stack.json features {_unknown} have no definition in "
                     "stocksage.indicators.features")


def compute_features(frame: pd.DataFrame) -> pd.DataFrame:
    """Model features of each row.

    Args:
        frame: Rows in time order with ``open high low close volume`` and the
            ``INDICATOR_COLUMNS`` (output of ``compute_indicators``), any index.

    Returns:
        float64 DataFrame, same index, columns ``FEATURES`` (definitions and warm-up in the
        module docstring); NaN during warm-up and where a ratio is undefined or infinite.

    Raises:
        ValueError: when a needed column is missing.
    """
    missing = [name for name in (*OHLCV, *INDICATOR_COLUMNS) if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s): {', '.join(missing)}")
    values = {name: _DEFINITIONS[name](frame) for name in FEATURES}
    result = pd.DataFrame(values, index=frame.index, dtype=np.float64)
    return result.where(np.isfinite(result.to_numpy()))


def enrich(frame: pd.DataFrame) -> pd.DataFrame:
    """OHLCV -> OHLCV + indicators + features in one call (the batch path training uses).

    Returns:
        float64 DataFrame, same index, columns ``open high low close volume``, then
        ``INDICATOR_COLUMNS``, then the features not already among them.
    """
    ohlcv = frame[list(OHLCV)].astype(np.float64)
    indicators = compute_indicators(ohlcv)
    features = compute_features(pd.concat([ohlcv, indicators], axis=1))
    extra = [name for name in FEATURES if name not in indicators.columns]
    return pd.concat([ohlcv, indicators, features[extra]], axis=1)
