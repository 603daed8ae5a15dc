"""Kinesis event source mappings, run locally the way Lambda runs them.

moto stores event source mappings but never polls a stream. ``EsmEngine`` reads the mappings
back from the emulator (``list_event_source_mappings``) and, for every Kinesis mapping, polls
each shard with ``GetRecords``, builds Lambda's Kinesis event, invokes the function in process
(``stocksage.local.lambda_runtime``) and applies Lambda's documented error handling::

    engine = EsmEngine(session_kwargs)       # boto3 client kwargs for the emulator
    engine.refresh()                          # discover mappings
    engine.drain(timeout=30)                  # process until every shard is caught up
    engine.stats()                            # {uuid: MappingStats}
    engine.start(); ...; engine.stop()        # or: one polling thread per mapping

What is implemented (AWS documentation for Kinesis event sources, see also shared FACTS.md):

Batching
    Up to ``BatchSize`` records per invocation and at most 6 MB of payload (estimated from the
    base64 data and envelope). With ``MaximumBatchingWindowInSeconds`` > 0 a batch that is not
    full (neither BatchSize records nor 6 MB) waits until the window has passed since its first
    record was read; with 0 a batch is invoked as soon as records are there. ``StartingPosition`` ``TRIM_HORIZON``, ``LATEST`` (read as ``AT_TIMESTAMP`` at the
    mapping's ``LastModified`` so that records put between creation and discovery are not
    lost) and ``AT_TIMESTAMP`` (``StartingPositionTimestamp``). ``State`` other than
    ``Enabled``/``Enabling``/``Updating``/``Creating`` pauses the mapping.

Event
    ``Records[].kinesis.{kinesisSchemaVersion "1.0", partitionKey, sequenceNumber, data
    (base64), approximateArrivalTimestamp (epoch seconds, float)}``, ``eventSource
    "aws:kinesis"``, ``eventVersion "1.0"``, ``eventID "shardId-...:seq"``, ``eventName
    "aws:kinesis:record"``, ``invokeIdentityArn`` (the function's role), ``awsRegion``,
    ``eventSourceARN``.

Ordering and ParallelizationFactor
    Each shard has ``ParallelizationFactor`` (1-10) lanes; a record goes to the lane of its
    partition key (MD5 of the key, modulo the factor), so a key's records are delivered in
    sequence-number order (compared as integers: moto's sequence numbers are per-shard
    counters) while different keys of a shard can be in flight at the same time, as on AWS.
    Each lane has one batch in flight; the ready batches of a shard's lanes run concurrently
    (thread pool), outcomes are applied under one lock. A shard's checkpoint is the end of
    the prefix of records that are finished (processed or given up) in every lane, so a
    failing lane holds the checkpoint back while the other lanes go on. Shards of a mapping
    are visited round-robin by the mapping's thread. Invocations are not serialised by any
    global lock (``lambda_runtime`` applies each function's environment per thread).

Partial batch response (``FunctionResponseTypes`` contains ``ReportBatchItemFailures``)
    ``{"batchItemFailures": [{"itemIdentifier": "<seq>"}, ...]}``: records before the lowest
    reported sequence number are checkpointed; the retry re-sends the lowest failed record and
    everything after it in the batch. An empty list (or a missing key / null response) is
    success. An identifier that is empty, null or not a sequence number of the batch makes the
    whole batch failed (as a function error would). Without ``ReportBatchItemFailures`` the
    response is ignored.

Function errors and retries
    An exception or a timeout fails the batch (``lambda_runtime`` stops waiting at the
    function's ``Timeout``: ``Sandbox.Timedout``; the abandoned handler thread's late writes
    still happen, an emulator difference). With ``BisectBatchOnFunctionError`` any failed batch
    of more than one record (whichever record failed, the first included) is split in two
    halves retried in order;
    splitting does not count as a retry ("Splitting a batch does not count towards the retry
    quota"). Interpretation for partial failures with bisect on: the batch is split at the
    lowest reported record (records before it are checkpointed, the rest is retried, and this
    split does not count as a retry); when the reported record is already the first record of
    the batch (no progress), the batch is bisected like on a function error, so that a poison
    record ends up alone before retries are counted. Without bisect, a partial failure counts
    one retry for the remaining records.
    A failed attempt that is not a split counts one retry for the pending batch; the count is
    carried by the records still pending (a partial success does not reset it). Retries are
    bounded by ``MaximumRetryAttempts`` (-1 = unbounded) and ``MaximumRecordAgeInSeconds`` (-1 =
    unbounded; checked before every invocation, new or retry: the expired prefix of the batch
    is discarded). Retries are immediate apart from a short configurable backoff.

On-failure destination (``DestinationConfig.OnFailure.Destination``)
    When retries are exhausted (condition ``RetryAttemptsExhausted``) or records expire
    (``RecordAgeExceeded``) Lambda sends one invocation record describing the discarded range
    to SQS (``SendMessage``) or SNS (``Publish``); S3 destinations get a ``PutObject``. Shape::

        {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
         "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                             "functionError": "Unhandled"},        # absent if none
         "version": "1.0", "timestamp": "...Z",
         "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                              "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                              "batchSize", "streamArn"}}

    Then the records are skipped (checkpoint moves past them) and the lane continues. A send
    that fails does **not** move the checkpoint: the send is retried with the retry backoff
    (the function is not invoked again) until it succeeds, and the lane waits (stats
    ``destination_failures``). Without a destination the records are just skipped (logged).

Checkpoints, crashes
    Last finished sequence number per mapping and shard, in memory and, with
    ``checkpoint_path``, in a JSON file written atomically after every change (temporary file,
    fsync, rename); a restarted engine resumes with ``AFTER_SEQUENCE_NUMBER``, so records that
    were in flight when the runtime died are delivered again. ``EsmEngine.kill()`` simulates
    that crash in process (nothing applied or written after it); ``kill -9`` of the runtime
    process is the real thing. A checkpoint that the stream no longer accepts falls
    back to the starting position. New shards (resharding) are picked up by ``refresh``; a
    closed shard is dropped when exhausted (children are not held back until parents finish).

Test-only faults (``EsmFaults``, ``engine.faults``; the runtime reads
``STOCKSAGE_ESM_REDELIVER=1``)
    ``redeliver``: every batch is delivered twice (the second outcome is applied).
"""

