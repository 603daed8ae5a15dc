"""Benchmark of the stream side on the embedded emulator: Kinesis put rate and the collector.

1. PutRecords rate (500 records per call) on plain ``moto_server`` and on the project's patched
   emulator, each with a Lambda event source mapping on the stream -- the case where moto
   invokes the function inside ``put_records`` (``tests/unit/local/test_emulator.py``
   ``test_control_unpatched_moto_invokes_lambda_from_puts``). Each server is a fresh subprocess.
2. The collector's ``KinesisSink`` replaying real bars of six symbols, with one record per
   symbol per request (order-safe default) and with up to 500 per symbol.

3. ``--e2e``: end to end through the local stack (``make up`` on :4566, processor run by the
   local runtime): S symbols x N bars interleaved (default 500 x 100, real bars of the
   packaged series under synthetic symbol names) put by the collector's ``KinesisSink``;
   reports bars/s from the first put to the last results item, and the p50/p95 delay from a
   bar's PutRecords to its results item (``processed_at``, milliseconds).

Usage: ``python scripts/bench_stream.py [--records 5000] [--out FILE]`` or
``python scripts/bench_stream.py --e2e [--symbols 500] [--bars 100] [--json]``
"""

from __future__ import annotations

import argparse
import io
import json
import platform
import socket
import subprocess
import sys
import time
import zipfile
from pathlib import Path

import boto3

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stocksage.collector.sink.kinesis_sink import KinesisSink
from stocksage.collector.sources import ReplaySource
from stocksage.local.emulator import probe, wait_until

KW = {"region_name": "us-east-1", "aws_access_key_id": "test", "aws_secret_access_key": "test"}


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _server(patched: bool) -> tuple[subprocess.Popen, str]:
    port = _free_port()
    args = ([sys.executable, "-m", "stocksage.local.emulator", "serve", "--port", str(port)]
            if patched else [str(Path(sys.executable).with_name("moto_server")), "-H",
                             "127.0.0.1", "-p", str(port)])
    proc = subprocess.Popen(args, cwd=ROOT, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    url = f"http://127.0.0.1:{port}"
    if not wait_until(lambda: probe(url), timeout=60):
        proc.kill()
        raise RuntimeError(f"server on {url} did not start")
    return proc, url


def _stream_with_mapping(url: str, name: str) -> None:
    kinesis, lam, iam = (boto3.client(s, endpoint_url=url, **KW)
                         for s in ("kinesis", "lambda", "iam"))
    role = iam.create_role(RoleName="bench", AssumeRolePolicyDocument=json.dumps({
        "Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                                                "Principal": {"Service": "lambda.amazonaws.com"}}]
    }))["Role"]["Arn"]
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"]["StreamARN"]
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("h.py", "def handler(e, c):\n    return e\n")
    lam.create_function(FunctionName=name, Runtime="python3.12", Role=role, Handler="h.handler",
                        Code={"ZipFile": buf.getvalue()})
    lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                    StartingPosition="TRIM_HORIZON", BatchSize=100)


def put_rate(patched: bool, records: int) -> float:
    proc, url = _server(patched)
    try:
        _stream_with_mapping(url, "bench")
        kinesis = boto3.client("kinesis", endpoint_url=url, **KW)
        payload = b'{"symbol":"TSLA","close":1}'
        started = time.perf_counter()
        for start in range(0, records, 500):
            n = min(500, records - start)
            kinesis.put_records(StreamName="bench", Records=[
                {"Data": payload, "PartitionKey": f"K{i % 7}"} for i in range(n)])
        return records / (time.perf_counter() - started)
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def collector_rate(per_key: int) -> tuple[int, float]:
    proc, url = _server(True)
    try:
        kinesis = boto3.client("kinesis", endpoint_url=url, **KW)
        kinesis.create_stream(StreamName="bars", ShardCount=1)
        source = ReplaySource(["TSLA", "AAPL", "GOOG", "IBM", "MSFT", "FB"], limit=300,
                              interleave="round-robin")
        started = time.perf_counter()
        with KinesisSink(kinesis, "bars", max_records_per_key=per_key) as sink:
            for bar in source:
                sink.put(bar)
        seconds = time.perf_counter() - started
        return sink.stats.sent, sink.stats.sent / seconds
    finally:
        proc.terminate()
        proc.wait(timeout=10)


def _bars_seen(dynamodb, table: str, symbols: list[str]) -> dict[str, int]:
    """``{symbol: bars_seen}`` of the state items of ``symbols`` (BatchGetItem, 100 a call)."""
    seen: dict[str, int] = {}
    for start in range(0, len(symbols), 100):
        request = {table: {"Keys": [{"symbol": {"S": s}} for s in symbols[start:start + 100]],
                           "ProjectionExpression": "symbol, bars_seen"}}
        while request:
            page = dynamodb.batch_get_item(RequestItems=request)
            for item in page["Responses"].get(table, []):
                seen[item["symbol"]["S"]] = int(item["bars_seen"]["N"])
            request = page.get("UnprocessedKeys") or None
    return seen


