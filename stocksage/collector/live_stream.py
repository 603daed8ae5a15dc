"""Live trades and bars of a websocket stream -> Kinesis records: the core of
``python -m stocksage.collector live-stream`` (Alpaca Market Data Stream v2,
:class:`~stocksage.collector.providers.AlpacaStream`).

Records (partition key = symbol): each minute bar of the stream goes to the sink as it comes;
trades go through a :class:`~stocksage.collector.trade_packing.TradePacker`: records of one
symbol cut by count (``MAX_TRADES_PER_RECORD``) and by ``window_ns`` of event time (100 ms by
default), and a watermark heartbeat per quiet symbol and second of event time.

The packer's clock on a live feed
---------------------------------
The packer wants trades in event-time order across all symbols and a clock "no trade at or
before it follows" (``trade_packing``'s docstring). A live feed gives neither exactly: trades
of different symbols and venues arrive slightly out of order, and a quiet feed has no trade
to move the clock. So:

* **Allowance.** Trades wait in a reorder buffer and go to the packer, in event-time order,
  once the clock reaches them; the clock stays ``allowance_ns`` (default 500 ms, for the
  provider's delivery delay and disorder) behind the feed. On every trade it moves to
  ``trade time - allowance``; on a wall-clock tick (every ``tick_seconds``, 0.1 s, also when
  no event comes, so packs and heartbeats leave while the feed is quiet) to
  ``now - lag - allowance``, where ``lag`` is wall-clock time minus event time of the latest
  trade received (its delivery delay, measured). For a real-time feed that is wall-clock now
  minus the delivery delay minus the allowance. Measuring the lag instead of trusting the wall
  clock alone keeps the same code right for a feed whose event times are not now (the local
  fake replaying a file of old trades: the demo and the tests) and for a host clock that is
  off by more than the allowance. Cost: up to allowance + window of added latency (plus the
  sink's 200 ms flush timer).
* **Late trades.** A trade the clock already passed (delivered more than the allowance after
  later ones, or after a stall) is not dropped: it leaves at the next tick in a trades record
  of its own per symbol and is counted in ``LiveStreamStats.late``; the processor folds it
  into its bar while that bar is within the grace (``bar_building.grace_ms``) and counts it
  late otherwise.
* **Disconnections.** While the stream is not reading live messages
  (``ReconnectingStream.receiving_live`` is False: reconnecting, authenticating, backfilling)
  and while events the stream accepted are still on their way to this consumer, the tick does
  not move the clock: the trades missed while disconnected, which the REST backfill brings
  after the reconnection, are then not behind it. (A connection that stalls without closing
  is noticed only after the keepalive's ping timeout; trades the clock passed meanwhile are
  late trades, above.)
* **Stop and fatal errors.** When ``stop`` is set (SIGTERM) or the stream fails, every
  buffered trade goes to the packer, every open pack is cut and each symbol seen gets a final
  watermark at the clock (nothing older follows from this process); then the iteration ends
  (and raises the stream's error, if any) and ``collect`` flushes the sink.

Threads: ``iter_events`` runs the stream's asyncio loop in its own thread; a reader thread
moves its events into a bounded queue that the consumer (the ``collect`` loop) reads with a
``tick_seconds`` timeout, so the tick runs whether or not events come.
"""

from __future__ import annotations

import heapq
import logging
import queue
import threading
import time
from collections.abc import Callable, Generator, Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stocksage.bars import Bar
from stocksage.bars.trades import MAX_TRADES_PER_RECORD, Trade, encode_trades
from stocksage.collector.providers.base import Backoff, ReconnectingStream
from stocksage.collector.run import CollectResult
from stocksage.collector.sink.kinesis_sink import KinesisSink, ProgressCallback
from stocksage.collector.trade_packing import DEFAULT_WINDOW_NS, PackedRecord, TradePacker

__all__ = [
    "DEFAULT_ALLOWANCE_NS",
    "DEFAULT_TICK_SECONDS",
    "LiveRecord",
    "LiveStreamOutcome",
    "LiveStreamRecords",
    "LiveStreamStats",
    "run_live_stream",
]

log = logging.getLogger("stocksage.collector")

DEFAULT_ALLOWANCE_NS = 500_000_000
"""How far (ns of event time) the packer's clock stays behind the feed: 500 ms."""

DEFAULT_TICK_SECONDS = 0.1
"""Wall-clock seconds between two ticks of the clock when no event comes."""

HEALTH_INTERVAL_NS = 30_000_000_000
"""Wall-clock ns between two health-file beats (the health check allows 180 s)."""

