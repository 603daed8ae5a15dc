"""Indicators: ta in batch, and streaming through ``advance`` == batch over the whole series."""

from __future__ import annotations

import statistics
import time
from dataclasses import replace
from decimal import Decimal

import numpy as np
import pandas as pd
import pytest
from ta.momentum import RSIIndicator
from ta.trend import EMAIndicator
from ta.volatility import AverageTrueRange

from stocksage.bars import Bar, frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import dataset_info, load_bars
from stocksage.features import enrich
from stocksage.indicators import (
    INDICATOR_COLUMNS,
    MIN_WINDOW_BARS,
    OUTPUT_COLUMNS,
    WARMUP_ROWS,
    WindowState,
    WindowUpdate,
    advance,
    compute_indicators,
    recursion_decay,
)

WINDOW = STACK.window_bars
PRICE_COLUMNS = {"sma_20", "ema_12", "ema_26", "macd", "macd_signal", "macd_diff", "bb_mavg",
                 "bb_high", "bb_low", "atr_14"}  # fmt: skip


def bars_of(symbol: str) -> list[Bar]:
    info = dataset_info(symbol)
    return frame_to_bars(symbol, load_bars(symbol), info.interval, info.source)


def expected(symbol: str, count: int | None = None) -> pd.DataFrame:
    frame = load_bars(symbol)
    frame = frame if count is None else frame.iloc[:count]
    return enrich(frame)[list(OUTPUT_COLUMNS)]


def stream(bars: list[Bar], sizes: list[int], roundtrip_every: int = 0) -> pd.DataFrame:
    state: WindowState | None = None
    parts, start = [], 0
    for number, size in enumerate(sizes, start=1):
        update = advance(state, bars[start : start + size], WINDOW)
        assert len(update.accepted) == len(update.indicators) == min(size, len(bars) - start)
        state = update.state
        assert len(state.bars) <= WINDOW
        parts.append(update.indicators)
        start += size
        if roundtrip_every and number % roundtrip_every == 0:
            state = WindowState.from_item(state.to_item())
    assert start >= len(bars)
    return pd.concat(parts)


def random_sizes(total: int, seed: int, high: int) -> list[int]:
    rng = np.random.default_rng(seed)
    sizes: list[int] = []
    while sum(sizes) < total:
        sizes.append(int(rng.integers(1, high + 1)))
    return sizes


def assert_matches(streamed: pd.DataFrame, full: pd.DataFrame, close: pd.Series) -> None:
    """NaN exactly where the full run is NaN; elsewhere |s - f| <= 1e-6 |f| + atol.

    atol is 1e-9 (in the column's natural unit: price units scaled by close, or 1 for the
    dimensionless columns) so that values that happen to sit at ~0 (%B at the lower band,
    macd_diff at a crossing) are not judged by a meaningless relative error.
    """
    assert list(streamed.columns) == list(full.columns)
    assert streamed.index.equals(full.index)
    pd.testing.assert_frame_equal(streamed.isna(), full.isna())
    for name in full.columns:
        s, f = streamed[name].to_numpy(), full[name].to_numpy()
        scale = close.to_numpy() if name in PRICE_COLUMNS else 1.0
        ok = np.isnan(f) | (np.abs(s - f) <= 1e-6 * np.abs(f) + 1e-9 * scale)
        assert ok.all(), f"{name}: first mismatch at row {np.flatnonzero(~ok)[0]}"
        finite = ~np.isnan(f) & (np.abs(f) > 1e-6 * scale)
        if finite.any():
            worst = np.max(np.abs(s[finite] - f[finite]) / np.abs(f[finite]))
            assert worst <= 1e-6, f"{name}: relative error {worst}"


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


# --- streaming == batch ------------------------------------------------------------------


def test_full_long_series_random_batches_nvda() -> None:
    bars = bars_of("NVDA")
    full = expected("NVDA")
    streamed = stream(bars, random_sizes(len(bars), seed=1, high=120), roundtrip_every=7)
    assert_matches(streamed, full, load_bars("NVDA")["close"])


