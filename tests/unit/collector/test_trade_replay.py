"""Replay of real trades: loading (bundled ES ticks, CSV/Parquet, time zones, bad rows), the
packer (count and event-time window, heartbeats, the final watermark), pacing in event time,
and ``replay-trades`` end to end into Kinesis (moto in process), read back and decoded with
the processor's parser.

The bundled file is mlfinpy 0.1.2's ``tick_data.csv`` (``make tick-data``); the facts checked
against it are those of shared/FACTS.md ("Intraday data and live feeds").
"""

from __future__ import annotations

import json
import threading
from pathlib import Path

import boto3
import exchange_calendars as xcals
import numpy as np
import pandas as pd
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from stocksage.bars.sessions import calendar_for
from stocksage.bars.trade_parsing import parse_trade_record
from stocksage.bars.trades import MAX_TRADES_PER_RECORD, Trade
from stocksage.collector import trade_replay
from stocksage.collector.app import app
from stocksage.collector.trade_packing import PackedRecord, TradePacker
from stocksage.collector.trade_replay import (
    BUNDLED_SOURCE,
    TradeFileError,
    TradeReplay,
    bundled_trades_path,
    final_watermark_ns,
    load_trades,
)
from stocksage.config import STACK

NS = 1_000_000_000
MS = 1_000_000
GRACE_NS = int(STACK.bar_building["grace_ms"]) * MS
T0 = 1_378_072_800 * NS  # 2013-09-01 22:00:00 UTC (17:00 Central: the bundled file's start)


def utc_ns(text: str) -> int:
    return int(pd.Timestamp(text).tz_convert("UTC").as_unit("ns").value)


def write_csv(path: Path, header: str, rows: list[str]) -> Path:
    path.write_text("\n".join([header, *rows]) + "\n")
    return path


@pytest.fixture(scope="module")
def bundled():
    return load_trades("bundled")


# ------------------------------------------------------------------------------ the bundled file
def test_bundled_file_loads_500000_es_trades_of_2013_09_01_to_03_central(bundled):
    assert len(bundled) == 500_000
    assert bundled.symbols == ("ES",) and bundled.source == BUNDLED_SOURCE
    # 2013-09-01 17:00:00.083 US/Central (CDT, -05:00) is the first row of the file
    assert bundled.times_ns[0] == utc_ns("2013-09-01T17:00:00.083-05:00")
    assert bundled.times_ns[-1] == utc_ns("2013-09-03T13:51:44.578-05:00")
    assert np.all(np.diff(bundled.times_ns) >= 0)
    raw = pd.read_csv(bundled_trades_path())
    assert list(raw.columns) == ["DateTime", "Price", "Volume"]
    assert bundled.volume() == float(raw["Volume"].sum())
    assert np.array_equal(bundled.prices, raw["Price"].to_numpy())  # file already in time order


def test_identical_rows_are_all_kept_as_separate_fills(bundled):
    frame = pd.DataFrame({"t": bundled.times_ns, "p": bundled.prices, "s": bundled.sizes})
    assert int(frame.duplicated().sum()) == 305_809  # FACTS: not duplicates, separate fills
    assert bundled.trade_ids is None  # no ids: nothing may deduplicate them


def test_missing_bundled_file_names_the_make_target(tmp_path, monkeypatch):
    monkeypatch.setenv(trade_replay.TICK_DATA_ENV, str(tmp_path / "absent.csv"))
    monkeypatch.setattr(trade_replay, "_REPO", tmp_path)
    monkeypatch.chdir(tmp_path)
    with pytest.raises(TradeFileError, match="make tick-data"):
        bundled_trades_path()


