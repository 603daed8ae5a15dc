"""The O(1) streaming kernel equals ``ta`` run once on the whole series (exactness contract).

Contract (docs/DESIGN.md "Streaming state"): relative error <= 1e-9 for every output column,
NaN exactly where the batch run (``features.enrich``) is NaN. ``bb_pband`` (%B) and the
values that cross zero (``macd``, ``macd_diff``, their normalised feature, ``ema_gap``,
``sma_gap``, ``ret_*``, ``volume_ratio``) are judged with an absolute floor of 1e-9 (in their
natural unit, prices scaled by the close): their relative error is meaningless at a crossing.
"""

from __future__ import annotations

import functools
import zlib

import numpy as np
import pandas as pd
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stocksage.adapters.memory import memory_ports
from stocksage.bars import OHLCV, TIME_UNIT, frame_to_bars
from stocksage.datasets import available_symbols, dataset_info, load_bars
from stocksage.indicators.definition import OUTPUT_COLUMNS, WARMUP_ROWS
from stocksage.indicators.features import enrich
from stocksage.indicators.incremental import Kernel, seed_from_frame
from stocksage.processing import StreamBar, process_batch
from stocksage.state import StateFormatError, SymbolState

PRICE_COLUMNS = {"sma_20", "ema_12", "ema_26", "macd", "macd_signal", "macd_diff", "bb_mavg",
                 "bb_high", "bb_low", "atr_14"}
CROSSING = {"macd", "macd_signal", "macd_diff", "bb_pband", "macd_diff_norm", "ema_gap",
            "sma_gap", "ret_1", "ret_5", "volume_ratio"}


def assert_column_exact(name: str, streamed: np.ndarray, full: pd.DataFrame) -> None:
    """Column ``name`` of ``streamed`` (its own column of OUTPUT_COLUMNS) against ``full``:
    NaN where ``full`` is NaN; elsewhere |s - f| <= 1e-9 |f| (+ 1e-9 floor for crossers)."""
    close = full["close"].to_numpy() if "close" in full else np.ones(len(full))
    s, f = streamed[:, OUTPUT_COLUMNS.index(name)], full[name].to_numpy()
    nan = np.isnan(f)
    assert (np.isnan(s) == nan).all(), f"{name}: NaN at other rows " \
        f"(first at {np.flatnonzero(np.isnan(s) != nan)[0]})"
    floor = 0.0
    if name in CROSSING:
        floor = 1e-9 * (np.abs(close) if name in PRICE_COLUMNS else 1.0)
    ok = nan | (np.abs(s - f) <= 1e-9 * np.abs(f) + floor)
    assert ok.all(), f"{name}: first mismatch at row {np.flatnonzero(~ok)[0]}"


def assert_exact(streamed: np.ndarray, full: pd.DataFrame) -> None:
    """Every output column exact (``assert_column_exact``)."""
    for name in OUTPUT_COLUMNS:
        assert_column_exact(name, streamed, full)


def replay(frame: pd.DataFrame) -> np.ndarray:
    kernel, row = Kernel.empty(1), np.zeros(1, dtype=np.int64)
    matrix = frame[list(OHLCV)].to_numpy(np.float64)
    return np.vstack([kernel.step(row, matrix[i:i + 1]) for i in range(len(matrix))])


@functools.cache
def streamed_and_full(symbol: str) -> tuple[np.ndarray, pd.DataFrame]:
    """A packaged series replayed bar by bar, and ``ta`` (``enrich``) on the whole series."""
    frame = load_bars(symbol)
    return replay(frame), enrich(frame)


@pytest.mark.parametrize("column", OUTPUT_COLUMNS)
@pytest.mark.parametrize("symbol", available_symbols())
def test_streamed_column_equals_ta_on_the_whole_series(symbol: str, column: str) -> None:
    """One indicator (or feature) column, one test: a failure names the column and symbol."""
    streamed, full = streamed_and_full(symbol)
    assert_column_exact(column, streamed, full)


def test_warm_up_nans_exactly_where_ta_has_them() -> None:
    frame = load_bars("TSLA").iloc[:40]
    streamed = replay(frame)
    for name, first in WARMUP_ROWS.items():
        column = streamed[:, OUTPUT_COLUMNS.index(name)]
        assert np.isnan(column[:first]).all() and not np.isnan(column[first:]).any(), name