def end_to_end(symbols: int, bars: int, timeout: float = 1800) -> dict[str, float]:
    """Put ``symbols x bars`` interleaved bars into the running local stack; time the results."""
    import numpy as np

    from stocksage.bars import frame_to_bars
    from stocksage.datasets import load_bars
    from stocksage.local.stack import outputs, use_local_environ

    use_local_environ()
    out = outputs()
    kinesis, dynamodb = boto3.client("kinesis"), boto3.client("dynamodb")
    run = time.strftime("%H%M%S")
    sources = {name: load_bars(name) for name in ("AAPL", "IBM", "MSFT", "GOOG", "NVDA")}
    series = [frame_to_bars(f"E{run}{i:03d}", list(sources.values())[i % 5].iloc[:bars])
              for i in range(symbols)]
    put_at: dict[tuple[str, str], float] = {}
    started = time.time()
    with KinesisSink(kinesis, out["stream_name"]) as sink:
        for k in range(bars):
            for bars_of in series:
                bar = bars_of[k]
                sink.put(bar)
                put_at[(bar.symbol, bar.to_dict()["bar_time"])] = time.time()
    put_done = time.time()
    # Poll cheaply: GetItem on the state of the symbol put last (one shard keeps its order per
    # partition key, so it is among the last to finish), then one BatchGetItem round over all
    # the run's symbols. A Scan of the state table every 2 s, or a Query per symbol, loads the
    # emulator more than the run itself (moto serialises every item it returns).
    wanted = [bars_of[0].symbol for bars_of in series]
    deadline = time.time() + timeout
    while time.time() < deadline:
        if _bars_seen(dynamodb, out["state_table"], wanted[-1:]).get(wanted[-1], 0) >= bars:
            seen = _bars_seen(dynamodb, out["state_table"], wanted)
            if len(seen) == len(wanted) and min(seen.values()) >= bars:
                break
        time.sleep(1)
    found: dict[tuple[str, str], float] = {}
    for page in dynamodb.get_paginator("scan").paginate(
            TableName=out["results_table"], ProjectionExpression="symbol, bar_time, processed_at"):
        for item in page["Items"]:
            key = (item["symbol"]["S"], item["bar_time"]["S"])
            if key in put_at:
                stamp = item["processed_at"]["S"]
                found[key] = time.mktime(time.strptime(stamp[:19], "%Y-%m-%dT%H:%M:%S")) \
                    - time.timezone + float("0" + stamp[19:-1])
    delays = np.array([found[key] - put_at[key] for key in found])
    last = max(found.values()) if found else time.time()
    return {"bars": len(put_at), "processed": len(found),
            "bars_per_s": round(len(found) / (last - started), 1),
            "put_bars_per_s": round(len(put_at) / (put_done - started), 1),
            "delay_p50_s": round(float(np.percentile(delays, 50)), 2) if len(delays) else -1,
            "delay_p95_s": round(float(np.percentile(delays, 95)), 2) if len(delays) else -1}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None)
    parser.add_argument("--e2e", action="store_true", help="end to end on the `make up` stack")
    parser.add_argument("--symbols", type=int, default=500)
    parser.add_argument("--bars", type=int, default=100)
    parser.add_argument("--json", action="store_true")
    args = parser.parse_args()
    if args.e2e:
        result = end_to_end(args.symbols, args.bars)
        print(json.dumps(result) if args.json else "\n".join(f"{k:16s} {v}"
                                                            for k, v in result.items()))
        return 0 if result["processed"] == result["bars"] else 1
    plain = put_rate(False, args.records)
    patched = put_rate(True, args.records)
    safe = collector_rate(1)
    fast = collector_rate(500)
    lines = [
        (f"Measured {time.strftime('%Y-%m-%d')} on {platform.machine()}, Python "
         f"{platform.python_version()}, by `scripts/bench_stream.py --records {args.records}`."),
        "",
        "| what | records | records/s |",
        "|---|---:|---:|",
        f"| PutRecords, plain moto server, mapping on the stream | {args.records} | {plain:.0f} |",
        f"| PutRecords, patched emulator, mapping on the stream | {args.records} | {patched:.0f} |",
        f"| collector, 6 symbols, 1 record per symbol per request (order-safe) | {safe[0]} "
        f"| {safe[1]:.0f} |",
        f"| collector, 6 symbols, up to 500 per symbol per request | {fast[0]} | {fast[1]:.0f} |",
        "",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
