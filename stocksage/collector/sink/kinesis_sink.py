"""Kinesis sink: buffered, order-preserving PutRecords with bounded retries.

Ordering design (why at most one record per partition key per request by default)
---------------------------------------------------------------------------------
Kinesis keeps records of one partition key in order *on the shard*, but ``PutRecords`` is not
atomic: every entry succeeds or fails on its own ("a single record failure does not stop the
processing of subsequent records"). If bar *k* of TSLA fails while bar *k+1* of TSLA in the same
request succeeds, *k+1* is already on the stream before *k* can be retried, and nothing can undo
that. The processor accepts a bar only when it is strictly newer than every bar seen for its
symbol, so a re-sent *k* would arrive *late* and be dropped from the indicator series: a reorder
is a silently lost bar.

``SequenceNumberForOrdering`` does not help here: it exists only on the single-record
``PutRecord`` call (one HTTP request per bar).

So the sink builds every ``PutRecords`` request with at most ``max_records_per_key`` entries per
partition key (default **1**) and keeps failed entries at the head of their key's queue: a later
record of a key is never sent while an earlier one is unacknowledged. Whatever subset of a
response fails, per-key order on the stream is exactly the order of :meth:`KinesisSink.put`.
A request still carries up to 500 records as long as that many symbols are pending, which is the
live case (one new bar per symbol per interval).

For bulk replays of a few symbols, ``max_records_per_key > 1`` trades that guarantee for
throughput: order can then break only when a response has a failed entry followed by a
successful one of the same key. The sink detects that case, counts it in
``stats.order_breaks`` and logs a warning naming the keys; it never happens while no entry fails.

Retries
-------
* Failed entries of a response (``FailedRecordCount`` > 0, ``ErrorCode`` per entry) are retried,
  and only those, after an exponential backoff with full jitter
  (``uniform(0, min(cap, base * 2**attempt))``).
* Throttling / transient errors on the call itself (``ProvisionedThroughputExceededException``,
  ``KMSThrottlingException``, ``ThrottlingException``, ``InternalFailure``,
  ``ServiceUnavailable``, ``LimitExceededException``) retry the whole request the same way.
* Attempts are bounded (``max_attempts`` per record and per call). When exhausted,
  :class:`KinesisPutError` says how many records failed and how many stay buffered.

Deadline and spill (SIGTERM)
----------------------------
``sink.deadline`` (a ``time.monotonic()`` value; the collector sets it when the stop signal
arrives) bounds every send, backoff and flush: past it the sink raises
:class:`FlushDeadlineError` instead of starting another request. :meth:`KinesisSink.spill`
then appends whatever is still buffered to a JSON-lines file (fsync'd) and
:meth:`KinesisSink.restore` puts it back at the head of the buffer when the collector starts
again: records are persisted, never silently dropped. A single ``PutRecords`` call is bounded by
the client's connect/read timeouts (``make_kinesis_client``).

Flush timer (no waiting in the sink)
------------------------------------
A record never waits in the buffer for the next :meth:`KinesisSink.put`: at most
``max_delay_s`` (default 0.2 s) after the first record entered an empty buffer, a background
flusher thread sends everything buffered, even when no further record arrives (a quiet live
feed, the last trades of a replay before a pause). The buffer and every send are guarded by
one lock, so ``put``, ``flush``, ``close``, ``spill``, ``restore`` and the flusher never
interleave; the deadline and the spill work as above whichever thread sends. An error the
flusher meets (``KinesisPutError``, ``FlushDeadlineError``, a ``ClientError``, ...) is kept
and raised, as it is, by the next ``put``, ``put_record``, ``flush`` or ``close`` (never
swallowed; the records it could not send stay buffered for the caller's flush or spill); the
flusher sends nothing more until then. The thread is a daemon, started with the first
buffered record and ended by ``close`` or leaving the ``with`` block.

Limits enforced per request: <= 500 records, <= 5 MiB (data + partition keys); per record:
<= 1 MiB (data + partition key), partition key 1..256 characters.

Parts: the request rule and limits (``sink_requests``), the spill file (``sink_spill``), the
errors (``sink_errors``) and counters (``sink_stats``), all re-exported here.
"""

