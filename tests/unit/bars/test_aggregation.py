"""Bars built from trades by event time equal pandas' resample of the same trades, whatever
the batching; grace, late trades, trade-id duplicates, heartbeats, sessions, holidays, DST."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime

import numpy as np
import pandas as pd
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stocksage.bars import OHLCV, bars_to_frame
from stocksage.bars.aggregation import INTRADAY_NS, BarBuilder
from stocksage.bars.trade_parsing import TradeColumns
from stocksage.bars.trades import time_ns
from stocksage.indicators.definition import compute_indicators

SECOND = 1_000_000_000
START = time_ns(datetime(2024, 3, 11, 13, 30, tzinfo=UTC))  # NYSE open, first day of EDT


def trades(n: int = 6_000, seed: int = 7, span_s: int = 3 * 3600) -> pd.DataFrame:
    """A random-walk tape over ``span_s`` with repeated fills, a silent minute, and jitter
    in arrival order within one second (out of order, inside the grace)."""
    rng = np.random.default_rng(seed)
    times = np.sort(START + rng.integers(0, span_s * SECOND, n))
    times = times[(times < START + 61 * 60 * SECOND) | (times >= START + 62 * 60 * SECOND)]
    repeat = rng.random(len(times)) < 0.3
    times = np.repeat(times, np.where(repeat, 2, 1))  # identical fills: separate trades
    prices = np.round(170 + np.cumsum(rng.normal(0, 0.02, len(times))), 2)
    sizes = rng.integers(1, 500, len(times)).astype(float)
    arrival = np.argsort(times + rng.integers(0, SECOND, len(times)), kind="stable")
    return pd.DataFrame({"t": times, "p": prices, "s": sizes}).iloc[arrival]


def columns(frame: pd.DataFrame, ids=None) -> TradeColumns:
    return TradeColumns(frame["t"].to_numpy(np.int64), frame["p"].to_numpy(np.float64),
                        frame["s"].to_numpy(np.float64),
                        tuple(ids) if ids is not None else (None,) * len(frame))


def build(frame: pd.DataFrame, cuts=(), intervals=("1m", "5m", "1h"), **kw) -> dict:
    builder = BarBuilder("AAPL", intervals, **kw)
    bounds = [0, *sorted(set(cuts)), len(frame)]
    out = []
    for a, b in itertools.pairwise(bounds):
        if b > a:
            builder.add(columns(frame.iloc[a:b]))
            out += builder.advance()
    out += builder.advance(int(frame["t"].max()) + 3600 * SECOND)
    return {i: bars_to_frame([bar for bar in out if bar.interval == i]) for i in intervals}


def resample(frame: pd.DataFrame, interval: str) -> pd.DataFrame:
    """pandas' reference: event-time order (stable: ties keep arrival order), left labels."""
    ordered = frame.sort_values("t", kind="stable")
    index = pd.to_datetime(ordered["t"].to_numpy(), unit="ns", utc=True)
    series = pd.DataFrame({"p": ordered["p"].to_numpy(), "s": ordered["s"].to_numpy()},
                          index=index)
    rule = f"{INTRADAY_NS[interval] // (60 * SECOND)}min"
    out = pd.DataFrame({"open": series["p"].resample(rule).first(),
                        "high": series["p"].resample(rule).max(),
                        "low": series["p"].resample(rule).min(),
                        "close": series["p"].resample(rule).last(),
                        "volume": series["s"].resample(rule).sum()}).dropna()
    out.index = out.index.as_unit("us").rename("bar_time")
    return out


def same_bars(built: pd.DataFrame, reference: pd.DataFrame) -> None:
    pd.testing.assert_frame_equal(built[list(OHLCV)], reference[list(OHLCV)],
                                  check_exact=True, check_freq=False)


@pytest.mark.parametrize("interval", ["1m", "5m", "1h"])
def test_bars_equal_a_pandas_resample_of_the_same_trades(interval):
    tape = trades()
    built = build(tape)[interval]
    same_bars(built, resample(tape, interval))
    if interval == "1m":  # the silent minute has no bar; indicators equal ta on the bars
        assert pd.Timestamp(START + 61 * 60 * SECOND, unit="ns", tz="UTC") not in built.index
        pd.testing.assert_frame_equal(compute_indicators(built[list(OHLCV)]),
                                      compute_indicators(resample(tape, "1m")))