HEALTH_MAX_DISCONNECTED_NS = 120_000_000_000
"""A beat says ``ok: false`` once the stream has not been live for this long (ns)."""

_JOIN_SECONDS = 30.0

LiveRecord = Bar | PackedRecord
"""What :class:`LiveStreamRecords` yields: a bar, or a packed trades/watermark record."""


@dataclass
class LiveStreamStats:
    """Counters of one :class:`LiveStreamRecords` iteration.

    Attributes:
        trades: Trades received from the stream (backfilled ones included).
        bars: Bars received (and yielded).
        late: Trades the clock had already passed, sent in records of their own.
        trade_records: Trades records yielded (late ones included).
        trades_sent: Trades in those records.
        heartbeats: Watermark records yielded (the final ones included).
    """

    trades: int = 0
    bars: int = 0
    late: int = 0
    trade_records: int = 0
    trades_sent: int = 0
    heartbeats: int = 0


class _End:
    """The reader's last item."""


@dataclass(frozen=True)
class _Failure:
    error: BaseException


_QueueItem = Trade | Bar | _End | _Failure


class LiveStreamRecords:
    """The records of a live stream for :func:`stocksage.collector.run.collect` (module
    docstring: the clock, late trades, disconnections, the end). Iterate it once.

    Args:
        stream: The provider's stream (started by the iteration, stopped when it ends).
        stop: The collector's stop event (SIGTERM): when set, the stream is stopped, the
            events it already delivered are packed, the packer is finished and the iteration
            ends.
        packer: Packs the trades (default ``TradePacker()``: 100 ms, 1 s heartbeats).
        allowance_ns: Event-time ns the clock stays behind the feed (>= 0).
        tick_seconds: Seconds between ticks (> 0; paced by ``time.monotonic``).
        wall_ns: Wall clock in epoch ns, the ``now`` of the clock's estimate (tests may
            inject one).
        queue_size: Events buffered between the reader thread and the consumer.
        on_tick: Called with the wall-clock ns at every tick, in the consumer's thread (the
            CLI beats the health file from it).

    Raises:
        ValueError: ``allowance_ns`` < 0 or ``tick_seconds`` <= 0.
    """

    def __init__(self, stream: ReconnectingStream, stop: threading.Event, *,
                 packer: TradePacker | None = None, allowance_ns: int = DEFAULT_ALLOWANCE_NS,
                 tick_seconds: float = DEFAULT_TICK_SECONDS,
                 wall_ns: Callable[[], int] = time.time_ns, queue_size: int = 10_000,
                 on_tick: Callable[[int], None] | None = None) -> None:
        if allowance_ns < 0:
            raise ValueError(f"allowance must be >= 0 ms, got {allowance_ns / 1e6:g}")
        if not tick_seconds > 0:
            raise ValueError(f"tick_seconds must be > 0, got {tick_seconds}")
        self.stream = stream
        self.packer = packer or TradePacker()
        self.allowance_ns = int(allowance_ns)
        self.tick_seconds = tick_seconds
        self.stats = LiveStreamStats()
        self._stop = stop
        self._wall_ns = wall_ns
        self._queue_size = queue_size
        self._on_tick = on_tick
        self._buffer: list[tuple[int, int, Trade]] = []  # (time_ns, arrival number, trade)
        self._arrivals = 0
        self._late: dict[str, list[Trade]] = {}
        self._consumed = 0  # stream events taken from the queue
        self._lag_ns: int | None = None
        self._started = False

    @property
    def symbols(self) -> tuple[str, ...]:
        """The stream's symbols."""
        return self.stream.symbols

    def expected_counts(self) -> Mapping[str, int] | None:
        """None: a live stream has no known end (the progress display's interface)."""
        return None

    # --- iteration --------------------------------------------------------------------------

    def __iter__(self) -> Generator[LiveRecord, None, None]:
        """Bars and packed records until ``stop`` or a stream failure.

        Raises:
            RuntimeError: iterated a second time.
            FatalStreamError, ProviderError, ...: what the stream raised (after the records
                of what it delivered were yielded).
        """
        if self._started:
            raise RuntimeError("LiveStreamRecords can be iterated once")
        self._started = True
        inbox: queue.Queue[_QueueItem] = queue.Queue(maxsize=self._queue_size)
        gone = threading.Event()
        reader = threading.Thread(target=self._read, args=(inbox, gone),
                                  name="live-stream-reader", daemon=True)
        reader.start()
        next_tick = 0.0  # time.monotonic() of the next tick: ticks are paced in real time
        failure: BaseException | None = None
        try:
            while True:
                if self._stop.is_set() and not self.stream.stopped:
                    log.info("stop requested: stopping the stream, packing what it delivered")
                    self.stream.stop()
                try:
                    item: _QueueItem | None = inbox.get(timeout=self.tick_seconds)
                except queue.Empty:
                    item = None
                if isinstance(item, _End):
                    break
                if isinstance(item, _Failure):
                    failure = item.error
                    break
                now = self._wall_ns()
                if isinstance(item, Bar):
                    self._consumed += 1
                    self.stats.bars += 1
                    yield item
                elif isinstance(item, Trade):
                    yield from self._take(item, now)
                if time.monotonic() >= next_tick:
                    next_tick = time.monotonic() + self.tick_seconds
                    yield from self._tick(now)
            yield from self._finish()
        finally:
            gone.set()
            self.stream.stop()
            reader.join(timeout=_JOIN_SECONDS)
            if reader.is_alive():  # pragma: no cover - the stream did not end in time
                log.error("live stream reader did not end", extra={"seconds": _JOIN_SECONDS})
        if failure is not None:
            raise failure

    def _read(self, inbox: queue.Queue[_QueueItem], gone: threading.Event) -> None:
        """Reader thread: the stream's events into ``inbox``, then its error, then the end."""

        def put(item: _QueueItem) -> bool:
            while not gone.is_set():
                try:
                    inbox.put(item, timeout=0.1)
                    return True
                except queue.Full:
                    continue
            return False

        events = self.stream.iter_events()
        try:
            for event in events:
                if not put(event):
                    return
        except BaseException as err:  # handed to the consumer thread  # noqa: BLE001
            put(_Failure(err))
        finally:
            close = getattr(events, "close", None)  # a generator: stops the stream's thread
            if close is not None:
                close()
            put(_End())

    # --- the clock --------------------------------------------------------------------------

    def _take(self, trade: Trade, now_ns: int) -> list[PackedRecord]:
        """One trade from the stream: buffered (or late), then the clock moves to its time
        minus the allowance."""
        self._consumed += 1
        self.stats.trades += 1
        self._lag_ns = now_ns - trade.time_ns
        if trade.time_ns <= self.packer.clock_ns:
            self._late.setdefault(trade.symbol, []).append(trade)
            self.stats.late += 1
        else:
            heapq.heappush(self._buffer, (trade.time_ns, self._arrivals, trade))
            self._arrivals += 1
        return self._release(trade.time_ns - self.allowance_ns)

    def _tick(self, now_ns: int) -> list[PackedRecord]:
        """The wall-clock tick: late trades out; the clock to ``now - lag - allowance`` unless
        the stream is not live or some of its events are not consumed yet."""
        if self._on_tick is not None:
            self._on_tick(now_ns)
        out = self._late_records()
        live = self.stream.receiving_live  # first: then the counts include any backfill
        accepted = self.stream.stats.trades + self.stream.stats.bars
        if live and accepted <= self._consumed and self._lag_ns is not None:
            out += self._release(now_ns - self._lag_ns - self.allowance_ns)
        return out

    def _release(self, target_ns: int) -> list[PackedRecord]:
        """Buffered trades at or before ``target_ns`` to the packer, then its clock there."""
        out: list[PackedRecord] = []
        while self._buffer and self._buffer[0][0] <= target_ns:
            out += self.packer.add(heapq.heappop(self._buffer)[2])
        out += self.packer.advance(target_ns)
        return self._counted(out)

    def _late_records(self) -> list[PackedRecord]:
        """The late trades of each symbol, in time order, in records of at most
        ``packer.max_trades``."""
        out: list[PackedRecord] = []
        size = min(self.packer.max_trades, MAX_TRADES_PER_RECORD)
        for symbol, trades in self._late.items():
            trades.sort(key=lambda t: t.time_ns)
            for start in range(0, len(trades), size):
                chunk = trades[start:start + size]
                out.append(PackedRecord(
                    symbol, encode_trades(symbol, chunk, self.packer.source), "trades",
                    len(chunk), sum(t.size for t in chunk), chunk[-1].time_ns))
        self._late.clear()
        return self._counted(out)

    def _finish(self) -> list[PackedRecord]:
        """The end: every buffered and late trade out, open packs cut, final watermarks."""
        out: list[PackedRecord] = []
        while self._buffer:
            out += self.packer.add(heapq.heappop(self._buffer)[2])
        clock = self.packer.clock_ns
        out += self.packer.finish(lambda _symbol, _last: clock)
        return self._counted(out) + self._late_records()

    def _counted(self, records: list[PackedRecord]) -> list[PackedRecord]:
        for record in records:
            if record.kind == "trades":
                self.stats.trade_records += 1
                self.stats.trades_sent += record.trades
            else:
                self.stats.heartbeats += 1
        return records


