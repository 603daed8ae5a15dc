"""``live-stream``'s core (``run_live_stream``) against the local fake Alpaca stream and REST
server (127.0.0.1, free ports) and moto's in-process Kinesis; records read back and decoded
with the processor's ``decode_record``. Plus the packer clock's policy on a stub stream.

No test sleeps to let something happen: a test waits on the sink's ``on_sent`` callback (an
event set after every acknowledged request) and re-reads the stream, each wait bounded by
``TIMEOUT``; the command runs in a worker thread and ends when the test sets its stop event.
"""

from __future__ import annotations

import queue
import threading
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import boto3
import pytest
from moto import mock_aws

from stocksage.bars import Bar
from stocksage.bars.trades import Trade
from stocksage.collector.live_stream import (
    LiveRecord,
    LiveStreamOutcome,
    LiveStreamRecords,
    run_live_stream,
)
from stocksage.collector.providers import Backoff, StreamStats
from stocksage.collector.providers.base import parse_rfc3339_ns
from stocksage.collector.providers.fake_alpaca import FAKE_KEY, FAKE_SECRET, FakeAlpaca
from stocksage.collector.trade_packing import PackedRecord, TradePacker
from stocksage.processing import decode_record
from stocksage.processing.ports import StreamBar, StreamTrades

TIMEOUT = 30.0
STREAM = "live-trades"
KEY_ENV = {"ALPACA_API_KEY_ID": FAKE_KEY, "ALPACA_API_SECRET_KEY": FAKE_SECRET}
MS = 1_000_000


def trade(i: int, t: str, symbol: str = "AAPL") -> dict[str, Any]:
    return {"T": "t", "S": symbol, "i": i, "x": "V", "p": 126.5 + i / 100, "s": i, "t": t,
            "c": ["@"], "z": "C"}


def bar(t: str, symbol: str = "AAPL") -> dict[str, Any]:
    return {"T": "b", "S": symbol, "o": 126.5, "h": 126.6, "l": 126.4, "c": 126.55, "v": 15,
            "t": t, "n": 5, "vw": 126.52}


@pytest.fixture
def kinesis(monkeypatch: pytest.MonkeyPatch) -> Iterator[Any]:
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(name, raising=False)
    with mock_aws():
        client = boto3.client("kinesis", region_name="us-east-1")
        client.create_stream(StreamName=STREAM, ShardCount=1)
        yield client


