"""Live source: Alpaca Market Data Stream v2 (stocks) over a websocket, trades and minute bars.

Protocol (https://docs.alpaca.markets/docs/streaming-market-data,
https://docs.alpaca.markets/docs/real-time-stock-pricing-data). Every server message is a JSON
array of objects with a type ``T``::

    connect  wss://stream.data.alpaca.markets/v2/{feed}     (feed: iex | sip; v2/test: FAKEPACA)
    server   [{"T":"success","msg":"connected"}]
    client   {"action":"auth","key":"<key id>","secret":"<secret>"}     (within 10 s)
    server   [{"T":"success","msg":"authenticated"}]  or  [{"T":"error","code":402,...}]
    client   {"action":"subscribe","trades":["AAPL"],"bars":["AAPL"]}
    server   [{"T":"subscription","trades":["AAPL"],"quotes":[],"bars":["AAPL"],...}]
    server   [{"T":"t","S":"AAPL","i":96921,"x":"D","p":126.55,"s":1,
               "t":"2021-02-22T15:51:44.208Z","c":["@","I"],"z":"C"}, ...]
    server   [{"T":"b","S":"SPY","o":388.985,"h":389.13,"l":388.975,"c":389.12,"v":49378,
               "t":"2021-02-22T19:15:00Z","n":461,"vw":389.06}]

Events (``stocksage.collector.providers.base``):

* trade ``T=t`` -> :class:`~stocksage.bars.trades.Trade`: ``time_ns`` parsed exactly from the
  RFC-3339 text (up to nanoseconds, never through a float), ``trade_id`` = ``"<x>:<i>"``
  (exchange code and id: Alpaca's trade ids are the exchanges' own, so the exchange makes
  the id unique within a symbol), ``conditions`` = ``c``;
* bar ``T=b`` -> :class:`~stocksage.bars.Bar`: the minute starting at ``t``, interval
  ``"1m"``, source ``"alpaca:<feed>"``;
* everything else with a type (quotes, trade corrections ``c`` and cancels ``x``, statuses,
  LULD) is counted in ``stats.ignored``; a message that is not JSON, or an item that is not a
  valid trade/bar, is logged and counted in ``stats.invalid``: the stream never stops for it.

Errors ``[{"T":"error","code":N,"msg":...}]`` (:data:`ERROR_MESSAGES`): 401 and 402 raise
:class:`~stocksage.collector.providers.base.StreamAuthError`; 405 (symbol limit), 406
(connection limit: another collector holds the account's one connection) and 409
(insufficient subscription, e.g. ``sip`` on the free plan) raise ``FatalStreamError``: the
stream ends at once, without a reconnect loop. One exception: a 406 in answer to a
*re*connection is retried (``limit_retries`` times in a row, with the backoff), because Alpaca
may still count the connection that just dropped. The others (400, 403, 404 auth timeout, 407
slow client, 410, 500) are logged and counted in ``stats.errors``; when the server then
closes the connection, the stream reconnects.

Resilience (``ReconnectingStream``): websocket ping every ``ping_interval`` seconds, the
connection counts as lost without a pong within ``ping_timeout`` (``websockets``' keepalive);
a lost connection is reopened after a jittered exponential backoff, authenticated and
resubscribed; then the trades missed meanwhile are fetched by REST::

    GET {rest_url}/v2/stocks/trades?symbols=AAPL,MSFT&start=<last trade seen, RFC 3339 ns>
        &end=<now>&limit=10000&feed=iex&sort=asc[&page_token=...]
    APCA-API-KEY-ID / APCA-API-SECRET-KEY headers
    -> {"trades": {"AAPL": [{"t": ..., "x": ..., "p": ..., "s": ..., "c": [...], "i": ...,
                             "z": ...}]}, "next_page_token": null}

Backfilled trades are yielded in event-time order before the new connection's live ones; a
trade whose id was already delivered (the one at the last time seen, and the overlap with the
live stream) is dropped (``TradeDedup``: ids of the last 5 minutes of event time). Missed
*bars* are not backfilled (the REST bars source, ``stocksage.collector.live``, can).
429/5xx REST answers are retried with backoff like the REST bars source; a backfill that
still fails is logged (``stats`` counts it) and the live stream goes on.

The collector's wiring is ``stocksage.collector.live_stream.run_live_stream``; in short::

    from stocksage.bars import Bar
    from stocksage.collector.live import load_credentials
    from stocksage.collector.providers import AlpacaStream
    from stocksage.collector.trade_packing import TradePacker

    stream = AlpacaStream(symbols, load_credentials(os.environ, secret_id), feed=feed,
                          bars=True)
    stop = threading.Event()
    restore = install_stop_handlers(stop, arm_deadline(sink, stop_deadline_seconds))

    def records():                      # what collect() puts: bars and packed trades
        packer = TradePacker()
        for event in stream.iter_events(stop):   # ends soon after `stop` is set
            if isinstance(event, Bar):
                yield event
            else:
                yield from packer.add(event)

    result = collect(records(), sink, stop, spill_path=spill_file or None)
    # StreamAuthError is a ProviderAuthError and FatalStreamError a ProviderError: the live
    # command's existing except clauses give them their exit codes.

``websockets`` must then be in the collector image (requirements/collector.txt).
"""