# ------------------------------------------------------------------------------ input formats
def test_naive_times_across_the_autumn_dst_change_are_localised_in_file_order(tmp_path):
    # America/Chicago, 2013-11-03: 02:00 CDT -> 01:00 CST, the hour 01:00-02:00 happens twice
    rows = ["2013-11-03 00:59:59.5,100,1", "2013-11-03 01:00:00,100,1",
            "2013-11-03 01:30:00,100,2", "2013-11-03 01:59:59,100,1",
            "2013-11-03 01:00:00,101,1", "2013-11-03 01:00:00,101,1",  # two fills, CST
            "2013-11-03 01:30:00,101,3", "2013-11-03 02:00:00,102,1"]
    path = write_csv(tmp_path / "fall.csv", "time,price,size", rows)
    table = load_trades(path, symbol="ES", tz="America/Chicago")
    assert table.times_ns.tolist() == [utc_ns(t) for t in (
        "2013-11-03T05:59:59.5Z", "2013-11-03T06:00Z", "2013-11-03T06:30Z",
        "2013-11-03T06:59:59Z", "2013-11-03T07:00Z", "2013-11-03T07:00Z",
        "2013-11-03T07:30Z", "2013-11-03T08:00Z")]
    assert table.prices.tolist() == [100, 100, 100, 100, 101, 101, 101, 102]


def test_naive_times_in_the_spring_gap_or_ambiguous_without_context_are_errors(tmp_path):
    gap = write_csv(tmp_path / "spring.csv", "time,price,size",
                    ["2013-03-10 01:59:00,1,1", "2013-03-10 02:30:00,1,1",
                     "2013-03-10 03:00:00,1,1"])
    with pytest.raises(TradeFileError, match=r"spring.csv: line 3: .*does not exist"):
        load_trades(gap, symbol="ES", tz="America/Chicago")
    spring_ok = write_csv(tmp_path / "ok.csv", "time,price,size",
                          ["2013-03-10 01:59:00,1,1", "2013-03-10 03:00:00,1,1"])
    table = load_trades(spring_ok, symbol="ES", tz="America/Chicago")
    assert table.times_ns.tolist() == [utc_ns("2013-03-10T07:59Z"), utc_ns("2013-03-10T08:00Z")]
    once = write_csv(tmp_path / "once.csv", "time,price,size",
                     ["2013-11-03 00:30:00,1,1", "2013-11-03 01:30:00,1,1"])
    with pytest.raises(TradeFileError, match=r"line 3: .*ambiguous"):
        load_trades(once, symbol="ES", tz="America/Chicago")


def test_naive_times_without_a_zone_are_refused(tmp_path):
    path = write_csv(tmp_path / "naive.csv", "time,price,size", ["2013-09-01 17:00:00,1,1"])
    with pytest.raises(TradeFileError, match="--tz"):
        load_trades(path, symbol="ES")
    with pytest.raises(TradeFileError, match="unknown time zone"):
        load_trades(path, symbol="ES", tz="Mars/Olympus")


def test_iso_times_with_offsets_and_epoch_nanoseconds(tmp_path):
    iso = write_csv(tmp_path / "iso.csv", "Timestamp,PRICE,Qty,Symbol,trade_id", [
        "2013-09-01T17:00:00.083-05:00,1640.25,8,es,a1",
        "2013-09-01T22:00:00.083000001Z,1640.5,1,NQ,",
        "2013-09-01T23:00:00.5+01:00,1640,2,ES,a3"])
    table = load_trades(iso)
    assert table.symbols == ("ES", "NQ")  # upper-cased, in order of first trade
    assert table.times_ns.tolist() == [T0 + 83 * MS, T0 + 83 * MS + 1, T0 + 500 * MS]
    assert [t.symbol for t in table.trades()] == ["ES", "NQ", "ES"]
    assert [t.trade_id for t in table.trades()] == ["a1", None, "a3"]
    assert table.source == "file:iso.csv"
    only_es = load_trades(iso, symbol="es")
    assert only_es.symbols == ("ES",) and len(only_es) == 2
    epoch = write_csv(tmp_path / "epoch.csv", "time,price,size",
                      [f"{T0 + 5},10.5,3", f"{T0},10.25,1"])
    table = load_trades(epoch, symbol="ES", tz="America/Chicago")  # tz unused: UTC epochs
    assert table.times_ns.tolist() == [T0, T0 + 5]  # time order, stable
    assert table.prices.tolist() == [10.25, 10.5]


def test_epoch_seconds_are_not_taken_for_nanoseconds(tmp_path):
    path = write_csv(tmp_path / "secs.csv", "time,price,size", ["1378072800,1,1"])
    with pytest.raises(TradeFileError, match=r"line 2: .*seconds or milliseconds"):
        load_trades(path, symbol="ES")


