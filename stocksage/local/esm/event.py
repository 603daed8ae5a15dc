"""What Lambda sends: the Kinesis event of a batch, and the record of a discarded batch.

``build_event`` makes the event a function gets for a batch, in Lambda's shape::

    event = build_event(records, "shardId-000000000000", config, role)
    event["Records"][0]["kinesis"]["data"]        # base64 of the record's bytes
    event["Records"][0]["eventID"]                # "shardId-000000000000:<sequence number>"

``failure_record`` makes the invocation record Lambda sends to the on-failure destination when
it gives up on records (retries exhausted, or records too old)::

    {"requestContext": {"requestId", "functionArn", "condition", "approximateInvokeCount"},
     "responseContext": {"statusCode": 200, "executedVersion": "$LATEST",
                         "functionError": "Unhandled"},        # absent if none
     "version": "1.0", "timestamp": "...Z",
     "KinesisBatchInfo": {"shardId", "startSequenceNumber", "endSequenceNumber",
                          "approximateArrivalOfFirstRecord", "approximateArrivalOfLastRecord",
                          "batchSize", "streamArn"}}
"""

from __future__ import annotations

import base64
import time
import uuid
from datetime import UTC, datetime
from typing import Any

from stocksage.local.esm.mapping import MappingConfig
from stocksage.local.esm.records import KRecord, PendingBatch


def _iso(ts: float) -> str:
    """Epoch seconds as ``2026-01-02T03:04:05.678Z`` (milliseconds, UTC)."""
    return datetime.fromtimestamp(ts, UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def build_event(records: list[KRecord], shard_id: str, config: MappingConfig,
                role: str) -> dict[str, Any]:
    """Lambda's event for a Kinesis batch.

    Args:
        records: The batch, in sequence order.
        shard_id: The shard they were read from (part of each ``eventID``).
        config: The mapping (stream ARN and region).
        role: The function's execution role (``invokeIdentityArn``).
    """
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
    """The invocation record Lambda sends to an on-failure destination for a Kinesis batch.

    Args:
        config: The mapping.
        shard_id: The shard of the discarded records.
        batch: The discarded records with their attempt history (invoke count, last request
            id, last function error).
        condition: ``RetryAttemptsExhausted`` or ``RecordAgeExceeded``.
    """
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