from __future__ import annotations

import asyncio
import http.client
import json
import logging
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import AsyncGenerator, Callable, Iterable, Mapping
from typing import Any

from websockets.asyncio.client import ClientConnection, connect
from websockets.exceptions import ConnectionClosed, InvalidURI, WebSocketException

from stocksage.bars import Bar, MalformedBarError
from stocksage.bars.trades import Trade
from stocksage.collector.live import (
    DEFAULT_BASE_URL,
    PAGE_LIMIT,
    Credentials,
    ProviderAuthError,
    ProviderError,
)
from stocksage.collector.providers.base import (
    Backoff,
    ConnectionLostError,
    FatalStreamError,
    ReconnectingStream,
    Sleep,
    StreamAuthError,
    StreamEvent,
    TradeDedup,
    format_rfc3339_ns,
    ns_to_datetime,
    parse_rfc3339_ns,
)

__all__ = [
    "AUTH_CODES",
    "DEFAULT_STREAM_URL",
    "ERROR_MESSAGES",
    "FATAL_CODES",
    "FEEDS",
    "TRADES_PATH",
    "AlpacaStream",
    "parse_bar_item",
    "parse_trade_item",
]

log = logging.getLogger(__name__)

DEFAULT_STREAM_URL = "wss://stream.data.alpaca.markets/v2"
"""Stream root; the feed is appended (``/iex``, ``/sip``, ``/test``)."""

TRADES_PATH = "/v2/stocks/trades"
FEEDS = ("iex", "sip", "test")
"""``test``: Alpaca's always-on test stream (symbol ``FAKEPACA``); its backfill asks ``iex``."""

ERROR_MESSAGES: dict[int, str] = {
    400: "invalid syntax",
    401: "not authenticated",
    402: "auth failed",
    403: "already authenticated",
    404: "auth timeout",
    405: "symbol limit exceeded",
    406: "connection limit exceeded",
    407: "slow client",
    409: "insufficient subscription",
    410: "invalid subscribe action",
    500: "internal error",
}
"""Alpaca stream error codes and their documented messages."""

AUTH_CODES = frozenset({401, 402})
FATAL_CODES = frozenset({401, 402, 405, 406, 409})
"""Errors that end the stream: retrying with the same key, plan and symbols cannot help."""


def _trade_id(item: Mapping[str, Any]) -> str | None:
    raw = item.get("i")
    if raw is None:
        return None
    if isinstance(raw, bool) or not isinstance(raw, (int, str)):
        raise TypeError(f"trade id must be an integer or text, got {type(raw).__name__}")
    exchange = item.get("x")
    return f"{exchange}:{raw}" if isinstance(exchange, str) and exchange else str(raw)


def parse_trade_item(symbol: str, item: Mapping[str, Any]) -> Trade:
    """A :class:`Trade` from an Alpaca trade object (stream ``T=t`` or a REST trade).

    Args:
        symbol: The ticker (stream: the item's ``S``; REST: the key it is listed under).
        item: ``{"t": RFC-3339, "p": price, "s": size, "i": id, "x": exchange, "c": [codes]}``.

    Raises:
        KeyError, TypeError, ValueError, MalformedBarError: a missing or invalid field.
    """
    codes = item.get("c")
    if codes is not None and not isinstance(codes, list):
        raise TypeError("conditions must be a list")
    return Trade(symbol, parse_rfc3339_ns(item["t"]), item["p"], item["s"],
                 trade_id=_trade_id(item), conditions=tuple(codes or ()))