@pytest.mark.parametrize(("symbol", "seed"), [("AAPL", 2), ("BTC-USD", 3), ("GOOG", 4)])
def test_random_batches_real_symbols(symbol: str, seed: int) -> None:
    count = 1600  # past the window twice; enough to exercise truncation, fast
    bars = bars_of(symbol)[:count]
    streamed = stream(bars, random_sizes(count, seed=seed, high=90), roundtrip_every=3)
    assert_matches(streamed, expected(symbol, count), load_bars(symbol)["close"].iloc[:count])


def test_one_bar_batches_short_series() -> None:
    bars = bars_of("TSLA")  # 254 bars: whole series inside the window, warm-up included
    streamed = stream(bars, [1] * len(bars))
    full = expected("TSLA")
    assert_matches(streamed, full, load_bars("TSLA")["close"])
    pd.testing.assert_frame_equal(streamed.isna(), full.isna())


def test_one_bar_batches_across_the_window_edge() -> None:
    bars = bars_of("AAPL")[:680]
    sizes = [560] + [1] * 120  # the window fills at bar 600 and starts sliding
    streamed = stream(bars, sizes, roundtrip_every=17)
    assert_matches(streamed, expected("AAPL", 680), load_bars("AAPL")["close"].iloc[:680])


def test_batches_bigger_than_the_window() -> None:
    bars = bars_of("IBM")
    sizes = [1500, 1, 1300, 469]  # 3,270 bars
    streamed = stream(bars, sizes)
    assert_matches(streamed, expected("IBM"), load_bars("IBM")["close"])


@pytest.mark.parametrize("count", [1, 10, 14, 20, 26, 34, 40])
def test_warmup_nan_exactly_like_full_run(count: int) -> None:
    bars = bars_of("FB")[:count]
    full = expected("FB", count)
    for sizes in ([count], [1] * count, random_sizes(count, seed=count, high=7)):
        streamed = stream(bars, sizes)
        pd.testing.assert_frame_equal(streamed.isna(), full.isna())
        assert_matches(streamed, full, load_bars("FB")["close"].iloc[:count])


# --- policy: duplicates and late bars ----------------------------------------------------


def test_duplicates_and_late_bars_are_dropped() -> None:
    bars = bars_of("AAPL")[:120]
    first = advance(None, bars[:100], WINDOW)
    changed = replace(bars[101], close=bars[101].close * 0.99, low=bars[101].low * 0.5)
    batch = [bars[101], bars[99], changed, bars[50], bars[103], bars[102], bars[104]]
    update = advance(first.state, batch, WINDOW)
    assert update.accepted == [bars[101], bars[103], bars[104]]
    assert update.duplicates == [bars[99], changed, bars[50]]  # first write wins
    assert update.late == [bars[102]]
    assert update.state.last_bar_time == bars[104].bar_time
    assert update.state.bars_seen == 103
    # indicators of the accepted bars == the batch run over the accepted series
    series = load_bars("AAPL").iloc[list(range(100)) + [101, 103, 104]]
    full = enrich(series)[list(OUTPUT_COLUMNS)].iloc[-3:]
    assert_matches(update.indicators, full, series["close"].iloc[-3:])


def test_late_bar_older_than_the_window() -> None:
    bars = bars_of("AAPL")[:700]
    state = advance(None, bars[:690], WINDOW).state
    update = advance(state, [bars[5], bars[689], bars[690]], WINDOW)
    assert update.late == [bars[5]]  # outside the 600-bar window: cannot be matched, so late
    assert update.duplicates == [bars[689]]
    assert update.accepted == [bars[690]]


