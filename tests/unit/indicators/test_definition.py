"""Indicators: ``ta`` in batch (the definition the streaming kernel is tested against)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from ta.momentum import RSIIndicator
from ta.trend import EMAIndicator
from ta.volatility import AverageTrueRange

from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.indicators.definition import (
    INDICATOR_COLUMNS,
    MIN_WINDOW_BARS,
    WARMUP_ROWS,
    compute_indicators,
    recursion_decay,
)

WINDOW = STACK.window_bars


# --- batch -------------------------------------------------------------------------------


def test_columns_index_and_warmup_counts_match_ta() -> None:
    frame = load_bars("TSLA").iloc[:120]
    result = compute_indicators(frame)
    assert tuple(result.columns) == INDICATOR_COLUMNS
    assert result.index.equals(frame.index)
    assert (result.dtypes == np.float64).all()
    for name in INDICATOR_COLUMNS:
        first = int(np.flatnonzero(result[name].notna().to_numpy())[0])
        assert first == WARMUP_ROWS[name], name
        assert result[name].iloc[first:].notna().all(), name
    assert WARMUP_ROWS == {
        "sma_20": 19, "ema_12": 11, "ema_26": 25, "rsi_14": 13, "macd": 25, "macd_signal": 33,
        "macd_diff": 33, "bb_mavg": 19, "bb_high": 19, "bb_low": 19, "bb_pband": 19,
        "atr_14": 13, "obv": 0,
    }  # fmt: skip


def test_values_are_ta_values_on_any_index() -> None:
    frame = load_bars("MSFT").iloc[:300]
    shuffled_index = frame.set_index(pd.Index(np.arange(300)[::-1] * 3))
    result = compute_indicators(shuffled_index)
    plain = frame.reset_index(drop=True)
    rsi = RSIIndicator(plain["close"], 14).rsi().to_numpy()
    ema = EMAIndicator(plain["close"], 26).ema_indicator().to_numpy()
    atr = AverageTrueRange(plain["high"], plain["low"], plain["close"], 14)
    np.testing.assert_array_equal(result["rsi_14"].to_numpy(), rsi)
    np.testing.assert_array_equal(result["ema_26"].to_numpy(), ema)
    np.testing.assert_array_equal(result["atr_14"].to_numpy()[13:], atr.average_true_range()[13:])
    assert list(result.index) == list(shuffled_index.index)
    obv = np.cumsum(np.where(plain["close"].diff() < 0, -plain["volume"], plain["volume"]))
    np.testing.assert_array_equal(result["obv"].to_numpy(), obv)


@pytest.mark.parametrize("rows", [0, 1, 5, 13, 14])
def test_short_frames_give_nan_not_errors(rows: int) -> None:
    result = compute_indicators(load_bars("FB").iloc[:rows])
    assert result.shape == (rows, len(INDICATOR_COLUMNS))
    assert result["atr_14"].isna().sum() == min(rows, 13)
    if rows == 14:
        assert result["atr_14"].iloc[13] > 0


def test_missing_column() -> None:
    with pytest.raises(ValueError, match="volume"):
        compute_indicators(load_bars("FB").drop(columns="volume"))


# --- the truncation bound ----------------------------------------------------------------


def test_recursion_decay_bound() -> None:
    assert recursion_decay(WINDOW) == pytest.approx((13 / 14) ** WINDOW)  # Wilder is slowest
    assert recursion_decay(WINDOW) < 1e-19 < np.finfo(np.float64).eps / 1000
    assert (25 / 27) ** WINDOW < 1e-20
    assert recursion_decay(MIN_WINDOW_BARS) <= 1e-8 < recursion_decay(MIN_WINDOW_BARS - 1)


def test_truncated_recursions_converge_below_float64_precision() -> None:
    """Start ta 600 bars back with a deliberately bad seed: the error must vanish."""
    frame = load_bars("NVDA")
    end = 5000
    full = compute_indicators(frame.iloc[: end + 1]).iloc[-1]
    window = frame.iloc[end - WINDOW : end + 1].copy()
    window.iloc[:30, :4] *= 50.0  # wrong start-up prices (high/low stay consistent)
    truncated = compute_indicators(window).iloc[-1]
    for name in ("ema_12", "ema_26", "macd", "macd_signal", "rsi_14", "atr_14"):
        assert abs(truncated[name] - full[name]) <= 1e-12 * abs(full[name]), name