@settings(max_examples=25, deadline=None)
@given(st.lists(st.integers(min_value=0, max_value=2_000), max_size=12))
def test_any_batching_of_the_arrivals_gives_the_same_bars(cuts):
    tape = trades(n=2_000, span_s=1200)
    whole, split = build(tape), build(tape, cuts)
    for interval in whole:
        same_bars(split[interval], whole[interval])


def test_a_trade_later_than_the_grace_is_counted_and_changes_no_bar():
    builder = BarBuilder("AAPL", ("1m",))
    on_time = pd.DataFrame({"t": [START + 10 * SECOND, START + 63 * SECOND],
                            "p": [170.0, 171.0], "s": [100.0, 50.0]})
    assert builder.add(columns(on_time)).accepted == 2
    late = pd.DataFrame({"t": [START + 20 * SECOND, START + 61 * SECOND],
                         "p": [150.0, 171.5], "s": [7.0, 5.0]})
    outcome = builder.add(columns(late))  # watermark 63 s: the first minute closed at 62 s
    assert outcome.late == [0] and outcome.accepted == 1
    closed = builder.advance(START + 3600 * SECOND)
    assert [(b.low, b.volume) for b in closed] == [(170.0, 100.0), (171.0, 55.0)]


def test_within_the_grace_an_earlier_trade_still_sets_the_open():
    builder = BarBuilder("AAPL", ("1m",))
    builder.add(columns(pd.DataFrame({"t": [START + 30 * SECOND, START + 61 * SECOND],
                                      "p": [170.0, 172.0], "s": [1.0, 1.0]})))
    builder.add(columns(pd.DataFrame({"t": [START + 5 * SECOND], "p": [169.0], "s": [2.0]})))
    first = builder.advance(START + 62 * SECOND)  # 60 s end + 2 s grace
    assert [(b.open, b.close, b.volume) for b in first] == [(169.0, 170.0, 3.0)]


def test_a_repeated_trade_id_counts_once_but_identical_fills_without_id_all_count():
    builder = BarBuilder("AAPL", ("1m",))
    tape = pd.DataFrame({"t": [START] * 4, "p": [170.0] * 4, "s": [10.0] * 4})
    outcome = builder.add(columns(tape, ids=["a", "b", None, None]))
    again = builder.add(columns(tape.iloc[:2], ids=["a", "b"]))  # a provider resend
    assert (outcome.accepted, again.duplicates, again.accepted) == (4, 2, 0)
    assert builder.advance(START + 120 * SECOND)[0].volume == 40.0


def test_a_heartbeat_closes_the_last_bar_of_a_quiet_symbol():
    builder = BarBuilder("AAPL", ("1m", "5m"))
    builder.add(columns(pd.DataFrame({"t": [START + SECOND], "p": [170.0], "s": [1.0]})))
    assert builder.advance() == [] and set(builder.forming()) == {"1m", "5m"}
    assert [b.interval for b in builder.advance(START + 62 * SECOND)] == ["1m"]
    assert [b.interval for b in builder.advance(START + 302 * SECOND)] == ["5m"]
    assert builder.forming() == {}


def test_state_round_trip_mid_stream_gives_the_same_bars():
    tape = trades(n=3_000, span_s=1800)
    half = len(tape) // 2
    builder = BarBuilder("AAPL", ("1m", "5m", "1h"))
    builder.add(columns(tape.iloc[:half], ids=[f"x{k}" for k in range(half)]))
    early = builder.advance()
    restored = BarBuilder.from_state("AAPL", builder.to_state(), ("1m", "5m", "1h"))
    restored.add(columns(tape.iloc[half:]))
    bars = early + restored.advance(int(tape["t"].max()) + 3600 * SECOND)
    same_bars(bars_to_frame([b for b in bars if b.interval == "5m"]), resample(tape, "5m"))


def ns(text: str) -> int:
    return pd.Timestamp(text).value


