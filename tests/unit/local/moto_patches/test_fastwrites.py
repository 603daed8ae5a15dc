"""The emulator's write fast paths give what moto's own code gives, error for error.

Each patched function keeps moto's original as ``__wrapped__``: the tests run both on the same
input and compare the results (or the exception types), then check the emulator end to end.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.serialize import create_serializer
from moto.core.parse import JSONParser
from moto.core.utils import get_service_model
from moto.dynamodb.comparisons import ConditionExpressionParser, get_filter_expression
from moto.dynamodb.exceptions import ItemSizeTooLarge
from moto.dynamodb.models.dynamo_type import DynamoType, Item

from stocksage.local.emulator import applied_patches
from stocksage.local.moto_patches import apply_patches

WRITES = ("dynamodb_item_size_once", "dynamodb_compiled_request_parser",
          "dynamodb_condition_lexer_cache")

ITEM = {
    "symbol": {"S": "AAPL"}, "bar_time": {"S": "2024-01-02T14:30:00Z"},
    "close": {"N": "185.64"}, "volume": {"N": "1000000000000"}, "core": {"B": b"\x00\x01\xff"},
    "flag": {"BOOL": False}, "nothing": {"NULL": True}, "tags": {"SS": ["a", "b"]},
    "levels": {"NS": ["1.5", "2"]}, "blobs": {"BS": [b"\x00", b"\xfe"]},
    "outbox": {"L": [{"S": "x"}, {"M": {"k": {"S": "é✓"}, "n": {"L": []}}}]},
    "empty": {"M": {}},
}

REQUESTS: dict[str, tuple[str, dict[str, Any]]] = {
    "put_item_conditional": ("PutItem", {
        "TableName": "tbl", "Item": ITEM, "ConditionExpression": "attribute_not_exists(#v)",
        "ExpressionAttributeNames": {"#v": "version"}, "ReturnValues": "NONE"}),
    "batch_write_item": ("BatchWriteItem", {"RequestItems": {"tbl": [
        {"PutRequest": {"Item": ITEM}},
        {"DeleteRequest": {"Key": {"symbol": {"S": "A"}, "bar_time": {"S": "x"}}}}]},
        "ReturnConsumedCapacity": "TOTAL"}),
    "transact_write_items": ("TransactWriteItems", {"TransactItems": [
        {"Put": {"TableName": "tbl", "Item": ITEM, "ConditionExpression": "#v = :v",
                 "ExpressionAttributeNames": {"#v": "version"},
                 "ExpressionAttributeValues": {":v": {"N": "3"}}}},
        {"Update": {"TableName": "tbl", "Key": {"symbol": {"S": "B"}, "bar_time": {"S": "y"}},
                    "UpdateExpression": "SET #s = :s", "ExpressionAttributeNames": {"#s": "st"},
                    "ExpressionAttributeValues": {":s": {"B": b"\x10"}}}},
        {"ConditionCheck": {"TableName": "tbl", "Key": {"symbol": {"S": "C"},
                                                      "bar_time": {"S": "z"}},
                            "ConditionExpression": "attribute_exists(symbol)"}}],
        "ClientRequestToken": "token-1"}),
    "query_with_start_key": ("Query", {
        "TableName": "tbl", "KeyConditionExpression": "symbol = :s", "Limit": 25,
        "ExclusiveStartKey": {"symbol": {"S": "A"}, "bar_time": {"S": "x"}},
        "ExpressionAttributeValues": {":s": {"S": "A"}}, "ScanIndexForward": False}),
    "create_table": ("CreateTable", {
        "TableName": "tbl", "BillingMode": "PROVISIONED",
        "KeySchema": [{"AttributeName": "symbol", "KeyType": "HASH"}],
        "AttributeDefinitions": [{"AttributeName": "symbol", "AttributeType": "S"}],
        "ProvisionedThroughput": {"ReadCapacityUnits": 5, "WriteCapacityUnits": 5},
        "Tags": [{"Key": "k", "Value": "v"}]}),
    "restore_point_in_time": ("RestoreTableToPointInTime", {
        "SourceTableName": "src", "TargetTableName": "dst", "RestoreDateTime": 1.7e9}),
}


@pytest.fixture(autouse=True, scope="module")
def _patched() -> None:
    apply_patches()


def _outcome(call: Callable[[], Any]) -> Any:
    """What ``call`` returns, or the type of the exception it raises (what is compared)."""
    try:
        return call()
    except Exception as exc:  # noqa: BLE001  # the exception type is what is compared
        return type(exc)


def _parse_both(operation: str, body: bytes) -> tuple[Any, Any]:
    model = get_service_model("dynamodb").operation_model(operation)
    parser = JSONParser(model, map_type=dict)
    fast = JSONParser._parse_json_body
    return (_outcome(lambda: fast(parser, body, model.input_shape)),
            _outcome(lambda: fast.__wrapped__(parser, body, model.input_shape)))


def _body(operation: str, params: dict[str, Any]) -> bytes:
    model = get_service_model("dynamodb").operation_model(operation)
    return create_serializer("json").serialize_to_request(params, model)["body"]


@pytest.mark.parametrize("name", sorted(REQUESTS))
def test_compiled_parser_equals_moto(name):
    assert set(WRITES) <= set(applied_patches())
    operation, params = REQUESTS[name]
    fast, slow = _parse_both(operation, _body(operation, params))
    assert fast == slow
    assert json.dumps(fast, default=repr) == json.dumps(slow, default=repr)  # same key order


@pytest.mark.parametrize("body", [
    b"", b"not json", b"[]", b'{"TableName": "tbl", "Item": "not a map"}',
    b'{"TableName": "tbl", "Item": {"a": "not an attribute value"}}',
    b'{"TableName": "tbl", "Item": {"a": {"S": "x", "Unknown": 1, "N": null}}, "Extra": 2}',
    b'{"TableName": null, "Item": {"a": {"L": "abc"}}}',
    b'{"TableName": "tbl", "Item": {"a": {"M": []}}}',
    b'{"TableName": "tbl", "Item": {"a": {"Unknown": "x"}, "b": {"S": null}, "c": {}}}',
])
def test_compiled_parser_equals_moto_on_hostile_bodies(body):
    fast, slow = _parse_both("PutItem", body)
    assert fast == slow


def _item(attrs: dict[str, Any], init: Callable[..., None]) -> Any:
    item = Item.__new__(Item)

    def build() -> Any:
        init(item, DynamoType(attrs["symbol"]), None, attrs)
        return item.attrs, type(item.attrs)

    return _outcome(build)


@pytest.mark.parametrize("filler", [0, 404_000, 404_900, 405_000, 500_000])
def test_item_size_limit_equals_moto(filler):
    attrs = dict(ITEM, pad={"S": "p" * filler}, after={"N": "1"})
    fast = _item(attrs, Item.__init__)
    slow = _item(attrs, Item.__init__.__wrapped__)
    assert fast == slow
    assert (fast is ItemSizeTooLarge) == (filler >= 404_900)


def test_item_with_a_bad_value_fails_as_in_moto():
    attrs = {"symbol": {"S": "A"}, "big": {"S": "p" * 500_000}, "bad": {}}
    assert _item(attrs, Item.__init__) == _item(attrs, Item.__init__.__wrapped__)


@pytest.mark.parametrize("expression", [
    "attribute_not_exists(#v)", "#v = :v", "#v = :v AND (size(#l) > :n OR NOT #b IN (:a, :c))",
    "a.b[1].c BETWEEN :a AND :c", "begins_with(#v, :a)", "#v <> :v", "#v = = :v",
])
def test_condition_lexer_equals_moto(expression):
    names = {"#v": "version", "#l": "levels", "#b": "flag"}
    values = {":v": {"N": "1"}, ":n": {"N": "2"}, ":a": {"S": "a"}, ":c": {"S": "c"}}
    fast_lex = ConditionExpressionParser._lex_condition_expression
    results = []
    for _ in range(2):  # the second run comes from the cache
        for lex in (fast_lex, fast_lex.__wrapped__):
            ConditionExpressionParser._lex_condition_expression = lex
            try:
                results.append(_outcome(
                    lambda: repr(get_filter_expression(expression, names, values))))
            finally:
                ConditionExpressionParser._lex_condition_expression = fast_lex
    assert len(set(map(str, results))) == 1


def test_conditional_writes_through_the_emulator(kw):
    dynamodb = boto3.client("dynamodb", **kw)
    dynamodb.create_table(
        TableName="fastwrites", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"}])

    def put(version: int, expected: int | None) -> None:
        request: dict[str, Any] = {"TableName": "fastwrites", "Item": dict(
            ITEM, symbol={"S": "AAPL"}, version={"N": str(version)})}
        if expected is None:
            request.update(ConditionExpression="attribute_not_exists(#v)",
                           ExpressionAttributeNames={"#v": "version"})
        else:
            request.update(ConditionExpression="#v = :v",
                           ExpressionAttributeNames={"#v": "version"},
                           ExpressionAttributeValues={":v": {"N": str(expected)}})
        dynamodb.transact_write_items(TransactItems=[{"Put": request}])

    put(1, None)
    put(2, 1)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        put(3, 1)
    with pytest.raises(dynamodb.exceptions.TransactionCanceledException):
        put(3, None)
    got = dynamodb.get_item(TableName="fastwrites", Key={"symbol": {"S": "AAPL"}})["Item"]
    assert got["version"] == {"N": "2"} and got["core"] == {"B": b"\x00\x01\xff"}
    assert got["outbox"] == ITEM["outbox"]
    with pytest.raises(dynamodb.exceptions.ClientError, match="Item size has exceeded"):
        dynamodb.put_item(TableName="fastwrites",
                          Item={"symbol": {"S": "BIG"}, "pad": {"S": "p" * 410_000}})


def _sample(shape: Any, depth: int = 0) -> Any:
    """A value of ``shape`` with every member set (one for a union), lists of two, maps of
    one entry; cut at depth 5 (recursive AttributeValue)."""
    kind = shape.type_name
    if kind == "structure":
        names = list(shape.members)
        if depth > 5:
            return {}
        if shape.metadata.get("union"):
            names = names[depth % len(names):][:1]
        return {name: _sample(shape.members[name], depth + 1) for name in names}
    if kind == "list":
        return [] if depth > 5 else [_sample(shape.member, depth + 1) for _ in range(2)]
    if kind == "map":
        return {} if depth > 5 else {"key": _sample(shape.value, depth + 1)}
    return {"string": "abc", "blob": b"\x00\xffblob", "boolean": True, "integer": 7,
            "long": 2**40, "float": 1.5, "double": 2.25,
            "timestamp": 1_700_000_000}.get(kind, "abc")


def test_compiled_parser_equals_moto_for_every_dynamodb_operation():
    """Every operation of the DynamoDB model, every member of its input set."""
    model = get_service_model("dynamodb")
    serializer = create_serializer("json", include_validation=False)
    compared = 0
    for name in model.operation_names:
        operation = model.operation_model(name)
        if operation.input_shape is None:
            continue
        body = serializer.serialize_to_request(_sample(operation.input_shape),
                                               operation)["body"]
        fast, slow = _parse_both(name, body)
        assert fast == slow, name
        assert json.dumps(fast, default=repr) == json.dumps(slow, default=repr), name
        compared += 1
    assert compared >= 50
