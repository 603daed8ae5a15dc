"""Lambda's batching and error-handling rules for Kinesis, as small functions.

The mapping worker (``stocksage.local.esm.worker``) reads records and invokes the function;
the decisions it takes in between are here, one rule per function:

* ``next_batch``: when the records buffered in a lane become a batch (``BatchSize``, the 6 MB
  payload limit, ``MaximumBatchingWindowInSeconds``);
* ``split_expired``: records older than ``MaximumRecordAgeInSeconds`` are split off to be
  given up (``RecordAgeExceeded``), checked before every invocation;
* ``lowest_failed_item``: the partial batch response (``ReportBatchItemFailures``): where the
  batch failed, or that all of it did (an identifier that is not one of the batch's);
* ``bisect``: ``BisectBatchOnFunctionError`` splits a failed batch in two halves (a split is
  not a retry);
* ``backoff``: the delay before the next attempt of a failed batch (exponential, capped).
"""

from __future__ import annotations

import time
from typing import Any

from stocksage.local.esm.mapping import MappingConfig
from stocksage.local.esm.records import KRecord, Lane, PendingBatch

#: Lambda's limit on the payload of one invocation.
MAX_PAYLOAD_BYTES = 6 * 1024 * 1024


def next_batch(lane: Lane, config: MappingConfig, shard_closed: bool) -> PendingBatch | None:
    """The lane's batch to run: its pending batch, else a new one from its buffer, else None.

    A new batch takes up to ``BatchSize`` records and at most ``MAX_PAYLOAD_BYTES`` (always at
    least one record). With a batching window a batch that is not full (neither ``BatchSize``
    records nor 6 MB) waits until the window has passed since its first record was read,
    unless the shard is closed (no more records will come). The new batch is appended to
    ``lane.pending``.
    """
    if lane.pending:
        return lane.pending[0]
    if not lane.buffer:
        return None
    full = len(lane.buffer) >= config.batch_size or sum(
        r.size for r in lane.buffer) >= MAX_PAYLOAD_BYTES
    window = config.batching_window_s
    waited = time.monotonic() - (lane.buffer_since or time.monotonic())
    if not full and window > 0 and waited < window and not shard_closed:
        return None
    take, size = 0, 0
    for r in lane.buffer[: config.batch_size]:
        if take and size + r.size > MAX_PAYLOAD_BYTES:
            break
        take, size = take + 1, size + r.size
    batch = PendingBatch(lane.buffer[:take])
    del lane.buffer[:take]
    lane.buffer_since = time.monotonic() if lane.buffer else None
    lane.pending.append(batch)
    return batch


def split_expired(lane: Lane, batch: PendingBatch, max_age_s: int | None) -> int:
    """Split off the prefix of ``batch`` (= ``lane.pending[0]``) older than ``max_age_s`` as a
    batch to give up (``RecordAgeExceeded``), ahead of the rest; return how many records
    expired (0: nothing changed; -1 or None: no age limit)."""
    if max_age_s is None or max_age_s < 0 or batch.discard_condition:
        return 0
    cutoff = time.time() - max_age_s
    n = 0
    while n < len(batch.records) and batch.records[n].arrival < cutoff:
        n += 1
    if n == 0:
        return 0
    expired = PendingBatch(batch.records[:n], batch.retries, batch.invokes,
                           batch.last_request_id, batch.last_function_error,
                           discard_condition="RecordAgeExceeded")
    rest = batch.records[n:]
    lane.pending[0:1] = [expired] + ([batch] if rest else [])
    batch.records = rest
    return n


def lowest_failed_item(records: list[KRecord], payload: Any,
                       report_batch_item_failures: bool) -> tuple[int | None, int]:
    """Read a partial batch response: ``(index of the lowest failed record, failed items)``.

    The index is None for success: ``ReportBatchItemFailures`` is off (the response is
    ignored), the response is not a dict, or ``batchItemFailures`` is empty, null or missing.
    An identifier that is empty, null or not a sequence number of the batch fails the whole
    batch (index 0, every record counted as failed), as a function error would.
    """
    if not report_batch_item_failures or not isinstance(payload, dict):
        return None, 0
    failures = payload.get("batchItemFailures")
    if not failures:
        return None, 0
    index = {r.sequence_number: i for i, r in enumerate(records)}
    lowest: int | None = None
    for item in failures if isinstance(failures, list) else [None]:
        ident = item.get("itemIdentifier") if isinstance(item, dict) else None
        if not ident or str(ident) not in index:
            return 0, len(records)
        i = index[str(ident)]
        lowest = i if lowest is None else min(lowest, i)
    return lowest, len(failures)


def bisect(batch: PendingBatch) -> list[PendingBatch]:
    """The two halves of a failed batch (of two or more records), each carrying the batch's
    retry count and attempt history: splitting does not count towards the retry quota."""
    records = batch.records
    half = len(records) // 2
    return [PendingBatch(part, batch.retries, batch.invokes, batch.last_request_id,
                         batch.last_function_error)
            for part in (records[:half], records[half:])]


def backoff(attempt: int, retry_backoff: tuple[float, float]) -> float:
    """Seconds before attempt ``attempt`` + 1: ``first * 2 ** (attempt - 1)``, at most ``cap``
    (``retry_backoff = (first, cap)``; a first delay of 0 retries at once)."""
    base, cap = retry_backoff
    return min(cap, base * (2 ** (attempt - 1))) if base > 0 else 0.0
