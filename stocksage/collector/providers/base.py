"""The provider interface of live streams, and what every provider shares.

A live market-data provider is one adapter: a class with the :class:`StreamProvider` hooks
(open a connection, authenticate, subscribe, read the messages of that connection as domain
events, fetch by REST what a disconnection missed, close). :class:`ReconnectingStream` turns
those hooks into an endless, resilient event stream:

* reconnects after a lost connection with jittered exponential :class:`Backoff` (injectable
  ``random`` and ``sleep``, so tests see exact delays and never wait);
* resubscribes on every new connection (the hooks are called in order on each one);
* after a *re*-connection, backfills the trades missed while disconnected: ``backfill`` is
  asked for every symbol's trades from the last trade time seen (inclusive) up to now, and
  the :class:`TradeDedup` window drops those already delivered (by trade id), so the live
  stream and the backfill overlap without duplicates and without a gap;
* stops for good on a :class:`FatalStreamError` (wrong key, plan limits: retrying does not
  help), on :meth:`ReconnectingStream.stop` (thread-safe: the collector's SIGTERM handler) or
  when the consumer stops iterating.

Events are the domain types themselves (:data:`StreamEvent`): a
:class:`~stocksage.bars.trades.Trade` (``TradeEvent``: symbol, ``time_ns`` epoch nanoseconds,
price, size, trade id, condition codes) or a :class:`~stocksage.bars.Bar` (``BarEvent``).

Two ways to consume: ``async for event in stream`` (asyncio), or ``stream.iter_events()``
(synchronous generator: the asyncio loop runs in a daemon thread and hands events over a
bounded queue; what the synchronous collector loop ``stocksage.collector.run.collect`` needs).

Also here: exact RFC-3339 <-> epoch-nanosecond conversion (:func:`parse_rfc3339_ns`,
:func:`format_rfc3339_ns`); never through a float, which would lose the nanoseconds.
"""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import queue
import random as _random
import re
import threading
import time
from abc import ABC, abstractmethod
from collections import Counter
from collections.abc import (
    AsyncGenerator,
    AsyncIterator,
    Awaitable,
    Callable,
    Iterable,
    Iterator,
    Mapping,
)
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol, TypeAlias, runtime_checkable

from stocksage.bars import Bar
from stocksage.bars.trades import Trade
from stocksage.collector.live import ProviderAuthError, ProviderError

__all__ = [
    "Backoff",
    "BarEvent",
    "ConnectionLostError",
    "FatalStreamError",
    "ReconnectingStream",
    "Sleep",
    "StreamAuthError",
    "StreamEvent",
    "StreamProvider",
    "StreamStats",
    "TradeDedup",
    "TradeEvent",
    "format_rfc3339_ns",
    "ns_to_datetime",
    "parse_rfc3339_ns",
]

log = logging.getLogger(__name__)

TradeEvent: TypeAlias = Trade
"""A trade from the stream (or its REST backfill)."""

BarEvent: TypeAlias = Bar
"""A closed bar from the stream (Alpaca: minute bars, interval ``"1m"``)."""

StreamEvent: TypeAlias = Trade | Bar
"""What a stream yields."""

Sleep: TypeAlias = Callable[[float], Awaitable[None]]

NS_PER_SECOND = 1_000_000_000
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
_RFC3339 = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(?:\.(\d{1,9}))?([Zz]|[+-]\d{2}:\d{2})")


# --- errors ---------------------------------------------------------------------------------

class FatalStreamError(ProviderError):
    """The provider refused the stream for a reason that retrying does not fix.

    Attributes:
        code: The provider's error code (Alpaca: 401, 405, 406, 409, ...), None when unknown.
    """

    def __init__(self, message: str, code: int | None = None) -> None:
        super().__init__(message)
        self.code = code


class StreamAuthError(FatalStreamError, ProviderAuthError):
    """The provider refused the credentials (Alpaca 401/402). Also a ``ProviderAuthError``,
    so the collector's handling of the REST source's refused key applies unchanged."""


class ConnectionLostError(ConnectionError):
    """The connection ended or the provider answered something that ends this connection
    (not the stream): the stream reconnects."""


# --- time -----------------------------------------------------------------------------------