def test_daily_bars_follow_the_cme_session_and_its_labor_day_early_close():
    # CMES (exchange_calendars): the 2013-09-02 session opens Sunday 17:00 CT and closes early
    # (12:00 CT); the 09-03 session opens 17:00 CT on Monday.
    times = [ns("2013-09-01T22:30Z"), ns("2013-09-02T16:59Z"), ns("2013-09-02T19:00Z"),
             ns("2013-09-02T22:01Z"), ns("2013-09-03T14:00Z")]
    builder = BarBuilder("ES", ("1m", "1d"))
    outcome = builder.add(columns(pd.DataFrame({"t": times, "p": [1640.0, 1642.0, 1650.0,
                                                                  1645.0, 1641.0],
                                                "s": [1.0, 2.0, 4.0, 8.0, 16.0]})))
    assert outcome.outside_session == 1  # 19:00Z on Labor Day: after the early close
    daily = [b for b in builder.advance(ns("2013-09-04T00:00Z")) if b.interval == "1d"]
    assert [(b.bar_time.date().isoformat(), b.open, b.close, b.volume) for b in daily] == [
        ("2013-09-02", 1640.0, 1642.0, 3.0), ("2013-09-03", 1645.0, 1641.0, 24.0)]


def test_daily_bars_skip_a_holiday_and_follow_the_dst_change():
    # 13:45Z is inside the NYSE session on 2024-03-11 (EDT: opens 13:30Z), not on 03-08
    # (EST: opens 14:30Z); 2024-07-04 is a holiday (no session at all).
    times = [ns("2024-03-08T13:45Z"), ns("2024-03-11T13:45Z"), ns("2024-07-04T15:00Z")]
    builder = BarBuilder("AAPL", ("1d",))
    outcome = builder.add(columns(pd.DataFrame({"t": times, "p": [170.0, 171.0, 172.0],
                                                "s": [1.0, 1.0, 1.0]})))
    assert outcome.outside_session == 2
    daily = builder.advance(ns("2024-07-06T00:00Z"))
    assert [b.bar_time.date().isoformat() for b in daily] == ["2024-03-11"]


def test_intervals_must_nest():
    with pytest.raises(ValueError, match="multiples"):
        BarBuilder("AAPL", ("2m", "5m"))
    with pytest.raises(ValueError, match="intervals must be"):
        BarBuilder("AAPL", ("3m",))


def test_trade_ids_of_open_bars_are_kept_as_hashes_and_survive_the_state_and_format_1():
    """5,000 trades with ids in one open minute: ~11 bytes each in the state (a busy
    symbol's item stays far below DynamoDB's 400 KB), and a resend after a state round trip,
    or from a format-1 state (ids as text), is still a repeat."""
    import json

    tape = pd.DataFrame({"t": [START + k * 10_000_000 for k in range(5_000)],
                         "p": [170.0] * 5_000, "s": [1.0] * 5_000})
    ids = [f"D:{1_000_000 + k}" for k in range(5_000)]
    builder = BarBuilder("AAPL", ("1m",))
    builder.add(columns(tape, ids=ids))
    state = builder.to_state()
    assert len(json.dumps(state)) < 5_000 * 12
    restored = BarBuilder.from_state("AAPL", json.loads(json.dumps(state)), ("1m",))
    assert restored.add(columns(tape.iloc[:50], ids=ids[:50])).duplicates == 50
    old = {**state, "format": 1, "ids": {i: int(t) for i, t in zip(ids, tape["t"], strict=True)}}
    legacy = BarBuilder.from_state("AAPL", old, ("1m",))
    assert legacy.add(columns(tape.iloc[-3:], ids=ids[-3:])).duplicates == 3
    assert restored.advance(START + 62 * SECOND)[0].volume == 5_000.0
    assert restored.to_state()["ids"] == {}  # the bar closed: its ids are forgotten


def test_a_numbered_replay_of_a_symbol_keeps_its_calendar():
    """``make demo``'s fresh symbols (ES, ES2, ES3 ...) all trade on CME's calendar; a
    symbol without an entry of its own or of its root takes the default."""
    from stocksage.bars.sessions import calendar_for
    from stocksage.config import STACK

    mapped = STACK.sessions["symbol_calendars"]["ES"]
    assert calendar_for("ES") == calendar_for("ES2") == calendar_for("ES17") == mapped
    default = STACK.sessions["default_calendar"]
    assert calendar_for("AAPL") == calendar_for("7203") == default