from __future__ import annotations

import base64
import hashlib
import json
import logging
import os
import threading
import time
import uuid
from collections import deque
from collections.abc import Callable, Iterable
from concurrent.futures import ThreadPoolExecutor
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stocksage.local.lambda_runtime import InvocationResult, LambdaFunction

log = logging.getLogger("stocksage.local.esm")

MAX_PAYLOAD_BYTES = 6 * 1024 * 1024
ACTIVE_STATES = {"Enabled", "Enabling", "Creating", "Updating"}

#: ``invoker(function_arn, event) -> InvocationResult``.
Invoker = Callable[[str, dict[str, Any]], InvocationResult]


# --------------------------------------------------------------------------------------------
# Configuration and statistics
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class MappingConfig:
    """The parts of an event source mapping the engine honours."""

    uuid: str
    event_source_arn: str
    function_arn: str
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: datetime | None = None
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    report_batch_item_failures: bool = False
    on_failure_destination: str | None = None
    parallelization_factor: int = 1
    state: str = "Enabled"
    last_modified: datetime | None = None

    @classmethod
    def from_api(cls, m: dict[str, Any]) -> MappingConfig:
        """From one ``list_event_source_mappings`` entry (moto returns nulls for unset fields)."""

        def num(key: str, default: int) -> int:
            value = m.get(key)
            return default if value is None else int(value)

        return cls(
            uuid=m["UUID"],
            event_source_arn=m["EventSourceArn"],
            function_arn=m["FunctionArn"],
            batch_size=num("BatchSize", 100),
            batching_window_s=float(m.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=m.get("StartingPosition") or "TRIM_HORIZON",
            starting_position_timestamp=m.get("StartingPositionTimestamp"),
            bisect_on_error=bool(m.get("BisectBatchOnFunctionError")),
            max_retry_attempts=num("MaximumRetryAttempts", -1),
            max_record_age_s=num("MaximumRecordAgeInSeconds", -1),
            report_batch_item_failures="ReportBatchItemFailures"
            in (m.get("FunctionResponseTypes") or []),
            on_failure_destination=((m.get("DestinationConfig") or {}).get("OnFailure") or {})
            .get("Destination") or None,
            parallelization_factor=num("ParallelizationFactor", 1),
            state=m.get("State") or "Enabled",
            last_modified=m.get("LastModified"),
        )

    @property
    def is_kinesis(self) -> bool:
        return self.event_source_arn.split(":")[2] == "kinesis"

    @property
    def stream_name(self) -> str:
        return self.event_source_arn.split(":stream/", 1)[1]

    @property
    def region(self) -> str:
        return self.event_source_arn.split(":")[3]


@dataclass
class MappingStats:
    """Counters of one mapping (since the engine started)."""

    uuid: str
    function_arn: str
    event_source_arn: str
    shards: int = 0
    invocations: int = 0
    batches_succeeded: int = 0
    records_read: int = 0
    records_succeeded: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    failed_items: int = 0
    retries: int = 0
    bisections: int = 0
    records_to_destination: int = 0
    destination_messages: int = 0
    records_expired: int = 0
    records_discarded: int = 0
    destination_failures: int = 0
    timeouts: int = 0
    redeliveries: int = 0
    caught_up: bool = False
    last_error: str | None = None
    last_invocation_at: float | None = None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


# --------------------------------------------------------------------------------------------
# Records, batches, shards
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class KRecord:
    sequence_number: str
    partition_key: str
    data: bytes
    arrival: float  # epoch seconds

    @property
    def seq(self) -> int:
        return int(self.sequence_number)

    @property
    def size(self) -> int:
        # base64 data + key + seq + a fixed envelope, close to the event's JSON size
        return (len(self.data) + 2) // 3 * 4 + len(self.partition_key) + 2 * len(
            self.sequence_number) + 400


@dataclass
class PendingBatch:
    """Records handed to (or being retried on) the function; ``retries`` counts failed attempts
    that are not splits, ``invokes`` every attempt that included these records.
    ``discard_condition`` is set once the records are given up (``RetryAttemptsExhausted``,
    ``RecordAgeExceeded``): only the send to the on-failure destination is still to do."""

    records: list[KRecord]
    retries: int = 0
    invokes: int = 0
    last_request_id: str = ""
    last_function_error: str | None = None
    discard_condition: str | None = None
    send_failures: int = 0


