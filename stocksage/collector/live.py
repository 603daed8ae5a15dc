"""Live source: Alpaca Market Data API v2 historical bars, polled.

Why Alpaca and polling: the v2 bars endpoint is documented, free with the ``iex`` feed, takes
many symbols in one request and returns complete OHLCV bars; polling it once per bar interval
costs one request per minute for every symbol together (free plan: 200 requests/minute) and
needs no long-lived websocket or extra SDK in the image (stdlib ``urllib`` only).

Request (https://docs.alpaca.markets/reference/stockbars)::

    GET {base_url}/v2/stocks/bars?symbols=AAPL,MSFT&timeframe=1Min&start=<RFC 3339>
        &limit=10000&feed=iex&sort=asc[&page_token=...]
    APCA-API-KEY-ID: <key id>          APCA-API-SECRET-KEY: <secret key>

Response::

    {"bars": {"AAPL": [{"t": "2024-01-03T14:30:00Z", "o": 184.22, "h": 184.5, "l": 184.1,
                        "c": 184.3, "v": 3810, "n": 57, "vw": 184.28}, ...], ...},
     "next_page_token": null}

Behaviour:

* Each poll asks for bars since the oldest per-symbol cursor (first poll: ``lookback`` before
  now) and follows ``next_page_token``; only bars strictly newer than a symbol's cursor and
  already *closed* (``t + timeframe <= now``) are emitted, merged in time order.
* The per-symbol cursor can be given at start (``cursor=``, from a
  :mod:`stocksage.collector.cursor` store the collector saves after every fully sent poll):
  after a restart (a Fargate Spot interruption, a deployment, any gap) the first poll
  re-requests from it, so no bar is lost; symbols without a cursor start ``lookback`` before
  now. Bars already on the stream are duplicates the processor drops.
* 429 and 5xx answers are retried with exponential backoff (bounded); 401/403 raise
  :class:`ProviderAuthError` at once (a wrong key does not get better by retrying). A bar the
  provider sends that is not a valid :class:`~stocksage.bars.Bar` is skipped and counted.
* The source blocks between polls with ``sleep(seconds)``; when ``sleep`` returns True (the
  collector's stop event was set by SIGTERM) iteration ends and the collector flushes.
"""

from __future__ import annotations

import json
import logging
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Callable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stocksage.bars import Bar, MalformedBarError, format_time
from stocksage.bars.times import session_date_start

log = logging.getLogger(__name__)

DEFAULT_BASE_URL = "https://data.alpaca.markets"
BARS_PATH = "/v2/stocks/bars"
PAGE_LIMIT = 10_000

#: Alpaca timeframe -> (bar length, our interval label).
TIMEFRAMES: dict[str, tuple[timedelta, str]] = {
    "1Min": (timedelta(minutes=1), "1m"),
    "5Min": (timedelta(minutes=5), "5m"),
    "15Min": (timedelta(minutes=15), "15m"),
    "30Min": (timedelta(minutes=30), "30m"),
    "1Hour": (timedelta(hours=1), "1h"),
    "1Day": (timedelta(days=1), "1d"),
}


class ProviderError(RuntimeError):
    """The market-data API kept failing (after retries) or answered something unusable."""


class ProviderAuthError(ProviderError):
    """The API refused the credentials (401/403)."""


@dataclass(frozen=True)
class Credentials:
    """Alpaca API key pair (never logged)."""

    key_id: str
    secret_key: str = field(repr=False)


def load_credentials(env: Mapping[str, str], secret_id: str | None = None,
                     get_secret: Callable[[str], Any] | None = None) -> Credentials:
    """API key from the environment (ECS ``secrets`` injection) or from Secrets Manager.

    Order: ``ALPACA_API_KEY_ID`` + ``ALPACA_API_SECRET_KEY`` (what the task definition injects
    from the secret at start); else ``secret_id`` read once through Powertools Parameters
    ``get_secret`` (JSON ``{"key_id": ..., "secret_key": ...}``).

    Raises:
        ProviderAuthError: when neither gives a complete key pair.
    """
    key_id = env.get("ALPACA_API_KEY_ID", "").strip()
    secret = env.get("ALPACA_API_SECRET_KEY", "").strip()
    if key_id and secret:
        return Credentials(key_id, secret)
    if secret_id:
        if get_secret is None:
            from aws_lambda_powertools.utilities.parameters import get_secret as _get_secret

            def get_secret(name: str) -> Any:
                return _get_secret(name, transform="json")

        value = get_secret(secret_id)
        if isinstance(value, (str, bytes)):
            value = json.loads(value)
        try:
            return Credentials(str(value["key_id"]).strip(), str(value["secret_key"]).strip())
        except (KeyError, TypeError):
            raise ProviderAuthError(
                f"secret {secret_id!r} must be JSON with key_id and secret_key") from None
    raise ProviderAuthError("no market-data API key: set ALPACA_API_KEY_ID and "
                            "ALPACA_API_SECRET_KEY, or --secret-id")


