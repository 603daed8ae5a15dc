"""Bars built from trades by event time: every configured interval, one symbol, O(1) state.

``BarBuilder`` keeps, per interval, only the bars still open (waiting for trades) and the
event-time **watermark** (the latest trade time, or heartbeat, seen so far in arrival order).

* Intraday bars (``1m`` .. ``4h``) start at UTC multiples of their width; daily bars cover one
  trading session of the symbol's calendar (``stocksage.bars.sessions``) and carry the session
  date at 00:00 UTC. Every interval is built directly from the trades, so a 5-minute bar is
  exactly the merge of its 1-minute bars (tests check it against a pandas resample).
* OHLCV: open = price of the earliest trade (event time; ties: the one that arrived first),
  close = price of the latest (ties: the one that arrived last), high/low/volume over all.
  Identical fills without a trade id all count (they are separate trades).
* A bar closes when the watermark reaches its end plus ``grace_ns`` (default 2 s,
  ``stack.json`` ``bar_building``); ``advance(watermark)`` closes bars on a heartbeat, so the
  last bar of a quiet symbol does not wait for its next trade.
* A trade is **late** when the watermark seen before it already closed its bar of the finest
  interval (then every coarser bar is still open or closed consistently, because coarser bars
  end on the same or later boundaries). Late trades change no bar: they are counted and
  returned; the raw record stays in the S3 history, so ``stocksage repair`` rebuilds the
  bars with them. This rule depends only on arrival order, not on how records are batched.
* A repeated trade id counts once while its bar is open (a provider resend, a backfill
  overlap); once the bar has closed a repeat is late like any other trade.

Cost: ``add`` is vectorised per call (sort, ``reduceat`` per interval): O(n log n) for n
trades, a few microseconds per trade in numpy; the state holds the open bars (a handful per
interval) and the trade ids of open finest bars.
"""

from __future__ import annotations

import base64
import hashlib
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stocksage.bars.model import Bar
from stocksage.bars.sessions import calendar_for, session_table, years_of
from stocksage.bars.trade_parsing import TradeColumns
from stocksage.config import STACK

__all__ = ["DEFAULT_GRACE_NS", "DEFAULT_INTERVALS", "INTRADAY_NS", "AddOutcome", "BarBuilder",
           "id_hash"]

INTRADAY_NS: dict[str, int] = {name: minutes * 60 * 1_000_000_000 for name, minutes in (
    ("1m", 1), ("2m", 2), ("5m", 5), ("10m", 10), ("15m", 15), ("30m", 30), ("1h", 60),
    ("2h", 120), ("4h", 240))}
"""Width in nanoseconds of each intraday interval a builder supports (plus ``1d``)."""

DEFAULT_INTERVALS: tuple[str, ...] = tuple(STACK.bar_building["intervals"])
DEFAULT_GRACE_NS: int = int(STACK.bar_building["grace_ms"]) * 1_000_000
_STATE_FORMAT = 2  # 1 = trade ids as JSON text keys (read, hashed on load)


def id_hash(trade_id: str) -> int:
    """64-bit BLAKE2b digest of a trade id (signed int64): what the builder keeps to spot a
    repeated id. Two ids of one open bar collide with probability ~n^2 / 2^65 (~3e-12 for
    10,000 trades in a bar); a collision would count a distinct trade as a repeat."""
    return int.from_bytes(hashlib.blake2b(trade_id.encode(), digest_size=8).digest(),
                          "little", signed=True)


@dataclass(slots=True)
class _Open:
    """An open bar: its span and OHLCV so far."""

    start_ns: int
    end_ns: int
    first_ns: int
    last_ns: int
    open: float
    high: float
    low: float
    close: float
    volume: float
    trades: int

    def merge(self, other: _Open) -> None:
        """Fold in ``other`` (trades that arrived later): open/close by event time, ties to
        the earlier arrival for the open and the later arrival for the close."""
        if other.first_ns < self.first_ns:
            self.first_ns, self.open = other.first_ns, other.open
        if other.last_ns >= self.last_ns:
            self.last_ns, self.close = other.last_ns, other.close
        self.high = max(self.high, other.high)
        self.low = min(self.low, other.low)
        self.volume += other.volume
        self.trades += other.trades

    def as_list(self) -> list[Any]:
        return [self.start_ns, self.end_ns, self.first_ns, self.last_ns, self.open, self.high,
                self.low, self.close, self.volume, self.trades]


@dataclass
class AddOutcome:
    """What ``BarBuilder.add`` did with a call's trades.

    Attributes:
        accepted: Trades folded into bars.
        late: Indices (into the call's columns) of trades whose finest bar had closed.
        duplicates: Trades whose trade id was already counted in an open bar.
        outside_session: Accepted trades outside every session of the calendar (in intraday
            bars, in no daily bar).
        kept: Indices (into the call's columns, arrival order) of the accepted trades.
    """

    accepted: int = 0
    late: list[int] = field(default_factory=list)
    duplicates: int = 0
    outside_session: int = 0
    kept: list[int] = field(default_factory=list)