@dataclass
class Lane:
    """One of a shard's ``ParallelizationFactor`` concurrent batch lanes. Records are assigned
    by partition key (MD5, like Kinesis's hash key), so a key's records stay in order."""

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
    shard_id: str
    lanes: list[Lane] = field(default_factory=lambda: [Lane(0)])
    iterator: str | None = None
    checkpoint: str | None = None
    caught_up: bool = False
    closed: bool = False
    #: sequence numbers read but not finished, in read (= sequence) order, and the finished
    #: ones among them: the checkpoint is the end of the finished prefix
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
        return self.caught_up and all(lane.idle for lane in self.lanes)

    def reset(self, lanes: int) -> None:
        """Forget everything read (re-read from the checkpoint)."""
        self.lanes = [Lane(i) for i in range(max(1, lanes))]
        self.iterator = None
        self.outstanding.clear()
        self.finished.clear()
        self.caught_up = False


@dataclass
class EsmFaults:
    """Test-only faults of the engine (shared by its mapping workers; switch at any time).

    Attributes:
        redeliver: Deliver every batch twice: after an invocation that did not fail, the same
            event is invoked again (new request id) and its outcome is the one applied, as
            when Lambda loses a checkpoint and re-reads the records. Handlers must be
            idempotent.
    """

    redeliver: bool = False


def _iso(ts: float) -> str:
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_event(records: list[KRecord], shard_id: str, config: MappingConfig,
                role: str) -> dict[str, Any]:
    """Lambda's event for a Kinesis batch."""
    return {
        "Records": [
            {
                "kinesis": {
                    "kinesisSchemaVersion": "1.0",
                    "partitionKey": r.partition_key,
                    "sequenceNumber": r.sequence_number,
                    "data": base64.b64encode(r.data).decode("ascii"),
                    "approximateArrivalTimestamp": r.arrival,
                },
                "eventSource": "aws:kinesis",
                "eventVersion": "1.0",
                "eventID": f"{shard_id}:{r.sequence_number}",
                "eventName": "aws:kinesis:record",
                "invokeIdentityArn": role,
                "awsRegion": config.region,
                "eventSourceARN": config.event_source_arn,
            }
            for r in records
        ]
    }


def failure_record(config: MappingConfig, shard_id: str, batch: PendingBatch,
                   condition: str) -> dict[str, Any]:
    """The invocation record Lambda sends to an on-failure destination for a Kinesis batch."""
    records = batch.records
    response: dict[str, Any] = {"statusCode": 200, "executedVersion": "$LATEST"}
    if batch.last_function_error:
        response["functionError"] = batch.last_function_error
    return {
        "requestContext": {
            "requestId": batch.last_request_id or str(uuid.uuid4()),
            "functionArn": config.function_arn,
            "condition": condition,
            "approximateInvokeCount": batch.invokes,
        },
        "responseContext": response,
        "version": "1.0",
        "timestamp": _iso(time.time()),
        "KinesisBatchInfo": {
            "shardId": shard_id,
            "startSequenceNumber": records[0].sequence_number,
            "endSequenceNumber": records[-1].sequence_number,
            "approximateArrivalOfFirstRecord": _iso(records[0].arrival),
            "approximateArrivalOfLastRecord": _iso(records[-1].arrival),
            "batchSize": len(records),
            "streamArn": config.event_source_arn,
        },
    }


# --------------------------------------------------------------------------------------------
# Checkpoints
# --------------------------------------------------------------------------------------------


class CheckpointStore:
    """``{mapping uuid: {"stream": arn, "shards": {shard_id: sequence number}}}``, optionally
    persisted to a JSON file (atomic replace on every change)."""

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._closed = False
        self._data: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            try:
                self._data = json.loads(self.path.read_text())
            except (OSError, ValueError) as err:
                log.warning("ignoring unreadable checkpoint file %s: %s", self.path, err)

    def get(self, mapping: str, stream_arn: str, shard_id: str) -> str | None:
        with self._lock:
            entry = self._data.get(mapping)
            if not entry or entry.get("stream") != stream_arn:
                return None
            return entry.get("shards", {}).get(shard_id)

    def set(self, mapping: str, stream_arn: str, shard_id: str, seq: str) -> None:
        with self._lock:
            if self._closed:
                return
            entry = self._data.setdefault(mapping, {"stream": stream_arn, "shards": {}})
            if entry.get("stream") != stream_arn:
                entry.clear()
                entry.update({"stream": stream_arn, "shards": {}})
            entry["shards"][shard_id] = seq
            self._save()

    def forget(self, mapping: str) -> None:
        with self._lock:
            if self._data.pop(mapping, None) is not None:
                self._save()

    def snapshot(self) -> dict[str, dict[str, Any]]:
        with self._lock:
            return json.loads(json.dumps(self._data))

    def close(self) -> None:
        """Write nothing more (a killed engine)."""
        with self._lock:
            self._closed = True

    def _save(self) -> None:
        """Atomic: write a temporary file in the same folder, fsync it, rename it over the
        checkpoint file (a crash leaves the old or the new file, never a torn one)."""
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + f".{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(self._data, indent=1, sort_keys=True))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


# --------------------------------------------------------------------------------------------
# One mapping
# --------------------------------------------------------------------------------------------


