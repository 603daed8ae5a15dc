"""Measuring the real-time path on the local stack: when each Kinesis record was acknowledged,
which record an alert's trade or a bar's close came from, and percentiles of the delays.

Pure logic (no AWS calls), shared by ``make demo`` (:mod:`stocksage.local.live_demo`) and
``scripts/bench_latency.py --stack`` through :mod:`stocksage.local.live_replay`.

Clocks
------
Every time here is wall-clock **epoch seconds of this machine** (``time.time()``): the
collector's acknowledgement times are taken in this process when ``PutRecords`` returned; the
other end is either the alert's SQS ``SentTimestamp`` (ms, stamped by the emulator's SQS when
SNS delivered the message) or a results item's ``processed_at`` (ISO ms UTC, stamped by the
processor Lambda running in the local runtime). Emulator, runtime and collector run on the
same machine, so the delays need no clock synchronisation; on AWS the two ends would be
different hosts' clocks.

Record matching
---------------
:class:`AckLog` wraps the replay's record iterator (``AckLog.track``) and is the sink's
``on_sent`` hook. ``KinesisSink`` reports acknowledgements as ``{partition key: count}`` per
request; with ``max_records_per_key = 1`` (the default) a key's records are acknowledged
strictly in the order they were put (a failed entry stays at the head of its key's queue), so
the n-th acknowledgement of a key is the n-th record put with that key. (With more records per
key per request the order holds as long as no entry fails: the sink counts a break in
``stats.order_breaks``, which the callers report.)

* A trade at ``t`` is in the first trades record of its symbol whose last trade time is
  ``>= t`` (packs of one symbol are consecutive in event time). When a pack was cut by the
  trade count inside one nanosecond, several records share that last time and the first of
  them is taken: its acknowledgement is the earliest, so the delay is an upper bound.
* A bar ``[start, end)`` closes when the symbol's watermark (the latest trade time of its
  trades records, or a heartbeat's time) first reaches ``end + grace``; the record that moved
  it there is the first in stream order whose running maximum of ``time_ns`` is ``>= end +
  grace``.
"""

from __future__ import annotations

import statistics
import threading
import time
from bisect import bisect_left
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any, Protocol

__all__ = [
    "AckLog",
    "BarDelay",
    "TrackedRecord",
    "alert_delays",
    "bar_close_delays",
    "iso_epoch_s",
    "percentiles",
]


class TrackedRecord(Protocol):
    """What :class:`AckLog` needs of a record (``PackedRecord`` fits)."""

    @property
    def symbol(self) -> str: ...

    @property
    def kind(self) -> str: ...

    @property
    def time_ns(self) -> int: ...


@dataclass
class _KeyLog:
    """Records of one partition key in put order, with their acknowledgement times."""

    times_ns: list[int] = field(default_factory=list)
    running_max_ns: list[int] = field(default_factory=list)
    acked_at: list[float | None] = field(default_factory=list)
    trade_rows: list[int] = field(default_factory=list)  # rows of the trades records
    trade_last_ns: list[int] = field(default_factory=list)  # their last trade times
    acked: int = 0  # records acknowledged so far (a prefix of the put order)


class AckLog:
    """Put order and acknowledgement time of every record of a replay (module docstring).

    Args:
        clock: Wall clock in epoch seconds (``time.time``; injected in tests).
        forward: Another ``on_sent`` hook to call after recording (a progress display).
    """

    def __init__(self, clock: Callable[[], float] = time.time,
                 forward: Callable[[Mapping[str, int]], None] | None = None) -> None:
        self._clock = clock
        self._forward = forward
        self._keys: dict[str, _KeyLog] = {}
        self._lock = threading.Lock()  # the sink's flusher thread calls on_sent
        self.unmatched_acks = 0
        """Acknowledgements beyond the records put (records not put through ``track``)."""

    def track(self, records: Iterable[TrackedRecord]) -> Iterator[Any]:
        """Yield ``records`` unchanged, logging each before it is handed on (to the sink)."""
        for record in records:
            self.add(record)
            yield record

    def add(self, record: TrackedRecord) -> None:
        """Log one record about to be put (in put order)."""
        with self._lock:
            key = self._keys.setdefault(record.symbol, _KeyLog())
            row = len(key.times_ns)
            key.times_ns.append(int(record.time_ns))
            key.running_max_ns.append(max(int(record.time_ns),
                                          key.running_max_ns[-1] if row else -1))
            key.acked_at.append(None)
            if record.kind == "trades":
                key.trade_rows.append(row)
                key.trade_last_ns.append(int(record.time_ns))

    def on_sent(self, acked: Mapping[str, int]) -> None:
        """``KinesisSink`` hook: ``{key: records acknowledged by one request}``."""
        now = self._clock()
        with self._lock:
            for symbol, count in acked.items():
                key = self._keys.get(symbol)
                available = 0 if key is None else len(key.acked_at) - key.acked
                stamped = min(count, available)
                if key is not None:
                    for row in range(key.acked, key.acked + stamped):
                        key.acked_at[row] = now
                    key.acked += stamped
                self.unmatched_acks += count - stamped
        if self._forward is not None:
            self._forward(acked)

    def records(self, symbol: str) -> int:
        """Records of ``symbol`` logged."""
        with self._lock:
            key = self._keys.get(symbol)
            return 0 if key is None else len(key.times_ns)

    def acknowledged(self, symbol: str) -> int:
        """Records of ``symbol`` acknowledged."""
        with self._lock:
            key = self._keys.get(symbol)
            return 0 if key is None else key.acked

    def trade_ack_s(self, symbol: str, trade_time_ns: int) -> float | None:
        """Acknowledgement time (epoch s) of the trades record holding the trade at
        ``trade_time_ns`` (module docstring); None when no such record was acknowledged."""
        with self._lock:
            key = self._keys.get(symbol)
            if key is None:
                return None
            at = bisect_left(key.trade_last_ns, int(trade_time_ns))
            if at == len(key.trade_rows):
                return None
            return key.acked_at[key.trade_rows[at]]

    def watermark_ack_s(self, symbol: str, watermark_ns: int) -> float | None:
        """Acknowledgement time (epoch s) of the first record of ``symbol`` that moved its
        watermark to ``>= watermark_ns``; None when none did or it was not acknowledged."""
        with self._lock:
            key = self._keys.get(symbol)
            if key is None:
                return None
            at = bisect_left(key.running_max_ns, int(watermark_ns))
            return key.acked_at[at] if at < len(key.acked_at) else None


