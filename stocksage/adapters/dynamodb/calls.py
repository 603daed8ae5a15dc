"""Low-level helpers of the DynamoDB adapters (``stocksage.adapters.dynamodb``): the wire
format of items, error reasons, and bounded retries of what batch calls leave unprocessed."""

from __future__ import annotations

import math
import random
import time
from dataclasses import dataclass
from typing import Any

from boto3.dynamodb.types import TypeDeserializer, TypeSerializer
from botocore.exceptions import ClientError

from stocksage.adapters.dynamodb.values import from_dynamo, to_dynamo

__all__ = [
    "DEFAULT_BACKOFF",
    "MAX_BATCH_GET",
    "SERIALIZER",
    "Backoff",
    "batch_get",
    "error_reason",
    "from_wire",
    "to_wire",
]

MAX_BATCH_GET = 100
"""Keys per BatchGetItem call (DynamoDB's limit)."""

SERIALIZER = TypeSerializer()
DESERIALIZER = TypeDeserializer()


def to_wire(item: dict[str, Any]) -> dict[str, Any]:
    """Plain item -> DynamoDB wire format (``{"S": ...}``), None and non-finite left out.

    Floats, ints, strings and bytes (nearly every attribute of results and state items) are
    written directly (``repr`` of a float is its shortest exact decimal, as
    ``stocksage.adapters.dynamodb.values`` stores it); maps and lists go through boto3's
    ``TypeSerializer``.
    """
    wire: dict[str, Any] = {}
    for key, value in item.items():
        kind = type(value)
        if kind is float:
            if math.isfinite(value):
                wire[key] = {"N": repr(value)}
        elif kind is str:
            wire[key] = {"S": value}
        elif kind is int:
            wire[key] = {"N": str(value)}
        elif kind is bytes:
            wire[key] = {"B": value}
        elif value is not None:
            converted = to_dynamo(value)
            if converted is not None:
                wire[key] = SERIALIZER.serialize(converted)
    return wire


def from_wire(item: dict[str, Any]) -> dict[str, Any]:
    """DynamoDB wire-format item -> plain values (``from_dynamo``: ints, floats, bytes)."""
    return from_dynamo({k: DESERIALIZER.deserialize(v) for k, v in item.items()})


def error_reason(exc: Exception) -> str:
    """One line (<= 300 characters) saying why a call failed: the AWS error code and message."""
    if isinstance(exc, ClientError):
        error = exc.response.get("Error", {})
        return f"{error.get('Code', 'ClientError')}: {error.get('Message', '')}"[:300]
    return f"{type(exc).__name__}: {exc}"[:300]


@dataclass(frozen=True)
class Backoff:
    """Bounded, jittered retries of the items DynamoDB leaves unprocessed (batch calls).

    Each botocore call is itself bounded by the client's ``Config`` (timeouts, standard retry
    mode: ``stocksage.adapters.aws.client_config``). This covers what botocore does not
    retry: ``UnprocessedItems``/``UnprocessedKeys`` of a successful response. Full jitter:
    sleep ``uniform(0, base * 2**attempt)`` capped at ``cap`` seconds (AWS Architecture Blog,
    "Exponential Backoff And Jitter").
    """

    attempts: int = 5
    base: float = 0.05
    cap: float = 1.0

    def sleep(self, attempt: int) -> None:
        """Sleep before the retry that follows attempt ``attempt`` (0-based)."""
        time.sleep(random.uniform(0, min(self.cap, self.base * 2**attempt)))


DEFAULT_BACKOFF = Backoff()
"""5 attempts, 50 ms doubling, at most 1 s per sleep."""


def batch_get(client: Any, table: str, keys: list[dict[str, Any]], backoff: Backoff,
              consistent: bool = False, projection: str | None = None,
              names: dict[str, str] | None = None,
              ) -> tuple[list[dict[str, Any]], list[dict[str, Any]]]:
    """BatchGetItem of <= 100 keys with bounded retries; ``(items, still_unprocessed_keys)``."""
    request: dict[str, Any] = {"Keys": keys, "ConsistentRead": consistent}
    if projection:
        request.update(ProjectionExpression=projection, ExpressionAttributeNames=names or {})
    items: list[dict[str, Any]] = []
    for attempt in range(backoff.attempts):
        response = client.batch_get_item(RequestItems={table: request})
        items.extend(response.get("Responses", {}).get(table, []))
        left = response.get("UnprocessedKeys", {}).get(table)
        if not left:
            return items, []
        request = left
        backoff.sleep(attempt)
    return items, list(request.get("Keys", []))