def test_parquet_input_with_timestamp_or_integer_times(tmp_path):
    frame = pd.DataFrame({
        "time": pd.to_datetime([T0, T0 + MS, T0 + 2 * MS], unit="ns", utc=True),
        "price": [1.5, 1.25, 1.0], "size": [1, 2, 3], "symbol": ["AAPL", "MSFT", "AAPL"],
        "trade_id": ["x", "y", None]})
    frame.to_parquet(tmp_path / "t.parquet")
    table = load_trades(tmp_path / "t.parquet")
    assert table.symbols == ("AAPL", "MSFT") and table.times_ns.tolist() == [
        T0, T0 + MS, T0 + 2 * MS]
    assert [t.trade_id for t in table.trades()] == ["x", "y", None]
    frame.assign(time=[T0, T0 + 1, 42]).to_parquet(tmp_path / "bad.parquet")
    with pytest.raises(TradeFileError, match=r"bad.parquet: row 3: time 42"):
        load_trades(tmp_path / "bad.parquet")


@pytest.mark.parametrize(("rows", "message"), [
    (["2013-09-01T17:00:00Z,1,1", "2013-09-01T17:00:01Z,abc,1"], r"line 3: price 'abc'"),
    (["2013-09-01T17:00:00Z,1,1", "", "2013-09-01T17:00:01Z,1,1"], r"line 3: time ''"),
    (["2013-09-01T17:00:00Z,1,1", "2013-09-01T17:00:01Z,0,1"], r"line 3: price 0.0 is not"),
    (["2013-09-01T17:00:00Z,1,-2"], r"line 2: size -2.0 is negative"),
    (["2013-09-01T17:00:00Z,1,1", "yesterday,1,1"], r"line 3: time 'yesterday'"),
    (["2013-09-01T17:00:00Z,1,1", "2013-09-01 17:00:01,1,1"], r"line 3: .*mixes"),
    (["2013-09-01T17:00:00Z,1,nan"], r"line 2: size 'nan' is not a finite number"),
])
def test_a_bad_row_is_an_error_naming_its_line(tmp_path, rows, message):
    path = write_csv(tmp_path / "bad.csv", "time,price,size", rows)
    with pytest.raises(TradeFileError, match=message):
        load_trades(path, symbol="ES")


def test_columns_are_checked(tmp_path):
    path = write_csv(tmp_path / "cols.csv", "when,price,size", ["2013-09-01T17:00:00Z,1,1"])
    with pytest.raises(TradeFileError, match=r"missing column.*time"):
        load_trades(path, symbol="ES")
    path = write_csv(tmp_path / "twice.csv", "time,timestamp,price,size", ["1,2,3,4"])
    with pytest.raises(TradeFileError, match="both the time"):
        load_trades(path, symbol="ES")
    path = write_csv(tmp_path / "nosym.csv", "time,price,size", ["2013-09-01T17:00:00Z,1,1"])
    with pytest.raises(TradeFileError, match="--symbol"):
        load_trades(path)


# ------------------------------------------------------------------------------ packing
def es(t_ns: int, price: float = 100.0, size: float = 1.0, symbol: str = "ES") -> Trade:
    return Trade(symbol, t_ns, price, size)


def decode(record: PackedRecord) -> dict:
    return json.loads(record.data)


def test_a_pack_spans_at_most_the_window_of_event_time():
    packer = TradePacker(window_ns=100 * MS, heartbeat_ns=None, source="test")
    out = []
    for t in (T0, T0 + 50 * MS, T0 + 100 * MS, T0 + 100 * MS + 1, T0 + 150 * MS):
        out += packer.add(es(t))
    assert [decode(r)["t"] for r in out] == [[T0, T0 + 50 * MS, T0 + 100 * MS]]
    out += packer.finish(lambda symbol, last: last)
    assert [r.kind for r in out] == ["trades", "trades", "watermark"]
    assert decode(out[1])["t"] == [T0 + 100 * MS + 1, T0 + 150 * MS]
    assert decode(out[0]) == {"type": "trades", "symbol": "ES", "source": "test",
                              "t": [T0, T0 + 50 * MS, T0 + 100 * MS], "p": [100.0] * 3,
                              "s": [1, 1, 1]}