def percentiles(values: Sequence[float], digits: int = 3) -> dict[str, float | int]:
    """``{n, p50, p95, p99, max}`` of ``values`` (seconds), rounded to ``digits``.

    Quantiles by linear interpolation between order statistics (``statistics.quantiles``,
    ``method="inclusive"``: p50 of ``[1, 2, 3, 4]`` is 2.5); one value is every percentile;
    no value gives ``{"n": 0}``.
    """
    if not values:
        return {"n": 0}
    ordered = sorted(float(v) for v in values)
    cut = (statistics.quantiles(ordered, n=100, method="inclusive") if len(ordered) > 1
           else [ordered[0]] * 99)
    return {"n": len(ordered), "p50": round(cut[49], digits), "p95": round(cut[94], digits),
            "p99": round(cut[98], digits), "max": round(ordered[-1], digits)}


def iso_epoch_s(text: str) -> float:
    """Epoch seconds of an ISO-8601 UTC time (``2026-12-03T08:40:01.123Z``, or an offset)."""
    return datetime.fromisoformat(text.replace("Z", "+00:00")).timestamp()


def alert_delays(alerts: Iterable[Mapping[str, Any]], log: AckLog) -> tuple[list[float], int]:
    """Trade-to-alert delays in seconds of the intrabar alerts among ``alerts``.

    Args:
        alerts: ``read_alerts`` dicts: ``Payload`` (the alert: ``symbol``, ``details`` with
            ``phase``, ``trade_time_ns``) and ``SentTimestamp`` (SQS, epoch ms, text or int).
        log: The replay's acknowledgements.

    Returns:
        ``(delays, intrabar alerts whose record or SentTimestamp is unknown)``; a delay is
        ``SentTimestamp / 1000 - ack time of the record holding the crossing trade``.
    """
    delays: list[float] = []
    unmatched = 0
    for alert in alerts:
        payload = alert.get("Payload") or {}
        details = payload.get("details") or {}
        if details.get("phase") != "intrabar":
            continue
        sent = alert.get("SentTimestamp")
        acked = None
        if "trade_time_ns" in details and payload.get("symbol"):
            acked = log.trade_ack_s(str(payload["symbol"]), int(details["trade_time_ns"]))
        if acked is None or sent in (None, ""):
            unmatched += 1
            continue
        delays.append(int(sent) / 1000.0 - acked)
    return delays, unmatched


@dataclass(frozen=True)
class BarDelay:
    """One bar's close-to-result delay.

    Attributes:
        bar_start_ns: The bar's start (epoch ns UTC).
        closed_by_ack_s: Acknowledgement (epoch s) of the record that closed it.
        processed_at_s: Its results item's ``processed_at`` (epoch s).
    """

    bar_start_ns: int
    closed_by_ack_s: float
    processed_at_s: float

    @property
    def seconds(self) -> float:
        """``processed_at_s - closed_by_ack_s``."""
        return self.processed_at_s - self.closed_by_ack_s


def bar_close_delays(symbol: str, processed_at: Mapping[int, str], log: AckLog,
                     interval_ns: int, grace_ns: int) -> tuple[list[BarDelay], int]:
    """Bar-close-to-result delays of one symbol's bars.

    Args:
        symbol: The partition key of the bars' records.
        processed_at: ``{bar start epoch ns: results item's processed_at (ISO ms UTC)}``.
        log: The replay's acknowledgements.
        interval_ns: The bars' width (1 minute = ``60 * 10**9``).
        grace_ns: How long after its end a bar waits for trades (``bar_building.grace_ms``).

    Returns:
        ``(delays in bar order, bars whose closing record is unknown or unacknowledged)``.
    """
    delays: list[BarDelay] = []
    unmatched = 0
    for start in sorted(processed_at):
        acked = log.watermark_ack_s(symbol, start + interval_ns + grace_ns)
        if acked is None:
            unmatched += 1
            continue
        delays.append(BarDelay(start, acked, iso_epoch_s(processed_at[start])))
    return delays, unmatched
