"""The records a mapping has read and not yet finished, per shard and lane.

A shard's records go to one of its ``ParallelizationFactor`` lanes by partition key
(``lane_of``), so the records of a key stay in order while different keys are delivered
concurrently. Each lane buffers what was read (``Lane.buffer``) and holds the batches handed
to the function, or being retried, in ``Lane.pending`` (the first one is the batch in flight).

The shard's checkpoint is the end of the prefix of records that are finished in every lane::

    shard = ShardState("shardId-000000000000")
    shard.reset(lanes=2)
    ...                                   # the worker reads records into the lanes
    shard.finish(batch.records)           # "49": the new checkpoint, or None if it held still

so a lane that keeps failing holds the checkpoint back while the other lanes go on.
"""

from __future__ import annotations

import hashlib
from collections import deque
from dataclasses import dataclass, field


@dataclass(frozen=True)
class KRecord:
    """One Kinesis record as the engine keeps it.

    Attributes:
        sequence_number: The shard's sequence number (a decimal string).
        partition_key: The record's partition key (decides its lane).
        data: The record's bytes.
        arrival: ``ApproximateArrivalTimestamp`` in epoch seconds.
    """

    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds

    @property
    def size(self) -> int:
        """Estimated bytes in the event: base64 data + key + seq + a fixed envelope (close to
        the event's JSON size; the 6 MB payload limit is checked against it)."""
        return (len(self.data) + 2) // 3 * 4 + len(self.partition_key) + 2 * len(
            self.sequence_number) + 400


@dataclass
class PendingBatch:
    """Records handed to (or being retried on) the function.

    Attributes:
        records: The batch, in sequence order.
        retries: Failed attempts that were not splits (bounded by ``MaximumRetryAttempts``).
        invokes: Every attempt that included these records (``approximateInvokeCount``).
        last_request_id: Request id of the last attempt (goes into the failure record).
        last_function_error: ``"Unhandled"`` when the last attempt raised or timed out.
        discard_condition: Set once the records are given up (``RetryAttemptsExhausted``,
            ``RecordAgeExceeded``): only the send to the on-failure destination is still to do.
        send_failures: Failed sends of the failure record (the lane waits and retries).
    """

    records: list[KRecord]
    retries: int = 0
    invokes: int = 0
    last_request_id: str = ""
    last_function_error: str | None = None
    discard_condition: str | None = None
    send_failures: int = 0


@dataclass
class Lane:
    """One of a shard's ``ParallelizationFactor`` concurrent batch lanes.

    Records are assigned by partition key (MD5, like Kinesis's hash key), so a key's records
    stay in order. ``next_attempt_at`` (monotonic) delays the next attempt of the pending
    batch (retry backoff).
    """

    index: int
    buffer: list[KRecord] = field(default_factory=list)
    buffer_since: float | None = None  # monotonic time the oldest buffered record was read
    pending: list[PendingBatch] = field(default_factory=list)
    next_attempt_at: float = 0.0

    @property
    def idle(self) -> bool:
        return not self.buffer and not self.pending


def lane_of(partition_key: str, lanes: int) -> int:
    """Lane index of a partition key (stable across processes)."""
    if lanes <= 1:
        return 0
    return int.from_bytes(hashlib.md5(partition_key.encode()).digest()[:8], "big") % lanes


@dataclass
class ShardState:
    """What a mapping knows about one shard: its lanes, iterator and checkpoint.

    Attributes:
        shard_id: The shard.
        lanes: The shard's lanes (``reset`` makes ``ParallelizationFactor`` of them).
        iterator: The next ``GetRecords`` iterator (None: get one from the checkpoint).
        checkpoint: The last finished sequence number.
        caught_up: The last read returned no records.
        closed: The shard has no next iterator (split or merged): read to its end.
        outstanding: Sequence numbers read but not finished, in read (= sequence) order.
        finished: The finished ones among ``outstanding`` (ahead of an unfinished one).
        parents: The shards this one was split or merged from (``ListShards``); its records
            are not read until those are read to their end and finished, as on AWS.
        last_read: The last sequence number read into the lanes (``reread`` resumes after it).
        ending_sequence: The last sequence number of a closed shard (``ListShards``); a read
            that returns nothing once the shard is read up to it ends the shard, also where
            the emulator keeps handing out iterators for a closed shard.
    """

    shard_id: str
    parents: tuple[str, ...] = ()
    last_read: str | None = None
    ending_sequence: str | None = None
    lanes: list[Lane] = field(default_factory=lambda: [Lane(0)])
    iterator: str | None = None
    checkpoint: str | None = None
    caught_up: bool = False
    closed: bool = False
    outstanding: deque[str] = field(default_factory=deque)
    finished: set[str] = field(default_factory=set)

    @property
    def pending(self) -> list[PendingBatch]:
        """Every lane's pending batches (a view)."""
        return [batch for lane in self.lanes for batch in lane.pending]

    @property
    def buffered(self) -> int:
        return sum(len(lane.buffer) for lane in self.lanes)

    @property
    def idle(self) -> bool:
        """Caught up with nothing buffered or pending."""
        return self.caught_up and all(lane.idle for lane in self.lanes)

    def reset(self, lanes: int) -> None:
        """Forget everything read (re-read from the checkpoint)."""
        self.lanes = [Lane(i) for i in range(max(1, lanes))]
        self.iterator = None
        self.last_read = None
        self.outstanding.clear()
        self.finished.clear()
        self.caught_up = False

    def reread(self) -> None:
        """After a read error: get a new iterator after the last record read, keeping what
        the lanes hold (buffered records, pending batches with their retry and invoke
        counts), as Lambda's poller does; nothing is read twice or lost."""
        self.iterator = None
        self.caught_up = False

    def add(self, record: KRecord, now: float) -> None:
        """Buffer a record just read (``now``: monotonic) in the lane of its partition key."""
        lane = self.lanes[lane_of(record.partition_key, len(self.lanes))]
        if not lane.buffer:
            lane.buffer_since = now
        lane.buffer.append(record)
        self.outstanding.append(record.sequence_number)
        self.last_read = record.sequence_number

    def finish(self, records: list[KRecord]) -> str | None:
        """Mark records finished (processed or given up); return the new checkpoint, the end
        of the finished prefix of the shard, or None when it did not move (records of other
        lanes before these may still be in flight)."""
        self.finished.update(r.sequence_number for r in records)
        last = None
        while self.outstanding and self.outstanding[0] in self.finished:
            last = self.outstanding.popleft()
            self.finished.discard(last)
        if last is not None:
            self.checkpoint = last
        return last