# --- the command's core -----------------------------------------------------------------------

@dataclass(frozen=True)
class LiveStreamOutcome:
    """What :func:`run_live_stream` ended with.

    Attributes:
        code: Exit code: 0 stopped (or the stream ended), 1 Kinesis write failure or a
            provider failure that retrying did not fix, 2 bad input or refused credentials.
        message: One line for stderr (``error: ...`` when ``code`` is not 0).
        result: The collector loop's outcome (None when it did not start).
        stats: The packing counters (None when the loop did not start).
    """

    code: int
    message: str
    result: CollectResult | None = None
    stats: LiveStreamStats | None = None


def _health_hook(path: str | None, stream: ReconnectingStream, sink: KinesisSink,
                 stream_name: str) -> Callable[[int], None] | None:
    """The ``on_tick`` that beats the health file (None without one): a beat at once, then
    one per ``HEALTH_INTERVAL_NS`` with the records acknowledged since the previous beat;
    ``ok`` is false once the stream has not been live for ``HEALTH_MAX_DISCONNECTED_NS``, so
    a stream that cannot reconnect makes the task unhealthy (ECS replaces it).

    Raises:
        OSError: the file cannot be written.
    """
    from stocksage.collector.health import HealthFile

    if not path:
        return None
    health = HealthFile(path)
    health.beat(0, True, stream=stream_name, starting=True)
    state = {"beat": time.time_ns(), "live": time.time_ns(), "sent": 0}

    def beat(now_ns: int) -> None:
        if stream.receiving_live:
            state["live"] = now_ns
        if now_ns - state["beat"] < HEALTH_INTERVAL_NS:
            return
        sent = sink.stats.sent
        health.beat(sent - state["sent"], now_ns - state["live"] < HEALTH_MAX_DISCONNECTED_NS,
                    stream=stream_name, connected=stream.receiving_live)
        state["beat"], state["sent"] = now_ns, sent

    return beat