def test_many_symbols_in_one_step_equal_one_symbol_at_a_time() -> None:
    symbols = ["AAPL", "IBM", "MSFT", "GOOG", "NVDA"]
    frames = [load_bars(s).iloc[:300] for s in symbols]
    kernel = Kernel.empty(len(symbols))
    rows = np.arange(len(symbols))
    steps = [kernel.step(rows, np.stack([f[list(OHLCV)].to_numpy()[i] for f in frames]))
             for i in range(300)]
    for k, frame in enumerate(frames):
        assert_exact(np.vstack([step[k] for step in steps]), enrich(frame))


def test_flat_prices_give_nan_pband_like_ta() -> None:
    frame = load_bars("IBM").iloc[:60].copy()
    frame.iloc[10:45, :4] = 100.0  # 35 identical bars: zero-width Bollinger bands
    assert_exact(replay(frame), enrich(frame))


# ----------------------------------------------------------------- through process_batch
def _bars(symbol: str, count: int | None = None) -> list:
    info = dataset_info(symbol)
    frame = load_bars(symbol)
    frame = frame if count is None else frame.iloc[:count]
    return frame_to_bars(symbol, frame, info.interval, info.source)


def _stream(ports, bars, sizes, dup_rng=None) -> None:
    """Feed ``bars`` in batches of ``sizes``; optionally re-send earlier bars (duplicates)."""
    start, seq = 0, 0
    for size in sizes:
        batch = list(bars[start:start + size])
        if dup_rng is not None and start > 0 and dup_rng.random() < 0.5:
            lo = int(dup_rng.integers(max(0, start - 50), start))
            batch = batch[: len(batch) // 2] + bars[lo:lo + 3] + batch[len(batch) // 2:]
        stream = []
        for bar in batch:
            seq += 1
            stream.append(StreamBar(bar, str(seq)))
        outcome = process_batch(stream, ports)
        assert not outcome.failed and not outcome.late
        start += size


def _results_matrix(ports, symbol) -> tuple[np.ndarray, list[str]]:
    rows = sorted((t, item) for (s, t), item in ports.results.items.items() if s == symbol)
    matrix = np.array([[item.get(name, np.nan) for name in OUTPUT_COLUMNS] for _, item in rows],
                      dtype=float)
    return matrix, [t for t, _ in rows]


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(sizes=st.lists(st.integers(1, 500), min_size=1, max_size=40),
       seed=st.integers(0, 2**16), symbol=st.sampled_from(["TSLA", "NFLX", "BTC-USD"]))
def test_random_batch_splits_with_duplicates_equal_ta(sizes, seed, symbol) -> None:
    bars = _bars(symbol, 1000)
    while sum(sizes) < len(bars):
        sizes = sizes + sizes
    ports = memory_ports()
    _stream(ports, bars, sizes, np.random.default_rng(seed))
    matrix, times = _results_matrix(ports, symbol)
    assert len(times) == len(bars)
    assert_exact(matrix, enrich(load_bars(symbol).iloc[:1000]))


def test_late_bar_is_reported_not_mixed_into_the_series() -> None:
    bars = _bars("MSFT", 120)
    ports = memory_ports()
    kept = bars[:50] + bars[51:]
    _stream(ports, kept, [50, 69])
    outcome = process_batch([StreamBar(bars[50], "999")], ports)
    assert [b.bar for b in outcome.late] == [bars[50]] and outcome.total("accepted") == 0
    matrix, _ = _results_matrix(ports, "MSFT")
    frame = load_bars("MSFT").iloc[:120]
    assert_exact(matrix, enrich(frame.drop(frame.index[50])))


# ----------------------------------------------------------------- the stored state
def test_state_item_round_trip_and_size() -> None:
    ports = memory_ports()
    _stream(ports, _bars("AAPL", 700), [100] * 7)
    item = ports.states.items["AAPL"]
    state = SymbolState.from_item(item)
    assert state.to_item() | {"version": item["version"]} == item
    assert state.bars_seen == 700 and state.version == item["version"] == 7
    assert len(item["core"]) < 700  # kernel + last values, no bar window


@pytest.mark.parametrize("count", [1, 5, 13, 14, 21, 40])
def test_state_round_trip_during_warm_up_continues_exactly(count: int) -> None:
    bars = _bars("TSLA", 80)
    ports = memory_ports()
    _stream(ports, bars, [count, 80 - count])
    matrix, _ = _results_matrix(ports, "TSLA")
    assert_exact(matrix, enrich(load_bars("TSLA").iloc[:80]))


def test_corrupt_and_unknown_items_raise_state_format_error() -> None:
    ports = memory_ports()
    _stream(ports, _bars("TSLA", 30), [30])
    item = dict(ports.states.items["TSLA"])
    with pytest.raises(StateFormatError, match="unknown state format"):
        SymbolState.from_item(item | {"format": 9})
    with pytest.raises(StateFormatError, match="core"):
        SymbolState.from_item(item | {"core": item["core"][:-8]})
    with pytest.raises(StateFormatError, match="lacks"):
        SymbolState.from_item({k: v for k, v in item.items() if k != "core"})


def test_core_layout_1_without_range_forecast_is_read_and_continues_exactly() -> None:
    """Items written before the range output (core layout 1: last values end at ``prob_up``)
    are read with ``range_forecast`` undefined, and streaming continues exactly."""
    bars = _bars("IBM", 120)
    ports = memory_ports()
    _stream(ports, bars[:60], [60])
    item = dict(ports.states.items["IBM"])
    core = bytearray(item["core"][:-8])  # drop the range_forecast value ...
    core[0] = 1  # ... and mark the core as layout 1
    old = SymbolState.from_item(item | {"core": bytes(core)})
    new = SymbolState.from_item(item)
    assert np.isnan(old.last_values[-1])
    np.testing.assert_array_equal(old.last_values[:-1], new.last_values[:-1])
    ports.states.items["IBM"] = item | {"core": bytes(core)}
    _stream(ports, bars[60:], [60])
    matrix, _ = _results_matrix(ports, "IBM")
    assert_exact(matrix, enrich(load_bars("IBM").iloc[:120]))
    assert ports.states.items["IBM"]["core"][0] == 2


def format1_item(symbol: str, frame: pd.DataFrame, window: int = 600) -> dict:
    """A state item exactly as the 600-bar design stored it (format 1)."""
    bars = frame.iloc[-window:]
    full = enrich(frame)
    first = len(frame) - len(bars)
    obv_offset = float(full["obv"].iloc[first] - frame["volume"].iloc[first])
    times = bars.index.as_unit(TIME_UNIT).asi8.astype("<i8")
    payload = times.tobytes() + np.ascontiguousarray(
        bars[list(OHLCV)].to_numpy(dtype="<f8").T).tobytes()
    last = {k: float(v) for k, v in full.iloc[-1].items() if not np.isnan(v)}
    fired = {"doji": bars.index[-3].strftime("%Y-%m-%dT%H:%M:%SZ")}
    return {"symbol": symbol, "bars": zlib.compress(payload, 6), "bar_count": len(bars),
            "obv_offset": obv_offset, "bars_seen": len(frame), "format": 1,
            "last_bar_time": bars.index[-1].strftime("%Y-%m-%dT%H:%M:%SZ"),
            "last_values": last | {"alerts_last_fired": fired}}


def test_format_1_item_is_seeded_with_ta_and_migrated_on_the_next_write() -> None:
    frame = load_bars("NVDA").iloc[:3000]
    bars = _bars("NVDA", 3200)
    ports = memory_ports()
    ports.states.items["NVDA"] = format1_item("NVDA", frame)
    migrated = SymbolState.from_item(ports.states.items["NVDA"])
    assert migrated.migrated_from == 1 and migrated.last_fired == {"doji": 2997}
    _stream(ports, bars[3000:], [7, 93, 100])
    item = ports.states.items["NVDA"]
    assert item["format"] == 2 and item["version"] == 3
    matrix, _ = _results_matrix(ports, "NVDA")
    assert_exact(matrix, enrich(load_bars("NVDA").iloc[:3200]).iloc[3000:])


def test_seeding_needs_enough_history() -> None:
    frame = load_bars("IBM").iloc[:30]
    with pytest.raises(ValueError, match="at least"):
        seed_from_frame(frame, bars_seen=500)
    with pytest.raises(ValueError, match="below"):
        seed_from_frame(frame, bars_seen=10)