def read_stream(client: Any) -> list[StreamBar | StreamTrades]:
    """Every record of the stream, decoded (and so validated) as the processor does."""
    out: list[StreamBar | StreamTrades] = []
    for shard in client.list_shards(StreamName=STREAM)["Shards"]:
        iterator = client.get_shard_iterator(StreamName=STREAM, ShardId=shard["ShardId"],
                                             ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        while iterator:
            page = client.get_records(ShardIterator=iterator, Limit=10_000)
            for record in page["Records"]:
                decoded = decode_record(record["Data"], partition_key=record["PartitionKey"],
                                        sequence_number=record["SequenceNumber"],
                                        shard_id=shard["ShardId"])
                assert not decoded.rejected
                out.append(decoded.item)
            if not page["Records"]:
                break
            iterator = page.get("NextShardIterator")
    return out


def trade_ids(records: Sequence[StreamBar | StreamTrades]) -> list[tuple[str, str | None]]:
    return [(r.symbol, i) for r in records if isinstance(r, StreamTrades)
            for i in r.trades.trade_ids]


def watermarks(records: Sequence[StreamBar | StreamTrades]) -> dict[str, int]:
    """The latest watermark per symbol."""
    out: dict[str, int] = {}
    for r in records:
        if isinstance(r, StreamTrades) and r.watermark_ns is not None:
            out[r.symbol] = max(out.get(r.symbol, r.watermark_ns), r.watermark_ns)
    return out


class Command:
    """``run_live_stream`` in a worker thread, against ``fake`` and ``kinesis``."""

    def __init__(self, fake: FakeAlpaca, kinesis: Any, symbols: Sequence[str] = ("AAPL",),
                 env: Mapping[str, str] = KEY_ENV, **options: Any) -> None:
        self.kinesis = kinesis
        self.stop = threading.Event()
        self.sent = threading.Event()
        self.outcome: LiveStreamOutcome | None = None
        self._thread = threading.Thread(target=self._run, name="live-stream-test", daemon=True,
                                        args=(fake, symbols, env, options))

    def _run(self, fake: FakeAlpaca, symbols: Sequence[str], env: Mapping[str, str],
             options: dict[str, Any]) -> None:
        self.outcome = run_live_stream(
            symbols, stream_name=STREAM, kinesis_client=self.kinesis, stop=self.stop, env=env,
            feed="test", stream_url=fake.stream_url, rest_url=fake.rest_url,
            on_sent=lambda _acked: self.sent.set(), **options)

    def __enter__(self) -> Command:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop.set()
        self._thread.join(TIMEOUT)

    def wait_for(self, done: Callable[[list[StreamBar | StreamTrades]], bool]
                 ) -> list[StreamBar | StreamTrades]:
        """The stream's records once ``done(records)`` holds; re-read after every
        acknowledged request, each wait at most ``TIMEOUT``."""
        while True:
            self.sent.clear()
            records = read_stream(self.kinesis)
            if done(records):
                return records
            assert self.sent.wait(TIMEOUT), f"no further record within {TIMEOUT}s: {records}"

    def ended(self) -> LiveStreamOutcome:
        """The outcome once the command returned (at most ``TIMEOUT``)."""
        self._thread.join(TIMEOUT)
        assert not self._thread.is_alive() and self.outcome is not None
        return self.outcome

    def finish(self) -> LiveStreamOutcome:
        """Set the stop event (what SIGTERM does) and wait for the outcome."""
        self.stop.set()
        return self.ended()


# --- end to end -------------------------------------------------------------------------------

def test_trades_and_a_bar_arrive_as_valid_records_and_quiet_symbols_get_watermarks(
        kinesis: Any) -> None:
    script = [trade(1, "2021-02-22T15:51:01.000000001Z"),
              trade(1, "2021-02-22T15:51:01.05Z", "MSFT"),
              [trade(2, "2021-02-22T15:51:01.9Z"), trade(3, "2021-02-22T15:51:02.5Z")],
              trade(2, "2021-02-22T15:51:03Z", "MSFT"),
              bar("2021-02-22T15:51:00Z")]
    last = {"AAPL": parse_rfc3339_ns("2021-02-22T15:51:02.5Z"),
            "MSFT": parse_rfc3339_ns("2021-02-22T15:51:03Z")}
    fake = FakeAlpaca(script)
    with fake.running_in_thread(), \
            Command(fake, kinesis, ("AAPL", "MSFT"), bars=True) as command:
        # the feed is quiet after the bar: the wall-clock tick alone lets the packs and a
        # heartbeat per symbol (no trade at or before it follows) leave
        records = command.wait_for(lambda rs: len(trade_ids(rs)) == 5 and all(
            watermarks(rs).get(s, -1) > t for s, t in last.items()))
        outcome = command.finish()
    assert outcome.code == 0, outcome.message
    assert sorted(trade_ids(records)) == [("AAPL", "V:1"), ("AAPL", "V:2"), ("AAPL", "V:3"),
                                          ("MSFT", "V:1"), ("MSFT", "V:2")]
    aapl = [r for r in records if isinstance(r, StreamTrades) and r.symbol == "AAPL"
            and len(r.trades)]
    assert [int(t) for r in aapl for t in r.trades.times_ns] == [
        parse_rfc3339_ns("2021-02-22T15:51:01.000000001Z"),  # exact nanoseconds
        parse_rfc3339_ns("2021-02-22T15:51:01.9Z"), last["AAPL"]]
    assert len(aapl) == 3  # 1.000000001 s, 1.9 s and 2.5 s: more than 100 ms apart
    bars = [r.bar for r in records if isinstance(r, StreamBar)]
    assert [(b.symbol, b.bar_time, b.close, b.interval, b.source) for b in bars] == [
        ("AAPL", datetime(2021, 2, 22, 15, 51, tzinfo=UTC), 126.55, "1m", "alpaca:test")]
    assert outcome.stats is not None and outcome.stats.late == 0


def test_drop_and_reconnect_mid_minute_loses_no_trade_and_duplicates_none(kinesis: Any) -> None:
    script = [
        trade(1, "2021-02-22T15:51:05.000000001Z"),
        trade(1, "2021-02-22T15:51:06Z", "MSFT"),
        [trade(2, "2021-02-22T15:51:10.5Z"), trade(2, "2021-02-22T15:51:10.5Z", "MSFT")],
        trade(3, "2021-02-22T15:51:20.123456789Z"),  # the last before the drop
        # missed while disconnected (the REST backfill brings them):
        trade(3, "2021-02-22T15:51:15Z", "MSFT"),
        trade(4, "2021-02-22T15:51:20.123456789Z"),  # the same ns as the last one seen
        trade(5, "2021-02-22T15:51:31Z"),
        # the second connection:
        trade(4, "2021-02-22T15:51:40Z", "MSFT"),
        trade(6, "2021-02-22T15:51:45Z"),
        bar("2021-02-22T15:51:00Z"),
    ]
    fake = FakeAlpaca(script, drop_after=4, missed=3, page_size=2)
    expected = sorted((str(t["S"]), f"V:{t['i']}") for t in fake.trades())
    with fake.running_in_thread(), Command(fake, kinesis, ("AAPL", "MSFT"), bars=True,
                                           backoff=Backoff(base=0.01)) as command:
        command.wait_for(lambda rs: sorted(set(trade_ids(rs))) == expected
                         and any(isinstance(r, StreamBar) for r in rs))
        outcome = command.finish()
    assert outcome.code == 0, outcome.message
    received = trade_ids(read_stream(kinesis))  # after the stop's flush: nothing sent twice
    assert sorted(received) == expected
    first, second = fake.connections[:2]
    assert first.dropped and not second.dropped
    assert fake.rest_requests  # the gap came from the backfill
    assert "2 connections, 5 trades backfilled" in outcome.message


def test_refused_key_exits_2_with_a_clear_message(kinesis: Any) -> None:
    fake = FakeAlpaca([trade(1, "2021-02-22T15:51:01Z")])
    with fake.running_in_thread(), Command(
            fake, kinesis, env={"ALPACA_API_KEY_ID": "AKWRONG",
                                "ALPACA_API_SECRET_KEY": "nope"}) as command:
        outcome = command.ended()  # by itself: no stop needed
    assert outcome.code == 2
    assert outcome.message.startswith("error: alpaca stream error 402: auth failed")
    assert "ALPACA_API_KEY_ID" in outcome.message
    assert len(fake.connections) == 1  # a refused key is not retried
    assert read_stream(kinesis) == []


def test_missing_key_exits_2_before_connecting(kinesis: Any) -> None:
    fake = FakeAlpaca([])
    with fake.running_in_thread():
        outcome = run_live_stream(["AAPL"], stream_name=STREAM, kinesis_client=kinesis,
                                  stop=threading.Event(), env={}, stream_url=fake.stream_url,
                                  rest_url=fake.rest_url)
    assert outcome.code == 2
    assert "no market-data API key" in outcome.message
    assert fake.connections == []


def test_stop_event_flushes_open_packs_with_final_watermarks_and_exits_0(kinesis: Any) -> None:
    script = [trade(1, "2021-02-22T15:51:01Z"), trade(2, "2021-02-22T15:51:01.01Z"),
              trade(1, "2021-02-22T15:51:01.02Z", "MSFT"), bar("2021-02-22T15:51:00Z")]
    fake = FakeAlpaca(script)
    # an hour of allowance: the clock never reaches the trades, their packs stay open
    with fake.running_in_thread(), Command(fake, kinesis, ("AAPL", "MSFT"), bars=True,
                                           allowance_ms=3_600_000) as command:
        before = command.wait_for(lambda rs: any(isinstance(r, StreamBar) for r in rs))
        assert trade_ids(before) == []  # the bar came after the trades, which are held
        outcome = command.finish()
    assert outcome.code == 0, outcome.message
    assert outcome.message.startswith("stopped: ")
    records = read_stream(kinesis)
    assert sorted(trade_ids(records)) == [("AAPL", "V:1"), ("AAPL", "V:2"), ("MSFT", "V:1")]
    final = watermarks(records)  # each symbol's bars may close: nothing older follows
    assert final.keys() == {"AAPL", "MSFT"}
    assert final["AAPL"] >= parse_rfc3339_ns("2021-02-22T15:51:01.01Z")
    assert final["MSFT"] >= parse_rfc3339_ns("2021-02-22T15:51:01.02Z")


# --- the clock's policy on a stub stream ------------------------------------------------------

T0 = parse_rfc3339_ns("2021-02-22T15:51:00Z")


@dataclass
class StubStream:
    """What ``LiveStreamRecords`` uses of a ``ReconnectingStream``; the test feeds events."""

    events: queue.Queue[Trade | Bar | None] = field(default_factory=queue.Queue)
    stats: StreamStats = field(default_factory=StreamStats)
    receiving_live: bool = True
    stopped: bool = False
    symbols: tuple[str, ...] = ("AAPL", "MSFT")

    def send(self, *events: Trade | Bar) -> None:
        for event in events:
            if isinstance(event, Trade):
                self.stats.trades += 1
            else:
                self.stats.bars += 1
            self.events.put(event)

    def iter_events(self) -> Iterator[Trade | Bar]:
        while (item := self.events.get(timeout=TIMEOUT)) is not None:
            yield item

    def stop(self) -> None:
        if not self.stopped:
            self.stopped = True
            self.events.put(None)


class Clock:
    """Injected wall clock (epoch ns), moved by the test."""

    def __init__(self, now_ns: int) -> None:
        self.now_ns = now_ns

    def __call__(self) -> int:
        return self.now_ns


def packed(stream: StubStream, clock: Clock, stop: threading.Event,
           on_tick: Callable[[int], None] | None = None
           ) -> tuple[queue.Queue[LiveRecord | None], threading.Thread, LiveStreamRecords]:
    """The records of ``stream`` into a queue (None at the end), iterated in a thread."""
    records = LiveStreamRecords(stream, stop, packer=TradePacker(),  # type: ignore[arg-type]
                                wall_ns=clock, tick_seconds=0.01, on_tick=on_tick)
    out: queue.Queue[LiveRecord | None] = queue.Queue()

    def run() -> None:
        try:
            for record in records:
                out.put(record)
        finally:
            out.put(None)

    thread = threading.Thread(target=run, name="live-records-test", daemon=True)
    thread.start()
    return out, thread, records


def records_until(out: queue.Queue[LiveRecord | None], marker: bytes | None
                  ) -> list[LiveRecord]:
    """Records up to the first whose data holds ``marker`` (None: up to the end)."""
    seen: list[LiveRecord] = []
    while True:
        record = out.get(timeout=TIMEOUT)
        if record is None:
            assert marker is None, f"ended before {marker!r}: {seen}"
            return seen
        seen.append(record)
        if marker is not None and isinstance(record, PackedRecord) and marker in record.data:
            return seen


def test_trades_out_of_order_within_the_allowance_are_packed_in_time_order() -> None:
    stream, stop = StubStream(), threading.Event()
    out, thread, records = packed(stream, Clock(T0), stop)  # a still wall clock: no drift
    stream.send(Trade("AAPL", T0 + 200 * MS, 1.0, 1, "a2"),
                Trade("AAPL", T0 + 100 * MS, 1.0, 1, "a1"),  # 100 ms late: within 500 ms
                Trade("MSFT", T0 + 1_000 * MS, 1.0, 1, "m1"))  # the clock to 500 ms
    first = records_until(out, b'"a1"')[-1]
    stop.set()
    records_until(out, None)
    thread.join(TIMEOUT)
    assert isinstance(first, PackedRecord) and first.kind == "trades"
    assert b'"i":["a1","a2"]' in first.data and records.stats.late == 0


def test_a_trade_the_clock_passed_is_sent_late_in_its_own_record_not_dropped() -> None:
    stream, stop = StubStream(), threading.Event()
    out, thread, records = packed(stream, Clock(T0), stop)
    stream.send(Trade("AAPL", T0, 1.0, 1, "a1"), Trade("AAPL", T0 + 2_000 * MS, 1.0, 1, "a2"))
    records_until(out, b'"a1"')  # a2 moved the clock to 1.5 s: a1's pack left
    stream.send(Trade("MSFT", T0 + 10 * MS, 1.0, 1, "m1"))  # 1.49 s behind the clock
    late = records_until(out, b'"m1"')[-1]
    stop.set()
    records_until(out, None)
    thread.join(TIMEOUT)
    assert isinstance(late, PackedRecord) and late.kind == "trades" and late.trades == 1
    assert records.stats.late == 1


def test_the_clock_does_not_move_while_the_stream_is_not_live() -> None:
    stream, clock, stop = StubStream(), Clock(T0), threading.Event()
    later = T0 + 3600 * 10**9
    ticked_later = threading.Event()
    out, thread, records = packed(
        stream, clock, stop, on_tick=lambda now: ticked_later.set() if now == later else None)
    marker = Bar("AAPL", datetime(2021, 2, 22, 15, 50, tzinfo=UTC), 1, 1, 1, 1, 1, interval="1m")
    stream.send(Trade("AAPL", T0, 1.0, 1, "a1"), marker)
    assert isinstance(out.get(timeout=TIMEOUT), Bar)  # a1 taken at wall time T0: lag 0
    stream.receiving_live = False  # disconnected: the backfill may still bring older trades
    clock.now_ns = later  # an hour of wall time passes
    assert ticked_later.wait(TIMEOUT)  # a tick saw it (and, live, would have moved the clock)
    stream.send(Trade("AAPL", T0 + 1, 1.0, 1, "a2"))  # backfilled, 1 ns after a1
    stop.set()
    rest = records_until(out, None)
    thread.join(TIMEOUT)
    assert records.stats.late == 0  # the clock stayed behind a2
    trades = [r for r in rest if isinstance(r, PackedRecord) and r.kind == "trades"]
    assert len(trades) == 1 and trades[0].trades == 2  # one pack: 1 ns apart


def test_without_bars_the_providers_minute_bars_are_not_forwarded(kinesis: Any) -> None:
    """The default: the processor builds the symbol's bars from its trades, so the
    provider's bars (sent even when not subscribed, as the fake does) never reach Kinesis."""
    script = [trade(1, "2021-02-22T15:51:01Z"), bar("2021-02-22T15:51:00Z"),
              trade(2, "2021-02-22T15:51:02Z")]
    fake = FakeAlpaca(script)
    with fake.running_in_thread(), Command(fake, kinesis, ("AAPL",)) as command:
        records = command.wait_for(lambda rs: len(trade_ids(rs)) == 2)
        assert command.finish().code == 0
    assert not any(isinstance(r, StreamBar) for r in records)
