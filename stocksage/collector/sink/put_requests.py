"""``PutRecords`` requests: Kinesis' limits, the buffered record, and the rule that picks a
request's records from the buffer without ever reordering a partition key."""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

__all__ = [
    "MAX_PARTITION_KEY_LENGTH",
    "MAX_RECORDS_PER_REQUEST",
    "MAX_RECORD_BYTES",
    "MAX_REQUEST_BYTES",
    "Entry",
    "build_request",
]

MAX_RECORDS_PER_REQUEST = 500
MAX_REQUEST_BYTES = 5 * 1024 * 1024
MAX_RECORD_BYTES = 1024 * 1024
MAX_PARTITION_KEY_LENGTH = 256


@dataclass
class Entry:
    """One buffered record.

    Attributes:
        key: Partition key (the bar's symbol).
        data: Record payload (the bar's JSON).
        attempts: Responses in which this record failed so far.
    """

    key: str
    data: bytes
    attempts: int = 0

    @property
    def size(self) -> int:
        """Bytes Kinesis counts against its limits: data + UTF-8 partition key."""
        return len(self.data) + len(self.key.encode("utf-8"))


def build_request(pending: Sequence[Entry], max_records_per_key: int) -> list[Entry]:
    """Take records in arrival order, at most ``max_records_per_key`` per key, within
    ``MAX_RECORDS_PER_REQUEST`` and ``MAX_REQUEST_BYTES`` (one record always fits).

    A key's records are taken strictly from the head of its queue: the loop skips a key
    once its quota is used, so the batch never holds record k+1 without record k.
    """
    batch: list[Entry] = []
    per_key: Counter = Counter()
    size = 0
    distinct = len({e.key for e in pending}) if max_records_per_key == 1 else None
    for entry in pending:
        if per_key[entry.key] >= max_records_per_key:
            continue
        if batch and size + entry.size > MAX_REQUEST_BYTES:
            break
        batch.append(entry)
        per_key[entry.key] += 1
        size += entry.size
        if len(batch) >= MAX_RECORDS_PER_REQUEST:
            break
        if distinct is not None and len(per_key) >= distinct:
            break  # every key has its one record: nothing more can go in
    # A key whose quota was hit by the size limit must not have a later record in the
    # batch: this cannot happen because we stop at the first size overflow (break above).
    return batch
