"""The processor's trade path (``process_batch(..., trades=...)``) on real E-mini trades.

Reference for every check: pandas' resample of the same trades (OHLCV exact) and ``ta`` on
those bars (``stocksage.indicators.features.enrich``). In-memory ports.
"""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest

from stocksage.adapters.memory import memory_ports
from stocksage.alerts import Rule
from stocksage.bars.aggregation import DEFAULT_GRACE_NS
from stocksage.bars.trades import Trade, encode_trades, encode_watermark
from stocksage.config import STACK
from stocksage.indicators.features import enrich
from stocksage.processing import decode_record, process_batch
from stocksage.processing.results import PREDICTION_NO_MODEL
from tests.helpers.trades import es_trades, payloads, resample, stream

MINUTE_NS = 60 * 1_000_000_000


def final_watermark(trades: pd.DataFrame, seq: int, symbol: str = "ES"):
    """The heartbeat a replay ends with: past the last bar's end plus the grace."""
    last = int(trades["time_ns"].iloc[-1])
    data = encode_watermark(symbol, last - last % MINUTE_NS + MINUTE_NS + DEFAULT_GRACE_NS)
    return decode_record(data, partition_key=symbol, sequence_number=str(seq),
                         shard_id="shardId-000000000000").item


def run(ports, records, size):
    return [process_batch([], ports, trades=records[i:i + size])
            for i in range(0, len(records), size)]


def result_frame(ports, symbol="ES") -> pd.DataFrame:
    items = sorted((item for (s, _), item in ports.results.items.items() if s == symbol),
                   key=lambda item: item["bar_time"])
    frame = pd.DataFrame(items)
    frame.index = pd.to_datetime(frame["bar_time"], utc=True)
    return frame


def assert_bars_and_indicators_match(ports, trades):
    expected = enrich(resample(trades))
    got = result_frame(ports)
    assert list(got.index) == list(expected.index)
    assert (got["interval"] == "1m").all()
    for column in ("open", "high", "low", "close", "volume"):
        np.testing.assert_array_equal(got[column].astype(float), expected[column])
    for column in (*STACK.indicator_columns, *STACK.features):
        want = expected[column].to_numpy()
        have = got[column].astype(float).to_numpy() if column in got else np.full(len(got),
                                                                                   np.nan)
        np.testing.assert_allclose(have, want, rtol=1e-9, atol=1e-9, equal_nan=True,
                                   err_msg=column)
    # the served model is trained on daily bars: a 1m bar gets no prediction, and says so
    finite = ~expected[list(STACK.features)].isna().any(axis=1).to_numpy()
    status = got.get("prediction_status", pd.Series(None, index=got.index, dtype=object))
    assert ((status == PREDICTION_NO_MODEL).to_numpy() == finite).all()
    assert "prob_up" not in got


def test_1m_bars_from_real_trades_equal_a_pandas_resample_and_indicators_equal_ta():
    trades = es_trades(20_000)
    records = stream(payloads(trades))
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports()
    outcomes = run(ports, records, 25)
    assert sum(o.total("trades_accepted") for o in outcomes) == 20_000
    assert sum(o.total("late_trades") for o in outcomes) == 0
    assert_bars_and_indicators_match(ports, trades)
    state = ports.states.items["ES"]
    assert state["interval"] == "1m" and len(state["trades"]) < 2_000  # no trade ids kept


def test_identical_fills_without_id_all_count():
    trades = es_trades(5_000)
    repeats = int(trades.duplicated().sum())
    assert repeats > 1_000  # the bundled file repeats rows: separate fills, not duplicates
    records = stream(payloads(trades))
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports()
    run(ports, records, 50)
    assert result_frame(ports)["volume"].astype(float).sum() == trades["size"].sum()