from __future__ import annotations

import logging
import random
import threading
import time
from collections import Counter
from collections.abc import Callable, Mapping
from pathlib import Path
from types import TracebackType
from typing import Any, Protocol, Self

from botocore.exceptions import ClientError, ReadTimeoutError
from botocore.exceptions import ConnectionError as BotoConnectionError

from stocksage.collector.sink.put_errors import FlushDeadlineError, KinesisPutError
from stocksage.collector.sink.put_requests import (
    MAX_PARTITION_KEY_LENGTH,
    MAX_RECORD_BYTES,
    MAX_RECORDS_PER_REQUEST,
    MAX_REQUEST_BYTES,
    Entry,
    build_request,
)
from stocksage.collector.sink.spill import read_spill, write_spill
from stocksage.collector.sink.stats import SinkStats

__all__ = [
    "MAX_PARTITION_KEY_LENGTH",
    "MAX_RECORDS_PER_REQUEST",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "RETRYABLE_CALL_ERRORS",
    "FlushDeadlineError",
    "KinesisPutError",
    "KinesisPutRecordsClient",
    "KinesisSink",
    "ProgressCallback",
    "SinkStats",
    "SupportsToJson",
]

log = logging.getLogger(__name__)

#: Error codes on the call that are worth retrying after a backoff.
RETRYABLE_CALL_ERRORS = frozenset(
    {
        "ProvisionedThroughputExceededException",
        "KMSThrottlingException",
        "ThrottlingException",
        "LimitExceededException",
        "InternalFailure",
        "InternalFailureException",
        "ServiceUnavailable",
        "ServiceUnavailableException",
    }
)

#: Called after each acknowledged request with ``{partition_key: records acknowledged}``.
ProgressCallback = Callable[[Mapping[str, int]], None]


class KinesisPutRecordsClient(Protocol):
    """The one boto3 Kinesis client method the sink needs."""

    def put_records(self, **kwargs: Any) -> dict[str, Any]: ...


class SupportsToJson(Protocol):
    """What :meth:`KinesisSink.put` needs from a bar (``stocksage.bars.Bar`` fits)."""

    symbol: str

    def to_json(self) -> bytes: ...