class MappingWorker:
    """Polls the shards of one Kinesis mapping round-robin and runs its batches.

    Per shard, up to ``ParallelizationFactor`` lanes (by partition key) each have at most one
    batch in flight; the batches of a round that are ready run concurrently (a thread pool),
    outcomes are applied under one lock. A worker that was ``kill``\\ ed applies nothing more:
    no outcome, no checkpoint (a crash mid-batch).
    """

    def __init__(self, config: MappingConfig, clients: _Clients, invoker: Invoker,
                 checkpoints: CheckpointStore, role_of: Callable[[str], str],
                 retry_backoff: tuple[float, float] = (0.05, 2.0),
                 idle_sleep: float = 0.2, faults: EsmFaults | None = None) -> None:
        self.config = config
        self.clients = clients
        self.invoker = invoker
        self.checkpoints = checkpoints
        self.role_of = role_of
        self.retry_backoff = retry_backoff
        self.idle_sleep = idle_sleep
        self.faults = faults or EsmFaults()
        self.shards: dict[str, ShardState] = {}
        self.stats = MappingStats(config.uuid, config.function_arn, config.event_source_arn)
        self.lock = threading.RLock()  # one round at a time (thread loop vs. drain)
        self._apply_lock = threading.RLock()  # outcomes, checkpoints, stats
        self._pool: ThreadPoolExecutor | None = None
        self._round = 0
        self._last_idle_round = -1
        self._round_cv = threading.Condition()
        self._stop = threading.Event()
        self._killed = threading.Event()
        self._thread: threading.Thread | None = None
        self._last_shard_refresh = 0.0
        self._finished: set[str] = set()  # closed shards read to their end

    @property
    def lanes(self) -> int:
        return max(1, min(10, self.config.parallelization_factor or 1))

    # ---------------------------------------------------------------- shards
    def refresh_shards(self) -> None:
        kinesis = self.clients.kinesis
        ids: list[str] = []
        token = None
        while True:
            kwargs: dict[str, Any] = {"NextToken": token} if token else {
                "StreamARN": self.config.event_source_arn}
            resp = kinesis.list_shards(**kwargs)
            ids += [s["ShardId"] for s in resp.get("Shards", [])]
            token = resp.get("NextToken")
            if not token:
                break
        for shard_id in ids:
            if shard_id not in self.shards and shard_id not in self._finished:
                shard = ShardState(shard_id)
                shard.reset(self.lanes)
                self.shards[shard_id] = shard
        self.stats.shards = len(self.shards)
        self._last_shard_refresh = time.monotonic()

    def _iterator(self, shard: ShardState) -> str:
        kinesis = self.clients.kinesis
        arn = self.config.event_source_arn
        checkpoint = shard.checkpoint or self.checkpoints.get(self.config.uuid, arn,
                                                              shard.shard_id)
        if checkpoint:
            shard.checkpoint = checkpoint
            try:
                return kinesis.get_shard_iterator(
                    StreamName=self.config.stream_name, ShardId=shard.shard_id,
                    ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                    StartingSequenceNumber=checkpoint)["ShardIterator"]
            except Exception as err:  # noqa: BLE001 - stream recreated/trimmed
                log.warning("checkpoint %s of %s rejected (%s); using the starting position",
                            checkpoint, shard.shard_id, err)
        position = self.config.starting_position
        # by name: moto's iterators only carry the stream name
        kwargs: dict[str, Any] = {"StreamName": self.config.stream_name,
                                  "ShardId": shard.shard_id}
        if position == "AT_TIMESTAMP" and self.config.starting_position_timestamp:
            kwargs.update(ShardIteratorType="AT_TIMESTAMP",
                          Timestamp=self.config.starting_position_timestamp)
        elif position == "LATEST" and self.config.last_modified is not None:
            kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=min(
                self.config.last_modified, datetime.now(UTC)))
        elif position == "LATEST":
            kwargs.update(ShardIteratorType="LATEST")
        else:
            kwargs.update(ShardIteratorType="TRIM_HORIZON")
        return kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def _fetch(self, shard: ShardState) -> None:
        """Read more records into the lanes when they hold less than a batch per lane."""
        if shard.closed or shard.buffered >= self.config.batch_size * len(shard.lanes):
            return
        if shard.iterator is None:
            shard.iterator = self._iterator(shard)
        resp = self.clients.kinesis.get_records(
            ShardIterator=shard.iterator, StreamARN=self.config.event_source_arn,
            Limit=min(10000, max(self.config.batch_size * len(shard.lanes), 100)))
        records = resp.get("Records", [])
        shard.iterator = resp.get("NextShardIterator")
        if shard.iterator is None:
            shard.closed = True
        now = time.monotonic()
        for r in records:
            arrival = r["ApproximateArrivalTimestamp"]
            record = KRecord(
                r["SequenceNumber"], r["PartitionKey"], bytes(r["Data"]),
                arrival.timestamp() if hasattr(arrival, "timestamp") else float(arrival))
            lane = shard.lanes[lane_of(record.partition_key, len(shard.lanes))]
            if not lane.buffer:
                lane.buffer_since = now
            lane.buffer.append(record)
            shard.outstanding.append(record.sequence_number)
        self.stats.records_read += len(records)
        shard.caught_up = not records

    # ---------------------------------------------------------------- batches
    def _next_batch(self, shard: ShardState, lane: Lane) -> PendingBatch | None:
        if lane.pending:
            return lane.pending[0]
        if not lane.buffer:
            return None
        full = len(lane.buffer) >= self.config.batch_size or sum(
            r.size for r in lane.buffer) >= MAX_PAYLOAD_BYTES
        window = self.config.batching_window_s
        waited = time.monotonic() - (lane.buffer_since or time.monotonic())
        if not full and window > 0 and waited < window and not shard.closed:
            return None
        take, size = 0, 0
        for r in lane.buffer[: self.config.batch_size]:
            if take and size + r.size > MAX_PAYLOAD_BYTES:
                break
            take, size = take + 1, size + r.size
        batch = PendingBatch(lane.buffer[:take])
        del lane.buffer[:take]
        lane.buffer_since = time.monotonic() if lane.buffer else None
        lane.pending.append(batch)
        return batch

    def _complete(self, shard: ShardState, records: list[KRecord]) -> None:
        """Mark records finished (processed or given up) and move the checkpoint to the end
        of the finished prefix of the shard (records of other lanes may still be in flight)."""
        if self._killed.is_set():
            return
        shard.finished.update(r.sequence_number for r in records)
        last = None
        while shard.outstanding and shard.outstanding[0] in shard.finished:
            last = shard.outstanding.popleft()
            shard.finished.discard(last)
        if last is not None:
            shard.checkpoint = last
            self.checkpoints.set(self.config.uuid, self.config.event_source_arn,
                                 shard.shard_id, last)

    def _give_up(self, shard: ShardState, lane: Lane, batch: PendingBatch) -> None:
        """Send the failure record of ``lane.pending[0]`` (``batch``, whose
        ``discard_condition`` is set) and skip its records; when the send fails the batch
        stays pending and the send is retried (the checkpoint does not move), as on AWS."""
        dest = self.config.on_failure_destination
        if dest:
            message = json.dumps(failure_record(self.config, shard.shard_id, batch,
                                                batch.discard_condition or "Unknown"))
            try:
                self.clients.send_to_destination(dest, message, self.config, shard.shard_id)
            except Exception as err:  # noqa: BLE001 - retried; the shard waits
                batch.send_failures += 1
                self.stats.destination_failures += 1
                self.stats.last_error = f"on-failure destination {dest}: {err}"
                log.error("could not send failure record to %s (attempt %d): %s", dest,
                          batch.send_failures, err)
                lane.next_attempt_at = time.monotonic() + self._backoff(batch.send_failures)
                return
            self.stats.records_to_destination += len(batch.records)
            self.stats.destination_messages += 1
        else:
            log.warning("mapping %s: %s, %d records of %s skipped (no destination)",
                        self.config.uuid, batch.discard_condition, len(batch.records),
                        shard.shard_id)
        self.stats.records_discarded += len(batch.records)
        lane.pending.pop(0)
        lane.next_attempt_at = 0.0
        self._complete(shard, batch.records)

    def _expire(self, lane: Lane, batch: PendingBatch) -> None:
        """Split off the prefix of ``batch`` (= ``lane.pending[0]``) older than
        MaximumRecordAgeInSeconds as a batch to give up (``RecordAgeExceeded``)."""
        max_age = self.config.max_record_age_s
        if max_age is None or max_age < 0 or batch.discard_condition:
            return
        cutoff = time.time() - max_age
        n = 0
        while n < len(batch.records) and batch.records[n].arrival < cutoff:
            n += 1
        if n == 0:
            return
        expired = PendingBatch(batch.records[:n], batch.retries, batch.invokes,
                               batch.last_request_id, batch.last_function_error,
                               discard_condition="RecordAgeExceeded")
        self.stats.records_expired += n
        rest = batch.records[n:]
        lane.pending[0:1] = [expired] + ([batch] if rest else [])
        batch.records = rest

    def _backoff(self, attempt: int) -> float:
        base, cap = self.retry_backoff
        return min(cap, base * (2 ** (attempt - 1))) if base > 0 else 0.0

    def _run_batch(self, shard: ShardState, lane: Lane) -> None:
        """Run ``lane.pending[0]``: give it up, or invoke the function and apply the outcome.
        Safe to call concurrently for different lanes."""
        with self._apply_lock:
            if self._killed.is_set() or not lane.pending:
                return
            self._expire(lane, lane.pending[0])
            batch = lane.pending[0]
            if batch.discard_condition:
                self._give_up(shard, lane, batch)
                return
        cfg = self.config
        event = build_event(batch.records, shard.shard_id, cfg, self.role_of(cfg.function_arn))
        result = self.invoker(cfg.function_arn, event)
        if self.faults.redeliver and result.error is None and not self._killed.is_set():
            with self._apply_lock:
                self.stats.invocations += 1
                self.stats.redeliveries += 1
                batch.invokes += 1
            result = self.invoker(cfg.function_arn, event)
        with self._apply_lock:
            if self._killed.is_set():
                return  # the runtime "crashed" mid-batch: nothing is applied
            self._apply(shard, lane, batch, result)

    def _apply(self, shard: ShardState, lane: Lane, batch: PendingBatch,
               result: InvocationResult) -> None:
        cfg = self.config
        records = batch.records
        batch.invokes += 1
        batch.last_request_id = result.request_id
        self.stats.invocations += 1
        self.stats.last_invocation_at = time.time()

        failed_from: int | None = None  # index of the lowest failed record, None = success
        if result.error is not None:
            self.stats.function_errors += 1
            if result.error.get("errorType") == "Sandbox.Timedout":
                self.stats.timeouts += 1
            self.stats.last_error = f"{result.error.get('errorType')}: " \
                                    f"{result.error.get('errorMessage')}"
            batch.last_function_error = "Unhandled"
            failed_from = 0
        else:
            batch.last_function_error = None
            failed_from = self._item_failures(records, result.payload)
            if failed_from is not None:
                self.stats.partial_failures += 1

        if failed_from is None:  # success
            lane.pending.pop(0)
            self.stats.batches_succeeded += 1
            self.stats.records_succeeded += len(records)
            lane.next_attempt_at = 0.0
            self._complete(shard, records)
            return

        if failed_from > 0:  # partial success: checkpoint before the lowest failure
            self.stats.records_succeeded += failed_from
            self._complete(shard, records[:failed_from])
            batch.records = records = records[failed_from:]
            if cfg.bisect_on_error:  # "split there": a split, not a retry
                self.stats.bisections += 1
                lane.next_attempt_at = 0.0
                return

        if cfg.bisect_on_error and len(records) > 1:  # any failed batch of > 1 record
            half = len(records) // 2
            first = PendingBatch(records[:half], batch.retries, batch.invokes,
                                 batch.last_request_id, batch.last_function_error)
            second = PendingBatch(records[half:], batch.retries, batch.invokes,
                                  batch.last_request_id, batch.last_function_error)
            lane.pending[0:1] = [first, second]
            self.stats.bisections += 1
            return

        batch.retries += 1
        if 0 <= cfg.max_retry_attempts < batch.retries:
            batch.discard_condition = "RetryAttemptsExhausted"
            self._give_up(shard, lane, batch)
            return
        self.stats.retries += 1
        lane.next_attempt_at = time.monotonic() + self._backoff(batch.retries)

    def _item_failures(self, records: list[KRecord], payload: Any) -> int | None:
        """Index of the lowest failed record (0 when the whole batch failed), None = success."""
        if not self.config.report_batch_item_failures or not isinstance(payload, dict):
            return None
        failures = payload.get("batchItemFailures")
        if not failures:
            return None
        index = {r.sequence_number: i for i, r in enumerate(records)}
        lowest: int | None = None
        for item in failures if isinstance(failures, list) else [None]:
            ident = item.get("itemIdentifier") if isinstance(item, dict) else None
            if not ident or str(ident) not in index:
                self.stats.failed_items += len(records)
                return 0
            i = index[str(ident)]
            lowest = i if lowest is None else min(lowest, i)
        self.stats.failed_items += len(failures)
        return lowest

    # ---------------------------------------------------------------- rounds
    def _ready_lanes(self, shard: ShardState) -> tuple[list[Lane], bool]:
        """Lanes with a batch to run now, and whether some lane waits (backoff, window)."""
        if len(shard.lanes) != self.lanes and all(lane.idle for lane in shard.lanes) \
                and not shard.outstanding:
            shard.lanes = [Lane(i) for i in range(self.lanes)]  # ParallelizationFactor changed
        ready, waiting = [], False
        now = time.monotonic()
        for lane in shard.lanes:
            if lane.pending and now < lane.next_attempt_at:
                waiting = True
                continue
            if self._next_batch(shard, lane) is not None:
                ready.append(lane)
        return ready, waiting

    def _run_lanes(self, shard: ShardState, lanes: list[Lane]) -> None:
        if len(lanes) == 1:
            self._run_batch(shard, lanes[0])
            return
        if self._pool is None:
            self._pool = ThreadPoolExecutor(max_workers=10,
                                            thread_name_prefix=f"esm-{self.config.uuid[:8]}")
        futures = [self._pool.submit(self._run_batch, shard, lane) for lane in lanes]
        for future in futures:
            future.result()

    def run_round(self) -> bool:
        """Visit every shard once: fetch, then run at most one batch per lane (lanes of a
        shard concurrently). True when work was done or is still to do."""
        with self._round_cv:
            self._round += 1
            this_round = self._round
        busy = False
        with self.lock:
            if self._killed.is_set():
                self._finish_round(this_round, idle=True)
                return False
            if time.monotonic() - self._last_shard_refresh > 30 or not self.shards:
                try:
                    self.refresh_shards()
                except Exception as err:  # noqa: BLE001 - e.g. the stream was deleted
                    self.stats.last_error = f"list_shards: {type(err).__name__}: {err}"
                    log.warning("mapping %s: %s", self.config.uuid, self.stats.last_error)
                    self._last_shard_refresh = time.monotonic()
                    self._finish_round(this_round, idle=True)
                    return False
            if self.config.state not in ACTIVE_STATES:
                self._finish_round(this_round, idle=True)
                return False
            for shard in list(self.shards.values()):
                try:
                    self._fetch(shard)
                    ready, waiting = self._ready_lanes(shard)
                    busy = busy or waiting or bool(ready)
                    if ready:
                        self._run_lanes(shard, ready)
                except Exception as err:
                    self.stats.last_error = f"{shard.shard_id}: {type(err).__name__}: {err}"
                    log.exception("mapping %s shard %s", self.config.uuid, shard.shard_id)
                    with self._apply_lock:
                        shard.reset(self.lanes)  # re-read from the checkpoint
                    busy = True
                if not shard.idle:
                    busy = True
                if shard.closed and shard.idle:
                    self.shards.pop(shard.shard_id, None)
                    self._finished.add(shard.shard_id)
            self.stats.caught_up = not busy
        self._finish_round(this_round, idle=not busy)
        return busy

    def _finish_round(self, this_round: int, idle: bool) -> None:
        with self._round_cv:
            if idle:
                self._last_idle_round = max(self._last_idle_round, this_round)
            self._round_cv.notify_all()

    def wait_idle(self, timeout: float) -> bool:
        """Wait (threaded mode) for a fully idle round that started after this call."""
        with self._round_cv:
            target = self._round
            return self._round_cv.wait_for(lambda: self._last_idle_round > target, timeout)

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name=f"esm-{self.config.uuid[:8]}",
                                        daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                busy = self.run_round()
            except Exception as err:  # noqa: BLE001 - e.g. the emulator went away
                self.stats.last_error = f"{type(err).__name__}: {err}"
                log.warning("mapping %s: %s", self.config.uuid, err)
                busy = False
                self._stop.wait(1.0)
            if not busy:
                self._stop.wait(self.idle_sleep)

    def stop(self, timeout: float = 10.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
            self._thread = None
        if self._pool is not None:
            self._pool.shutdown(wait=False)
            self._pool = None

    def kill(self) -> None:
        """Simulate a crash: from now on nothing is applied or checkpointed, in-flight
        invocations are abandoned (their late side effects still happen), threads end."""
        self._killed.set()
        self._stop.set()

    @property
    def running(self) -> bool:
        return self._thread is not None and self._thread.is_alive()


# --------------------------------------------------------------------------------------------
# Clients and the engine
# --------------------------------------------------------------------------------------------


class _Clients:
    def __init__(self, client_kwargs: dict[str, Any]) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(client_kwargs)
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        self._kwargs = kwargs
        self._boto3 = boto3
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        key = (service, region or "")
        with self._lock:
            if key not in self._cache:
                kwargs = dict(self._kwargs)
                if region:
                    kwargs["region_name"] = region
                self._cache[key] = self._boto3.client(service, **kwargs)
            return self._cache[key]

    @property
    def kinesis(self) -> Any:
        return self.client("kinesis")

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")

    def send_to_destination(self, arn: str, message: str, config: MappingConfig,
                            shard_id: str) -> None:
        parts = arn.split(":")
        service, region, account = parts[2], parts[3], parts[4]
        if service == "sqs":
            sqs = self.client("sqs", region)
            url = sqs.get_queue_url(QueueName=parts[5], QueueOwnerAWSAccountId=account)[
                "QueueUrl"]
            sqs.send_message(QueueUrl=url, MessageBody=message)
        elif service == "sns":
            self.client("sns", region).publish(TopicArn=arn, Message=message)
        elif service == "s3":
            now = datetime.now(UTC)
            key = (f"aws/lambda/{config.uuid}/{shard_id}/{now:%Y/%m/%d/%Y-%m-%dT%H.%M.%S}-"
                   f"{uuid.uuid4()}")
            self.client("s3", region).put_object(Bucket=parts[5], Key=key,
                                                 Body=message.encode())
        else:
            raise ValueError(f"unsupported on-failure destination {arn}")


class EsmEngine:
    """Runs every Kinesis event source mapping found in the emulator.

    Args:
        client_kwargs: boto3 client keyword arguments (``endpoint_url``, ``region_name``,
            credentials).
        invoker: ``invoker(function_arn, event) -> InvocationResult``; default: in-process
            ``LambdaFunction`` read from the emulator (re-read when its configuration changes).
        checkpoint_path: JSON file of checkpoints (None: memory only).
        code_roots: Where handler modules are imported from (default: the repository root).
        retry_backoff: (first delay, cap) in seconds between retries of a failed batch.
        function_filter: Only mappings whose function ARN passes it are run.
        faults: Test-only faults (``EsmFaults``; also reachable as ``engine.faults`` to switch
            them at run time), e.g. ``EsmFaults(redeliver=True)``.
    """

    def __init__(
        self,
        client_kwargs: dict[str, Any],
        invoker: Invoker | None = None,
        checkpoint_path: str | Path | None = None,
        code_roots: Iterable[str | Path] | None = None,
        retry_backoff: tuple[float, float] = (0.05, 2.0),
        idle_sleep: float = 0.2,
        function_filter: Callable[[str], bool] | None = None,
        faults: EsmFaults | None = None,
    ) -> None:
        self.faults = faults or EsmFaults()
        self.clients = _Clients(client_kwargs)
        self.checkpoints = CheckpointStore(checkpoint_path)
        self.code_roots = list(code_roots) if code_roots else None
        self.retry_backoff = retry_backoff
        self.idle_sleep = idle_sleep
        self.function_filter = function_filter
        self.invoker: Invoker = invoker or self._invoke_local
        self.workers: dict[str, MappingWorker] = {}
        self._functions: dict[str, LambdaFunction] = {}
        self._lock = threading.RLock()
        self._running = False

    # ---------------------------------------------------------------- functions
    def function(self, function_arn: str, reload: bool = False) -> LambdaFunction:
        with self._lock:
            fn = self._functions.get(function_arn)
            if fn is None or reload:
                fresh = LambdaFunction.from_deployed(self.clients.lambda_, function_arn,
                                                     self.code_roots)
                if fn is None or fresh.revision != fn.revision or fresh.handler != fn.handler \
                        or fresh.environment != fn.environment:
                    fn = fresh
                self._functions[function_arn] = fn
            return fn

    def _invoke_local(self, function_arn: str, event: dict[str, Any]) -> InvocationResult:
        return self.function(function_arn).invoke_detailed(event)

    def _role_of(self, function_arn: str) -> str:
        try:
            return self.function(function_arn).role
        except Exception:  # noqa: BLE001 - the event still goes out
            return ""

    # ---------------------------------------------------------------- mappings
    def list_mappings(self) -> list[MappingConfig]:
        out: list[MappingConfig] = []
        kwargs: dict[str, Any] = {}
        while True:
            resp = self.clients.lambda_.list_event_source_mappings(**kwargs)
            for m in resp.get("EventSourceMappings", []):
                config = MappingConfig.from_api(m)
                if config.is_kinesis and (self.function_filter is None
                                          or self.function_filter(config.function_arn)):
                    out.append(config)
            marker = resp.get("NextMarker")
            if not marker:
                return out
            kwargs = {"Marker": marker}

    def refresh(self) -> list[str]:
        """Discover mappings: start new ones, update changed ones, stop deleted ones; re-read
        function configurations. Returns the active mapping UUIDs."""
        configs = {c.uuid: c for c in self.list_mappings()}
        with self._lock:
            for gone in set(self.workers) - set(configs):
                worker = self.workers.pop(gone)
                worker.stop()
                log.info("mapping %s removed", gone)
            for uid, config in configs.items():
                worker = self.workers.get(uid)
                if worker is None:
                    worker = MappingWorker(config, self.clients, self._invoke, self.checkpoints,
                                           self._role_of, self.retry_backoff, self.idle_sleep,
                                           self.faults)
                    self.workers[uid] = worker
                    log.info("mapping %s: %s -> %s", uid, config.event_source_arn,
                             config.function_arn)
                    if self._running:
                        worker.start()
                elif worker.config != config:
                    with worker.lock:
                        worker.config = config
                        worker.stats.function_arn = config.function_arn
            for arn in {c.function_arn for c in configs.values()}:
                if self.invoker == self._invoke_local:
                    try:
                        self.function(arn, reload=True)
                    except Exception as err:  # noqa: BLE001 - reported at invocation
                        log.warning("function %s: %s", arn, err)
            return list(configs)

    def _invoke(self, function_arn: str, event: dict[str, Any]) -> InvocationResult:
        return self.invoker(function_arn, event)

    # ---------------------------------------------------------------- running
    def start(self) -> None:
        """One polling thread per mapping (call ``refresh`` periodically to find new ones)."""
        with self._lock:
            self._running = True
            for worker in self.workers.values():
                worker.start()

    def stop(self) -> None:
        with self._lock:
            self._running = False
            workers = list(self.workers.values())
        for worker in workers:
            worker.stop()

    def kill(self) -> None:
        """Simulate a crash of the runtime (e.g. mid-batch): every worker stops applying
        outcomes at once and the checkpoint file is written no more. Build a new engine on the
        same ``checkpoint_path`` to restart: records after the last checkpoint are delivered
        again. (A real ``kill -9`` of ``python -m stocksage.local.runtime`` behaves the same:
        the checkpoint file is replaced atomically.)"""
        with self._lock:
            self._running = False
            workers = list(self.workers.values())
        self.checkpoints.close()
        for worker in workers:
            worker.kill()

    def run_once(self) -> bool:
        """One round over every mapping in the calling thread; True when work was done."""
        busy = False
        for worker in list(self.workers.values()):
            busy = worker.run_round() or busy
        return busy

    def drain(self, timeout: float = 30.0, refresh: bool = True) -> bool:
        """Process until every shard of every mapping is caught up with no batch pending or
        buffered; True when that happened within ``timeout`` seconds. Records put before the
        call are guaranteed to have been handled (or discarded) when it returns True.

        Works with and without ``start()``: with threads it waits for them, without it runs
        rounds in the calling thread.
        """
        deadline = time.monotonic() + timeout
        if refresh:
            self.refresh()
        workers = list(self.workers.values())
        for worker in workers:
            if worker.running:
                if not worker.wait_idle(max(0.0, deadline - time.monotonic())):
                    return False
            else:
                while True:
                    start_round = worker._round
                    busy = worker.run_round()
                    if not busy and worker._last_idle_round > start_round:
                        break
                    if time.monotonic() >= deadline:
                        return False
                    if not busy:
                        continue
                    lanes = [lane for s in worker.shards.values() for lane in s.lanes]
                    pending = [lane.next_attempt_at for lane in lanes if lane.pending]
                    wait = min(pending, default=0.0) - time.monotonic()
                    window = any(lane.buffer and not lane.pending for lane in lanes)
                    if wait > 0 or window:
                        time.sleep(min(max(wait, 0.01), 0.05))
        return True

    def stats(self) -> dict[str, MappingStats]:
        return {uid: w.stats for uid, w in self.workers.items()}
