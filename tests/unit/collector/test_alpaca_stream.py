"""AlpacaStream (Alpaca Market Data Stream v2) against the local fake stream and REST server.

Everything runs on 127.0.0.1 (``stocksage.collector.providers.fake_alpaca``), never the
internet. Backoff waits are an injected recorder (no real sleeping); every wait on the network
is bounded by ``TIMEOUT`` so a broken stream fails the test instead of hanging it.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import threading
from collections.abc import Awaitable, Iterator
from datetime import UTC, datetime
from typing import Any, TypeVar

import pytest

from stocksage.bars import Bar
from stocksage.bars.trades import Trade
from stocksage.collector.live import Credentials
from stocksage.collector.providers import (
    AlpacaStream,
    Backoff,
    FatalStreamError,
    StreamAuthError,
    TradeDedup,
)
from stocksage.collector.providers.base import StreamEvent, format_rfc3339_ns, parse_rfc3339_ns
from stocksage.collector.providers.fake_alpaca import (
    FAKE_KEY,
    FAKE_SECRET,
    FakeAlpaca,
    trades_from_csv,
)

TIMEOUT = 30.0
KEY = Credentials(FAKE_KEY, FAKE_SECRET)
NOW_NS = parse_rfc3339_ns("2021-02-22T16:00:00Z")  # the injected wall clock
T = TypeVar("T")


def run(coro: Awaitable[T]) -> T:
    """Run ``coro`` on a fresh loop, failing after ``TIMEOUT`` seconds."""
    async def bounded() -> T:
        return await asyncio.wait_for(coro, TIMEOUT)
    return asyncio.run(bounded())


class Sleeps:
    """Injected backoff sleep: records the delays, returns at once."""

    def __init__(self) -> None:
        self.delays: list[float] = []

    async def __call__(self, seconds: float) -> None:
        self.delays.append(seconds)


def trade(i: int, t: str, symbol: str = "AAPL", x: str = "D") -> dict[str, Any]:
    return {"T": "t", "S": symbol, "i": i, "x": x, "p": 126.5 + i / 100, "s": i, "t": t,
            "c": ["@", "I"], "z": "C"}


def bar(t: str, symbol: str = "AAPL") -> dict[str, Any]:
    return {"T": "b", "S": symbol, "o": 388.985, "h": 389.13, "l": 388.975, "c": 389.12,
            "v": 49378, "t": t, "n": 461, "vw": 389.06}


def stream_for(fake: FakeAlpaca, sleeps: Sleeps, symbols: tuple[str, ...] = ("AAPL",),
               **kwargs: Any) -> AlpacaStream:
    options: dict[str, Any] = {"backoff": Backoff(random=lambda: 0.5), "clock": lambda: NOW_NS,
                               "bars": True}
    options.update(kwargs)
    return AlpacaStream(symbols, KEY, stream_url=fake.stream_url, rest_url=fake.rest_url,
                        sleep=sleeps, **options)


async def until_bar(stream: AlpacaStream) -> list[StreamEvent]:
    """Events up to and including the first bar (each script ends with one)."""
    events: list[StreamEvent] = []
    async with contextlib.aclosing(stream.events()) as stream_events:
        async for event in stream_events:
            events.append(event)
            if isinstance(event, Bar):
                break
    return events


async def drain(stream: AlpacaStream) -> list[StreamEvent]:
    """Every event until the stream ends (by an error: raised)."""
    return [event async for event in stream]


# --- times ---------------------------------------------------------------------------------

def test_rfc3339_times_parse_exactly_to_epoch_nanoseconds() -> None:
    assert parse_rfc3339_ns("2021-02-22T15:51:44.208123456Z") == 1614009104208123456
    assert parse_rfc3339_ns("2021-02-22T15:51:44.208Z") == 1614009104208000000
    assert parse_rfc3339_ns("2021-02-22T15:51:44Z") == 1614009104000000000
    assert parse_rfc3339_ns("2021-02-22T10:51:44.000000001-05:00") == 1614009104000000001
    assert format_rfc3339_ns(1614009104208123456) == "2021-02-22T15:51:44.208123456Z"
    for bad in ("2021-02-22T15:51:44", "2021-02-22T15:51:60Z", "1614009104", ""):
        with pytest.raises(ValueError):
            parse_rfc3339_ns(bad)


# --- handshake -----------------------------------------------------------------------------

def test_auth_then_subscribe_to_trades_and_bars_of_every_symbol() -> None:
    async def scenario() -> FakeAlpaca:
        async with FakeAlpaca([bar("2021-02-22T15:51:00Z")]) as fake:
            await until_bar(stream_for(fake, Sleeps(), symbols=("aapl", "MSFT", "AAPL")))
            return fake

    fake = run(scenario())
    (connection,) = fake.connections
    assert connection.path == "/v2/iex"
    assert connection.received == [
        {"action": "auth", "key": FAKE_KEY, "secret": FAKE_SECRET},
        {"action": "subscribe", "trades": ["AAPL", "MSFT"], "bars": ["AAPL", "MSFT"]},
    ]


def test_refused_key_raises_auth_error_without_reconnecting() -> None:
    sleeps = Sleeps()

    async def scenario() -> FakeAlpaca:
        async with FakeAlpaca([bar("2021-02-22T15:51:00Z")], secret="other") as fake:
            with pytest.raises(StreamAuthError, match="402: auth failed") as raised:
                await drain(stream_for(fake, sleeps))
            assert raised.value.code == 402
            return fake

    fake = run(scenario())
    assert len(fake.connections) == 1
    assert sleeps.delays == []


# --- data ----------------------------------------------------------------------------------

def test_trades_and_bars_become_domain_events_with_exact_times() -> None:
    script = [[trade(96921, "2021-02-22T15:51:44.208123456Z"),
               trade(96922, "2021-02-22T15:51:44.2Z", x="V")],
              bar("2021-02-22T15:51:00Z")]

    async def scenario() -> list[StreamEvent]:
        async with FakeAlpaca(script) as fake:
            return await until_bar(stream_for(fake, Sleeps()))

    assert run(scenario()) == [
        Trade("AAPL", 1614009104208123456, 126.5 + 969.21, 96921, "D:96921", ("@", "I")),
        Trade("AAPL", 1614009104200000000, 126.5 + 969.22, 96922, "V:96922", ("@", "I")),
        Bar("AAPL", datetime(2021, 2, 22, 15, 51, tzinfo=UTC), 388.985, 389.13, 388.975,
            389.12, 49378, interval="1m", source="alpaca:iex"),
    ]


def test_non_fatal_error_message_is_logged_and_counted_and_the_stream_goes_on(
        caplog: pytest.LogCaptureFixture) -> None:
    script = [{"T": "error", "code": 500, "msg": "internal error"},
              trade(1, "2021-02-22T15:51:01Z"), bar("2021-02-22T15:51:00Z")]
    stream: AlpacaStream | None = None

    async def scenario() -> list[StreamEvent]:
        nonlocal stream
        async with FakeAlpaca(script) as fake:
            stream = stream_for(fake, Sleeps())
            return await until_bar(stream)

    with caplog.at_level(logging.ERROR, logger="stocksage.collector.providers.alpaca_stream"):
        events = run(scenario())
    assert [type(e) for e in events] == [Trade, Bar]
    assert stream is not None and stream.stats.errors[500] == 1
    assert "alpaca stream error 500: internal error" in caplog.text


def test_fatal_error_message_ends_the_stream_without_reconnecting() -> None:
    sleeps = Sleeps()
    script = [trade(1, "2021-02-22T15:51:01Z"),
              {"T": "error", "code": 406, "msg": "connection limit exceeded"}]

    async def scenario() -> FakeAlpaca:
        async with FakeAlpaca(script) as fake:
            with pytest.raises(FatalStreamError, match="406: connection limit exceeded"):
                await drain(stream_for(fake, sleeps))
            return fake

    assert len(run(scenario()).connections) == 1
    assert sleeps.delays == []


def test_message_that_is_not_json_is_counted_and_skipped() -> None:
    script = ["not json {", trade(1, "2021-02-22T15:51:01Z"), bar("2021-02-22T15:51:00Z")]
    stream: AlpacaStream | None = None

    async def scenario() -> list[StreamEvent]:
        nonlocal stream
        async with FakeAlpaca(script) as fake:
            stream = stream_for(fake, Sleeps())
            return await until_bar(stream)

    assert [type(e) for e in run(scenario())] == [Trade, Bar]
    assert stream is not None and stream.stats.invalid == 1


def test_invalid_trade_item_is_counted_and_skipped() -> None:
    bad_price = {**trade(1, "2021-02-22T15:51:01Z"), "p": -1}
    bad_time = trade(2, "2021-02-22 15:51:02")
    script = [[bad_price, bad_time, trade(3, "2021-02-22T15:51:03Z")], bar("2021-02-22T15:51:00Z")]
    stream: AlpacaStream | None = None

    async def scenario() -> list[StreamEvent]:
        nonlocal stream
        async with FakeAlpaca(script) as fake:
            stream = stream_for(fake, Sleeps())
            return await until_bar(stream)

    events = run(scenario())
    assert [e.trade_id for e in events if isinstance(e, Trade)] == ["D:3"]
    assert stream is not None and stream.stats.invalid == 2


# --- reconnection --------------------------------------------------------------------------

def test_reconnect_mid_minute_resubscribes_and_backfills_with_no_duplicate_and_no_gap() -> None:
    script = [
        trade(1, "2021-02-22T15:51:05.000000001Z"),
        trade(1, "2021-02-22T15:51:06Z", symbol="MSFT"),
        [trade(2, "2021-02-22T15:51:10.5Z"), trade(2, "2021-02-22T15:51:10.5Z", "MSFT")],
        trade(3, "2021-02-22T15:51:20.123456789Z"),  # last before the drop
        # missed while disconnected (REST only):
        trade(3, "2021-02-22T15:51:15Z", symbol="MSFT"),  # before AAPL's last time
        trade(4, "2021-02-22T15:51:20.123456789Z"),        # same ns as the last one seen
        trade(5, "2021-02-22T15:51:31Z"),
        # the second connection:
        trade(4, "2021-02-22T15:51:40Z", symbol="MSFT"),
        trade(6, "2021-02-22T15:51:45Z"),
        bar("2021-02-22T15:51:00Z"),
    ]
    sleeps = Sleeps()
    stream: AlpacaStream | None = None

    async def scenario() -> tuple[FakeAlpaca, list[StreamEvent]]:
        nonlocal stream
        async with FakeAlpaca(script, drop_after=4, missed=3, page_size=2) as fake:
            stream = stream_for(fake, sleeps, symbols=("AAPL", "MSFT"))
            return fake, await until_bar(stream)

    fake, events = run(scenario())
    assert stream is not None
    trades = [e for e in events if isinstance(e, Trade)]
    received = [(t.symbol, t.trade_id) for t in trades]
    assert len(received) == len(set(received))  # no duplicate
    assert set(received) == {(str(t["S"]), f"D:{t['i']}") for t in fake.trades()}  # no gap
    for symbol in ("AAPL", "MSFT"):  # and in event-time order per symbol
        times = [t.time_ns for t in trades if t.symbol == symbol]
        assert times == sorted(times)

    first, second = fake.connections
    assert first.dropped and not second.dropped
    assert second.received == first.received  # authenticated and resubscribed
    assert sleeps.delays == [Backoff(random=lambda: 0.5).delay(0)]
    assert len(fake.rest_requests) == 4  # 8 trades since MSFT's last, 2 a page
    query = fake.rest_requests[0]
    assert query["symbols"] == ["AAPL,MSFT"]
    assert query["start"] == ["2021-02-22T15:51:10.500000000Z"]  # MSFT's last trade
    assert query["end"] == [format_rfc3339_ns(NOW_NS)]
    assert query["limit"] == ["10000"] and query["feed"] == ["iex"]
    assert [q.get("page_token") for q in fake.rest_requests] == [None, ["2"], ["4"], ["6"]]
    # backfilled: AAPL 4, 5, 6 and MSFT 3, 4; duplicates: AAPL 3 and MSFT 2 (the last seen),
    # then the second connection's live MSFT 4 and AAPL 6
    assert stream.stats.backfilled == 5 and stream.stats.duplicates == 4
    assert stream.stats.connections == 2 and stream.stats.reconnects == 1


def test_failed_connection_attempts_back_off_with_growing_jittered_delays() -> None:
    sleeps = Sleeps()
    jitter = iter([0.0, 0.5])
    stream: AlpacaStream | None = None

    async def scenario() -> list[StreamEvent]:
        nonlocal stream
        async with FakeAlpaca([bar("2021-02-22T15:51:00Z")], refuse=2) as fake:
            stream = stream_for(fake, sleeps, backoff=Backoff(base=1.0, random=jitter.__next__))
            return await until_bar(stream)

    assert [type(e) for e in run(scenario())] == [Bar]
    assert sleeps.delays == [0.5, 1.5]  # 1 * (1/2 + 0 / 2), 2 * (1/2 + 0.5 / 2)
    assert stream is not None and stream.stats.reconnects == 2


def test_connection_limit_answering_a_reconnection_is_retried() -> None:
    sleeps = Sleeps()
    jitter = iter([0.0, 0.0])
    script = [trade(1, "2021-02-22T15:51:01Z"), trade(2, "2021-02-22T15:51:02Z"),
              bar("2021-02-22T15:51:00Z")]

    async def scenario() -> tuple[FakeAlpaca, list[StreamEvent]]:
        async with FakeAlpaca(script, drop_after=1, limited_after_drop=1) as fake:
            stream = stream_for(fake, sleeps, backoff=Backoff(base=1.0, random=jitter.__next__))
            return fake, await until_bar(stream)

    fake, events = run(scenario())
    assert [getattr(e, "trade_id", None) for e in events] == ["D:1", "D:2", None]
    assert len(fake.connections) == 3  # dropped, refused with 406, resumed
    assert sleeps.delays == [0.5, 1.0]


def test_backoff_is_exponential_capped_and_jittered_by_the_injected_random() -> None:
    draws = iter([0.0, 0.5, 0.75, 0.0, 0.5])
    backoff = Backoff(base=1.0, factor=2.0, cap=8.0, random=draws.__next__)
    assert [backoff.delay(n) for n in range(5)] == [0.5, 1.5, 3.5, 4.0, 6.0]


def test_dedup_window_keeps_only_recent_ids() -> None:
    dedup = TradeDedup(window_ns=10)
    assert not dedup.seen(Trade("AAPL", 10**18, 1.0, 1, "a"))
    assert dedup.seen(Trade("AAPL", 10**18, 1.0, 1, "a"))
    assert not dedup.seen(Trade("AAPL", 10**18 + 5, 1.0, 1, "b"))
    assert not dedup.seen(Trade("AAPL", 10**18 + 20, 1.0, 1, "c"))  # "a" and "b" fall out
    assert len(dedup) == 1
    assert not dedup.seen(Trade("MSFT", 10**18, 1.0, 1, "a"))  # ids are per symbol
    assert not dedup.seen(Trade("AAPL", 10**18, 1.0, 1, None))
    assert not dedup.seen(Trade("AAPL", 10**18, 1.0, 1, None))  # no id: never a duplicate


# --- synchronous use -----------------------------------------------------------------------

def test_iter_events_yields_in_the_callers_thread_and_ends_on_the_stop_event() -> None:
    stop = threading.Event()
    fake = FakeAlpaca([trade(1, "2021-02-22T15:51:01Z"), bar("2021-02-22T15:51:00Z")])
    with fake.running_in_thread():
        stream = stream_for(fake, Sleeps())
        events: list[StreamEvent] = []
        for event in stream.iter_events(stop, check_seconds=0.05):
            events.append(event)
            if isinstance(event, Bar):
                stop.set()  # the collector's SIGTERM; the stream is idle from here on
    assert [type(e) for e in events] == [Trade, Bar]
    assert stream.stopped


def test_fake_reads_trades_from_csv(tmp_path: Any) -> None:
    path = tmp_path / "ticks.csv"
    path.write_text("time,price,size,symbol\n"
                    "2013-09-01 17:00:00.083000-05:00,1640.25,3,es\n"
                    "2013-09-01T17:00:00.083000123-05:00,1640.5,1,\n")
    items = trades_from_csv(path)
    assert [(i["S"], i["i"], i["t"], i["p"], i["s"]) for i in items] == [
        ("ES", 1, "2013-09-01T22:00:00.083000000Z", 1640.25, 3.0),
        ("FAKEPACA", 2, "2013-09-01T22:00:00.083000123Z", 1640.5, 1.0)]


@pytest.fixture(autouse=True)
def _no_thread_left() -> Iterator[None]:
    """Every test stops the threads it started (stream pumps, fake servers)."""
    before = set(threading.enumerate())
    yield
    left = [t for t in set(threading.enumerate()) - before
            if t.name in ("stream-provider", "fake-alpaca") and t.is_alive()]
    assert not left
