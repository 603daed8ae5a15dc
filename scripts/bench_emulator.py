"""Benchmark of the emulator's fast paths (``stocksage.local.moto_patches``), A/B.

One in-process patched emulator; each measurement alternates rounds with the fast path on and
with moto's own code restored, so both sides see the same machine load:

* ``batch_get_states``: BatchGetItem of 100 state items (the processor's ``get_states`` per
  batch; items shaped like ``window-state`` format 2: ~0.7 KB core blob, maps, numbers);
* ``describe_table``: a small request, dominated by per-request dispatch (the backend lookup);
* ``batch_write_results``: BatchWriteItem of 25 results items (~40 attributes each, the
  processor's ``put_results`` per 25 bars), fast paths of ``fastwrites`` on or off;
* ``transact_write_states``: TransactWriteItems of 100 conditional state puts (the
  processor's ``put_states`` per batch), fast paths of ``fastwrites`` on or off.

Usage: ``python scripts/bench_emulator.py [--rounds 5] [--calls 40] [--json]``
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import boto3

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from stocksage.local.emulator import Emulator

TABLE = "bench-states"


Patched = list[tuple[Any, str]]
"""``(class, attribute)`` pairs whose fast path a measurement switches off."""


@contextmanager
def moto_own(patched: Patched) -> Iterator[None]:
    """Restore moto's own ``cls.name`` (each fast path's ``__wrapped__``) for the duration."""
    fast = [getattr(cls, name) for cls, name in patched]
    for (cls, name), function in zip(patched, fast, strict=True):
        setattr(cls, name, function.__wrapped__)
    try:
        yield
    finally:
        for (cls, name), function in zip(patched, fast, strict=True):
            setattr(cls, name, function)


def _rate(call: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - started)


def ab(call: Callable[[], Any], patched: Patched, rounds: int, calls: int) -> dict[str, float]:
    """Median calls/s with the fast paths and with moto's code, alternating rounds."""
    call()
    fast, slow = [], []
    for _ in range(rounds):
        fast.append(_rate(call, calls))
        with moto_own(patched):
            slow.append(_rate(call, calls))
    return {"fast_calls_per_s": round(statistics.median(fast), 1),
            "moto_calls_per_s": round(statistics.median(slow), 1),
            "speedup": round(statistics.median(fast) / statistics.median(slow), 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--calls", type=int, default=40)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    from moto.core.parse import JSONParser
    from moto.dynamodb.comparisons import ConditionExpressionParser
    from moto.dynamodb.models.dynamo_type import Item
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    writes: Patched = [(Item, "__init__"), (JSONParser, "_parse_json_body"),
                       (ConditionExpressionParser, "_lex_condition_expression")]

    with Emulator(port=0) as emu:
        client = boto3.client("dynamodb", endpoint_url=emu.endpoint_url, region_name="us-east-1",
                              aws_access_key_id="test", aws_secret_access_key="test")
        client.create_table(TableName=TABLE, BillingMode="PAY_PER_REQUEST",
                            KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"}],
                            AttributeDefinitions=[{"AttributeName": "symbol",
                                                   "AttributeType": "S"}])
        for i in range(100):
            client.put_item(TableName=TABLE, Item={
                "symbol": {"S": f"S{i:03d}"}, "format": {"N": "2"}, "version": {"N": "7"},
                "bars_seen": {"N": "700"}, "interval": {"S": "1d"},
                "last_bar_time": {"S": "2024-01-02T00:00:00Z"}, "core": {"B": os.urandom(650)},
                "alerts_last_fired": {"M": {"move": {"N": "690"}, "doji": {"N": "650"}}}})
        keys = [{"symbol": {"S": f"S{i:03d}"}} for i in range(100)]
        results_items = [
            {"PutRequest": {"Item": {
                "symbol": {"S": f"R{i:03d}"}, "bar_time": {"S": "2024-01-02T00:00:00Z"},
                "prediction_status": {"S": "ok"}, "interval": {"S": "1d"},
                **{f"indicator_{k:02d}": {"N": f"{100 + k * 0.123456789:.9f}"}
                   for k in range(36)}}}}
            for i in range(25)]
        state_puts = [
            {"Put": {"TableName": TABLE, "Item": {
                "symbol": {"S": f"S{i:03d}"}, "format": {"N": "2"}, "version": {"N": "7"},
                "core": {"B": os.urandom(650)}}, "ConditionExpression": "#f = :f",
                "ExpressionAttributeNames": {"#f": "format"},
                "ExpressionAttributeValues": {":f": {"N": "2"}}}}
            for i in range(100)]
        results = {
            "batch_get_states": ab(
                lambda: client.batch_get_item(RequestItems={TABLE: {"Keys": keys}}),
                [(DynamoHandler, "serialized")], args.rounds, args.calls),
            "describe_table": ab(lambda: client.describe_table(TableName=TABLE),
                                 [(DomainDispatcherApplication, "get_backend_for_host")],
                                 args.rounds, args.calls * 5),
            "batch_write_results": ab(
                lambda: client.batch_write_item(RequestItems={TABLE: results_items}),
                writes, args.rounds, args.calls),
            "transact_write_states": ab(
                lambda: client.transact_write_items(TransactItems=state_puts),
                writes, args.rounds, max(1, args.calls // 4)),
        }
    if args.json:
        print(json.dumps(results))
    else:
        for name, row in results.items():
            print(f"{name:22s} fast {row['fast_calls_per_s']:8.1f}/s  moto "
                  f"{row['moto_calls_per_s']:8.1f}/s  x{row['speedup']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