def parse_rfc3339_ns(text: str) -> int:
    """Epoch nanoseconds of an RFC-3339 time, exactly (0 .. 9 fraction digits, any offset).

    ``"2021-02-22T15:51:44.208123456Z"`` -> ``1614009104208123456``.

    Raises:
        ValueError: not RFC-3339 (including a naive time and a leap second ``:60``).
    """
    match = _RFC3339.fullmatch(text) if isinstance(text, str) else None
    if match is None:
        raise ValueError(f"not an RFC-3339 time: {text!r}")
    year, month, day, hour, minute, second = (int(g) for g in match.groups()[:6])
    fraction, zone = match.group(7) or "", match.group(8)
    moment = datetime(year, month, day, hour, minute, second, tzinfo=UTC)  # ValueError: :60
    offset = 0
    if zone not in ("Z", "z"):
        sign = -1 if zone[0] == "-" else 1
        hours, minutes = int(zone[1:3]), int(zone[4:6])
        if hours > 23 or minutes > 59:
            raise ValueError(f"bad UTC offset in {text!r}")
        offset = sign * (hours * 3600 + minutes * 60)
    delta = moment - _EPOCH
    seconds = delta.days * 86_400 + delta.seconds - offset
    return seconds * NS_PER_SECOND + int(fraction.ljust(9, "0") or "0")


def format_rfc3339_ns(ns: int) -> str:
    """RFC-3339 UTC text of epoch nanoseconds with all nine fraction digits (exact inverse of
    :func:`parse_rfc3339_ns`): ``1614009104208123456`` -> ``"2021-02-22T15:51:44.208123456Z"``."""
    seconds, fraction = divmod(int(ns), NS_PER_SECOND)
    moment = _EPOCH + timedelta(seconds=seconds)
    return f"{moment:%Y-%m-%dT%H:%M:%S}.{fraction:09d}Z"


