"""Trades -> Kinesis records: packs of one symbol cut by count and event-time window, and
watermark heartbeats for quiet symbols.

Plain Python (no boto3, no numpy), so the live collector can pack a websocket's trades the
same way the replay does. The record formats are ``stocksage.bars.trades``'
(``encode_trades``, ``encode_watermark``); the partition key of every record is its symbol.

Event time and the packer's clock
---------------------------------
The packer is fed trades in event-time order across all symbols (equal times allowed) and
keeps a clock: the latest event time ``now`` such that no trade at or before ``now`` is still
to come. :meth:`TradePacker.add` moves it to the trade's time minus 1 ns; a replay that knows
the gap before its next trade may move it further with :meth:`TradePacker.advance` (it does so
while it sleeps, so a pack leaves as soon as no later trade can join it).

* **Packs.** Trades of one symbol go into one open pack, at most ``max_trades`` of them, and
  spanning at most ``window_ns`` of event time (first to last trade). A pack is cut, in the
  order the packs were opened, as soon as it is full or the clock passed its first trade +
  ``window_ns`` (a trade still to come could not join it).
* **Heartbeats.** Whenever the clock crosses a multiple ``B`` of ``heartbeat_ns`` (1 s by
  default), each symbol seen so far that had no trade in ``[B - heartbeat_ns, B)`` gets one
  watermark record with ``t = B`` (no trade of it at or before ``B`` follows), after its open
  pack if it had one. So a quiet symbol's bars close within a second of event time; a symbol
  gets at most one heartbeat per ``heartbeat_ns`` of event time, and a clock that jumps over
  many boundaries at once (an unpaced replay over a market halt) yields one heartbeat per
  symbol, for the last boundary.
* **The end.** :meth:`TradePacker.finish` cuts every open pack and emits one heartbeat per
  symbol with the watermark its caller computes (the replay: late enough for every bar of the
  symbol to close).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Literal

from stocksage.bars.trades import MAX_TRADES_PER_RECORD, Trade, encode_trades, encode_watermark

__all__ = [
    "DEFAULT_HEARTBEAT_NS",
    "DEFAULT_WINDOW_NS",
    "PackedRecord",
    "TradePacker",
]

DEFAULT_WINDOW_NS = 100_000_000
"""Longest event-time span of one trades record: 100 ms (at ``--speed 60``, 1.7 ms of wall time)."""

DEFAULT_HEARTBEAT_NS = 1_000_000_000
"""Heartbeat period in event time: 1 s."""


@dataclass(frozen=True, slots=True)
class PackedRecord:
    """One Kinesis record the packer made (``KinesisSink.put`` takes it as it is).

    Attributes:
        symbol: The partition key (= the record's symbol).
        data: The record, ``encode_trades`` or ``encode_watermark`` JSON.
        kind: ``"trades"`` or ``"watermark"``.
        trades: Trades packed (0 for a watermark).
        volume: Sum of the packed trades' sizes (0 for a watermark).
        time_ns: Last trade time of a pack, or the watermark (epoch ns, UTC).
    """

    symbol: str
    data: bytes
    kind: Literal["trades", "watermark"]
    trades: int
    volume: float
    time_ns: int

    def to_json(self) -> bytes:
        """The record's bytes (what ``KinesisSink.put`` sends)."""
        return self.data


class TradePacker:
    """Packs trades into records and emits heartbeats (module docstring).

    Args:
        max_trades: Trades per record, 1 .. ``MAX_TRADES_PER_RECORD``.
        window_ns: Longest event-time span of a record in ns (>= 0; 0 packs only trades of
            the same nanosecond).
        heartbeat_ns: Heartbeat period in ns of event time (> 0), or None for no heartbeats.
        source: ``source`` field of the trades records ("" = none).

    Raises:
        ValueError: an argument out of range.
    """

    def __init__(self, *, max_trades: int = MAX_TRADES_PER_RECORD,
                 window_ns: int = DEFAULT_WINDOW_NS,
                 heartbeat_ns: int | None = DEFAULT_HEARTBEAT_NS, source: str = "") -> None:
        if not 1 <= max_trades <= MAX_TRADES_PER_RECORD:
            raise ValueError(f"max_trades must be 1 .. {MAX_TRADES_PER_RECORD}, got {max_trades}")
        if window_ns < 0:
            raise ValueError(f"window_ns must be >= 0, got {window_ns}")
        if heartbeat_ns is not None and heartbeat_ns <= 0:
            raise ValueError(f"heartbeat_ns must be > 0, got {heartbeat_ns}")
        self.max_trades = max_trades
        self.window_ns = window_ns
        self.heartbeat_ns = heartbeat_ns
        self.source = source
        self._open: dict[str, list[Trade]] = {}  # insertion order = order of first trades
        self._last_trade: dict[str, int] = {}  # per symbol, in order first seen
        self._clock = -1
        self._boundary = -1
        self._finished = False

    @property
    def clock_ns(self) -> int:
        """Event time (epoch ns) at or before which no trade is still to come (-1 at first)."""
        return self._clock

    @property
    def last_trade_ns(self) -> dict[str, int]:
        """Last trade time (epoch ns) per symbol seen, in the order the symbols were first seen."""
        return dict(self._last_trade)

    def next_change_ns(self) -> int | None:
        """Earliest clock value after the current one at which :meth:`advance` may emit
        something (a pack's window ends, or the next heartbeat boundary once a symbol was
        seen), or None when nothing can be pending."""
        candidates = [trades[0].time_ns + self.window_ns for trades in self._open.values()]
        if self.heartbeat_ns is not None and self._last_trade:
            candidates.append((self._clock // self.heartbeat_ns + 1) * self.heartbeat_ns)
        later = [c for c in candidates if c > self._clock]
        return min(later) if later else None

    def add(self, trade: Trade) -> list[PackedRecord]:
        """Take one trade; returns the records it completed (cut packs, heartbeats), in order.

        Raises:
            ValueError: the trade is earlier than the clock (out of event-time order), or the
                packer has finished.
        """
        if self._finished:
            raise ValueError("the packer has finished")
        if trade.time_ns <= self._clock:
            raise ValueError(f"trade of {trade.symbol} at {trade.time_ns} ns is not after the "
                             f"packer's clock {self._clock} ns (trades must come in time order)")
        out = self.advance(trade.time_ns - 1)
        pack = self._open.setdefault(trade.symbol, [])
        pack.append(trade)
        self._last_trade[trade.symbol] = trade.time_ns
        if len(pack) >= self.max_trades:
            out.append(self._cut(trade.symbol))
        return out

    def advance(self, now_ns: int) -> list[PackedRecord]:
        """Move the clock to ``now_ns``: the caller promises no trade at or before it follows.
        Returns the packs whose window ended and the heartbeats of a crossed boundary.
        A ``now_ns`` at or before the clock changes nothing."""
        if now_ns <= self._clock:
            return []
        self._clock = now_ns
        out = [self._cut(symbol) for symbol, trades in list(self._open.items())
               if now_ns - trades[0].time_ns >= self.window_ns]
        if self.heartbeat_ns is None:
            return out
        boundary = now_ns - now_ns % self.heartbeat_ns
        if boundary <= self._boundary:
            return out
        self._boundary = boundary
        for symbol, last in self._last_trade.items():
            if last < boundary - self.heartbeat_ns:
                if symbol in self._open:
                    out.append(self._cut(symbol))
                out.append(self._watermark(symbol, boundary))
        return out

    def finish(self, watermark_ns: Callable[[str, int], int]) -> list[PackedRecord]:
        """Cut every open pack, then one heartbeat per symbol seen, ``t =
        watermark_ns(symbol, last trade time)`` (raised to the last trade time if lower).
        The packer takes no trade afterwards.

        Raises:
            ValueError: the packer has already finished.
        """
        if self._finished:
            raise ValueError("the packer has finished")
        self._finished = True
        out = [self._cut(symbol) for symbol in list(self._open)]
        out += [self._watermark(symbol, max(last, int(watermark_ns(symbol, last))))
                for symbol, last in self._last_trade.items()]
        return out

    def _cut(self, symbol: str) -> PackedRecord:
        trades = self._open.pop(symbol)
        return PackedRecord(symbol, encode_trades(symbol, trades, self.source), "trades",
                            len(trades), sum(t.size for t in trades), trades[-1].time_ns)

    @staticmethod
    def _watermark(symbol: str, t_ns: int) -> PackedRecord:
        return PackedRecord(symbol, encode_watermark(symbol, t_ns), "watermark", 0, 0.0, t_ns)
