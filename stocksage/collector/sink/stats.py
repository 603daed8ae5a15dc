"""The sink's cumulative counters (logged by the collector at the end of a run)."""

from __future__ import annotations

from collections import Counter
from dataclasses import dataclass, field
from typing import Any

__all__ = ["SinkStats"]


@dataclass
class SinkStats:
    """Counters of a ``KinesisSink`` (cumulative).

    Attributes:
        sent: Records acknowledged by Kinesis.
        failed: Entry failures reported by responses plus records given up on.
        retried: Record re-sends (one per failed entry that is sent again, plus every record of
            a request repeated after a throttled call).
        batches: ``PutRecords`` calls made (including throttled ones).
        throttled_calls: Calls that raised a retryable error.
        order_breaks: Requests in which some key had a failure followed by a success (only
            possible with ``max_records_per_key > 1``).
        spilled: Records written to a spill file (not sent in time).
        restored: Records read back from a spill file.
        sent_by_key: Acknowledged records per partition key.
    """

    sent: int = 0
    failed: int = 0
    retried: int = 0
    batches: int = 0
    throttled_calls: int = 0
    order_breaks: int = 0
    spilled: int = 0
    restored: int = 0
    sent_by_key: Counter = field(default_factory=Counter)

    def as_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict of every counter (``sent_by_key`` as a dict)."""
        return {
            "sent": self.sent,
            "failed": self.failed,
            "retried": self.retried,
            "batches": self.batches,
            "throttled_calls": self.throttled_calls,
            "order_breaks": self.order_breaks,
            "spilled": self.spilled,
            "restored": self.restored,
            "sent_by_key": dict(self.sent_by_key),
        }