def ns_to_datetime(ns: int) -> datetime:
    """UTC datetime of epoch nanoseconds (exact to the microsecond; nanoseconds truncated)."""
    return _EPOCH + timedelta(microseconds=int(ns) // 1_000)


# --- backoff and dedup ----------------------------------------------------------------------

@dataclass(frozen=True)
class Backoff:
    """Jittered exponential backoff between reconnection attempts ("equal jitter").

    Delay of attempt ``n`` (0 = first retry), in seconds:
    ``cap_n = min(cap, base * factor**n)``, ``delay = cap_n / 2 + random() * cap_n / 2``:
    at least half the exponential value (a quick reconnect loop cannot hammer the provider,
    which allows one connection per account) and spread over the other half (many collectors
    restarted together do not reconnect in lockstep).

    Attributes:
        base: Seconds of the first ceiling (> 0).
        factor: Growth per attempt (>= 1).
        cap: Largest ceiling in seconds.
        random: Uniform [0, 1) source (tests inject a fixed one).
    """

    base: float = 0.5
    factor: float = 2.0
    cap: float = 60.0
    random: Callable[[], float] = field(default=_random.random, repr=False)

    def delay(self, attempt: int) -> float:
        """Seconds to wait before reconnection attempt ``attempt`` (0-based)."""
        ceiling = min(self.cap, self.base * self.factor ** min(attempt, 64))
        return ceiling / 2 + self.random() * ceiling / 2


class TradeDedup:
    """Trade ids seen recently, per symbol, to drop the trades delivered twice (backfill
    overlapping the live stream).

    Memory is bounded: an id is forgotten once its trade is more than ``window_ns`` older
    than the newest trade seen of its symbol (event time, not wall time, so a long
    disconnection does not forget the ids the backfill overlaps). Trades without an id are
    never treated as duplicates (``Trade.trade_id`` docstring).

    Args:
        window_ns: How far behind a symbol's newest trade ids are kept (default 5 minutes).
    """

    def __init__(self, window_ns: int = 5 * 60 * NS_PER_SECOND) -> None:
        self.window_ns = int(window_ns)
        self._ids: dict[str, set[str]] = {}
        self._heap: dict[str, list[tuple[int, str]]] = {}
        self._newest: dict[str, int] = {}

    def __len__(self) -> int:
        return sum(len(ids) for ids in self._ids.values())

    def seen(self, trade: Trade) -> bool:
        """True when ``trade``'s id was seen (within the window); else remembers it."""
        if trade.trade_id is None:
            return False
        ids = self._ids.setdefault(trade.symbol, set())
        if trade.trade_id in ids:
            return True
        heap = self._heap.setdefault(trade.symbol, [])
        newest = max(self._newest.get(trade.symbol, trade.time_ns), trade.time_ns)
        self._newest[trade.symbol] = newest
        if trade.time_ns >= newest - self.window_ns:
            ids.add(trade.trade_id)
            heapq.heappush(heap, (trade.time_ns, trade.trade_id))
        while heap and heap[0][0] < newest - self.window_ns:
            ids.discard(heapq.heappop(heap)[1])
        return False


@dataclass
class StreamStats:
    """Counters of one stream (all since construction).

    Attributes:
        connections: Connections that completed the subscription.
        reconnects: Connection attempts after the first.
        messages: Websocket messages received (each may hold many items).
        trades, bars: Events yielded (trades include the backfilled ones).
        backfilled: Trades yielded from the REST backfill.
        duplicates: Trades dropped because their id was already delivered.
        invalid: Items or messages that could not be read (bad JSON, bad fields); skipped.
        ignored: Well-formed items of types not handled (corrections, cancels, statuses).
        errors: Provider error messages by code (0: an error without a code).
        backfill_failures: REST backfills that failed (their trades are missing).
    """

    connections: int = 0
    reconnects: int = 0
    messages: int = 0
    trades: int = 0
    bars: int = 0
    backfilled: int = 0
    duplicates: int = 0
    invalid: int = 0
    ignored: int = 0
    errors: Counter[int] = field(default_factory=Counter)
    backfill_failures: int = 0


# --- the provider interface -----------------------------------------------------------------

@runtime_checkable
class StreamProvider(Protocol):
    """The hooks a live provider implements; :class:`ReconnectingStream` calls them in order
    on every connection: ``connect`` -> ``auth`` -> ``subscribe`` -> (``backfill`` after a
    reconnection) -> ``messages`` -> ``close``.

    Errors: a hook raises :class:`FatalStreamError` (stream ends) or
    :class:`ConnectionLostError` / ``OSError`` / ``TimeoutError`` (reconnect).
    """

    @property
    def symbols(self) -> tuple[str, ...]: ...

    async def connect(self) -> None:
        """Open a connection (and read the provider's greeting)."""

    async def auth(self) -> None:
        """Authenticate the open connection."""

    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Subscribe the connection to ``symbols``' trades and bars; returns when confirmed."""

    def messages(self) -> AsyncGenerator[StreamEvent, None]:
        """Events of the open connection until it ends (returns on a clean close)."""

    def backfill(self, since_ns: Mapping[str, int],
                 until_ns: int) -> AsyncGenerator[Trade, None]:
        """Trades of every symbol of ``since_ns`` from its time (inclusive) to ``until_ns``."""

    async def close(self) -> None:
        """Close the connection if open (idempotent)."""


class _End:
    """Marks the end of the sync wrapper's queue."""


@dataclass
class _Failure:
    error: BaseException


class ReconnectingStream(ABC):
    """A resilient event stream over the :class:`StreamProvider` hooks of a subclass.

    Args:
        symbols: Tickers to subscribe (upper-cased, duplicates removed, order kept).
        backoff: Reconnection delays (:class:`Backoff`).
        sleep: ``await sleep(seconds)`` between attempts (tests: record and return); a
            :meth:`stop` interrupts it.
        clock: Wall time in epoch nanoseconds (end of a backfill; start cursor of symbols
            without a trade yet).
        dedup: Trade-id window (:class:`TradeDedup`).
        max_reconnects: Give up after this many consecutive failed attempts (None: never);
            then :class:`ProviderError` is raised.
        queue_size: Events the sync wrapper buffers for a slow consumer.

    Raises:
        ValueError: no symbol.
    """

    def __init__(self, symbols: Iterable[str], *, backoff: Backoff | None = None,
                 sleep: Sleep = asyncio.sleep, clock: Callable[[], int] = time.time_ns,
                 dedup: TradeDedup | None = None, max_reconnects: int | None = None,
                 queue_size: int = 100_000) -> None:
        ordered = dict.fromkeys(s.strip().upper() for s in symbols if s.strip())
        if not ordered:
            raise ValueError("at least one symbol is needed")
        self._symbols = tuple(ordered)
        self.backoff = backoff or Backoff()
        self._sleep = sleep
        self._clock = clock
        self.dedup = dedup or TradeDedup()
        self.max_reconnects = max_reconnects
        self.queue_size = queue_size
        self.stats = StreamStats()
        self.last_trade_ns: dict[str, int] = {}
        self.receiving_live = False
        """True while the current connection's live messages are read: set after its
        handshake and (on a reconnection) after every backfilled trade was accepted, cleared
        as soon as the connection ends. A consumer in another thread may read it (then
        ``stats.trades + stats.bars``) to know whether trades older than the live ones can
        still come: ``stocksage.collector.live_stream`` freezes its clock while it is False."""
        self._stopped = threading.Event()
        self._loop: asyncio.AbstractEventLoop | None = None
        self._wake: asyncio.Event | None = None
        self._closing: set[asyncio.Future[None]] = set()

    @property
    def symbols(self) -> tuple[str, ...]:
        """Subscribed tickers (upper case)."""
        return self._symbols

    @property
    def stopped(self) -> bool:
        """True once :meth:`stop` was called."""
        return self._stopped.is_set()

    # --- hooks (the StreamProvider protocol) ------------------------------------------------

    @abstractmethod
    async def connect(self) -> None: ...

    @abstractmethod
    async def auth(self) -> None: ...

    @abstractmethod
    async def subscribe(self, symbols: Iterable[str]) -> None: ...

    @abstractmethod
    def messages(self) -> AsyncGenerator[StreamEvent, None]: ...

    @abstractmethod
    def backfill(self, since_ns: Mapping[str, int],
                 until_ns: int) -> AsyncGenerator[Trade, None]: ...

    @abstractmethod
    async def close(self) -> None: ...

    # --- stopping ---------------------------------------------------------------------------

    def stop(self) -> None:
        """End the stream (thread-safe, idempotent): the current connection is closed, a
        backoff wait is cut short and iteration ends after the event in hand."""
        self._stopped.set()
        loop, wake = self._loop, self._wake
        if loop is not None and wake is not None and not loop.is_closed():
            with contextlib.suppress(RuntimeError):  # the loop closed meanwhile
                loop.call_soon_threadsafe(self._on_stop, wake)

    def _on_stop(self, wake: asyncio.Event) -> None:
        wake.set()
        task = asyncio.ensure_future(self.close())
        self._closing.add(task)
        task.add_done_callback(self._closing.discard)

    async def _pause(self, seconds: float) -> None:
        """``sleep(seconds)``, cut short by :meth:`stop`."""
        assert self._wake is not None
        waiter = asyncio.ensure_future(self._wake.wait())
        sleeper = asyncio.ensure_future(self._sleep(seconds))
        try:
            await asyncio.wait({waiter, sleeper}, return_when=asyncio.FIRST_COMPLETED)
        finally:
            for task in (waiter, sleeper):
                task.cancel()
            await asyncio.gather(waiter, sleeper, return_exceptions=True)

    # --- the loop ---------------------------------------------------------------------------

    def _accept(self, event: StreamEvent, *, backfilled: bool = False) -> bool:
        """Count ``event``; False when it is a duplicate trade to drop."""
        if isinstance(event, Bar):
            self.stats.bars += 1
            return True
        if self.dedup.seen(event):
            self.stats.duplicates += 1
            return False
        self.stats.trades += 1
        self.stats.backfilled += backfilled
        if event.time_ns > self.last_trade_ns.get(event.symbol, -1):
            self.last_trade_ns[event.symbol] = event.time_ns
        return True

    async def _session(self, resumed: bool,
                       started_ns: list[int]) -> AsyncGenerator[StreamEvent, None]:
        """One connection: handshake, backfill when ``resumed``, then its messages."""
        for step in (self.connect, self.auth):
            await step()
            if self.stopped:  # stop() came while the connection was not there to close
                return
        await self.subscribe(self._symbols)
        if self.stopped:
            return
        self.stats.connections += 1
        if not started_ns:
            started_ns.append(self._clock())
        if resumed:
            until = self._clock()
            since = {s: self.last_trade_ns.get(s, started_ns[0]) for s in self._symbols}
            log.info("backfilling trades missed while disconnected",
                     extra={"since": {s: format_rfc3339_ns(t) for s, t in since.items()},
                            "until": format_rfc3339_ns(until)})
            async with contextlib.aclosing(self.backfill(since, until)) as missed:
                async for trade in missed:
                    if trade.time_ns >= since.get(trade.symbol, until + 1) and \
                            self._accept(trade, backfilled=True):
                        yield trade
                    if self.stopped:
                        return
        self.receiving_live = True
        async with contextlib.aclosing(self.messages()) as live:
            async for event in live:
                if self._accept(event):
                    yield event
                if self.stopped:
                    return

    async def events(self) -> AsyncGenerator[StreamEvent, None]:
        """Every event, across reconnections, until :meth:`stop` or a fatal error.

        Raises:
            FatalStreamError: the provider refused the stream (``StreamAuthError``: the key).
            ProviderError: ``max_reconnects`` consecutive attempts failed.
        """
        self._loop = asyncio.get_running_loop()
        self._wake = asyncio.Event()
        if self.stopped:
            return
        attempt, resumed = 0, False
        started_ns: list[int] = []
        try:
            while not self.stopped:
                delivered = self.stats.connections
                try:
                    async with contextlib.aclosing(self._session(resumed, started_ns)) as run:
                        async for event in run:
                            yield event
                except FatalStreamError:
                    raise
                except (ConnectionLostError, OSError, TimeoutError) as err:
                    if not self.stopped:
                        log.warning("stream connection lost",
                                    extra={"error": f"{type(err).__name__}: {err}"})
                finally:
                    self.receiving_live = False
                    await self.close()
                if self.stopped:
                    return
                if self.stats.connections > delivered:
                    attempt, resumed = 0, True  # that connection worked: start over
                elif self.max_reconnects is not None and attempt >= self.max_reconnects:
                    raise ProviderError(f"stream: {attempt} reconnection attempts failed")
                delay = self.backoff.delay(attempt)
                attempt += 1
                self.stats.reconnects += 1
                log.info("reconnecting", extra={"attempt": attempt, "delay": round(delay, 3)})
                await self._pause(delay)
        finally:
            self._loop = None

    def __aiter__(self) -> AsyncIterator[StreamEvent]:
        return self.events()

    # --- synchronous wrapper ----------------------------------------------------------------

    def iter_events(self, stop: threading.Event | None = None,
                    check_seconds: float = 0.5) -> Iterator[StreamEvent]:
        """The events as a blocking generator (the asyncio loop runs in a daemon thread).

        Args:
            stop: Optional stop flag (the collector's SIGTERM event); checked every
                ``check_seconds`` while no event arrives, and then :meth:`stop` is called.
            check_seconds: How often ``stop`` is looked at while idle.

        Raises:
            FatalStreamError, ProviderError: as :meth:`events`, in the consumer's thread.
        """
        handoff: queue.Queue[Any] = queue.Queue(maxsize=self.queue_size)

        def put(item: Any) -> None:
            while True:  # never lose the end marker or an event to a full queue
                try:
                    handoff.put(item, timeout=check_seconds)
                    return
                except queue.Full:
                    if self.stopped and isinstance(item, (Trade, Bar)):
                        return

        async def pump() -> None:
            try:
                async for event in self.events():
                    try:
                        handoff.put_nowait(event)
                    except queue.Full:
                        log.warning("consumer is slow: stream events waiting")
                        await asyncio.to_thread(put, event)
            except BaseException as err:  # handed to the consumer thread  # noqa: BLE001
                put(_Failure(err))
            finally:
                put(_End())

        thread = threading.Thread(target=asyncio.run, args=(pump(),),
                                  name="stream-provider", daemon=True)
        thread.start()
        try:
            while True:
                try:
                    item = handoff.get(timeout=check_seconds)
                except queue.Empty:
                    if stop is not None and stop.is_set():
                        self.stop()
                    continue
                if isinstance(item, _End):
                    return
                if isinstance(item, _Failure):
                    raise item.error
                yield item
        finally:
            self.stop()
            while thread.is_alive():  # drain so the pump is never blocked on a full queue
                with contextlib.suppress(queue.Empty):
                    handoff.get(timeout=check_seconds)
            thread.join()
