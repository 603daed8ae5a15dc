"""The emulator's fast paths answer exactly what moto's own serializer answers.

Every request is sent twice to the same patched emulator: once with the fast path, once with
moto's serializer restored; the response bodies (parsed) and content types must be equal.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import Any

import boto3
import pytest
from moto.dynamodb.responses import DynamoHandler
from moto.moto_server.werkzeug_app import DomainDispatcherApplication

from stocksage.local.emulator import applied_patches

TABLE = "fastpath-items"


@contextmanager
def moto_serializer() -> Iterator[None]:
    """Restore moto's own serializer for the duration."""
    fast = DynamoHandler.serialized
    DynamoHandler.serialized = fast.__wrapped__
    try:
        yield
    finally:
        DynamoHandler.serialized = fast


@pytest.fixture(scope="module")
def client(kw):
    dynamodb = boto3.client("dynamodb", **kw)
    dynamodb.create_table(
        TableName=TABLE, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"},
                   {"AttributeName": "bar_time", "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"},
                              {"AttributeName": "bar_time", "AttributeType": "S"}])
    items = [
        {
            "symbol": {"S": f"SYM{i % 3}"}, "bar_time": {"S": f"2024-01-{i + 1:02d}T00:00:00Z"},
            "close": {"N": f"{100 + i * 0.25}"}, "volume": {"N": str(10**12 + i)},
            "core": {"B": bytes(range(i, i + 40))}, "flag": {"BOOL": i % 2 == 0},
            "nothing": {"NULL": True}, "tags": {"SS": ["a", f"t{i}"]},
            "levels": {"NS": ["1.5", str(i + 2)]}, "blobs": {"BS": [b"\x00\xff", bytes([i])]},
            "outbox": {"L": [{"S": "x"}, {"N": "-0.000001"}, {"M": {"k": {"S": "é✓"}}}]},
            "fired": {"M": {"rule": {"N": str(i)}, "nested": {"L": []}}},
            "empty_map": {"M": {}}, "text": {"S": "quote \" and \\ and \n newline"},
        }
        for i in range(30)
    ]
    for item in items:
        dynamodb.put_item(TableName=TABLE, Item=item)
    return dynamodb


def _raw(client, call: Callable[[], Any]) -> tuple[dict, str]:
    seen: dict[str, Any] = {}

    def keep(http_response, **_):
        seen["body"] = http_response.content
        seen["type"] = http_response.headers.get("Content-Type")

    client.meta.events.register("after-call.dynamodb", keep)
    try:
        call()
    finally:
        client.meta.events.unregister("after-call.dynamodb", keep)
    return json.loads(seen["body"]), seen["type"]


REQUESTS: dict[str, Callable[[Any], Any]] = {
    "get_item": lambda c: c.get_item(
        TableName=TABLE, Key={"symbol": {"S": "SYM1"}, "bar_time": {"S": "2024-01-02T00:00:00Z"}}),
    "get_item_missing": lambda c: c.get_item(
        TableName=TABLE, Key={"symbol": {"S": "NONE"}, "bar_time": {"S": "x"}}),
    "get_item_projection": lambda c: c.get_item(
        TableName=TABLE, Key={"symbol": {"S": "SYM1"}, "bar_time": {"S": "2024-01-02T00:00:00Z"}},
        ProjectionExpression="#c, fired.rule, outbox[2]", ExpressionAttributeNames={"#c": "close"},
        ReturnConsumedCapacity="TOTAL"),
    "batch_get_item": lambda c: c.batch_get_item(RequestItems={TABLE: {"Keys": [
        {"symbol": {"S": f"SYM{i % 3}"}, "bar_time": {"S": f"2024-01-{i + 1:02d}T00:00:00Z"}}
        for i in range(0, 30, 2)] + [{"symbol": {"S": "NONE"}, "bar_time": {"S": "x"}}]}},
        ReturnConsumedCapacity="INDEXES"),
    "query_page": lambda c: c.query(
        TableName=TABLE, KeyConditionExpression="symbol = :s",
        ExpressionAttributeValues={":s": {"S": "SYM0"}}, Limit=4, ScanIndexForward=False),
    "query_filter_count": lambda c: c.query(
        TableName=TABLE, KeyConditionExpression="symbol = :s", Select="COUNT",
        FilterExpression="flag = :t", ExpressionAttributeValues={":s": {"S": "SYM2"},
                                                                 ":t": {"BOOL": True}}),
    "scan_page": lambda c: c.scan(TableName=TABLE, Limit=7),
    "scan_projection": lambda c: c.scan(TableName=TABLE, ProjectionExpression="symbol, core"),
}


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_item_responses_equal_moto_serializer(client, name):
    assert "dynamodb_item_responses" in applied_patches()
    fast, fast_type = _raw(client, lambda: REQUESTS[name](client))
    with moto_serializer():
        slow, slow_type = _raw(client, lambda: REQUESTS[name](client))
    assert fast == slow
    assert fast_type == slow_type


def test_binaries_round_trip_through_boto3(client):
    got = client.get_item(TableName=TABLE, Key={"symbol": {"S": "SYM0"},
                                                "bar_time": {"S": "2024-01-04T00:00:00Z"}})
    assert got["Item"]["core"]["B"] == bytes(range(3, 43))
    assert sorted(got["Item"]["blobs"]["BS"]) == sorted([b"\x00\xff", bytes([3])])
    raw, _ = _raw(client, lambda: client.get_item(
        TableName=TABLE, Key={"symbol": {"S": "SYM0"}, "bar_time": {"S": "2024-01-04T00:00:00Z"}}))
    assert base64.b64decode(raw["Item"]["core"]["B"]) == bytes(range(3, 43))


def test_errors_keep_moto_serializer(client):
    with pytest.raises(client.exceptions.ResourceNotFoundException):
        client.get_item(TableName="no-such-table", Key={"symbol": {"S": "A"},
                                                        "bar_time": {"S": "x"}})


def test_backend_lookup_is_cached_per_host():
    assert "backend_lookup_cache" in applied_patches()
    app = DomainDispatcherApplication(lambda service: None)
    lookup = DomainDispatcherApplication.get_backend_for_host
    original = lookup.__wrapped__
    for host in ("dynamodb.us-east-1.amazonaws.com", "s3.amazonaws.com", "127.0.0.1:4566",
                 "kinesis", None):
        assert lookup(app, host) == original(app, host)