def _parse_time(text: str) -> datetime:
    return datetime.fromisoformat(text).astimezone(UTC)


class AlpacaBarsSource:
    """Polls Alpaca v2 bars for ``symbols``; a :class:`~stocksage.collector.sources.Source`.

    Args:
        symbols: Tickers (upper-cased).
        credentials: API key pair.
        timeframe: One of :data:`TIMEFRAMES` (``1Min`` default).
        feed: ``iex`` (free) or ``sip``.
        base_url: API root (tests point it at a local fake server).
        poll_seconds: Seconds between polls (default: the bar length, at most 300).
        lookback: How far back the first poll reads.
        sleep: Blocks for the given seconds; returns True to stop (``threading.Event.wait``).
        clock: Current UTC time (tests).
        max_polls: Stop after this many polls (tests, one-shot backfills); None = forever.
        max_attempts: Attempts per HTTP request on 429/5xx/network errors.
        timeout: Seconds per HTTP request.
        on_poll: Called after every poll with ``(bars_emitted, ok)`` (health file, metrics,
            saving ``cursor``).
        cursor: ``{symbol: last bar_time already sent}`` to resume from (tz-aware).
    """

    def __init__(self, symbols: Sequence[str], credentials: Credentials, *,
                 timeframe: str = "1Min", feed: str = "iex", base_url: str = DEFAULT_BASE_URL,
                 poll_seconds: float | None = None, lookback: timedelta = timedelta(minutes=15),
                 sleep: Callable[[float], bool | None] = time.sleep,
                 clock: Callable[[], datetime] = lambda: datetime.now(UTC),
                 max_polls: int | None = None, max_attempts: int = 5, timeout: float = 10.0,
                 on_poll: Callable[[int, bool], None] | None = None,
                 cursor: Mapping[str, datetime] | None = None) -> None:
        if timeframe not in TIMEFRAMES:
            raise ValueError(f"timeframe must be one of {', '.join(TIMEFRAMES)}")
        if not symbols:
            raise ValueError("at least one symbol is needed")
        self.symbols = [s.strip().upper() for s in symbols if s.strip()]
        self._credentials = credentials
        self._timeframe = timeframe
        self._length, self._interval = TIMEFRAMES[timeframe]
        self._feed = feed
        self._base_url = base_url.rstrip("/")
        self._poll_seconds = (poll_seconds if poll_seconds is not None
                              else min(self._length.total_seconds(), 300.0))
        self._lookback = lookback
        self._sleep = sleep
        self._clock = clock
        self._max_polls = max_polls
        self._max_attempts = max_attempts
        self._timeout = timeout
        self._on_poll = on_poll
        self._cursor: dict[str, datetime] = {
            s.upper(): t.astimezone(UTC) for s, t in (cursor or {}).items()
            if s.upper() in self.symbols}
        self.polls = 0
        self.requests = 0
        self.skipped = 0

    @property
    def cursor(self) -> dict[str, datetime]:
        """``{symbol: bar_time of the last bar emitted}`` (a copy)."""
        return dict(self._cursor)

    def expected_counts(self) -> None:
        """Unbounded: no progress totals."""
        return

    # --- HTTP -------------------------------------------------------------------------------

    def _get(self, params: Mapping[str, str]) -> dict[str, Any]:
        url = f"{self._base_url}{BARS_PATH}?{urllib.parse.urlencode(params)}"
        request = urllib.request.Request(url, headers={
            "APCA-API-KEY-ID": self._credentials.key_id,
            "APCA-API-SECRET-KEY": self._credentials.secret_key,
            "Accept": "application/json",
        })
        last_error = ""
        for attempt in range(self._max_attempts):
            self.requests += 1
            try:
                with urllib.request.urlopen(request, timeout=self._timeout) as response:
                    return json.loads(response.read().decode("utf-8"))
            except urllib.error.HTTPError as err:
                if err.code in (401, 403):
                    raise ProviderAuthError(f"market-data API refused the key (HTTP {err.code})"
                                            ) from None
                if err.code != 429 and err.code < 500:
                    body = err.read()[:200].decode("utf-8", "replace")
                    raise ProviderError(f"market-data API: HTTP {err.code}: {body}") from None
                last_error = f"HTTP {err.code}"
                retry_after = err.headers.get("Retry-After") if err.headers else None
            except (urllib.error.URLError, TimeoutError, ConnectionError) as err:
                last_error = f"{type(err).__name__}: {err}"
                retry_after = None
            except json.JSONDecodeError as err:
                raise ProviderError(f"market-data API answered invalid JSON: {err}") from None
            delay = float(retry_after) if retry_after and retry_after.isdigit() else \
                min(30.0, 0.5 * 2**attempt)
            log.warning("market-data request failed; retrying",
                        extra={"error": last_error, "attempt": attempt + 1, "delay": delay})
            if self._sleep(delay):
                break
        raise ProviderError(f"market-data API failed after {self._max_attempts} attempts: "
                            f"{last_error}")

    def fetch(self, start: datetime) -> dict[str, list[dict[str, Any]]]:
        """Every bar since ``start`` for all symbols (following page tokens)."""
        params = {"symbols": ",".join(self.symbols), "timeframe": self._timeframe,
                  "start": format_time(start), "limit": str(PAGE_LIMIT), "feed": self._feed,
                  "sort": "asc"}
        merged: dict[str, list[dict[str, Any]]] = {}
        token: str | None = None
        while True:
            page = self._get({**params, "page_token": token} if token else params)
            for symbol, bars in (page.get("bars") or {}).items():
                merged.setdefault(symbol.upper(), []).extend(bars or [])
            token = page.get("next_page_token")
            if not token:
                return merged

    # --- polling ----------------------------------------------------------------------------

    def _to_bar(self, symbol: str, raw: Mapping[str, Any]) -> Bar | None:
        try:
            moment = _parse_time(str(raw["t"]))
            if self._interval == "1d":
                moment = session_date_start(moment)
            return Bar(symbol, moment, raw["o"], raw["h"], raw["l"],
                       raw["c"], raw["v"], interval=self._interval,
                       source=f"alpaca:{self._feed}")
        except (KeyError, TypeError, ValueError, MalformedBarError) as err:
            self.skipped += 1
            log.warning("provider bar skipped", extra={"symbol": symbol, "reason": str(err)})
            return None

    def poll_once(self) -> list[Bar]:
        """One poll: new closed bars of every symbol, in (bar_time, symbol) order."""
        now = self._clock()
        default_start = now - self._lookback
        start = min((self._cursor.get(s, default_start) for s in self.symbols),
                    default=default_start)
        fetched = self.fetch(start)
        fresh: list[Bar] = []
        for symbol in self.symbols:
            last = self._cursor.get(symbol)
            for raw in fetched.get(symbol, []):
                bar = self._to_bar(symbol, raw)
                # still forming: by the provider's own start (a daily bar stamped midnight New
                # York is mapped to 00:00Z of its date, which would close it 4-5 hours early)
                if bar is None or _parse_time(str(raw["t"])) + self._length > now:
                    continue  # invalid, or still forming
                if last is not None and bar.bar_time <= last:
                    continue
                fresh.append(bar)
                last = bar.bar_time
            if last is not None:
                self._cursor[symbol] = last
        fresh.sort(key=lambda b: (b.bar_time, b.symbol))
        return fresh

    def __iter__(self) -> Iterator[Bar]:
        while self._max_polls is None or self.polls < self._max_polls:
            self.polls += 1
            ok = True
            try:
                bars = self.poll_once()
            except ProviderAuthError:
                raise
            except ProviderError as err:
                ok, bars = False, []
                log.error("poll failed; trying again next interval", extra={"error": str(err)})
            yield from bars
            if self._on_poll is not None:
                self._on_poll(len(bars), ok)
            if self._max_polls is not None and self.polls >= self._max_polls:
                return
            if self._sleep(self._poll_seconds):
                return


__all__ = [
    "DEFAULT_BASE_URL",
    "TIMEFRAMES",
    "AlpacaBarsSource",
    "Credentials",
    "ProviderAuthError",
    "ProviderError",
    "load_credentials",
]