class BarBuilder:
    """Bars of one symbol from its trades (module docstring).

    Args:
        symbol: The symbol (its calendar: ``stocksage.bars.sessions.calendar_for``).
        intervals: Intervals to build, e.g. ``("1m", "5m", "1h", "1d")``; intraday widths must
            be multiples of the finest one.
        grace_ns: How long after its end (event time) a bar waits for trades.
        calendar: ``exchange_calendars`` name for the daily bars (default: the symbol's).
        source: ``Bar.source`` of the built bars.

    Raises:
        ValueError: an unknown interval, or widths that do not nest.
    """

    def __init__(self, symbol: str, intervals: Sequence[str] = DEFAULT_INTERVALS,
                 grace_ns: int = DEFAULT_GRACE_NS, calendar: str | None = None,
                 source: str = "trades") -> None:
        unknown = [i for i in intervals if i not in INTRADAY_NS and i != "1d"]
        if unknown or not intervals:
            raise ValueError(f"intervals must be among {[*INTRADAY_NS, '1d']}, got {unknown}")
        order = sorted(set(intervals), key=lambda i: INTRADAY_NS.get(i, 1 << 62))
        widths = [INTRADAY_NS[i] for i in order if i in INTRADAY_NS]
        if any(w % widths[0] for w in widths):
            raise ValueError(f"intraday widths must be multiples of the finest: {order}")
        self.symbol = symbol
        self.intervals: tuple[str, ...] = tuple(order)
        self.grace_ns = int(grace_ns)
        self.calendar = calendar or calendar_for(symbol)
        self.source = source
        self.watermark_ns = -1
        self._open: dict[str, dict[int, _Open]] = {i: {} for i in self.intervals}
        self._ids: dict[int, int] = {}  # id_hash -> end of its finest bar (ns)

    # ------------------------------------------------------------------ trades in
    def add(self, trades: TradeColumns) -> AddOutcome:
        """Fold one call's trades (in arrival order) into the open bars; closes nothing.

        Returns:
            The counts and the indices of late trades (``AddOutcome``).
        """
        outcome = AddOutcome()
        n = len(trades)
        if n == 0:
            return outcome
        times = trades.times_ns
        before = np.maximum.accumulate(np.concatenate([[self.watermark_ns], times]))[:-1]
        late = self._first_end(times) + self.grace_ns <= before
        keep = ~late
        outcome.late = np.flatnonzero(late).tolist()
        if any(i is not None for i in trades.trade_ids):
            ends = self._first_end(times)
            for k in np.flatnonzero(keep):
                trade_id = trades.trade_ids[k]
                if trade_id is None:
                    continue
                key = id_hash(trade_id)
                if key in self._ids:
                    keep[k] = False
                    outcome.duplicates += 1
                else:
                    self._ids[key] = int(ends[k])
        self.watermark_ns = max(self.watermark_ns, int(times.max()))
        index = np.flatnonzero(keep)
        outcome.accepted = len(index)
        outcome.kept = index.tolist()
        if len(index):
            order = index[np.argsort(times[index], kind="stable")]
            t, p, s = times[order], trades.prices[order], trades.sizes[order]
            for interval in self.intervals:
                outcome.outside_session += self._fold(interval, t, p, s)
        return outcome

    def _first_end(self, times: np.ndarray) -> np.ndarray:
        """End of each time's bar in the finest interval (int64 ns)."""
        finest = self.intervals[0]
        if finest in INTRADAY_NS:
            width = INTRADAY_NS[finest]
            return times - times % width + width
        table = session_table(self.calendar, *years_of(times))
        where = table.locate(times)
        nxt = np.searchsorted(table.opens_ns, times, side="right")
        closes = np.where(where >= 0, table.closes_ns[np.maximum(where, 0)],
                          table.opens_ns[np.minimum(nxt, len(table.opens_ns) - 1)])
        return closes.astype(np.int64)

    def _fold(self, interval: str, t: np.ndarray, p: np.ndarray, s: np.ndarray) -> int:
        """Merge time-sorted trades into ``interval``'s open bars; returns trades outside
        every session (daily only)."""
        outside = 0
        if interval in INTRADAY_NS:
            width = INTRADAY_NS[interval]
            starts = t - t % width
            ends = starts + width
        else:
            table = session_table(self.calendar, *years_of(t))
            where = table.locate(t)
            inside = where >= 0
            outside = int((~inside).sum())
            if outside:
                t, p, s, where = t[inside], p[inside], s[inside], where[inside]
                if len(t) == 0:
                    return outside
            starts, ends = table.labels_ns[where], table.closes_ns[where]
        first = np.flatnonzero(np.diff(starts, prepend=starts[0] - 1))
        last = np.append(first[1:], len(t)) - 1
        highs, lows = np.maximum.reduceat(p, first), np.minimum.reduceat(p, first)
        volumes = np.add.reduceat(s, first)
        bars = self._open[interval]
        for k, (a, b) in enumerate(zip(first.tolist(), last.tolist(), strict=True)):
            part = _Open(int(starts[a]), int(ends[a]), int(t[a]), int(t[b]), float(p[a]),
                         float(highs[k]), float(lows[k]), float(p[b]), float(volumes[k]),
                         b - a + 1)
            existing = bars.get(part.start_ns)
            if existing is None:
                bars[part.start_ns] = part
            else:
                existing.merge(part)
        return outside

    # ------------------------------------------------------------------ bars out
    def advance(self, watermark_ns: int | None = None) -> list[Bar]:
        """Raise the watermark (a heartbeat; None = as the trades left it) and close every bar
        whose end + grace it reached.

        Returns:
            The closed bars, ordered by end time, then finest interval first.
        """
        if watermark_ns is not None:
            self.watermark_ns = max(self.watermark_ns, int(watermark_ns))
        closed: list[tuple[int, int, Bar]] = []
        for rank, interval in enumerate(self.intervals):
            bars = self._open[interval]
            for start in sorted(bars):
                bar = bars[start]
                if bar.end_ns + self.grace_ns > self.watermark_ns:
                    continue
                closed.append((bar.end_ns, rank, self._bar(interval, bar)))
                del bars[start]
        self._prune_ids()
        return [bar for _, _, bar in sorted(closed, key=lambda item: item[:2])]

    def forming(self) -> dict[str, Bar]:
        """The newest open bar of each interval that has one (for intrabar evaluation)."""
        return {interval: self._bar(interval, bars[max(bars)])
                for interval, bars in self._open.items() if bars}

    def open_bar(self, interval: str, time_ns: int) -> Bar | None:
        """The open bar of ``interval`` that holds event time ``time_ns``, or None (closed, or
        no trade yet; daily bars are found by their span)."""
        for bar in self._open[interval].values():
            if bar.start_ns <= time_ns < bar.end_ns:
                return self._bar(interval, bar)
        return None

    def _bar(self, interval: str, bar: _Open) -> Bar:
        return Bar(self.symbol, datetime.fromtimestamp(bar.start_ns // 1_000_000_000, UTC),
                   bar.open, bar.high, bar.low, bar.close, bar.volume, interval, self.source)

    def _prune_ids(self) -> None:
        """Forget the ids of closed finest bars: a repeat of one is late anyway."""
        if self._ids:
            limit = self.watermark_ns - self.grace_ns
            self._ids = {k: end for k, end in self._ids.items() if end > limit}

    # ------------------------------------------------------------------ state
    def to_state(self) -> dict[str, Any]:
        """JSON-ready state: watermark, open bars per interval, and the trade ids of open
        finest bars as 64-bit hashes (``id_hash``), grouped by bar end, base64 of int64:
        ~11 bytes per id (a busy symbol's 5,000 trades a minute: ~55 KB while its bar is open)."""
        groups: dict[int, list[int]] = {}
        for key, end in self._ids.items():
            groups.setdefault(end, []).append(key)
        return {"format": _STATE_FORMAT, "watermark_ns": self.watermark_ns,
                "open": {i: [b.as_list() for _, b in sorted(bars.items())]
                         for i, bars in self._open.items() if bars},
                "ids": {str(end): base64.b64encode(np.array(sorted(keys), dtype="<i8")
                                                   .tobytes()).decode()
                        for end, keys in sorted(groups.items())}}

    @classmethod
    def from_state(cls, symbol: str, state: dict[str, Any],
                   intervals: Iterable[str] = DEFAULT_INTERVALS,
                   grace_ns: int = DEFAULT_GRACE_NS, calendar: str | None = None,
                   source: str = "trades") -> BarBuilder:
        """The builder ``to_state`` described.

        Raises:
            ValueError: unknown state format, or open bars of an interval not configured.
        """
        if state.get("format") not in (1, _STATE_FORMAT):
            raise ValueError(f"unknown bar-builder state format {state.get('format')!r}")
        builder = cls(symbol, tuple(intervals), grace_ns, calendar, source)
        builder.watermark_ns = int(state["watermark_ns"])
        for interval, rows in state.get("open", {}).items():
            if interval not in builder._open:
                raise ValueError(f"state holds open {interval} bars; intervals are "
                                 f"{builder.intervals}")
            for row in rows:
                bar = _Open(int(row[0]), int(row[1]), int(row[2]), int(row[3]),
                            float(row[4]), float(row[5]), float(row[6]), float(row[7]),
                            float(row[8]), int(row[9]))
                builder._open[interval][bar.start_ns] = bar
        if state["format"] == 1:  # {trade id: trade time}: the bar end from the time
            old = state.get("ids", {})
            ends = builder._first_end(np.array(list(old.values()), dtype=np.int64)) if old \
                else np.array([], dtype=np.int64)
            builder._ids = {id_hash(str(k)): int(e) for k, e in zip(old, ends, strict=True)}
        else:
            builder._ids = {int(key): int(end) for end, blob in state.get("ids", {}).items()
                            for key in np.frombuffer(base64.b64decode(blob), dtype="<i8")}
        return builder