def run_live_stream(
    symbols: Sequence[str],
    *,
    stream_name: str,
    kinesis_client: Any,
    stop: threading.Event,
    env: Mapping[str, str],
    secret_id: str | None = None,
    feed: str = "iex",
    stream_url: str | None = None,
    rest_url: str | None = None,
    window_ms: float = DEFAULT_WINDOW_NS / 1e6,
    allowance_ms: float = DEFAULT_ALLOWANCE_NS / 1e6,
    per_key: int = 1,
    stop_deadline_seconds: float = 20.0,
    spill_path: str | None = None,
    health_file: str | None = None,
    on_sent: ProgressCallback | None = None,
    backoff: Backoff | None = None,
    bars: bool = False,
) -> LiveStreamOutcome:
    """``live-stream``: Alpaca stream trades (packed) and bars into Kinesis until ``stop``.

    Credentials as the ``live`` command gets them (``load_credentials``: the environment's
    ``ALPACA_API_KEY_ID``/``ALPACA_API_SECRET_KEY``, else the Secrets Manager secret
    ``secret_id``). Signals: in the main thread SIGTERM/SIGINT set ``stop`` and arm the
    sink's flush deadline (``stop_deadline_seconds``); records still buffered then go to
    ``spill_path`` (``collect``).

    Args:
        symbols: Tickers (their trades; with ``bars`` their minute bars too).
        stream_name: Kinesis stream to write to.
        kinesis_client: A boto3 Kinesis client (``make_kinesis_client``).
        stop: The stop event (SIGTERM sets it; tests set it).
        env: Where the key pair is looked up (``os.environ``).
        secret_id: Secrets Manager secret with ``key_id``/``secret_key`` (JSON).
        feed: ``iex``, ``sip`` or ``test``.
        stream_url: Websocket root (``ws://``/``wss://``; the feed is appended); default
            Alpaca's.
        rest_url: REST root of the trades backfill (``http://``/``https://``); default
            Alpaca's.
        window_ms: Longest event-time span of one trades record, in ms (>= 0).
        allowance_ms: How far the packer's clock stays behind the feed, in ms (>= 0).
        per_key: Records per symbol per PutRecords request (1 keeps order under failures).
        stop_deadline_seconds: Seconds after SIGTERM by which sending stops.
        spill_path: The spill file (None: none).
        health_file: Heartbeat file for the container health check (None: none).
        on_sent: The sink's progress hook (``{symbol: records acknowledged}``).
        backoff: Reconnection delays (default ``Backoff()``).
        bars: Also forward the provider's minute bars (off by default: the processor builds
            the symbol's bars from its trades, and the two are not reconciled).

    Returns:
        The exit code and its message (never raises for the errors it maps to a code).
    """
    from botocore.exceptions import BotoCoreError, ClientError

    from stocksage.collector.live import (
        DEFAULT_BASE_URL,
        ProviderAuthError,
        ProviderError,
        load_credentials,
    )
    from stocksage.collector.process_control import arm_deadline, install_stop_handlers
    from stocksage.collector.providers import AlpacaStream, FatalStreamError
    from stocksage.collector.providers.alpaca_stream import DEFAULT_STREAM_URL
    from stocksage.collector.run import collect
    from stocksage.collector.sink.kinesis_sink import KinesisPutError

    try:
        credentials = load_credentials(env, secret_id)
    except (ProviderAuthError, ClientError, BotoCoreError, ValueError) as exc:
        return LiveStreamOutcome(2, f"error: {exc}")
    ws_url = stream_url or DEFAULT_STREAM_URL
    http_url = rest_url or DEFAULT_BASE_URL
    try:
        if not ws_url.startswith(("ws://", "wss://")):
            raise ValueError(f"--stream-url must start with ws:// or wss://, got {ws_url!r}")
        if not http_url.startswith(("http://", "https://")):
            raise ValueError(f"--rest-url must start with http:// or https://, got {http_url!r}")
        if not window_ms >= 0:
            raise ValueError(f"--window-ms must be >= 0, got {window_ms}")
        if not allowance_ms >= 0:
            raise ValueError(f"--allowance-ms must be >= 0, got {allowance_ms}")
        stream = AlpacaStream(symbols, credentials, feed=feed, stream_url=ws_url,
                              rest_url=http_url, backoff=backoff, bars=bars)
        packer = TradePacker(window_ns=round(window_ms * 1_000_000), source=stream.source)
        sink = KinesisSink(kinesis_client, stream_name, max_records_per_key=per_key,
                           on_sent=on_sent)
    except ValueError as exc:
        return LiveStreamOutcome(2, f"error: {exc}")

    on_tick = _health_hook(health_file, stream, sink, stream_name)

    records = LiveStreamRecords(stream, stop, packer=packer,
                                allowance_ns=round(allowance_ms * 1_000_000), on_tick=on_tick)
    log.info("live stream starting", extra={
        "symbols": list(stream.symbols), "feed": feed, "url": stream.url,
        "stream": stream_name, "window_ms": window_ms, "allowance_ms": allowance_ms})
    events = iter(records)
    restore = install_stop_handlers(stop, arm_deadline(sink, stop_deadline_seconds))
    try:
        result = collect(events, sink, None, spill_path=spill_path)
    except ProviderAuthError as exc:  # StreamAuthError included: 401/402
        return LiveStreamOutcome(2, f"error: {exc}", stats=records.stats)
    except FatalStreamError as exc:
        # 405 symbol limit, 409 plan without the feed: the input; 406 (connection limit): 1
        code = 2 if exc.code in (405, 409) else 1
        return LiveStreamOutcome(code, f"error: {exc}", stats=records.stats)
    except KinesisPutError as exc:
        return LiveStreamOutcome(1, f"error: {exc}", stats=records.stats)
    except (ClientError, BotoCoreError) as exc:
        return LiveStreamOutcome(
            1, f"error: writing to stream {stream_name!r} failed: {exc}", stats=records.stats)
    except ProviderError as exc:
        return LiveStreamOutcome(1, f"error: {exc}", stats=records.stats)
    finally:
        events.close()  # the stream and the reader end even when collect raised
        restore()
    result.stopped = stop.is_set()
    s, st = records.stats, stream.stats
    message = (
        f"{'stopped' if result.stopped else 'done'}: {result.sink['sent']} records sent to "
        f"{stream_name} ({s.trades_sent} trades in {s.trade_records} trades records, "
        f"{s.late} late; {s.heartbeats} watermarks; {s.bars} bars; {st.connections} "
        f"connections, {st.backfilled} trades backfilled, {st.duplicates} duplicates dropped) "
        f"in {result.sink['batches']} requests ({result.sink['retried']} retried, "
        f"{result.sink['failed']} failed entries"
        f"{f', {result.spilled} spilled' if result.spilled else ''}) in {result.seconds:.1f}s")
    return LiveStreamOutcome(0, message, result, records.stats)