def test_a_pack_holds_at_most_max_trades_and_a_full_pack_leaves_at_once():
    packer = TradePacker(max_trades=3, heartbeat_ns=None)
    emitted = [len(packer.add(es(T0))) for _ in range(7)]
    assert emitted == [0, 0, 1, 0, 0, 1, 0]  # full packs leave with their last trade
    last = packer.finish(lambda symbol, t: t)
    assert [r.trades for r in last] == [1, 0]
    with pytest.raises(ValueError):
        TradePacker(max_trades=MAX_TRADES_PER_RECORD + 1)
    full = TradePacker(heartbeat_ns=None)
    records = [r for _ in range(MAX_TRADES_PER_RECORD + 1) for r in full.add(es(T0))]
    assert [r.trades for r in records] == [MAX_TRADES_PER_RECORD]


def test_symbols_pack_apart_and_records_keep_event_order():
    packer = TradePacker(window_ns=10 * MS, heartbeat_ns=None)
    out = []
    for n in range(6):
        out += packer.add(es(T0 + n * 4 * MS, symbol="ES" if n % 2 == 0 else "NQ"))
    out += packer.finish(lambda symbol, t: t)
    trades = [(r.symbol, decode(r)["t"]) for r in out if r.kind == "trades"]
    assert trades == [("ES", [T0, T0 + 8 * MS]), ("NQ", [T0 + 4 * MS, T0 + 12 * MS]),
                      ("ES", [T0 + 16 * MS]), ("NQ", [T0 + 20 * MS])]
    assert all(r.symbol == decode(r)["symbol"] for r in out)


def test_out_of_order_trades_are_refused():
    packer = TradePacker()
    packer.add(es(T0 + 10))
    packer.add(es(T0 + 10))  # equal times are fine (separate fills)
    with pytest.raises(ValueError, match="time order"):
        packer.add(es(T0 + 9))


def test_a_quiet_symbol_gets_one_heartbeat_per_second_of_event_time():
    packer = TradePacker(window_ns=100 * MS)
    out: list[PackedRecord] = []
    trades = [es(10 * NS + n * 100 * MS) for n in range(32)]  # ES: every 100 ms, 10 .. 13.1 s
    trades.insert(1, es(10 * NS + 50 * MS, symbol="NQ"))  # NQ trades once, then is quiet
    for trade in trades:
        out += packer.add(trade)
    beats = [(r.symbol, r.time_ns) for r in out if r.kind == "watermark"]
    # 11 s: NQ traded in [10 s, 11 s): no heartbeat; 12 s and 13 s: one each; ES none
    assert beats == [("NQ", 12 * NS), ("NQ", 13 * NS)]
    assert all(decode(r) == {"type": "watermark", "symbol": r.symbol, "t": r.time_ns}
               for r in out if r.kind == "watermark")
    first_beat = next(i for i, r in enumerate(out) if r.kind == "watermark")
    assert any(r.symbol == "NQ" and r.kind == "trades" for r in out[:first_beat])
    # a jump over a long halt: one heartbeat per symbol, for the last boundary crossed
    out = packer.add(es(500 * NS + 300 * MS))
    assert [(r.symbol, r.time_ns) for r in out if r.kind == "watermark"] == [
        ("ES", 500 * NS), ("NQ", 500 * NS)]


def test_advance_closes_packs_and_beats_between_trades():
    packer = TradePacker(window_ns=100 * MS)
    assert packer.add(es(T0 + 300 * MS)) == []
    assert packer.next_change_ns() == T0 + 400 * MS  # the pack's window ends first
    assert packer.advance(T0 + 400 * MS - 1) == []
    assert [r.trades for r in packer.advance(T0 + 400 * MS)] == [1]
    assert packer.next_change_ns() == T0 + NS
    assert packer.advance(T0 + NS) == []  # ES traded in the second before
    beats = packer.advance(T0 + 2 * NS)
    assert [(r.kind, r.time_ns) for r in beats] == [("watermark", T0 + 2 * NS)]
    assert packer.advance(T0 + 2 * NS) == []  # at most one per boundary


