"""Quarantine of malformed records: sent to the failure queue with their reason and payload.

A record that is not a valid bar can never succeed, so retrying it would only hold back its
shard. The processor sends it to the failure queue (the same SQS queue that is the event source
mapping's on-failure destination) and moves on; nothing is lost: the message carries the raw
data (base64), the reason, and the record's stream coordinates.

Message body (JSON)::

    {"kind": "MalformedRecord", "reason": "high 10.0 is below close 11.0",
     "eventID": "shardId-000000000000:42", "eventSourceARN": "...", "partitionKey": "TSLA",
     "sequenceNumber": "42", "approximateArrivalTimestamp": 1700000000.0, "data": "<base64>"}

A redelivered batch can quarantine the same record twice; ``eventID`` identifies it.
"""

from __future__ import annotations

import json
from typing import Any


class SqsQuarantine:
    """Sends malformed-record reports to ``FAILURE_QUEUE_URL``."""

    def __init__(self, client: Any, queue_url: str) -> None:
        self._client = client
        self._queue_url = queue_url

    def send(self, record: dict[str, Any], reason: str) -> None:
        """Send one report; raises on an SQS error (the record then becomes a batch failure).

        Args:
            record: The raw Kinesis event record (``event["Records"][i]``).
            reason: Why the record was rejected, one sentence.
        """
        kinesis = record.get("kinesis", {})
        body = {
            "kind": "MalformedRecord",
            "reason": reason,
            "eventID": record.get("eventID"),
            "eventSourceARN": record.get("eventSourceARN"),
            "partitionKey": kinesis.get("partitionKey"),
            "sequenceNumber": kinesis.get("sequenceNumber"),
            "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
            "data": kinesis.get("data"),
        }
        self._client.send_message(
            QueueUrl=self._queue_url, MessageBody=json.dumps(body),
            MessageAttributes={"kind": {"DataType": "String", "StringValue": "MalformedRecord"}},
        )