class KinesisSink:
    """Buffers records and writes them with ``PutRecords``, preserving order per partition key.

    Use as a context manager (flushes on exit, also after an exception in the body)::

        with KinesisSink(boto3.client("kinesis"), "stocksage-local-bars") as sink:
            for bar in source:
                sink.put(bar)

    Args:
        client: A boto3 Kinesis client (anything with ``put_records``).
        stream_name: Stream to write to.
        max_records_per_key: Records of one partition key per request. 1 (default) guarantees
            per-key order whatever fails; > 1 raises throughput but order can break under
            partial failures (counted in ``stats.order_breaks``). See the module docstring.
        buffer_records: :meth:`put` sends once this many records are buffered.
        linger_seconds: :meth:`put` also sends when the oldest buffered record is this old
            (keeps a slow live feed flowing); ``None`` disables.
        max_delay_s: The flush timer: at most this many seconds after the first record
            entered an empty buffer, a background thread sends the buffer (module docstring);
            ``None`` disables the timer (records then wait for a full buffer, the linger check
            of the next put, or an explicit flush).
        max_attempts: Attempts per record (and per throttled call) before giving up.
        backoff_base: First backoff step in seconds.
        backoff_cap: Longest single backoff in seconds.
        on_sent: Progress hook, called with ``{key: acknowledged count}`` after each request.
        sleep: Injected for tests (default ``time.sleep``).
        rng: Injected for tests (default a fresh ``random.Random``).
    """

    def __init__(
        self,
        client: KinesisPutRecordsClient,
        stream_name: str,
        *,
        max_records_per_key: int = 1,
        buffer_records: int = MAX_RECORDS_PER_REQUEST,
        linger_seconds: float | None = 1.0,
        max_delay_s: float | None = 0.2,
        max_attempts: int = 8,
        backoff_base: float = 0.05,
        backoff_cap: float = 5.0,
        on_sent: ProgressCallback | None = None,
        sleep: Callable[[float], None] = time.sleep,
        rng: random.Random | None = None,
    ) -> None:
        if max_records_per_key < 1:
            raise ValueError("max_records_per_key must be >= 1")
        if max_attempts < 1:
            raise ValueError("max_attempts must be >= 1")
        if buffer_records < 1:
            raise ValueError("buffer_records must be >= 1")
        if max_delay_s is not None and not max_delay_s >= 0:
            raise ValueError("max_delay_s must be >= 0 (or None)")
        self.client = client
        self.stream_name = stream_name
        self.max_records_per_key = max_records_per_key
        self.buffer_records = buffer_records
        self.linger_seconds = linger_seconds
        self.max_delay_s = max_delay_s
        self.max_attempts = max_attempts
        self.backoff_base = backoff_base
        self.backoff_cap = backoff_cap
        self.on_sent = on_sent
        self.stats = SinkStats()
        self._sleep = sleep
        self._rng = rng or random.Random()
        self._pending: list[Entry] = []
        self._oldest_at: float | None = None
        #: ``time.monotonic()`` after which no request is started (None: no deadline)
        self.deadline: float | None = None
        self._lock = threading.RLock()
        self._wake = threading.Condition(self._lock)
        self._flush_due: float | None = None  # monotonic time the flusher sends at
        self._flusher: threading.Thread | None = None
        self._closing = False
        self._timer_error: BaseException | None = None

    # ------------------------------------------------------------------ public API
    @property
    def buffered(self) -> int:
        """Records accepted by :meth:`put` and not yet acknowledged."""
        with self._lock:
            return len(self._pending)

    def put(self, bar: SupportsToJson) -> None:
        """Buffer one bar (partition key = ``bar.symbol``, data = ``bar.to_json()``)."""
        self.put_record(bar.symbol, bar.to_json())

    def put_record(self, partition_key: str, data: bytes) -> None:
        """Buffer one raw record; sends when the buffer is full or has lingered.

        Raises:
            ValueError: empty/too long partition key, or record over 1 MiB.
            KinesisPutError, FlushDeadlineError, ClientError, ...: an error of the flush timer
                since the last call (the record is then not buffered), or of this send.
        """
        if not 1 <= len(partition_key) <= MAX_PARTITION_KEY_LENGTH:
            raise ValueError(f"partition key must have 1..256 characters, got {partition_key!r}")
        entry = Entry(partition_key, bytes(data))
        if entry.size > MAX_RECORD_BYTES:
            raise ValueError(
                f"record for {partition_key!r} is {entry.size} bytes; Kinesis takes at most "
                f"{MAX_RECORD_BYTES} (data + partition key)"
            )
        with self._lock:
            self._raise_timer_error()
            if not self._pending:
                self._oldest_at = time.monotonic()
            self._pending.append(entry)
            self._arm_timer()
            if len(self._pending) >= self.buffer_records:
                # Send until the buffer is below the threshold again (one request at a time).
                while len(self._pending) >= self.buffer_records:
                    self._send_one_request()
                self._oldest_at = time.monotonic() if self._pending else None
                self._rearm_timer()
            elif (
                self.linger_seconds is not None
                and self._oldest_at is not None
                and time.monotonic() - self._oldest_at >= self.linger_seconds
            ):
                self._flush_locked()

    def flush(self) -> None:
        """Send everything buffered (retrying as configured).

        Raises:
            KinesisPutError: when records still fail after ``max_attempts``; they stay buffered.
            FlushDeadlineError: ``deadline`` passed first; the rest stays buffered.
            Any error the flush timer met since the last call (raised first, as it was).
        """
        with self._lock:
            self._raise_timer_error()
            self._flush_locked()

    def _flush_locked(self) -> None:
        """``flush`` with the lock held."""
        while self._pending:
            self._send_one_request()
        self._oldest_at = None
        self._flush_due = None

    def spill(self, path: str | Path) -> int:
        """Append every buffered record to the JSON-lines file ``path`` (``{"key", "data"}``,
        data base64; fsync'd) and empty the buffer. Returns the number of records written."""
        with self._lock:
            if not self._pending:
                return 0
            write_spill(path, self._pending)
            count = len(self._pending)
            self.stats.spilled += count
            log.error("records not sent in time were spilled to a file; they are sent at the "
                      "next start", extra={"records": count, "spill_file": str(Path(path))})
            self._pending = []
            self._oldest_at = None
            self._flush_due = None
            return count

    def restore(self, path: str | Path) -> int:
        """Put the records of a spill file back at the head of the buffer (in their order),
        send them (``flush``) and delete the file. Returns the number of records restored.

        Raises:
            KinesisPutError: they could not be sent (the file is kept for the next start).
        """
        source = Path(path)
        with self._lock:
            if not source.exists():
                return 0
            entries = read_spill(source)
            self._pending = entries + self._pending
            self.stats.restored += len(entries)
            log.warning("re-sending spilled records", extra={"records": len(entries),
                                                             "spill_file": str(source)})
            self.flush()
            source.unlink()
            return len(entries)

    def _remaining(self) -> float | None:
        return None if self.deadline is None else self.deadline - time.monotonic()

    def _check_deadline(self) -> None:
        remaining = self._remaining()
        if remaining is not None and remaining <= 0:
            raise FlushDeadlineError(
                f"stop deadline passed with {len(self._pending)} records buffered for "
                f"{self.stream_name}", failed=0, pending=len(self._pending), error_codes={})

    def close(self) -> None:
        """Flush, then end the flush timer's thread; the client is not closed (it is the
        caller's). A later ``put`` starts the timer again.

        Raises:
            What ``flush`` raises (the timer's pending error first).
        """
        try:
            self.flush()
        finally:
            self._stop_timer()

    def __enter__(self) -> Self:
        return self

    def __exit__(self, exc_type: type[BaseException] | None, exc: BaseException | None,
                 tb: TracebackType | None) -> None:
        try:
            self.close()
        except KinesisPutError:
            if exc is None:
                raise
            # Keep the original exception; report what we could not deliver.
            log.exception("flush on exit failed", extra={"buffered": self.buffered})

    # ------------------------------------------------------------------ flush timer
    def _raise_timer_error(self) -> None:
        """Raise (once) the error the flusher thread met; lock held."""
        error, self._timer_error = self._timer_error, None
        if error is not None:
            raise error

    def _arm_timer(self) -> None:
        """Start the countdown for the buffer's first record (lock held); starts the thread."""
        if self.max_delay_s is None or self._flush_due is not None or not self._pending:
            return
        self._flush_due = time.monotonic() + self.max_delay_s
        if self._flusher is None or not self._flusher.is_alive():
            self._closing = False
            self._flusher = threading.Thread(target=self._run_flusher, daemon=True,
                                             name=f"kinesis-sink-flusher-{self.stream_name}")
            self._flusher.start()
        self._wake.notify_all()

    def _rearm_timer(self) -> None:
        """After a send from ``put``: the countdown restarts for what is still buffered."""
        self._flush_due = None
        self._arm_timer()

    def _run_flusher(self) -> None:
        """The flusher thread: sleep until the due time, send the buffer, keep any error."""
        with self._lock:
            while not self._closing:
                due = self._flush_due
                if due is None or self._timer_error is not None:
                    self._wake.wait()
                    continue
                remaining = due - time.monotonic()
                if remaining > 0:
                    self._wake.wait(remaining)
                    continue
                self._flush_due = None
                try:
                    self._flush_locked()
                except Exception as exc:  # noqa: BLE001 -- kept; the next call raises it
                    self._timer_error = exc
                    log.warning("timed flush failed; the next put/flush/close raises it",
                                extra={"error": str(exc), "buffered": len(self._pending)})

    def _stop_timer(self) -> None:
        """End the flusher thread (waits for a send in progress)."""
        with self._lock:
            self._closing = True
            self._flush_due = None
            self._wake.notify_all()
            flusher = self._flusher
        if flusher is not None and flusher is not threading.current_thread():
            flusher.join()
        self._flusher = None

    # ------------------------------------------------------------------ internals
    def _backoff(self, attempt: int) -> float:
        delay = self._rng.uniform(0.0, min(self.backoff_cap, self.backoff_base * 2**attempt))
        remaining = self._remaining()
        if remaining is not None:
            delay = max(0.0, min(delay, remaining))
        self._sleep(delay)
        return delay

    def _send_one_request(self) -> None:
        batch = build_request(self._pending, self.max_records_per_key)
        if not batch:
            return
        records = [{"Data": e.data, "PartitionKey": e.key} for e in batch]
        call_attempt = 0
        while True:
            self._check_deadline()
            self.stats.batches += 1
            try:
                response = self.client.put_records(StreamName=self.stream_name, Records=records)
                break
            except (ClientError, BotoConnectionError, ReadTimeoutError) as exc:
                code = exc.response.get("Error", {}).get("Code", "") \
                    if isinstance(exc, ClientError) else type(exc).__name__
                if isinstance(exc, ClientError) and code not in RETRYABLE_CALL_ERRORS:
                    raise
                self.stats.throttled_calls += 1
                call_attempt += 1
                if call_attempt >= self.max_attempts:
                    raise KinesisPutError(
                        f"PutRecords to {self.stream_name} kept failing with {code} after "
                        f"{call_attempt} attempts; {len(batch)} records failed, "
                        f"{len(self._pending)} still buffered",
                        failed=len(batch),
                        pending=len(self._pending),
                        error_codes={code: len(batch)},
                    ) from exc
                self.stats.retried += len(batch)
                delay = self._backoff(call_attempt)
                log.warning(
                    "PutRecords throttled; retrying the request",
                    extra={"error_code": code, "attempt": call_attempt, "records": len(batch),
                           "backoff_s": round(delay, 3)},
                )
        self._handle_response(batch, response)

    def _handle_response(self, batch: list[Entry], response: Mapping[str, Any]) -> None:
        results = response.get("Records", [])
        if len(results) != len(batch):
            raise RuntimeError(
                f"PutRecords returned {len(results)} results for {len(batch)} records"
            )
        ok_ids: set[int] = set()
        acked: Counter = Counter()
        failed_entries: list[Entry] = []
        codes: Counter = Counter()
        seen_failure: set[str] = set()
        broken: set[str] = set()
        for entry, result in zip(batch, results, strict=True):
            if result.get("ErrorCode"):
                failed_entries.append(entry)
                codes[result["ErrorCode"]] += 1
                seen_failure.add(entry.key)
            else:
                ok_ids.add(id(entry))
                acked[entry.key] += 1
                if entry.key in seen_failure:
                    broken.add(entry.key)
        if ok_ids:
            self._pending = [e for e in self._pending if id(e) not in ok_ids]
        self.stats.sent += len(ok_ids)
        self.stats.sent_by_key.update(acked)
        if broken:
            self.stats.order_breaks += 1
            log.warning(
                "partial failure broke per-key order (max_records_per_key > 1)",
                extra={"keys": sorted(broken)},
            )
        if acked and self.on_sent is not None:
            self.on_sent(dict(acked))
        if not failed_entries:
            return
        self.stats.failed += len(failed_entries)
        worst = 0
        for entry in failed_entries:
            entry.attempts += 1
            worst = max(worst, entry.attempts)
        if worst >= self.max_attempts:
            exhausted = sum(1 for e in failed_entries if e.attempts >= self.max_attempts)
            raise KinesisPutError(
                f"{exhausted} records to {self.stream_name} still failed after "
                f"{self.max_attempts} attempts (error codes {dict(codes)}); "
                f"{len(self._pending)} records still buffered",
                failed=exhausted,
                pending=len(self._pending),
                error_codes=codes,
            )
        self.stats.retried += len(failed_entries)
        delay = self._backoff(worst)
        log.info(
            "retrying failed entries",
            extra={"failed": len(failed_entries), "error_codes": dict(codes),
                   "attempt": worst, "backoff_s": round(delay, 3)},
        )