def test_the_final_watermark_closes_every_bar_holding_the_last_trade():
    last = utc_ns("2013-09-03T13:51:44.578-05:00")  # the bundled file's last ES trade
    assert final_watermark_ns("ES", last, intervals=("1m",), grace_ms=2000) == \
        last + 60 * NS + 2 * NS
    # 1h: the bar ends 14:00 CDT; 1d: the close of the CMES session of 2013-09-03, as
    # exchange_calendars gives it (17:00 CDT up to 4.13.2, 16:00 CDT from 4.13.3), later than
    # every intraday bar
    assert final_watermark_ns("ES", last, intervals=("1m", "1h"), grace_ms=0) == \
        utc_ns("2013-09-03T14:00-05:00")
    session_close = int(xcals.get_calendar(calendar_for("ES")).session_close(
        pd.Timestamp("2013-09-03")).value)
    assert session_close > utc_ns("2013-09-03T14:00-05:00")
    assert final_watermark_ns("ES", last) == session_close + GRACE_NS
    # an equity trade after the close is in no daily bar: its 1h bar decides
    after_close = utc_ns("2013-09-03T16:30-04:00")
    assert final_watermark_ns("AAPL", after_close) == utc_ns("2013-09-03T17:00-04:00") + GRACE_NS


def test_the_replay_ends_with_one_final_heartbeat_per_symbol(tmp_path):
    path = write_csv(tmp_path / "two.csv", "time,price,size,symbol",
                     [f"{T0},1,1,ES", f"{T0 + 5 * NS},2,2,NQ", f"{T0 + 6 * NS},3,3,ES"])
    records = list(TradeReplay(load_trades(path)))
    finals = records[-2:]
    assert [(r.kind, r.symbol) for r in finals] == [("watermark", "ES"), ("watermark", "NQ")]
    assert finals[0].time_ns == final_watermark_ns("ES", T0 + 6 * NS)
    assert finals[1].time_ns == final_watermark_ns("NQ", T0 + 5 * NS)
    assert finals[0].time_ns >= T0 + 6 * NS + 60 * NS + GRACE_NS


# ------------------------------------------------------------------------------ pacing
class FakeClock:
    """Wall clock that moves only when the replay sleeps."""

    def __init__(self) -> None:
        self.now = 0.0
        self.sleeps: list[float] = []

    def sleep(self, seconds: float) -> None:
        self.sleeps.append(seconds)
        self.now += seconds

    def clock(self) -> float:
        return self.now


def test_speed_keeps_event_time_spacing_at_n_times_real_time(tmp_path):
    path = write_csv(tmp_path / "paced.csv", "time,price,size",
                     [f"{T0},1,1", f"{T0 + 30 * MS},1,1", f"{T0 + 2 * NS},1,1",
                      f"{T0 + 2 * NS},1,1", f"{T0 + 20 * NS},1,1"])
    clock = FakeClock()
    replay = TradeReplay(load_trades(path, symbol="ES"), speed=10, sleep=clock.sleep,
                         clock=clock.clock)
    seen = [(clock.now, record) for record in replay]  # the clock when each record left
    assert clock.now == pytest.approx(20.0 / 10)  # 20 s of event time at 10x
    for wall, record in seen:  # no record leaves before its event time is due
        if record.kind == "trades":
            assert wall * 10 * NS >= record.time_ns - T0 - 1_000
    first = seen[0]
    assert first[1].kind == "trades" and first[1].trades == 2
    assert first[0] == pytest.approx(0.1 / 10)  # the pack left when its 100 ms window ended
    beats = [r.time_ns - T0 for _, r in seen if r.kind == "watermark"]
    assert beats[:-1] == [s * NS for s in range(4, 20)]  # quiet from 2 s: 4 s .. 19 s
    assert replay.trades_sent == 5 and replay.heartbeats_sent == len(beats)