def test_outcome_independent_of_batch_split() -> None:
    base = bars_of("GOOG")[:400]
    rng = np.random.default_rng(11)
    arrivals = list(base)
    for _ in range(60):  # inject re-sends and out-of-order bars
        position = int(rng.integers(1, len(arrivals)))
        arrivals.insert(position, base[int(rng.integers(0, len(base)))])
    results = []
    for seed in (1, 2, 3):
        state, accepted, dropped, parts, start = None, [], 0, [], 0
        for size in random_sizes(len(arrivals), seed, 40):
            update = advance(state, arrivals[start : start + size], WINDOW)
            state, start = update.state, start + size
            accepted += update.accepted
            dropped += len(update.duplicates) + len(update.late)
            parts.append(update.indicators)
        assert len(accepted) + dropped == len(arrivals)
        results.append((accepted, pd.concat(parts)))
    for accepted, indicators in results[1:]:
        assert accepted == results[0][0]
        pd.testing.assert_frame_equal(indicators, results[0][1])
    times = [bar.bar_time for bar in results[0][0]]
    assert times == sorted(set(times))


def test_empty_batches_and_errors() -> None:
    bars = bars_of("FB")[:50]
    state = advance(None, bars[:30], WINDOW).state
    update = advance(state, [], WINDOW)
    assert update.accepted == [] and update.indicators.empty
    assert list(update.indicators.columns) == list(OUTPUT_COLUMNS)
    assert update.state is state
    with pytest.raises(ValueError, match="symbol"):
        advance(None, [], WINDOW)
    other = frame_to_bars("TSLA", load_bars("TSLA").iloc[:1])
    with pytest.raises(ValueError, match="TSLA"):
        advance(state, other, WINDOW)
    with pytest.raises(ValueError, match="minimum"):
        advance(state, bars[30:], MIN_WINDOW_BARS - 1)


# --- state serialisation -----------------------------------------------------------------


def test_state_item_round_trip_plain_types() -> None:
    bars = bars_of("BTC-USD")[:700]
    state = advance(None, bars, WINDOW).state
    item = state.to_item()
    assert {type(value) for value in item.values()} <= {str, int, float, bytes}
    assert item["bar_count"] == WINDOW and item["bars_seen"] == 700
    assert len(item["bars"]) < 30_000
    back = WindowState.from_item(item)
    pd.testing.assert_frame_equal(back.bars, state.bars)
    assert back.obv_offset == state.obv_offset and back.bars_seen == 700
    assert back.last_bar_time == bars[-1].bar_time and back.symbol == "BTC-USD"
    # what DynamoDB gives back: Decimal numbers, a bytes-like wrapper
    wrapped = {key: Decimal(str(value)) if isinstance(value, (int, float)) else value
               for key, value in item.items()}  # fmt: skip
    wrapped["bars"] = bytearray(item["bars"])
    pd.testing.assert_frame_equal(WindowState.from_item(wrapped).bars, state.bars)


def test_new_state_item_and_corrupt_items() -> None:
    empty = WindowState("FB")
    item = empty.to_item()
    assert "last_bar_time" not in item
    assert WindowState.from_item(item).bars.empty
    good = advance(None, bars_of("FB")[:40], WINDOW).state.to_item()
    with pytest.raises(ValueError, match="corrupt"):
        WindowState.from_item({**good, "bars": b"not zlib"})
    with pytest.raises(ValueError, match="expected"):
        WindowState.from_item({**good, "bar_count": 41})
    with pytest.raises(ValueError, match="lacks 'obv_offset'"):
        WindowState.from_item({k: v for k, v in good.items() if k != "obv_offset"})
    with pytest.raises(ValueError, match="format"):
        WindowState.from_item({**good, "format": 99})


def test_update_shape() -> None:
    update = advance(None, bars_of("TSLA")[:50], WINDOW)
    assert isinstance(update, WindowUpdate)
    assert update.indicators.index.name == "bar_time"
    assert list(update.indicators.columns) == list(OUTPUT_COLUMNS)
    assert set(STACK.features) <= set(OUTPUT_COLUMNS)


def test_one_bar_advance_is_fast() -> None:
    bars = bars_of("AAPL")[:660]
    state = advance(None, bars[:600], WINDOW).state
    timings = []
    for bar in bars[600:660]:
        start = time.perf_counter()
        state = advance(state, [bar], WINDOW).state
        timings.append(time.perf_counter() - start)
    assert statistics.median(timings) < 0.05  # ~10 ms measured on one core