def parse_bar_item(item: Mapping[str, Any], source: str) -> Bar:
    """A minute :class:`Bar` from an Alpaca bar object (``T=b``; ``t`` = start of the minute).

    Raises:
        KeyError, TypeError, ValueError, MalformedBarError: a missing or invalid field.
    """
    return Bar(item["S"], ns_to_datetime(parse_rfc3339_ns(item["t"])), item["o"], item["h"],
               item["l"], item["c"], item["v"], interval="1m", source=source)


class AlpacaStream(ReconnectingStream):
    """Alpaca Market Data Stream v2: trades and minute bars of ``symbols``, reconnecting.

    Iterate it (``async for event in stream``) or call :meth:`iter_events` (blocking
    generator); :meth:`stop` ends either (thread-safe).

    Args:
        symbols: Tickers to subscribe to.
        credentials: Alpaca key pair (``stocksage.collector.live.load_credentials``).
        feed: One of :data:`FEEDS` (``iex`` free; ``sip`` paid).
        stream_url: Websocket root, the feed is appended (tests: the fake's ``ws://`` URL).
        rest_url: REST root of the trades backfill (tests: the fake's ``http://`` URL).
        ping_interval, ping_timeout: Keepalive seconds (``websockets.connect``).
        open_timeout: Seconds for the TCP/TLS/websocket opening handshake.
        reply_timeout: Seconds to wait for each protocol reply (greeting, auth, subscription).
        http_timeout: Seconds per REST request.
        http_attempts: Attempts per REST request on 429/5xx/network errors.
        http_sleep: Blocks between REST attempts; returns True to give up (default: waits on
            the stop flag, so :meth:`stop` cuts it short).
        limit_retries: Consecutive 406 (connection limit) answers to *re*connections that are
            retried with backoff before 406 is fatal: just after a network drop Alpaca may
            still count the dead connection. A 406 before any connection worked is fatal.
        backoff, sleep, clock, dedup, max_reconnects, queue_size: see ``ReconnectingStream``.
        bars: Also subscribe to the minute bars (``live-stream --bars``). Off when the
            processor builds the symbol's bars from its trades: bar records and bars built
            from trades are not reconciled (the first bar of a minute wins).

    Raises:
        ValueError: unknown feed or no symbol.
    """

    def __init__(self, symbols: Iterable[str], credentials: Credentials, *, feed: str = "iex",
                 stream_url: str = DEFAULT_STREAM_URL, rest_url: str = DEFAULT_BASE_URL,
                 ping_interval: float = 20.0, ping_timeout: float = 20.0,
                 open_timeout: float = 10.0, reply_timeout: float = 10.0,
                 http_timeout: float = 10.0, http_attempts: int = 5,
                 http_sleep: Callable[[float], bool | None] | None = None,
                 limit_retries: int = 5,
                 backoff: Backoff | None = None, sleep: Sleep = asyncio.sleep,
                 clock: Callable[[], int] | None = None, dedup: TradeDedup | None = None,
                 max_reconnects: int | None = None, queue_size: int = 100_000,
                 bars: bool = False) -> None:
        if feed not in FEEDS:
            raise ValueError(f"feed must be one of {', '.join(FEEDS)}, got {feed!r}")
        extra: dict[str, Any] = {"clock": clock} if clock is not None else {}
        super().__init__(symbols, backoff=backoff, sleep=sleep, dedup=dedup,
                         max_reconnects=max_reconnects, queue_size=queue_size, **extra)
        self._credentials = credentials
        self.feed = feed
        self.source = f"alpaca:{feed}"
        self.url = f"{stream_url.rstrip('/')}/{feed}"
        self._rest_url = rest_url.rstrip("/")
        self._rest_feed = feed if feed in ("iex", "sip") else "iex"
        self._ping_interval = ping_interval
        self._ping_timeout = ping_timeout
        self._open_timeout = open_timeout
        self._reply_timeout = reply_timeout
        self._http_timeout = http_timeout
        self._http_attempts = http_attempts
        self._http_sleep: Callable[[float], bool | None] = http_sleep or self._stopped.wait
        self._ws: ClientConnection | None = None
        self._pending: list[StreamEvent] = []
        self.limit_retries = limit_retries
        self._limit_refusals = 0
        self.channels: tuple[str, ...] = ("trades", "bars") if bars else ("trades",)
        """The channels subscribed to (``trades``, and ``bars`` with ``bars=True``)."""
        self.subscription: dict[str, Any] = {}
        """The last subscription reply (``{"trades": [...], "bars": [...], ...}``)."""

    # --- websocket --------------------------------------------------------------------------

    async def connect(self) -> None:
        """Open the websocket and read the ``connected`` greeting.

        Raises:
            FatalStreamError: a malformed URL, or error 406 instead of the greeting.
            ConnectionLostError, OSError, TimeoutError: the connection could not be made.
        """
        self._pending = []
        try:
            self._ws = await connect(self.url, ping_interval=self._ping_interval,
                                     ping_timeout=self._ping_timeout,
                                     open_timeout=self._open_timeout, close_timeout=5,
                                     max_size=2**24)
        except InvalidURI as err:
            raise FatalStreamError(f"alpaca stream: bad URL {self.url!r}: {err}") from None
        except WebSocketException as err:  # refused handshake (HTTP status), bad upgrade
            raise ConnectionLostError(f"alpaca stream handshake failed: {err}") from None
        await self._await_reply("connected")

    async def auth(self) -> None:
        """Send the key pair; returns on ``authenticated`` (or 403, already authenticated).

        Raises:
            StreamAuthError: 401/402 (wrong key, or a feed the plan does not include).
        """
        await self._send({"action": "auth", "key": self._credentials.key_id,
                          "secret": self._credentials.secret_key})
        await self._await_reply("authenticated")

    async def subscribe(self, symbols: Iterable[str]) -> None:
        """Subscribe to the trades (and, with ``bars=True``, the minute bars) of ``symbols``;
        returns on the subscription reply
        (kept in :attr:`subscription`; symbols missing from it are logged).

        Raises:
            FatalStreamError: 405 (symbol limit), 409 (insufficient subscription).
        """
        wanted = list(symbols)
        await self._send({"action": "subscribe", **dict.fromkeys(self.channels, wanted)})
        reply = await self._await_reply("subscription")
        self.subscription = reply
        self._limit_refusals = 0
        for channel in self.channels:
            granted = reply.get(channel)
            missing = sorted(set(wanted) - set(granted if isinstance(granted, list) else []))
            if missing:
                log.warning("alpaca did not subscribe every symbol",
                            extra={"channel": channel, "missing": missing})

    async def messages(self) -> AsyncGenerator[StreamEvent, None]:
        """Events of the open connection: first those that came with the handshake replies.

        Raises:
            ConnectionLostError: the connection ended (not by :meth:`stop`).
            FatalStreamError: a fatal error message (:data:`FATAL_CODES`).
        """
        ws = self._ws
        if ws is None:
            raise ConnectionLostError("not connected")
        pending, self._pending = self._pending, []
        for event in pending:
            yield event
        while True:
            try:
                raw = await ws.recv()
            except ConnectionClosed as err:
                if self.stopped:
                    return
                raise ConnectionLostError(f"alpaca stream closed: {err}") from None
            for item in self._items(raw):
                found = self._event(item)
                if found is not None:
                    yield found

    async def close(self) -> None:
        """Close the websocket if open (idempotent; safe from :meth:`stop`)."""
        ws, self._ws = self._ws, None
        if ws is not None:
            await ws.close()

    async def _send(self, message: Mapping[str, Any]) -> None:
        if self._ws is None:
            raise ConnectionLostError("not connected")
        try:
            await self._ws.send(json.dumps(message, separators=(",", ":")))
        except ConnectionClosed as err:
            raise ConnectionLostError(f"alpaca stream closed: {err}") from None

    async def _await_reply(self, expected: str) -> dict[str, Any]:
        """Read until the control item ``expected`` (``connected``, ``authenticated``,
        ``subscription``); data items on the way are kept for :meth:`messages`.

        Raises:
            TimeoutError: no such reply within ``reply_timeout``.
            ConnectionLostError: the connection ended, or a non-fatal error came instead.
            FatalStreamError: a fatal error came instead.
        """
        ws = self._ws
        if ws is None:
            raise ConnectionLostError("not connected")
        async with asyncio.timeout(self._reply_timeout):
            while True:
                try:
                    raw = await ws.recv()
                except ConnectionClosed as err:
                    raise ConnectionLostError(
                        f"alpaca stream closed while waiting for {expected!r}: {err}") from None
                for item in self._items(raw):
                    kind = item.get("T")
                    if expected == "subscription" and kind == "subscription":
                        return item
                    if kind == "success" and item.get("msg") == expected:
                        return item
                    if kind == "error":
                        code = self._error(item, handshake=True)
                        if code == 403 and expected == "authenticated":
                            return item
                        raise ConnectionLostError(
                            f"alpaca error {code} while waiting for {expected!r}")
                    event = self._event(item)
                    if event is not None:
                        self._pending.append(event)

    # --- messages ---------------------------------------------------------------------------

    def _items(self, raw: str | bytes) -> list[dict[str, Any]]:
        """The objects of one message; a message that is not JSON is counted and skipped."""
        self.stats.messages += 1
        try:
            body = json.loads(raw)
        except (ValueError, UnicodeDecodeError) as err:
            self.stats.invalid += 1
            log.warning("alpaca message is not JSON; skipped",
                        extra={"error": str(err), "raw": str(raw)[:200]})
            return []
        items = body if isinstance(body, list) else [body]
        good = [item for item in items if isinstance(item, dict)]
        if len(good) != len(items):
            self.stats.invalid += len(items) - len(good)
            log.warning("alpaca message items that are not objects skipped",
                        extra={"count": len(items) - len(good)})
        return good

    def _event(self, item: Mapping[str, Any]) -> StreamEvent | None:
        """The event of one data item, None for control/ignored/invalid items.

        Raises:
            FatalStreamError: a fatal error item.
        """
        kind = item.get("T")
        try:
            if kind == "t":
                return parse_trade_item(item["S"], item)
            if kind == "b":
                if "bars" in self.channels:
                    return parse_bar_item(item, self.source)
                self.stats.ignored += 1  # not subscribed (a fake, a provider change)
                return None
        except (KeyError, TypeError, ValueError, MalformedBarError) as err:
            self.stats.invalid += 1
            log.warning("alpaca item skipped", extra={
                "type": kind, "reason": f"{type(err).__name__}: {err}",
                "item": json.dumps(item, default=str)[:200]})
            return None
        if kind == "error":
            self._error(item)
        elif kind in ("success", "subscription"):
            log.info("alpaca control message", extra={"item": dict(item)})
        elif isinstance(kind, str):
            self.stats.ignored += 1
        else:
            self.stats.invalid += 1
            log.warning("alpaca item without a type skipped",
                        extra={"item": json.dumps(item, default=str)[:200]})
        return None

    def _error(self, item: Mapping[str, Any], *, handshake: bool = False) -> int | None:
        """Count and log an error item; its code.

        Raises:
            ConnectionLostError: 406 answering a reconnection's handshake (``limit_retries``).
            StreamAuthError: 401/402.
            FatalStreamError: the other :data:`FATAL_CODES`.
        """
        code = item.get("code")
        code = code if isinstance(code, int) and not isinstance(code, bool) else None
        text = str(item.get("msg") or ERROR_MESSAGES.get(code or 0, "unknown error"))
        self.stats.errors[code or 0] += 1
        message = f"alpaca stream error {code}: {text}"
        if code in AUTH_CODES:
            raise StreamAuthError(f"{message} (check ALPACA_API_KEY_ID/ALPACA_API_SECRET_KEY "
                                  f"and that the plan includes the {self.feed!r} feed)", code)
        if code == 406 and handshake and self.stats.connections and \
                self._limit_refusals < self.limit_retries:
            # After a dropped connection Alpaca may still count the old one for a while.
            self._limit_refusals += 1
            log.warning(f"{message}: the dropped connection may still count; retrying",
                        extra={"code": code, "refusals": self._limit_refusals})
            raise ConnectionLostError(message)
        if code in FATAL_CODES:
            hint = {405: "subscribe fewer symbols",
                    406: "another connection uses this key (one per account)",
                    409: "the plan does not include this feed or data"}.get(code or 0, "")
            raise FatalStreamError(f"{message} ({hint})", code)
        log.error(message, extra={"code": code})
        return code

    # --- REST backfill ----------------------------------------------------------------------

    def _get_json(self, path: str, params: Mapping[str, str]) -> dict[str, Any]:
        """GET ``rest_url + path`` as JSON, retrying 429/5xx/network errors with backoff
        (the policy of ``AlpacaBarsSource``; runs in a worker thread).

        Raises:
            ProviderAuthError: 401/403.
            ProviderError: another 4xx, invalid JSON, or still failing after the attempts.
        """
        url = f"{self._rest_url}{path}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={
            "APCA-API-KEY-ID": self._credentials.key_id,
            "APCA-API-SECRET-KEY": self._credentials.secret_key,
            "Accept": "application/json"})
        last_error = ""
        for attempt in range(self._http_attempts):
            retry_after: str | None = None
            try:
                with urllib.request.urlopen(request, timeout=self._http_timeout) as response:
                    body = json.loads(response.read().decode("utf-8"))
                if not isinstance(body, dict):
                    raise ProviderError("market-data API answered JSON that is not an object")
                return body
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):
                    raise ProviderAuthError(
                        f"market-data API refused the key (HTTP {err.code})") from None
                if err.code != 429 and err.code < 500:
                    text = err.read()[:200].decode("utf-8", "replace")
                    raise ProviderError(f"market-data API: HTTP {err.code}: {text}") from None
                last_error = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
            except (urllib.error.URLError, http.client.HTTPException, TimeoutError,
                    ConnectionError) as err:
                last_error = f"{type(err).__name__}: {err}"
            except (ValueError, UnicodeDecodeError) as err:
                raise ProviderError(f"market-data API answered invalid JSON: {err}") from None
            delay = float(retry_after) if retry_after and retry_after.isdigit() else \
                min(30.0, 0.5 * 2**attempt)
            log.warning("market-data request failed; retrying",
                        extra={"error": last_error, "attempt": attempt + 1, "delay": delay})
            if attempt + 1 < self._http_attempts and self._http_sleep(delay):
                break
        raise ProviderError(f"market-data API failed after {self._http_attempts} attempts: "
                            f"{last_error}")

    async def _fetch_trades(self, since_ns: Mapping[str, int],
                            until_ns: int) -> list[Trade]:
        params = {"symbols": ",".join(since_ns), "start": format_rfc3339_ns(min(since_ns.values())),
                  "end": format_rfc3339_ns(until_ns), "limit": str(PAGE_LIMIT),
                  "feed": self._rest_feed, "sort": "asc"}
        trades: list[Trade] = []
        token: str | None = None
        while not self.stopped:
            page = await asyncio.to_thread(
                self._get_json, TRADES_PATH, {**params, "page_token": token} if token else params)
            by_symbol = page.get("trades") or {}
            if not isinstance(by_symbol, dict):
                raise ProviderError("market-data API: 'trades' is not an object")
            for symbol, rows in by_symbol.items():
                for row in rows if isinstance(rows, list) else []:
                    try:
                        trades.append(parse_trade_item(str(symbol).upper(), row))
                    except (KeyError, TypeError, ValueError, MalformedBarError) as err:
                        self.stats.invalid += 1
                        log.warning("backfilled trade skipped", extra={
                            "symbol": symbol, "reason": f"{type(err).__name__}: {err}"})
            token = page.get("next_page_token") or None
            if not token:
                break
        return trades

    async def backfill(self, since_ns: Mapping[str, int],
                       until_ns: int) -> AsyncGenerator[Trade, None]:
        """Trades from each symbol's ``since_ns`` to ``until_ns`` by REST, in event-time
        order (all pages first: REST pages are sorted by symbol, the collector wants time).

        A REST failure is logged (``stats.backfill_failures``) and ends the backfill: the gap stays,
        the live stream goes on.
        """
        if not since_ns:
            return
        try:
            trades = await self._fetch_trades(since_ns, until_ns)
        except ProviderError as err:
            self.stats.backfill_failures += 1
            log.error("trade backfill failed; trades missed while disconnected are lost",
                      extra={"error": str(err), "until": format_rfc3339_ns(until_ns)})
            return
        trades.sort(key=lambda t: (t.time_ns, t.symbol))
        for trade in trades:
            yield trade
