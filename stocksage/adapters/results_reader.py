"""Read side for dashboards and the demo: results from DynamoDB, alerts from the SQS inbox.

* :func:`read_results` - one symbol's results (Query, paginated; keys from
  ``STACK.keys["results"]``), numbers as float, as a DataFrame indexed by UTC ``bar_time``.
* :func:`list_symbols` - the symbols present in the results table (Scan with a projection,
  paginated).
* :func:`read_alerts` - messages of the alerts inbox queue (an SQS subscription of the alerts
  topic), each parsed by ``stocksage.alerts.received.parse_alert_message``; by default nothing
  is deleted (messages are made visible again at once, so reading is a peek).

Clients are plain ``boto3.client("dynamodb")`` / ``boto3.client("sqs")`` (low-level clients, so
the paginators can be used).
"""

from __future__ import annotations

import logging
from collections.abc import Iterable, Mapping
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd
from boto3.dynamodb.types import TypeDeserializer

from stocksage.alerts.received import parse_alert_message
from stocksage.config import STACK

log = logging.getLogger(__name__)

OHLCV_COLUMNS = ("open", "high", "low", "close", "volume")
#: Column order of :func:`read_results` frames (other attributes follow, sorted).
RESULT_COLUMNS: tuple[str, ...] = (
    *OHLCV_COLUMNS,
    *STACK.indicator_columns,
    *tuple(f for f in STACK.features if f not in STACK.indicator_columns),
    "prob_up",
    "model_version",
)
_TEXT_COLUMNS = frozenset({"model_version", "processed_at", "interval", "source"})

_deserializer = TypeDeserializer()


def _plain(value: Any) -> Any:
    """DynamoDB-deserialized value -> float/str/... (Decimal -> float)."""
    if isinstance(value, Decimal):
        return float(value)
    if isinstance(value, Mapping):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | set | tuple):
        return [_plain(v) for v in value]
    return value


def _item_to_dict(item: Mapping[str, Any]) -> dict[str, Any]:
    return {k: _plain(_deserializer.deserialize(v)) for k, v in item.items()}


def items_to_frame(items: Iterable[Mapping[str, Any]]) -> pd.DataFrame:
    """Plain result dicts (``bar_time`` ISO strings) -> frame indexed by UTC ``bar_time``.

    Numeric columns are float64 (missing values NaN, e.g. ``prob_up`` during warm-up); the
    partition key column is dropped; the index is sorted and unique (last item wins).
    """
    sort_key = STACK.keys["results"]["sort"]
    part_key = STACK.keys["results"]["partition"]
    frame = pd.DataFrame.from_records(list(items))
    if frame.empty:
        index = pd.DatetimeIndex([], tz="UTC", name=sort_key)
        return pd.DataFrame(
            {c: pd.Series(dtype=object if c in _TEXT_COLUMNS else "float64", index=index)
             for c in RESULT_COLUMNS}
        )
    frame.index = pd.DatetimeIndex(pd.to_datetime(frame.pop(sort_key), utc=True), name=sort_key)
    frame = frame.drop(columns=[part_key], errors="ignore")
    frame = frame[~frame.index.duplicated(keep="last")].sort_index()
    for column in RESULT_COLUMNS:
        if column not in frame.columns:
            frame[column] = None if column in _TEXT_COLUMNS else np.nan
    for column in frame.columns:
        if column in _TEXT_COLUMNS:
            continue
        converted = pd.to_numeric(frame[column], errors="coerce")
        # Keep non-numeric attributes (strings, maps) as they are.
        if converted.notna().sum() >= frame[column].notna().sum():
            frame[column] = converted.astype("float64")
    ordered = [*RESULT_COLUMNS, *sorted(c for c in frame.columns if c not in RESULT_COLUMNS)]
    return frame[ordered]