@pytest.mark.parametrize("size", [1, 7, 300])
def test_batching_and_redelivery_do_not_change_the_bars(size):
    trades = es_trades(6_000, start=30_000)
    records = stream(payloads(trades, per_record=150))
    records.append(final_watermark(trades, len(records) + 1))
    reference = memory_ports()
    run(reference, records, 1_000)
    ports = memory_ports()
    for first in range(0, len(records), size):
        batch = records[first:first + size]
        process_batch([], ports, trades=batch)
        again = process_batch([], ports, trades=records[max(0, first - 3):first + size])
        assert again.total("trades_accepted") == 0  # every record applied before
        assert again.total("duplicate_records") == len(records[max(0, first - 3):first + size])
    assert ports.results.items.keys() == reference.results.items.keys()
    for key, item in reference.results.items.items():
        mine = ports.results.items[key]
        assert {k: v for k, v in mine.items() if k != "processed_at"} == \
            {k: v for k, v in item.items() if k != "processed_at"}


def test_a_failed_state_write_is_retried_without_counting_a_trade_twice():
    trades = es_trades(4_000, start=10_000)
    records = stream(payloads(trades))
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports()
    run(ports, records[:8], 8)
    ports.states.fail_write = lambda symbol: True
    failed = process_batch([], ports, trades=records[8:14])
    assert set(failed.failed) == {"ES"}
    ports.states.fail_write = lambda symbol: False
    run(ports, records[8:], 6)  # Kinesis re-sends from the failed record on
    assert_bars_and_indicators_match(ports, trades)


def test_a_repeated_trade_id_counts_once():
    """A resend of trades with ids (a backfill overlap): a repeat whose bar is open is a
    duplicate, one whose bar closed already is late; neither changes a bar."""
    trades = es_trades(3_000, start=40_000)
    data = payloads(trades, ids=True)
    resent = [encode_trades("ES", [Trade("ES", int(r.time_ns), float(r.price), float(r.size),
                                         str(1_000 + k))
                                   for k, r in enumerate(trades.iloc[1_000:1_400].itertuples())])]
    assert resent
    order = data[:7] + resent + data[7:]
    records = stream(order)
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports()
    outcomes = run(ports, records, 4)
    watermark = int(trades["time_ns"].iloc[:1_400].max())
    ends = trades["time_ns"].iloc[1_000:1_400] // MINUTE_NS * MINUTE_NS + MINUTE_NS
    still_open = int((ends + DEFAULT_GRACE_NS > watermark).sum())
    assert 0 < still_open < 400
    assert sum(o.total("duplicate_trades") for o in outcomes) == still_open
    assert sum(o.total("late_trades") for o in outcomes) == 400 - still_open
    assert_bars_and_indicators_match(ports, trades)


def test_a_trade_after_the_grace_is_late_counted_and_changes_no_bar():
    trades = es_trades(3_000, start=50_000)
    first = int(trades["time_ns"].iloc[0])
    last = int(trades["time_ns"].iloc[-1])
    late = Trade("ES", first, 9_999.0, 5.0)  # its minute closed long ago
    records = stream(payloads(trades))
    tail = decode_record(encode_trades("ES", [late]), partition_key="ES",
                         sequence_number=str(len(records) + 1), shard_id="s").item
    records.append(tail)
    records.append(final_watermark(trades, len(records) + 1))
    assert last - first > 5 * MINUTE_NS
    ports = memory_ports()
    outcomes = run(ports, records, 10)
    assert sum(o.total("late_trades") for o in outcomes) == 1
    assert_bars_and_indicators_match(ports, trades)


def test_trades_within_the_grace_out_of_order_land_in_their_bar():
    trades = es_trades(20_000, start=380_000)  # the US cash session: busy minutes
    shuffled = trades.copy()
    # swap neighbours across a minute boundary: each arrives < grace after a later trade
    minutes = shuffled["time_ns"] // MINUTE_NS
    boundary = np.flatnonzero(np.diff(minutes.to_numpy()))
    for k in boundary:
        gap = shuffled.at[k + 1, "time_ns"] - shuffled.at[k, "time_ns"]
        if gap < DEFAULT_GRACE_NS:
            a, b = shuffled.loc[k].copy(), shuffled.loc[k + 1].copy()
            shuffled.loc[k], shuffled.loc[k + 1] = b, a
    assert not shuffled["time_ns"].is_monotonic_increasing
    records = stream(payloads(shuffled, per_record=1))  # one trade per record: worst case
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports()
    outcomes = run(ports, records, 500)
    assert sum(o.total("late_trades") for o in outcomes) == 0
    assert_bars_and_indicators_match(ports, trades)


