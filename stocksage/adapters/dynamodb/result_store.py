"""DynamoDB adapter of ``ResultStore``: per-bar results in the ``results`` table.

Call budget per Kinesis batch: BatchWriteItem in chunks of 25, unprocessed items retried a
bounded number of times with jittered backoff (boto3's ``batch_writer`` would re-send them at
once and forever); fills of pending predictions one conditional UpdateItem each, on a small
thread pool. Failures are reported per symbol, never for the whole batch.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stocksage.adapters.dynamodb.calls import (
    DEFAULT_BACKOFF,
    SERIALIZER,
    Backoff,
    error_reason,
    from_wire,
    to_wire,
)
from stocksage.adapters.dynamodb.values import to_dynamo
from stocksage.config import STACK
from stocksage.processing import PREDICTION_PENDING, PREDICTION_READY, PredictionFill

__all__ = ["DynamoResultStore"]


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))

logger = logging.getLogger(__name__)

MAX_BATCH_WRITE = 25
"""Items per BatchWriteItem call (DynamoDB's limit)."""


class DynamoResultStore:
    """Per-bar results in the ``results`` table (keys ``symbol``, ``bar_time``).

    Writes: BatchWriteItem, 25 items a call, unprocessed items retried with bounded jittered
    backoff; what is still unprocessed fails its symbol (not the batch). A request DynamoDB
    refuses whole for one bad item (``ValidationException``) is sent again item by item, so
    the bad item fails only its own symbol. Fills of pending
    predictions: UpdateItem conditioned on ``prediction_status = pending`` (idempotent).

    Args:
        client: ``boto3.client("dynamodb")``.
        table_name: Physical table name (``RESULTS_TABLE``).
        ttl_days: Days until DynamoDB's TTL may delete an item (``expires_at``, epoch seconds);
            0 keeps items forever.
        backoff: Retries of unprocessed items.
        workers: Threads sending the fills of pending predictions (one UpdateItem each).
    """

    def __init__(self, client: Any, table_name: str, ttl_days: int = 0,
                 backoff: Backoff = DEFAULT_BACKOFF, workers: int = 8) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl_days = ttl_days
        self._backoff = backoff
        keys = STACK.keys["results"]
        self._pk, self._sk = keys["partition"], keys["sort"]
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="result-fill")

    def put_results(self, items: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Write items (overwriting by key); ``{symbol: reason}`` of symbols not fully written."""
        expires_at = None
        if self._ttl_days > 0:
            expires_at = int((datetime.now(UTC) + timedelta(days=self._ttl_days)).timestamp())
        failed: dict[str, str] = {}
        for start in range(0, len(items), MAX_BATCH_WRITE):
            chunk = items[start:start + MAX_BATCH_WRITE]
            requests = []
            for item in chunk:
                wire = to_wire(item)
                if expires_at is not None:
                    wire["expires_at"] = {"N": str(expires_at)}
                requests.append({"PutRequest": {"Item": wire}})
            try:
                left = self._write(requests)
            except ClientError as exc:
                if _code(exc) == "ValidationException" and len(requests) > 1:
                    failed.update(self._write_alone(requests))
                else:
                    failed.update({item[self._pk]: error_reason(exc) for item in chunk})
                continue
            except BotoCoreError as exc:
                failed.update({item[self._pk]: error_reason(exc) for item in chunk})
                continue
            for request in left:
                symbol = request["PutRequest"]["Item"][self._pk]["S"]
                failed[symbol] = "results write throttled (items unprocessed after retries)"
        return failed

    def _write_alone(self, requests: list[dict[str, Any]]) -> dict[str, str]:
        """After DynamoDB refused a whole BatchWriteItem (``ValidationException``: one item it
        cannot store, e.g. a number outside its range, fails the request), each item again in
        a request of its own, so only the refused items fail their symbol (the good items of
        the other symbols in the chunk are stored). ``{symbol: reason}`` of the failures."""
        failed: dict[str, str] = {}
        for request in requests:
            item = request["PutRequest"]["Item"]
            symbol = item[self._pk]["S"]
            try:
                if self._write([request]):
                    failed[symbol] = "results write throttled (items unprocessed after retries)"
            except (ClientError, BotoCoreError) as exc:
                failed[symbol] = f"results item {item[self._sk]['S']} refused: " \
                                 f"{error_reason(exc)}"[:300]
                logger.error("results item refused by DynamoDB", extra={
                    "symbol": symbol, "bar_time": item[self._sk]["S"],
                    "reason": error_reason(exc)})
        return failed

    def _write(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for attempt in range(self._backoff.attempts):
            response = self._client.batch_write_item(RequestItems={self._table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table_name, [])
            if not requests:
                return []
            self._backoff.sleep(attempt)
        return requests

    def chain(self, symbol: str, since: str) -> dict[str, str | None] | None:
        """``{bar_time: prev_bar_time}`` from ``since`` on: one Query (strongly consistent,
        keys and ``prev_bar_time`` only, paginated); None when DynamoDB refused it."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name, ConsistentRead=True,
            KeyConditionExpression="#p = :p AND #s >= :since",
            ProjectionExpression="#s, prev_bar_time",
            ExpressionAttributeNames={"#p": self._pk, "#s": self._sk},
            ExpressionAttributeValues={":p": {"S": symbol}, ":since": {"S": since}})
        found: dict[str, str | None] = {}
        try:
            for page in pages:
                for item in page.get("Items", []):
                    prev = item.get("prev_bar_time")
                    found[item[self._sk]["S"]] = None if prev is None else prev["S"]
        except (ClientError, BotoCoreError) as exc:
            logger.warning("results chain of %s not read: %s", symbol, error_reason(exc))
            return None
        return found

    def pending(self, symbol: str, since: str, limit: int) -> list[dict[str, Any]]:
        """Items of ``symbol`` from ``since`` with ``prediction_status = pending`` (Query)."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name, ConsistentRead=True,
            KeyConditionExpression="#p = :p AND #s >= :since",
            FilterExpression="prediction_status = :pending",
            ExpressionAttributeNames={"#p": self._pk, "#s": self._sk},
            ExpressionAttributeValues={":p": {"S": symbol}, ":since": {"S": since},
                                       ":pending": {"S": PREDICTION_PENDING}})
        found: list[dict[str, Any]] = []
        for page in pages:
            found.extend(from_wire(item) for item in page.get("Items", []))
            if len(found) >= limit:
                break
        return found[:limit]

    def items_for(self, symbol: str) -> list[dict[str, Any]]:
        """Every results item of ``symbol``, oldest first (Query, paginated; for repair)."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table_name, ConsistentRead=True,
            KeyConditionExpression="#p = :p", ExpressionAttributeNames={"#p": self._pk},
            ExpressionAttributeValues={":p": {"S": symbol}})
        return [from_wire(item) for page in pages for item in page.get("Items", [])]

    def fill_predictions(self, fills: Sequence[PredictionFill]) -> dict[str, str]:
        """UpdateItem per fill, only if still pending; ``{symbol: reason}`` of failed fills."""
        results = self._pool.map(self._fill, fills)
        return {symbol: reason for symbol, reason in results if reason}

    def _fill(self, fill: PredictionFill) -> tuple[str, str]:
        ranges = fill.range_attributes()  # two-output model: the forecast and its price band
        values = {":p": SERIALIZER.serialize(to_dynamo(fill.prob_up)),
                  ":m": {"S": fill.model_version}, ":r": {"S": PREDICTION_READY},
                  ":pending": {"S": PREDICTION_PENDING}}
        values.update({f":{name}": SERIALIZER.serialize(to_dynamo(value))
                       for name, value in ranges.items()})
        assignments = ["prob_up = :p", "model_version = :m", "prediction_status = :r",
                       *(f"{name} = :{name}" for name in ranges)]
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={self._pk: {"S": fill.symbol}, self._sk: {"S": fill.bar_time}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="prediction_status = :pending",
                ExpressionAttributeValues=values)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return fill.symbol, ""  # filled before: idempotent
            return fill.symbol, error_reason(exc)
        except BotoCoreError as exc:
            return fill.symbol, error_reason(exc)
        return fill.symbol, ""
