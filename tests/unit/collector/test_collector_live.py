"""Live source (Alpaca Market Data v2 bars), health check and metrics of the collector.

The provider is a fake HTTP server on 127.0.0.1 serving recorded-shape responses from
tests/fixtures/alpaca/ -- never the internet. Kinesis and Secrets Manager are moto (in process).
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
from datetime import UTC, datetime, timedelta
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlparse

import boto3
import pytest
from moto import mock_aws
from typer.testing import CliRunner

from stocksage.bars import parse_bar
from stocksage.collector.app import app
from stocksage.collector.health import HealthFile, check_health
from stocksage.collector.live import (
    AlpacaBarsSource,
    Credentials,
    ProviderAuthError,
    ProviderError,
    load_credentials,
)

REPO = Path(__file__).resolve().parents[3]
FIXTURES = REPO / "tests" / "fixtures" / "alpaca"
KEY = Credentials("AKFAKEKEYID", "fake-secret-key")
T0 = datetime(2024, 1, 3, 14, 32, 30, tzinfo=UTC)  # first poll: the 14:32 bar is still forming


def fixture(name: str) -> bytes:
    return (FIXTURES / name).read_bytes()


class FakeAlpaca:
    """Serves queued (status, body) answers on /v2/stocks/bars; records every request."""

    def __init__(self) -> None:
        self.answers: list[tuple[int, bytes]] = []
        self.requests: list[dict] = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                url = urlparse(self.path)
                outer.requests.append({"path": url.path, "query": parse_qs(url.query),
                                       "headers": {k.lower(): v for k, v in self.headers.items()}})
                status, body = outer.answers.pop(0) if outer.answers else (500, b"{}")
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def alpaca():
    fake = FakeAlpaca()
    yield fake
    fake.close()


class Clock:
    def __init__(self, now: datetime) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now


def make_source(alpaca: FakeAlpaca, clock: Clock, **kwargs) -> AlpacaBarsSource:
    slept: list[float] = kwargs.pop("slept", [])

    def sleep(seconds: float) -> bool:
        slept.append(seconds)
        clock.now += timedelta(seconds=seconds)
        return False

    return AlpacaBarsSource(["AAPL", "MSFT"], KEY, base_url=alpaca.url, clock=clock, sleep=sleep,
                            **kwargs)


def test_polls_closed_bars_in_time_order_across_pages_then_only_new_ones(alpaca):
    alpaca.answers = [(200, fixture("poll1_page1.json")), (200, fixture("poll1_page2.json")),
                      (200, fixture("poll2.json"))]
    clock = Clock(T0)
    polls: list[tuple[int, bool]] = []
    source = make_source(alpaca, clock, max_polls=2, poll_seconds=120,
                         on_poll=lambda n, ok: polls.append((n, ok)))
    bars = list(source)
    got = [(b.bar_time.strftime("%H:%M"), b.symbol) for b in bars]
    assert got == [("14:30", "AAPL"), ("14:30", "MSFT"), ("14:31", "AAPL"), ("14:31", "MSFT"),
                   # second poll: AAPL 14:31 is not repeated, MSFT 14:32 has closed meanwhile,
                   # AAPL 14:33 (high below open) is skipped as invalid
                   ("14:32", "AAPL"), ("14:32", "MSFT"), ("14:33", "MSFT")]
    assert polls == [(4, True), (3, True)]
    assert source.skipped == 1
    bar = bars[0]
    assert (bar.open, bar.high, bar.low, bar.close, bar.volume) == (184.22, 184.55, 184.05,
                                                                     184.31, 3810.0)
    assert bar.interval == "1m" and bar.source == "alpaca:iex"
    assert parse_bar(bar.to_json()) == bar  # what goes on the stream is a valid record

    first, page2, second = alpaca.requests
    assert first["path"] == "/v2/stocks/bars"
    assert first["query"]["symbols"] == ["AAPL,MSFT"] and first["query"]["timeframe"] == ["1Min"]
    assert first["query"]["feed"] == ["iex"] and first["query"]["sort"] == ["asc"]
    assert first["query"]["start"] == ["2024-01-03T14:17:30Z"]  # 15-minute lookback
    assert first["headers"]["apca-api-key-id"] == "AKFAKEKEYID"
    assert first["headers"]["apca-api-secret-key"] == "fake-secret-key"
    assert page2["query"]["page_token"] == ["QUFQTHwyMDI0LTAxLTAzVDE0OjMxOjAwWg=="]
    # the next poll starts at the oldest per-symbol cursor
    assert second["query"]["start"] == ["2024-01-03T14:31:00Z"]


def test_daily_bars_start_at_00_00_utc_of_their_session_date(alpaca):
    """Alpaca stamps daily bars at midnight New York time; the stream's daily bars are at
    00:00 UTC of the session date (one bar, one spelling), in winter and in summer."""
    def page(*stamps: str) -> bytes:
        bars = [{"t": t, "o": 10, "h": 11, "l": 9, "c": 10.5, "v": 100, "n": 1, "vw": 10}
                for t in stamps]
        return json.dumps({"bars": {"AAPL": bars}, "next_page_token": None}).encode()

    alpaca.answers = [(200, page("2024-01-02T05:00:00Z", "2024-01-03T05:00:00Z",
                                 "2024-07-01T04:00:00Z", "2024-07-02T04:00:00Z"))]
    # 2024-07-03 01:00Z is 21:00 New York on 07-02: that day's bar (stamped 04:00Z) is still
    # forming until 04:00Z, although its session date starts at 07-02 00:00Z.
    clock = Clock(datetime(2024, 7, 3, 1, 0, tzinfo=UTC))
    source = make_source(alpaca, clock, timeframe="1Day", max_polls=1,
                         lookback=timedelta(days=400))
    bars = list(source)
    assert [b.to_dict()["bar_time"] for b in bars] == [
        "2024-01-02T00:00:00Z", "2024-01-03T00:00:00Z", "2024-07-01T00:00:00Z"]
    assert all(b.interval == "1d" for b in bars) and source.skipped == 0


def test_rate_limits_and_server_errors_are_retried(alpaca):
    alpaca.answers = [(429, b"{}"), (503, b"{}"), (200, fixture("poll2.json"))]
    slept: list[float] = []
    source = make_source(alpaca, Clock(T0 + timedelta(minutes=2)), max_polls=1, slept=slept)
    assert len(list(source)) == 4
    assert slept == [0.5, 1.0] and source.requests == 3


def test_bad_key_fails_at_once(alpaca):
    alpaca.answers = [(401, b'{"message": "unauthorized"}')]
    with pytest.raises(ProviderAuthError, match="HTTP 401"):
        list(make_source(alpaca, Clock(T0), max_polls=1))
    assert len(alpaca.requests) == 1


def test_outage_is_reported_by_the_poll_and_the_loop_goes_on(alpaca):
    alpaca.answers = [(500, b"{}")] * 2 + [(200, fixture("poll2.json"))]
    polls: list[tuple[int, bool]] = []
    source = make_source(alpaca, Clock(T0 + timedelta(minutes=2)), max_polls=2, max_attempts=2,
                         on_poll=lambda n, ok: polls.append((n, ok)))
    assert len(list(source)) == 4
    assert polls == [(0, False), (4, True)]
    with pytest.raises(ProviderError):
        make_source(FakeAlpaca(), Clock(T0), max_attempts=1).fetch(T0)


def test_credentials_from_ecs_secrets_env_or_secrets_manager():
    env = {"ALPACA_API_KEY_ID": "id1", "ALPACA_API_SECRET_KEY": "s1"}
    assert load_credentials(env) == Credentials("id1", "s1")
    assert "s1" not in repr(load_credentials(env))
    with mock_aws():
        sm = boto3.client("secretsmanager", region_name="us-east-1")
        sm.create_secret(Name="stocksage-dev-collector-data-api",
                         SecretString=json.dumps({"key_id": "id2", "secret_key": "s2"}))
        import os

        os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
        creds = load_credentials({}, "stocksage-dev-collector-data-api")  # Powertools get_secret
    assert creds == Credentials("id2", "s2")
    with pytest.raises(ProviderAuthError, match="no market-data API key"):
        load_credentials({})
    with pytest.raises(ProviderAuthError, match="key_id and secret_key"):
        load_credentials({}, "x", get_secret=lambda name: {"id": "nope"})


def test_health_file_and_check(tmp_path):
    path = tmp_path / "h.json"
    assert check_health(path)[0] is False
    beat = HealthFile(path, clock=lambda: 1000.0)
    beat.beat(5, True)
    beat.beat(2, True)
    ok, reason = check_health(path, max_age=60, now=1030.0)
    assert ok and "7 bars sent" in reason
    assert check_health(path, max_age=60, now=1100.0) == (
        False, "last heartbeat 100s ago (limit 60s)")
    beat.beat(0, False)
    assert check_health(path, max_age=60, now=1001.0) == (False, "last poll failed")
    result = CliRunner().invoke(app, ["health", "--health-file", str(path), "--max-age", "1e11"])
    assert result.exit_code == 1 and "last poll failed" in result.output


def test_cli_live_end_to_end_into_kinesis(alpaca, tmp_path, monkeypatch, capsys):
    alpaca.answers = [(200, fixture("poll2.json"))]
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ALPACA_API_KEY_ID": "id",
                        "ALPACA_API_SECRET_KEY": "secret", "STREAM_NAME": "live-test",
                        "COLLECTOR_SYMBOLS": "AAPL,MSFT"}.items():
        monkeypatch.setenv(name, value)
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    health = tmp_path / "health.json"
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="live-test", ShardCount=1)
        result = CliRunner().invoke(app, [
            "live", "--base-url", alpaca.url, "--max-polls", "1", "--lookback-minutes",
            "1000000", "--health-file", str(health), "--log-level", "WARNING",
            "--cursor", str(tmp_path / "cursor.json"), "--spill-file", str(tmp_path / "spill")])
        assert result.exit_code == 0, result.output
        assert "4 bars sent to live-test in 1 polls" in result.output
        shard = kinesis.describe_stream(StreamName="live-test")["StreamDescription"]["Shards"][0]
        iterator = kinesis.get_shard_iterator(StreamName="live-test", ShardId=shard["ShardId"],
                                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
        records = kinesis.get_records(ShardIterator=iterator)["Records"]
    bars = [parse_bar(r["Data"]) for r in records]
    assert sorted((b.symbol, b.bar_time.minute) for b in bars) == [
        ("AAPL", 31), ("AAPL", 32), ("MSFT", 32), ("MSFT", 33)]
    assert json.loads(health.read_text())["bars_sent"] == 4
    emf = [json.loads(line) for line in result.stdout.splitlines() if line.startswith('{"_aws"')]
    assert emf and emf[0]["BarsSent"] in (4.0, [4.0]) and emf[0]["service"] == "stocksage-collector"


def test_live_collector_imports_without_pandas_or_numpy():
    """The collector image installs neither (Dockerfile): the live path must not need them."""
    code = ("import sys; sys.modules['pandas'] = None; sys.modules['numpy'] = None\n"
            "from typer.testing import CliRunner\n"
            "from stocksage.collector.app import app\n"
            "import stocksage.collector.live, stocksage.collector.health\n"
            "r = CliRunner().invoke(app, ['live', '--help'])\n"
            "assert r.exit_code == 0, r.output\n"
            "assert 'pandas' not in sys.modules or sys.modules['pandas'] is None\n")
    subprocess.run([sys.executable, "-c", code], check=True, cwd=REPO, timeout=60)


def test_dockerfile_is_slim_pinned_and_non_root():
    text = (REPO / "Dockerfile").read_text()
    bases = [line.split("=", 1)[1] for line in text.splitlines() if line.startswith("ARG BASE=")]
    assert bases and all(":" in b and not b.endswith((":latest", ":3", ":3.12")) and "slim" in b
                         for b in bases), bases
    assert "USER 10001:10001" in text and "HEALTHCHECK" in text
    assert 'ENTRYPOINT ["python", "-m", "stocksage.collector"]' in text
    assert "--no-deps ." in text and "requirements/collector.txt" in text
    reqs = [line for line in (REPO / "requirements" / "collector.txt").read_text().splitlines()
            if line.strip() and not line.startswith("#")]
    assert all("==" in r for r in reqs)
    assert not [r for r in reqs if r.startswith(("pandas", "numpy"))]


def test_every_writable_path_of_the_task_is_a_volume_the_collector_user_owns():
    """ECS makes a task's bind mount root-owned 0755 unless the image declares the same path
    as a ``VOLUME`` (then it copies the image's owner and mode): every path the task definition
    mounts writable (``writable_paths`` in services/collector.tf) must be a VOLUME of the final
    stage, created owned by the non-root user before it."""
    import re

    final = (REPO / "Dockerfile").read_text().rsplit("FROM ${BASE}", 1)[1]
    terraform = (REPO / "services" / "collector.tf").read_text()
    paths = json.loads(re.search(r"writable_paths\s*=\s*(\[[^\]]*\])", terraform).group(1))
    volumes = {v for line in final.splitlines() if line.startswith("VOLUME ")
               for v in json.loads(line.removeprefix("VOLUME "))}
    assert paths and set(paths) <= volumes, (paths, volumes)
    for path in paths:
        made = re.search(rf"install -d -o 10001 -g 10001 -m 07[0-7]0 {re.escape(path)}\b", final)
        assert made and final.index(made.group()) < final.index(f'VOLUME ["{path}"]'), path
    assert final.index("VOLUME ") < final.index("USER 10001:10001")


# ------------------------------------------------------------------------------------------
# Restarts lose no bar (cursor), SIGTERM flush is bounded (deadline, spill)


def _live(alpaca, tmp_path, *args: str):
    return CliRunner().invoke(app, [
        "live", "--base-url", alpaca.url, "--max-polls", "1", "--health-file",
        str(tmp_path / "health.json"), "--log-level", "ERROR",
        "--cursor", str(tmp_path / "cursor.json"), "--spill-file", str(tmp_path / "spill"),
        *args])


def _stream_bars(kinesis, stream: str) -> list:
    shard = kinesis.describe_stream(StreamName=stream)["StreamDescription"]["Shards"][0]
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard["ShardId"],
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    return [parse_bar(r["Data"]) for r in kinesis.get_records(ShardIterator=iterator)["Records"]]


@pytest.fixture
def live_env(monkeypatch):
    for name, value in {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing",
                        "AWS_DEFAULT_REGION": "us-east-1", "ALPACA_API_KEY_ID": "id",
                        "ALPACA_API_SECRET_KEY": "secret", "STREAM_NAME": "live-test",
                        "COLLECTOR_SYMBOLS": "AAPL,MSFT"}.items():
        monkeypatch.setenv(name, value)
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_S3", "AWS_ENDPOINT_URL_KINESIS"):
        monkeypatch.delenv(name, raising=False)  # e.g. set by the integration session


def test_restart_after_a_gap_resumes_from_the_saved_cursor(alpaca, tmp_path, live_env):
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="live-test", ShardCount=1)
        alpaca.answers = [(200, fixture("poll1_page1.json")), (200, fixture("poll1_page2.json"))]
        first = _live(alpaca, tmp_path, "--lookback-minutes", "1000000")
        assert first.exit_code == 0, first.output
        saved = json.loads((tmp_path / "cursor.json").read_text())["cursor"]
        assert saved == {"AAPL": "2024-01-03T14:31:00Z", "MSFT": "2024-01-03T14:32:00Z"}
        # the task is down for years (any gap): a 15-minute lookback would miss everything,
        # the cursor does not
        alpaca.answers = [(200, fixture("poll2.json"))]
        second = _live(alpaca, tmp_path, "--lookback-minutes", "15")
        assert second.exit_code == 0, second.output
        assert alpaca.requests[-1]["query"]["start"] == ["2024-01-03T14:31:00Z"]
        bars = _stream_bars(kinesis, "live-test")
    got = [(b.symbol, b.bar_time.strftime("%H:%M")) for b in bars]
    assert sorted(got) == [("AAPL", "14:30"), ("AAPL", "14:31"), ("AAPL", "14:32"),
                           ("MSFT", "14:30"), ("MSFT", "14:31"), ("MSFT", "14:32"),
                           ("MSFT", "14:33")]  # every valid bar once (AAPL 14:33 is invalid)
    assert json.loads((tmp_path / "cursor.json").read_text())["cursor"] == {
        "AAPL": "2024-01-03T14:32:00Z", "MSFT": "2024-01-03T14:33:00Z"}


def test_cursor_is_not_saved_when_the_bars_were_not_sent(alpaca, tmp_path, live_env):
    alpaca.answers = [(200, fixture("poll2.json"))]
    with mock_aws():  # no stream: PutRecords fails
        result = _live(alpaca, tmp_path, "--lookback-minutes", "1000000")
    assert result.exit_code == 1
    assert not (tmp_path / "cursor.json").exists()


def test_s3_cursor_store_round_trip(live_env):
    from stocksage.collector.cursor import S3CursorStore, cursor_store

    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        s3.create_bucket(Bucket="history")
        store = cursor_store("s3://history/collector/cursor.json", s3_client=s3)
        assert isinstance(store, S3CursorStore) and store.load() == {}
        moment = datetime(2024, 1, 3, 14, 31, tzinfo=UTC)
        store.save({"AAPL": moment})
        assert store.load() == {"AAPL": moment}
        s3.put_object(Bucket="history", Key="collector/cursor.json", Body=b"{")
        assert store.load() == {}  # unreadable: logged, lookback used


class ThrottledKinesis:
    """A Kinesis client whose every PutRecords is throttled."""

    def __init__(self) -> None:
        self.calls = 0

    def put_records(self, **kwargs):
        from botocore.exceptions import ClientError

        self.calls += 1
        raise ClientError({"Error": {"Code": "ProvisionedThroughputExceededException",
                                     "Message": "Rate exceeded"}}, "PutRecords")


def _bars(n: int) -> list:
    from stocksage.bars import Bar

    start = T0.replace(second=0, microsecond=0)
    return [Bar("AAPL" if i % 2 else "MSFT", start + timedelta(minutes=i), 10, 11, 9, 10.5, 100,
                interval="1m") for i in range(n)]


def test_stop_deadline_spills_unsent_records_and_the_next_start_sends_them_first(tmp_path,
                                                                                 live_env):
    from stocksage.collector.app import arm_deadline, collect
    from stocksage.collector.sink.kinesis_sink import FlushDeadlineError, KinesisSink

    bars = _bars(4)
    stop = threading.Event()

    def make_sink(client):
        return KinesisSink(client, "live-test", linger_seconds=None, max_delay_s=None,
                           sleep=lambda s: None)

    def source(sink):
        yield from bars[:3]
        arm_deadline(sink, 0.0)()  # SIGTERM with no time left (what install_stop_handlers does)
        stop.set()
        yield bars[3]

    spill = tmp_path / "spill.jsonl"
    sink = make_sink(ThrottledKinesis())
    result = collect(source(sink), sink, stop, spill_path=spill)
    assert result.stopped and result.spilled == 3 and result.sink["sent"] == 0
    assert len(spill.read_text().splitlines()) == 3
    # without a spill file the loss is an error, never silent
    stop.clear()
    lossy = make_sink(ThrottledKinesis())
    with pytest.raises(FlushDeadlineError):
        collect(source(lossy), lossy, stop)
    # next start: the spilled records go out first, in their order, then the file is gone
    with mock_aws():
        kinesis = boto3.client("kinesis", region_name="us-east-1")
        kinesis.create_stream(StreamName="live-test", ShardCount=1)
        again = make_sink(kinesis)
        result = collect(iter(bars[3:]), again, threading.Event(), spill_path=spill)
        assert result.sink["restored"] == 3 and result.sink["sent"] == 4
        assert _stream_bars(kinesis, "live-test") == bars
    assert not spill.exists()


def test_sigterm_flushes_saves_the_cursor_and_exits_0(alpaca, emulator, kw, tmp_path):
    import os
    import signal
    import time

    boto3.client("kinesis", **kw).create_stream(StreamName="sigterm-test", ShardCount=1)
    alpaca.answers = [(200, fixture("poll2.json"))]
    health = tmp_path / "health.json"
    env = {**os.environ, "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test",
           "AWS_DEFAULT_REGION": "us-east-1", "AWS_ENDPOINT_URL": emulator.endpoint_url,
           "ALPACA_API_KEY_ID": "id", "ALPACA_API_SECRET_KEY": "secret"}
    proc = subprocess.Popen(
        [sys.executable, "-m", "stocksage.collector", "live", "--stream", "sigterm-test",
         "--symbols", "AAPL,MSFT", "--base-url", alpaca.url, "--poll-seconds", "3600",
         "--lookback-minutes", "1000000", "--health-file", str(health),
         "--cursor", str(tmp_path / "cursor.json"), "--spill-file", str(tmp_path / "spill"),
         "--stop-deadline-seconds", "5", "--log-level", "ERROR"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline and not (
                health.exists() and json.loads(health.read_text()).get("bars_sent") == 4):
            time.sleep(0.1)
        proc.send_signal(signal.SIGTERM)  # while it sleeps until the next poll
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err.decode()
    assert b"stopped: 4 bars sent to sigterm-test" in err
    assert json.loads((tmp_path / "cursor.json").read_text())["cursor"]["MSFT"] == \
        "2024-01-03T14:33:00Z"
    assert not (tmp_path / "spill").exists()
