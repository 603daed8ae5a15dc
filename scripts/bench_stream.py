"""Benchmark of the stream side on the embedded emulator: Kinesis put rate and the collector.

1. PutRecords rate (500 records per call) on plain ``moto_server`` and on the project's patched
   emulator, each with a Lambda event source mapping on the stream -- the case where moto
   invokes the function inside ``put_records`` (FACTS.md). Each server is a fresh subprocess.
2. The collector's ``KinesisSink`` replaying real bars of six symbols, with one record per
   symbol per request (order-safe default) and with up to 500 per symbol.

Usage: ``python scripts/bench_stream.py [--records 5000] [--out FILE]``
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

from stocksage.collector.sink import KinesisSink
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
    kinesis, lam, iam = (boto3.client(s, endpoint_url=url, **KW) for s in ("kinesis", "lambda", "iam"))
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


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records", type=int, default=5000)
    parser.add_argument("--out", type=Path, default=None)
    args = parser.parse_args()
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
        f"| collector, 6 symbols, 1 record per symbol per request (order-safe) | {safe[0]} | {safe[1]:.0f} |",
        f"| collector, 6 symbols, up to 500 per symbol per request | {fast[0]} | {fast[1]:.0f} |",
        "",
    ]
    print("\n".join(lines))
    if args.out:
        args.out.write_text("\n".join(lines))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
