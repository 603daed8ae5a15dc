"""Quarantine of malformed records: sent to the failure queue with their reason and payload.

A record that is not a valid bar can never succeed, so retrying it would only hold back its
shard. The processor sends it to the failure queue (the same SQS queue that is the event source
mapping's on-failure destination) and moves on; nothing is lost: the message carries the raw
data (base64) up to a cap, the reason, the rejection kind and the record's stream coordinates.
A larger payload (a Kinesis record holds up to 1 MiB; an SQS message at most 256 KiB) is
written to S3 and the message points at it.

Message body (JSON)::

    {"kind": "MalformedRecord", "rejectionKind": "ohlc_inconsistent",
     "reason": "high 10.0 is below close 11.0",
     "eventID": "shardId-000000000000:42", "eventSourceARN": "...",
     "shardId": "shardId-000000000000",
     "partitionKey": "TSLA", "sequenceNumber": "42", "approximateArrivalTimestamp": 1700000000.0,
     "dataBytes": 123,
     "data": "<base64>"}                                  # when it fits (<= max_inline_bytes)
     "data": null, "dataLocation": "s3://bucket/quarantine/<stream>/<shard>/<seq>"   # else
     "data": "<first max_inline_bytes of base64>", "dataTruncated": true  # no bucket configured

A trades record with some invalid trades was processed with its valid ones; its message
(``send_trades``) has ``"kind": "RejectedTrades"``, the record as above (so nothing is lost)
and ``"rejectedTrades": [{"index", "reason", "kind", "raw"}, ...]`` (at most
``MAX_REJECTED_LISTED``; ``rejectedCount`` gives them all). Redriving it must not re-apply
the record (its valid trades were applied): it is for people, like a malformed record.

``kind`` stays ``"MalformedRecord"`` (the message type consumers filter on, also a message
attribute); ``rejectionKind`` is ``MalformedBarError.kind`` (docs/DESIGN.md "Rejected input").
The S3 key is derived from stream, shard and sequence number, so a redelivered batch overwrites
the same object (idempotent); the queue can still receive the same report twice (``eventID``
identifies it).
"""

from __future__ import annotations

import base64
import binascii
import json
from collections.abc import Sequence
from typing import Any

#: Largest base64 ``data`` kept in the message (64 KiB; SQS allows 256 KiB per message).
DEFAULT_MAX_INLINE_BYTES = 64 * 1024
#: Invalid trades listed in one message (~250 bytes each: ~50 KiB at most).
MAX_REJECTED_LISTED = 200
DEFAULT_PREFIX = "quarantine/"


def quarantine_key(prefix: str, stream_arn: str | None, shard_id: str, sequence: str) -> str:
    """S3 key of a quarantined payload: ``<prefix><stream name>/<shard id>/<sequence number>``."""
    stream = (stream_arn or "").rsplit("/", 1)[-1] or "unknown-stream"
    return f"{prefix}{stream}/{shard_id}/{sequence}"


class SqsQuarantine:
    """Sends malformed-record reports to the failure queue (``FAILURE_QUEUE_URL``).

    Args:
        client: boto3 SQS client.
        queue_url: The failure queue.
        s3_client: boto3 S3 client for payloads over ``max_inline_bytes`` (optional).
        bucket: Bucket for those payloads (the history bucket); without client and bucket a
            large payload is truncated in the message (``dataTruncated``), never dropped
            silently.
        prefix: Key prefix in ``bucket`` (default ``quarantine/``).
        max_inline_bytes: Largest base64 ``data`` text kept in the message.
    """

    def __init__(self, client: Any, queue_url: str, *, s3_client: Any = None,
                 bucket: str | None = None, prefix: str = DEFAULT_PREFIX,
                 max_inline_bytes: int = DEFAULT_MAX_INLINE_BYTES) -> None:
        self._client = client
        self._queue_url = queue_url
        self._s3 = s3_client
        self._bucket = bucket or None
        self._prefix = prefix
        self._max_inline = max_inline_bytes

    def report(self, record: dict[str, Any], reason: str,
               kind: str = "malformed") -> dict[str, Any]:
        """The message body for ``record`` (writes a large payload to S3 first).

        Raises:
            botocore.exceptions.ClientError: the S3 write failed.
        """
        kinesis = record.get("kinesis", {})
        event_id = record.get("eventID") or ""
        shard_id = event_id.rsplit(":", 1)[0] if ":" in event_id else "unknown-shard"
        data = kinesis.get("data") or ""
        body: dict[str, Any] = {
            "kind": "MalformedRecord",
            "rejectionKind": kind,
            "reason": reason,
            "eventID": record.get("eventID"),
            "eventSourceARN": record.get("eventSourceARN"),
            "shardId": shard_id,
            "partitionKey": kinesis.get("partitionKey"),
            "sequenceNumber": kinesis.get("sequenceNumber"),
            "approximateArrivalTimestamp": kinesis.get("approximateArrivalTimestamp"),
            "dataBytes": len(data) * 3 // 4 - data[-2:].count("="),
        }
        if len(data) <= self._max_inline:
            body["data"] = data
            return body
        if self._s3 is not None and self._bucket:
            key = quarantine_key(self._prefix, record.get("eventSourceARN"), shard_id,
                                 str(kinesis.get("sequenceNumber")))
            try:
                payload = base64.b64decode(data, validate=True)
            except (binascii.Error, ValueError):
                payload = data.encode()
            self._s3.put_object(Bucket=self._bucket, Key=key, Body=payload,
                                ContentType="application/octet-stream")
            body["data"] = None
            body["dataLocation"] = f"s3://{self._bucket}/{key}"
            return body
        body["data"] = data[: self._max_inline]
        body["dataTruncated"] = True
        return body

    def send_trades(self, record: dict[str, Any], rejected: Sequence[Any]) -> None:
        """Report the invalid trades of a processed trades record (module docstring).

        Args:
            record: The raw Kinesis event record.
            rejected: ``stocksage.bars.trade_parsing.RejectedTrade`` items (index, reason,
                kind, raw), at least one.

        Raises:
            botocore.exceptions.ClientError: the SQS or S3 call failed (the record is then
                retried; its valid trades are not applied twice: the state knows the record).
        """
        first = rejected[0]
        body = self.report(record, f"{len(rejected)} invalid trade(s); first: {first.reason}",
                           first.kind)
        body["kind"] = "RejectedTrades"
        body["rejectedCount"] = len(rejected)
        body["rejectedTrades"] = [{"index": r.index, "reason": r.reason, "kind": r.kind,
                                   "raw": r.raw} for r in rejected[:MAX_REJECTED_LISTED]]
        self._client.send_message(
            QueueUrl=self._queue_url, MessageBody=json.dumps(body, default=str),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "RejectedTrades"},
                "rejectionKind": {"DataType": "String", "StringValue": first.kind},
            },
        )

    def send(self, record: dict[str, Any], reason: str, kind: str = "malformed") -> None:
        """Send one report; raises on an SQS or S3 error (the record then becomes a batch
        failure and is retried).

        Args:
            record: The raw Kinesis event record (``event["Records"][i]``).
            reason: Why the record was rejected, one sentence.
            kind: The machine code (``MalformedBarError.kind``).
        """
        body = self.report(record, reason, kind)
        self._client.send_message(
            QueueUrl=self._queue_url, MessageBody=json.dumps(body),
            MessageAttributes={
                "kind": {"DataType": "String", "StringValue": "MalformedRecord"},
                "rejectionKind": {"DataType": "String", "StringValue": kind},
            },
        )