def test_a_stop_ends_the_paced_replay_without_the_final_heartbeat(tmp_path):
    path = write_csv(tmp_path / "stop.csv", "time,price,size",
                     [f"{T0},1,1", f"{T0 + 3600 * NS},1,1"])
    stop = threading.Event()
    clock = FakeClock()

    def sleep(seconds: float) -> None:
        clock.sleep(seconds)
        if clock.now > 5:
            stop.set()

    records = list(TradeReplay(load_trades(path, symbol="ES"), speed=60, stop=stop,
                               sleep=sleep, clock=clock.clock))
    assert stop.is_set() and clock.now < 10
    assert all(r.time_ns < T0 + 3600 * NS for r in records)  # neither the last trade nor
    assert records[0].kind == "trades" and records[0].trades == 1  # the final watermark


def test_replay_of_the_whole_bundled_file_packs_every_trade(bundled):
    records = list(TradeReplay(bundled))
    trades = [r for r in records if r.kind == "trades"]
    assert sum(r.trades for r in trades) == 500_000
    assert sum(r.volume for r in trades) == bundled.volume()
    assert all(r.trades <= MAX_TRADES_PER_RECORD for r in trades)
    spans = [decode(r)["t"] for r in trades[:2000]]
    assert all(t[-1] - t[0] <= 100 * MS for t in spans)
    beats = [r.time_ns for r in records if r.kind == "watermark"]
    assert beats == sorted(beats) and len(set(beats)) == len(beats)  # <= 1 per second


# ------------------------------------------------------------------------------ end to end
@pytest.fixture
def moto_env(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        yield boto3.client("kinesis", region_name="us-east-1")


def read_records(kinesis, stream: str) -> list[tuple[str, bytes]]:
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            out += [(r["PartitionKey"], r["Data"]) for r in page["Records"]]
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


def test_cli_replays_5000_bundled_trades_that_the_processor_parser_accepts(moto_env, bundled):
    moto_env.create_stream(StreamName="trades", ShardCount=2)
    result = CliRunner().invoke(app, ["replay-trades", "bundled", "--speed", "max",
                                      "--limit", "5000", "--stream", "trades", "--no-progress",
                                      "--log-level", "WARNING", "--spill-file", ""])
    assert result.exit_code == 0, result.output
    assert "5000 trades in" in result.output
    parsed = [parse_trade_record(data, partition_key=key)
              for key, data in read_records(moto_env, "trades")]
    assert parsed and all(p.symbol == "ES" and p.rejected == () for p in parsed)
    trades = [p for p in parsed if p.watermark_ns is None]
    assert sum(len(p.trades) for p in trades) == 5000
    expected = bundled.head(5000)
    assert sum(float(p.trades.sizes.sum()) for p in trades) == expected.volume()
    times = np.concatenate([p.trades.times_ns for p in trades])
    assert np.array_equal(np.sort(times), expected.times_ns)
    assert {p.source for p in trades} == {BUNDLED_SOURCE}
    final = max(p.watermark_ns for p in parsed if p.watermark_ns is not None)
    assert final == final_watermark_ns("ES", int(expected.times_ns[-1]))


def test_cli_bad_input_exits_2_and_a_missing_stream_exits_1(moto_env, tmp_path):
    bad = write_csv(tmp_path / "bad.csv", "time,price,size",
                    ["2013-09-01T17:00:00Z,1,1", "2013-09-01T17:00:01Z,x,1"])
    result = CliRunner().invoke(app, ["replay-trades", str(bad), "--symbol", "ES",
                                      "--stream", "trades"])
    assert result.exit_code == 2 and "bad.csv: line 3: price 'x'" in result.output
    naive = write_csv(tmp_path / "naive.csv", "time,price,size", ["2013-09-01 17:00:00,1,1"])
    result = CliRunner().invoke(app, ["replay-trades", str(naive), "--symbol", "ES"])
    assert result.exit_code == 2 and "--tz" in result.output
    result = CliRunner().invoke(app, ["replay-trades", "--speed", "fast"])
    assert result.exit_code == 2 and "--speed" in result.output
    result = CliRunner().invoke(app, ["replay-trades", "--limit", "3", "--stream", "absent",
                                      "--no-progress", "--log-level", "ERROR",
                                      "--spill-file", ""])
    assert result.exit_code == 1 and "absent" in result.output