def read_results(
    client: Any,
    table_name: str,
    symbol: str,
    start: str | None = None,
    end: str | None = None,
    *,
    consistent: bool = False,
) -> pd.DataFrame:
    """All results of ``symbol`` (optionally ``start <= bar_time <= end``, ISO strings).

    Args:
        client: ``boto3.client("dynamodb")``.
        table_name: Physical results table name (``resource_name(env, "results_table")``).
        symbol: Partition key value (upper case).
        start, end: Inclusive ISO bounds on the sort key (string comparison, as stored).
        consistent: Strongly consistent reads.

    Returns:
        DataFrame indexed by UTC ``bar_time`` with :data:`RESULT_COLUMNS` first.
    """
    pk = STACK.keys["results"]["partition"]
    sk = STACK.keys["results"]["sort"]
    condition = "#pk = :pk"
    values: dict[str, Any] = {":pk": {"S": symbol}}
    names = {"#pk": pk}
    if start is not None and end is not None:
        condition += " AND #sk BETWEEN :lo AND :hi"
        values.update({":lo": {"S": start}, ":hi": {"S": end}})
        names["#sk"] = sk
    elif start is not None:
        condition += " AND #sk >= :lo"
        values[":lo"] = {"S": start}
        names["#sk"] = sk
    elif end is not None:
        condition += " AND #sk <= :hi"
        values[":hi"] = {"S": end}
        names["#sk"] = sk
    paginator = client.get_paginator("query")
    items: list[dict[str, Any]] = []
    for page in paginator.paginate(
        TableName=table_name,
        KeyConditionExpression=condition,
        ExpressionAttributeNames=names,
        ExpressionAttributeValues=values,
        ConsistentRead=consistent,
    ):
        items.extend(_item_to_dict(item) for item in page.get("Items", []))
    log.debug("results read", extra={"symbol": symbol, "items": len(items)})
    return items_to_frame(items)


def list_symbols(client: Any, table_name: str) -> list[str]:
    """Sorted distinct symbols in the results table (Scan projecting only the partition key).

    A Scan reads the whole table; fine for dashboards of a demo-sized table.
    """
    pk = STACK.keys["results"]["partition"]
    paginator = client.get_paginator("scan")
    symbols: set[str] = set()
    for page in paginator.paginate(
        TableName=table_name, ProjectionExpression="#pk", ExpressionAttributeNames={"#pk": pk}
    ):
        for item in page.get("Items", []):
            if pk in item:
                symbols.add(_deserializer.deserialize(item[pk]))
    return sorted(symbols)


def read_alerts(
    client: Any,
    queue_url: str,
    *,
    delete: bool = False,
    max_messages: int = 10_000,
    wait_seconds: int = 1,
    visibility_timeout: int = 60,
) -> list[dict[str, Any]]:
    """Receive every message of the alerts inbox queue until it is empty.

    Args:
        client: ``boto3.client("sqs")``.
        queue_url: Alerts inbox queue URL.
        delete: Delete what was read. By default messages are kept and their visibility is
            reset to 0 afterwards, so the next reader sees them again.
        max_messages: Stop after this many messages.
        wait_seconds: Long-poll seconds per receive (>= 1 avoids the false "empty" answers
            of short polling on AWS; 0 is fine on the emulator).
        visibility_timeout: Hides received messages while reading, so a loop receives each once.

    Returns:
        Alert dicts (see :func:`parse_alert_message`) plus ``SqsMessageId`` and
        ``SentTimestamp`` (ms), in the order received, one per SQS message.
    """
    alerts: list[dict[str, Any]] = []
    seen: set[str] = set()
    receipts: list[dict[str, str]] = []
    while len(alerts) < max_messages:
        response = client.receive_message(
            QueueUrl=queue_url,
            MaxNumberOfMessages=min(10, max_messages - len(alerts)),
            WaitTimeSeconds=wait_seconds,
            VisibilityTimeout=visibility_timeout,
            MessageAttributeNames=["All"],
            AttributeNames=["All"],
        )
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            receipts.append({"Id": str(len(receipts)), "ReceiptHandle": message["ReceiptHandle"]})
            if message["MessageId"] in seen:
                continue
            seen.add(message["MessageId"])
            alert = parse_alert_message(message.get("Body", ""), message.get("MessageAttributes"))
            alert["SqsMessageId"] = message["MessageId"]
            alert["SentTimestamp"] = message.get("Attributes", {}).get("SentTimestamp")
            alerts.append(alert)
    for chunk_start in range(0, len(receipts), 10):
        chunk = receipts[chunk_start:chunk_start + 10]
        if delete:
            client.delete_message_batch(QueueUrl=queue_url, Entries=chunk)
        else:
            client.change_message_visibility_batch(
                QueueUrl=queue_url,
                Entries=[{**entry, "VisibilityTimeout": 0} for entry in chunk],
            )
    log.debug("alerts read", extra={"alerts": len(alerts), "deleted": delete})
    return alerts


__all__ = [
    "RESULT_COLUMNS",
    "items_to_frame",
    "list_symbols",
    "read_alerts",
    "read_results",
]
