"""One event source mapping at work: read its shards, run its batches, apply the outcomes.

A ``MappingWorker`` visits the shards of one Kinesis mapping round-robin. Per round and shard
it reads more records when the lanes hold less than a batch each, then runs at most one batch
per lane: the ready batches of a shard's lanes concurrently (a thread pool), their outcomes
applied under one lock. Applying an outcome is where Lambda's error handling happens::

    success                  -> the records are finished (checkpoint moves)
    partial failure          -> records before the lowest failed one are finished; the rest
                                is split off (bisect on) or retried (bisect off)
    function error/timeout   -> bisect (batch of 2+ records, bisect on) or retry
    retries exhausted, or    -> the failure record goes to the on-failure destination, then
    records too old             the records are skipped (finished)

(the rules: ``stocksage.local.esm.batching``; the semantics: the package docstring). The worker
runs in its own thread (``start``/``stop``) or in the caller's (``run_round``,
``run_until_idle``). A ``kill``-ed worker applies nothing more (a crash mid-batch).
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import Any

from stocksage.local.checkpoints import CheckpointStore
from stocksage.local.clients import Clients
from stocksage.local.esm.batching import (
    backoff,
    bisect,
    lowest_failed_item,
    next_batch,
    split_expired,
)
from stocksage.local.esm.destinations import send_failure_record
from stocksage.local.esm.event import build_event, failure_record
from stocksage.local.esm.mapping import ACTIVE_STATES, EsmFaults, MappingConfig, MappingStats
from stocksage.local.esm.reader import get_records, list_shards, shard_iterator
from stocksage.local.esm.records import KRecord, Lane, PendingBatch, ShardState
from stocksage.local.lambda_invoker import InvocationResult

log = logging.getLogger("stocksage.local.esm")

#: ``invoker(function_arn, event) -> InvocationResult``.
Invoker = Callable[[str, dict[str, Any]], InvocationResult]

#: Seconds between ``ListShards`` calls of a mapping (new shards after resharding).
SHARD_REFRESH_S = 30

#: Records of a shard read and not yet checkpointed beyond which no more are read: a lane
#: stuck on a record holds the checkpoint, and the other lanes' finished records wait behind
#: it; without a bound a stuck lane whose keys are rare lets the shard read the whole stream.
MAX_OUTSTANDING = 10_000


class MappingWorker:
    """Polls the shards of one Kinesis mapping round-robin and runs its batches.

    Args:
        config: The mapping (replaced by the engine when the mapping changes).
        clients: boto3 clients on the emulator.
        invoker: Runs the function with an event.
        checkpoints: Where finished positions are kept.
        role_of: The execution role of a function (``invokeIdentityArn`` of the event).
        retry_backoff: (first delay, cap) in seconds between attempts of a failed batch.
        idle_sleep: Seconds the thread sleeps after a round with nothing to do.
        faults: Test-only faults (shared with the engine).
    """

    def __init__(self, config: MappingConfig, clients: Clients, invoker: Invoker,
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
        self.max_outstanding = MAX_OUTSTANDING

    @property
    def lanes(self) -> int:
        """Lanes per shard (``ParallelizationFactor``, 1-10)."""
        return self.config.lanes

    # ---------------------------------------------------------------- reading
    def refresh_shards(self) -> None:
        """Add the stream's new shards (resharding); closed shards read to their end stay
        dropped."""
        listed = list_shards(self.clients.kinesis, self.config.event_source_arn)
        for shard_id, info in listed.items():
            if shard_id in self.shards:  # known: it may have been closed since (resharding)
                self.shards[shard_id].ending_sequence = info.ending_sequence
            elif shard_id not in self._finished:
                shard = ShardState(shard_id, parents=info.parents,
                                   ending_sequence=info.ending_sequence)
                shard.reset(self.lanes)
                self.shards[shard_id] = shard
        self.stats.shards = len(self.shards)
        self._last_shard_refresh = time.monotonic()

    def _fetch(self, shard: ShardState) -> None:
        """Read more records into the lanes when they hold less than a batch per lane and the
        shard has fewer than ``max_outstanding`` records read and not checkpointed."""
        if shard.closed or shard.buffered >= self.config.batch_size * len(shard.lanes) \
                or len(shard.outstanding) >= self.max_outstanding:
            return
        if shard.iterator is None:
            checkpoint = shard.checkpoint or self.checkpoints.get(
                self.config.uuid, self.config.event_source_arn, shard.shard_id)
            if checkpoint:
                shard.checkpoint = checkpoint
            shard.iterator = shard_iterator(self.clients.kinesis, self.config, shard.shard_id,
                                            after=shard.last_read or checkpoint)
        records, shard.iterator = get_records(
            self.clients.kinesis, self.config.event_source_arn, shard.iterator,
            limit=min(10000, max(self.config.batch_size * len(shard.lanes), 100)))
        position = shard.last_read or shard.checkpoint
        if shard.iterator is None or (
                not records and shard.ending_sequence is not None
                and (position is None or int(position) >= int(shard.ending_sequence))):
            shard.closed = True  # read to its end (no next iterator, or nothing after the end)
        now = time.monotonic()
        for record in records:
            shard.add(record, now)
        self.stats.records_read += len(records)
        shard.caught_up = not records

    # ---------------------------------------------------------------- outcomes
    def _complete(self, shard: ShardState, records: list[KRecord]) -> None:
        """Mark records finished (processed or given up) and checkpoint the end of the
        shard's finished prefix (records of other lanes may still be in flight)."""
        if self._killed.is_set():
            return
        last = shard.finish(records)
        if last is not None:
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
                send_failure_record(self.clients, dest, message, self.config.uuid,
                                    shard.shard_id)
            except Exception as err:  # noqa: BLE001 - retried; the shard waits
                batch.send_failures += 1
                self.stats.destination_failures += 1
                self.stats.last_error = f"on-failure destination {dest}: {err}"
                log.error("could not send failure record to %s (attempt %d): %s", dest,
                          batch.send_failures, err)
                lane.next_attempt_at = time.monotonic() + backoff(batch.send_failures,
                                                                  self.retry_backoff)
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

    def _run_batch(self, shard: ShardState, lane: Lane) -> None:
        """Run ``lane.pending[0]``: give it up, or invoke the function and apply the outcome.
        Safe to call concurrently for different lanes."""
        with self._apply_lock:
            if self._killed.is_set() or not lane.pending:
                return
            self.stats.records_expired += split_expired(lane, lane.pending[0],
                                                        self.config.max_record_age_s)
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
        """Apply one invocation's outcome to ``batch`` (= ``lane.pending[0]``)."""
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
            failed_from, failed_items = lowest_failed_item(records, result.payload,
                                                           cfg.report_batch_item_failures)
            self.stats.failed_items += failed_items
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
            lane.pending[0:1] = bisect(batch)
            self.stats.bisections += 1
            return

        batch.retries += 1
        if 0 <= cfg.max_retry_attempts < batch.retries:
            batch.discard_condition = "RetryAttemptsExhausted"
            self._give_up(shard, lane, batch)
            return
        self.stats.retries += 1
        lane.next_attempt_at = time.monotonic() + backoff(batch.retries, self.retry_backoff)

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
            if next_batch(lane, self.config, shard.closed) is not None:
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
            if time.monotonic() - self._last_shard_refresh > SHARD_REFRESH_S or not self.shards:
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
                if self._waits_for_parent(shard):
                    busy = True
                    continue
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
                        shard.reread()  # new iterator; pending batches keep their counts
                    self.stats.read_errors += 1
                    busy = True
                if not shard.idle:
                    busy = True
                if shard.closed and shard.idle:
                    self.shards.pop(shard.shard_id, None)
                    self._finished.add(shard.shard_id)
            self.stats.caught_up = not busy
        self._finish_round(this_round, idle=not busy)
        return busy

    def _waits_for_parent(self, shard: ShardState) -> bool:
        """A child shard is not read while a parent it was split or merged from is still
        being read or has records in flight (a parent no longer listed, e.g. past the
        stream's retention, is not waited for): a key's records stay in order across a
        reshard, as Lambda guarantees."""
        return any(parent in self.shards for parent in shard.parents)

    def _finish_round(self, this_round: int, idle: bool) -> None:
        with self._round_cv:
            if idle:
                self._last_idle_round = max(self._last_idle_round, this_round)
            self._round_cv.notify_all()

    def run_until_idle(self, deadline: float) -> bool:
        """Run rounds in the calling thread until one is fully idle (nothing read, buffered or
        pending); False when the monotonic ``deadline`` passes first. Sleeps briefly while
        batches only wait (retry backoff, batching window)."""
        while True:
            start_round = self._round
            busy = self.run_round()
            if not busy and self._last_idle_round > start_round:
                return True
            if time.monotonic() >= deadline:
                return False
            if not busy:
                continue
            lanes = [lane for s in self.shards.values() for lane in s.lanes]
            pending = [lane.next_attempt_at for lane in lanes if lane.pending]
            wait = min(pending, default=0.0) - time.monotonic()
            window = any(lane.buffer and not lane.pending for lane in lanes)
            if wait > 0 or window:
                time.sleep(min(max(wait, 0.01), 0.05))

    def wait_idle(self, timeout: float) -> bool:
        """Wait (threaded mode) for a fully idle round that started after this call."""
        with self._round_cv:
            target = self._round
            return self._round_cv.wait_for(lambda: self._last_idle_round > target, timeout)

    # ---------------------------------------------------------------- thread
    def start(self) -> None:
        """Run rounds in a background thread until ``stop`` (no-op when running)."""
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
        """Stop the thread after its current round."""
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
