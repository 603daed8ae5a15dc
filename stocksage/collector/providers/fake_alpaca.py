"""A local fake of Alpaca's Market Data Stream v2 and of its REST trades endpoint.

For the tests of :class:`~stocksage.collector.providers.alpaca_stream.AlpacaStream` and for a
credential-free live demo. Nothing here talks to the internet: the websocket server listens
on 127.0.0.1 (``websockets.asyncio.server.serve``), the REST server too (``http.server`` in a
thread).

Websocket (any path; ``connections[n].path`` records it), per connection::

    -> [{"T":"success","msg":"connected"}]
    <- {"action":"auth","key":K,"secret":S}        wrong pair: 402 and close; none in
    -> [{"T":"success","msg":"authenticated"}]      ``auth_timeout`` s: 404 and close
    <- {"action":"subscribe","trades":[..],"bars":[..]}
    -> [{"T":"subscription","trades":[..],"quotes":[],"bars":[..]}]
    -> the script, one websocket message per entry (a dict is sent as ``[dict]``, a list as
       a JSON array, a str verbatim: invalid JSON on purpose), then idle until closed.

The script is shared by the connections: a cursor moves through it. With ``drop_after=N`` the
first connection is dropped after N entries (TCP closed without a websocket close frame, as a
network failure looks), and the next ``missed`` entries are never sent (they happened while
the client was away); the next connection goes on after them (``limited_after_drop``: the
first few get 406 instead, Alpaca still counting the dropped one). ``refuse=M`` closes the first
M connections at once (before the greeting), to exercise the backoff.

REST ``GET /v2/stocks/trades?symbols=&start=&end=&limit=&page_token=`` serves every trade of
the script (sent, missed or still to come), filtered by symbol and ``start <= t <= end``
(RFC-3339, compared as exact nanoseconds), sorted by symbol then time, ``page_size`` per page
(``next_page_token`` = the offset). A wrong key header answers 403.

Demo (no credentials)::

    python -m stocksage.collector.providers.fake_alpaca --port 8765 --trades trades.csv
    # CSV columns: time (ISO with offset), price, size[, symbol]; prints the URLs and key.

and point ``AlpacaStream(symbols, Credentials("AKFAKE", "fake-secret"),
stream_url="ws://127.0.0.1:8765/v2", rest_url="http://127.0.0.1:8766")`` at it.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import csv
import json
import logging
import threading
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any, TypeAlias
from urllib.parse import parse_qs, urlparse

from websockets.asyncio.server import Server, ServerConnection, serve
from websockets.exceptions import ConnectionClosed

from stocksage.collector.providers.base import format_rfc3339_ns, parse_rfc3339_ns

__all__ = ["ConnectionRecord", "FakeAlpaca", "ScriptEntry", "main", "trades_from_csv"]

log = logging.getLogger(__name__)

ScriptEntry: TypeAlias = Mapping[str, Any] | Sequence[Mapping[str, Any]] | str
"""One websocket message of the script: an item, a list of items, or raw text."""

FAKE_KEY = "AKFAKE"
FAKE_SECRET = "fake-secret"


@dataclass
class ConnectionRecord:
    """What one client connection did.

    Attributes:
        path: Request path (``/v2/iex``).
        received: Client messages, parsed JSON (``{"action": ...}``) in order.
        sent: Script entries sent on this connection.
        dropped: True when the fake dropped it (``drop_after``).
    """

    path: str = ""
    received: list[Any] = field(default_factory=list)
    sent: int = 0
    dropped: bool = False


def _encode(entry: ScriptEntry) -> str:
    if isinstance(entry, str):
        return entry
    if isinstance(entry, Mapping):
        return json.dumps([dict(entry)], separators=(",", ":"))
    return json.dumps([dict(item) for item in entry], separators=(",", ":"))


def _items(entry: ScriptEntry) -> list[Mapping[str, Any]]:
    if isinstance(entry, str):
        return []
    return [entry] if isinstance(entry, Mapping) else list(entry)


class FakeAlpaca:
    """Fake Alpaca stream + REST trades server (module docstring).

    Use ``async with FakeAlpaca(...) as fake`` inside a running loop, or
    ``with fake.running_in_thread():`` from synchronous code.

    Args:
        script: The messages to replay (:data:`ScriptEntry`).
        key, secret: The key pair to accept (stream auth and REST headers).
        drop_after: Drop the first connection after this many script entries (None: never).
        missed: Script entries skipped after the drop (served by REST only).
        refuse: Connections closed at once before any greeting.
        limited_after_drop: Connections after the drop answered 406 (connection limit
            exceeded) instead of ``authenticated``, as Alpaca does while it still counts the
            dropped connection.
        page_size: Most REST trades per page.
        interval: Seconds between script entries (0: as fast as possible; demo pacing).
        auth_timeout: Seconds the fake waits for the auth message.
        host, port, rest_port: Where to listen (0: a free port; read ``port``/``rest_port``).
    """

    def __init__(self, script: Sequence[ScriptEntry] = (), *, key: str = FAKE_KEY,
                 secret: str = FAKE_SECRET, drop_after: int | None = None, missed: int = 0,
                 refuse: int = 0, limited_after_drop: int = 0, page_size: int = 10_000,
                 interval: float = 0.0, auth_timeout: float = 10.0, host: str = "127.0.0.1",
                 port: int = 0, rest_port: int = 0) -> None:
        self.script = list(script)
        self.key, self.secret = key, secret
        self.drop_after, self.missed, self.refuse = drop_after, missed, refuse
        self.limited_after_drop = limited_after_drop
        self.page_size = page_size
        self.interval = interval
        self.auth_timeout = auth_timeout
        self.host, self.port, self.rest_port = host, port, rest_port
        self.connections: list[ConnectionRecord] = []
        self.rest_requests: list[dict[str, list[str]]] = []
        self._cursor = 0
        self._dropped = False
        self._server: Server | None = None
        self._http: ThreadingHTTPServer | None = None
        self._http_thread: threading.Thread | None = None

    @property
    def stream_url(self) -> str:
        """Websocket root to give ``AlpacaStream(stream_url=...)`` (the feed is appended)."""
        return f"ws://{self.host}:{self.port}/v2"

    @property
    def rest_url(self) -> str:
        """REST root to give ``AlpacaStream(rest_url=...)``."""
        return f"http://{self.host}:{self.rest_port}"

    def trades(self) -> list[Mapping[str, Any]]:
        """Every trade item (``T == "t"``) of the script, in script order."""
        return [item for entry in self.script for item in _items(entry) if item.get("T") == "t"]

    # --- lifecycle --------------------------------------------------------------------------

    async def start(self) -> None:
        """Listen (websocket in this loop, REST in a thread)."""
        self._server = await serve(self._handle, self.host, self.port)
        self.port = int(next(iter(self._server.sockets)).getsockname()[1])
        self._http = ThreadingHTTPServer((self.host, self.rest_port), self._rest_handler())
        self.rest_port = int(self._http.server_address[1])
        self._http_thread = threading.Thread(target=self._http.serve_forever, args=(0.05,),
                                             name="fake-alpaca-rest", daemon=True)
        self._http_thread.start()

    async def stop(self) -> None:
        """Close both servers (open connections included)."""
        if self._server is not None:
            self._server.close()
            await self._server.wait_closed()
            self._server = None
        if self._http is not None:
            self._http.shutdown()
            self._http.server_close()
            self._http = None

    async def __aenter__(self) -> FakeAlpaca:
        await self.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.stop()

    @contextlib.contextmanager
    def running_in_thread(self) -> Iterator[FakeAlpaca]:
        """Run the fake on its own event loop in a daemon thread for the ``with`` block."""
        loop = asyncio.new_event_loop()
        thread = threading.Thread(target=loop.run_forever, name="fake-alpaca", daemon=True)
        thread.start()
        try:
            asyncio.run_coroutine_threadsafe(self.start(), loop).result(timeout=30)
            yield self
        finally:
            asyncio.run_coroutine_threadsafe(self.stop(), loop).result(timeout=30)
            loop.call_soon_threadsafe(loop.stop)
            thread.join(timeout=30)
            loop.close()

    # --- websocket --------------------------------------------------------------------------

    async def _handle(self, ws: ServerConnection) -> None:
        record = ConnectionRecord(path=ws.request.path if ws.request else "")
        self.connections.append(record)
        if len(self.connections) <= self.refuse:
            await ws.close(1011, "fake refuses this connection")
            return
        with contextlib.suppress(ConnectionClosed):
            await ws.send(_encode({"T": "success", "msg": "connected"}))
            if await self._authenticate(ws, record):
                subscribe = await self._receive(ws, record)
                while not isinstance(subscribe, dict) or subscribe.get("action") != "subscribe":
                    await ws.send(_encode({"T": "error", "code": 403 if isinstance(
                        subscribe, dict) and subscribe.get("action") == "auth" else 400,
                        "msg": "already authenticated" if isinstance(subscribe, dict) and
                        subscribe.get("action") == "auth" else "invalid syntax"}))
                    subscribe = await self._receive(ws, record)
                await ws.send(_encode({
                    "T": "subscription", "trades": list(subscribe.get("trades") or []),
                    "quotes": [], "bars": list(subscribe.get("bars") or []),
                    "updatedBars": [], "dailyBars": [], "statuses": [], "lulds": []}))
                if await self._replay(ws, record):
                    await ws.wait_closed()

    async def _receive(self, ws: ServerConnection, record: ConnectionRecord) -> Any:
        raw = await ws.recv()
        try:
            message = json.loads(raw)
        except ValueError:
            message = raw
        record.received.append(message)
        return message

    async def _authenticate(self, ws: ServerConnection, record: ConnectionRecord) -> bool:
        try:
            async with asyncio.timeout(self.auth_timeout):
                message = await self._receive(ws, record)
        except TimeoutError:
            await ws.send(_encode({"T": "error", "code": 404, "msg": "auth timeout"}))
            await ws.close()
            return False
        if not isinstance(message, dict) or message.get("action") != "auth":
            await ws.send(_encode({"T": "error", "code": 401, "msg": "not authenticated"}))
            await ws.close()
            return False
        if (message.get("key"), message.get("secret")) != (self.key, self.secret):
            await ws.send(_encode({"T": "error", "code": 402, "msg": "auth failed"}))
            await ws.close()
            return False
        if self._dropped and self.limited_after_drop > 0:
            self.limited_after_drop -= 1
            await ws.send(_encode({"T": "error", "code": 406,
                                   "msg": "connection limit exceeded"}))
            await ws.close()
            return False
        await ws.send(_encode({"T": "success", "msg": "authenticated"}))
        return True

    async def _replay(self, ws: ServerConnection, record: ConnectionRecord) -> bool:
        """Send the script from the cursor; False when the connection was dropped."""
        while self._cursor < len(self.script):
            entry = self.script[self._cursor]
            self._cursor += 1
            await ws.send(_encode(entry))
            record.sent += 1
            if self.interval:
                await asyncio.sleep(self.interval)
            if self.drop_after is not None and not self._dropped and \
                    record.sent >= self.drop_after:
                self._dropped = record.dropped = True
                self._cursor += self.missed
                ws.transport.close()  # sent data is flushed; no close frame: a lost network
                return False
        return True

    # --- REST -------------------------------------------------------------------------------

    def _trades_page(self, query: Mapping[str, list[str]]) -> dict[str, Any]:
        symbols = {s.upper() for s in (query.get("symbols") or [""])[0].split(",") if s}
        start = parse_rfc3339_ns(query["start"][0]) if "start" in query else None
        end = parse_rfc3339_ns(query["end"][0]) if "end" in query else None
        matching = []
        for item in self.trades():
            t = parse_rfc3339_ns(str(item["t"]))
            if item.get("S") in symbols and (start is None or t >= start) and \
                    (end is None or t <= end):
                matching.append((str(item["S"]), t, item))
        matching.sort(key=lambda row: (row[0], row[1]))
        offset = int((query.get("page_token") or ["0"])[0])
        size = min(self.page_size, int((query.get("limit") or ["10000"])[0]))
        page = matching[offset:offset + size]
        body: dict[str, Any] = {"trades": {}, "next_page_token": None}
        for symbol, _, item in page:
            body["trades"].setdefault(symbol, []).append(
                {k: v for k, v in item.items() if k not in ("T", "S")})
        if offset + size < len(matching):
            body["next_page_token"] = str(offset + size)
        return body

    def _rest_handler(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                query = parse_qs(url.query)
                fake.rest_requests.append(query)
                if (self.headers.get("APCA-API-KEY-ID"),
                        self.headers.get("APCA-API-SECRET-KEY")) != (fake.key, fake.secret):
                    status, body = 403, {"message": "forbidden"}
                elif url.path != "/v2/stocks/trades":
                    status, body = 404, {"message": "not found"}
                else:
                    try:
                        status, body = 200, fake._trades_page(query)
                    except (KeyError, ValueError) as err:
                        status, body = 400, {"message": str(err)}
                data = json.dumps(body).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, format: str, *args: Any) -> None:
                log.debug("fake alpaca rest: " + format, *args)

        return Handler


def trades_from_csv(path: str | Path, default_symbol: str = "FAKEPACA") -> list[dict[str, Any]]:
    """Alpaca trade items from a CSV with columns ``time`` (ISO with offset), ``price``,
    ``size`` and optionally ``symbol``; ids are the row numbers (from 1), exchange ``V``.

    Raises:
        KeyError, ValueError: a missing column or an unreadable value.
    """
    items = []
    with open(path, newline="", encoding="utf-8") as handle:
        for number, row in enumerate(csv.DictReader(handle), start=1):
            items.append({"T": "t", "S": (row.get("symbol") or default_symbol).upper(),
                          "i": number, "x": "V", "p": float(row["price"]),
                          "s": float(row["size"]),
                          "t": format_rfc3339_ns(parse_rfc3339_ns(row["time"].strip())),
                          "c": ["@"], "z": "C"})
    return items


def main(argv: Sequence[str] | None = None) -> None:
    """``python -m stocksage.collector.providers.fake_alpaca``: serve a CSV's trades."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=8765, help="websocket port")
    parser.add_argument("--rest-port", type=int, default=None, help="REST port (port + 1)")
    parser.add_argument("--trades", required=True, help="CSV: time,price,size[,symbol]")
    parser.add_argument("--interval", type=float, default=0.1, help="seconds between trades")
    args = parser.parse_args(argv)
    fake = FakeAlpaca(trades_from_csv(args.trades), port=args.port,
                      rest_port=args.rest_port if args.rest_port is not None else args.port + 1,
                      interval=args.interval)

    async def run() -> None:
        async with fake:
            print(f"stream {fake.stream_url}/iex  rest {fake.rest_url}  "
                  f"key {fake.key} secret {fake.secret}  trades {len(fake.script)}", flush=True)
            await asyncio.Event().wait()

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run())


if __name__ == "__main__":
    main()