def test_a_quiet_symbol_closes_its_last_bar_on_a_heartbeat_only():
    trades = es_trades(500, start=70_000)
    records = stream(payloads(trades))
    ports = memory_ports()
    run(ports, records, 100)
    last_minute = pd.Timestamp(int(trades["time_ns"].iloc[-1]) // MINUTE_NS * MINUTE_NS,
                               unit="ns", tz="UTC")
    assert last_minute not in result_frame(ports).index  # still forming
    process_batch([], ports, trades=[final_watermark(trades, len(records) + 1)])
    assert result_frame(ports).index[-1] == last_minute
    assert_bars_and_indicators_match(ports, trades)


def test_price_level_fires_intrabar_on_the_crossing_trade_once_per_bar():
    trades = es_trades(20_000)
    prices = trades["price"].to_numpy()
    level = float(np.median(prices)) + 0.125  # between ticks: crossed many times
    rule = Rule("lvl", "ES", "price_above", {"level": level})
    records = stream(payloads(trades))
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports({"ES": [rule]})
    run(ports, records, 10)
    messages = list(ports.alerts.published.values())
    ids = [m["alert_id"] for m in messages]
    assert len(ids) == len(set(ids))
    crossings = np.flatnonzero((prices[:-1] <= level) & (level < prices[1:])) + 1
    minutes = {int(t) // MINUTE_NS * MINUTE_NS for t in trades["time_ns"].to_numpy()[crossings]}
    intrabar = [m for m in messages if m["payload"]["details"]["phase"] == "intrabar"]
    assert len(intrabar) == len(minutes) > 3
    for message in intrabar:
        details = message["payload"]["details"]
        same_time = np.flatnonzero(trades["time_ns"].to_numpy() == details["trade_time_ns"])
        assert details["trade_price"] > level
        assert any(prices[k] == details["trade_price"] and prices[k - 1] <= level
                   for k in same_time)  # a trade at that time crossed
    close = [m for m in messages if m["payload"]["details"]["phase"] == "close"]
    fired_bars = {m["payload"]["bar"]["bar_time"] for m in intrabar}
    assert all(m["payload"]["bar"]["bar_time"] not in fired_bars for m in close)


def test_state_item_round_trips_the_trade_path():
    trades = es_trades(1_000, start=80_000)
    ports = memory_ports()
    run(ports, stream(payloads(trades)), 3)
    item = copy.deepcopy(ports.states.items["ES"])
    from stocksage.state import SymbolState

    state = SymbolState.from_item(item)
    assert state.trades is not None and state.trades.builder is not None
    assert state.trades.applied == {"shardId-000000000000": "5"}
    assert state.to_item()["trades"] == item["trades"]


def test_indicator_rules_fire_intrabar_on_the_forming_bar_with_values_equal_to_ta():
    """An RSI rule on the forming bar: each intrabar alert's RSI equals ``ta`` over the closed
    bars plus the forming bar as the alert carries it; once per bar, never again at close."""
    trades = es_trades(20_000)
    rule = Rule("rsi", "ES", "rsi_cross", {"upper": 55, "lower": 45})
    records = stream(payloads(trades))
    records.append(final_watermark(trades, len(records) + 1))
    ports = memory_ports({"ES": [rule]})
    run(ports, records, 3)
    messages = list(ports.alerts.published.values())
    intrabar = [m for m in messages if m["payload"]["details"]["phase"] == "intrabar"]
    assert len(intrabar) > 3
    closed = resample(trades)
    for message in intrabar:
        bar = message["payload"]["bar"]
        start = pd.Timestamp(bar["bar_time"])
        partial = pd.DataFrame([{k: float(bar[k]) for k in ("open", "high", "low", "close",
                                                           "volume")}], index=[start])
        series = pd.concat([closed[closed.index < start], partial])
        expected = enrich(series)["rsi_14"].iloc[-1]
        assert message["payload"]["details"]["rsi"] == pytest.approx(expected, rel=1e-9)
    bars_fired = [m["payload"]["bar"]["bar_time"] for m in intrabar]
    assert len(bars_fired) == len(set(bars_fired))
    close = [m["payload"]["bar"]["bar_time"] for m in messages
             if m["payload"]["details"]["phase"] == "close"]
    assert not set(close) & set(bars_fired)
