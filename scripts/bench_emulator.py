"""Benchmark of the emulator's fast paths (``stocksage.local.moto_patches.fastpaths``), A/B.

One in-process patched emulator; each measurement alternates rounds with the fast path on and
with moto's own code restored, so both sides see the same machine load:

* ``batch_get_states``: BatchGetItem of 100 state items (the processor's ``get_states`` per
  batch; items shaped like ``window-state`` format 2: ~0.7 KB core blob, maps, numbers);
* ``describe_table``: a small request, dominated by per-request dispatch (the backend lookup).

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


@contextmanager
def moto_own(cls: Any, name: str) -> Iterator[None]:
    """Restore moto's own ``cls.name`` (the fast path's ``__wrapped__``) for the duration."""
    fast = getattr(cls, name)
    setattr(cls, name, fast.__wrapped__)
    try:
        yield
    finally:
        setattr(cls, name, fast)


def _rate(call: Callable[[], Any], calls: int) -> float:
    started = time.perf_counter()
    for _ in range(calls):
        call()
    return calls / (time.perf_counter() - started)


def ab(call: Callable[[], Any], cls: Any, name: str, rounds: int, calls: int) -> dict[str, float]:
    """Median calls/s with the fast path and with moto's code, alternating rounds."""
    call()
    fast, slow = [], []
    for _ in range(rounds):
        fast.append(_rate(call, calls))
        with moto_own(cls, name):
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
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

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
        results = {
            "batch_get_states": ab(
                lambda: client.batch_get_item(RequestItems={TABLE: {"Keys": keys}}),
                DynamoHandler, "serialized", args.rounds, args.calls),
            "describe_table": ab(lambda: client.describe_table(TableName=TABLE),
                                 DomainDispatcherApplication, "get_backend_for_host",
                                 args.rounds, args.calls * 5),
        }
    if args.json:
        print(json.dumps(results))
    else:
        for name, row in results.items():
            print(f"{name:18s} fast {row['fast_calls_per_s']:8.1f}/s  moto "
                  f"{row['moto_calls_per_s']:8.1f}/s  x{row['speedup']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
