"""Fault injection on the local stack: nothing is lost when a dependency fails.

Each test streams real bars of fresh symbols at a steady pace while one fault is active, lets
the stack recover, and then checks the same end state (``assert_recovered``):

- one results item per bar sent, values equal ``ta`` on the full series (1e-9);
- a prediction on every bar whose features are defined (``prediction_status = ready``);
- every expected alert delivered exactly once (the rules evaluated offline on the series);
- in the failure queue only the malformed record the test sent, no on-failure batch record.

The module is named to run after the other integration tests of the shared session: it
streams tens of thousands of bars, and their alerts also reach the stack's own alerts inbox,
which test_flow reads whole. Faults (docs/DESIGN.md "Failure modes"): the endpoint down 90 s
mid-stream, SNS failing 60 s, DynamoDB throttling 30 % of writes for 60 s, the runtime killed
mid-batch and restarted, every batch delivered twice, parallelization factor 2.
"""

from __future__ import annotations

import json
import threading
import time
import uuid
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np
import pytest
from boto3.dynamodb.conditions import Key

from stocksage.adapters.dynamodb.rule_source import put_rule
from stocksage.alerts import BarWindow, Rule, evaluate_rules
from stocksage.bars import Bar, frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.local import fault_injection as faults
from stocksage.local.runtime import LocalRuntime

pytestmark = pytest.mark.integration

SOURCES = ("AAPL", "IBM", "MSFT", "GOOG", "NVDA")


@dataclass
class Scenario:
    """Symbols, their bars and rules for one fault test."""

    prefix: str
    series: dict[str, list[Bar]]
    frames: dict[str, object]
    rules: list[Rule]


def scenario(symbols: int, bars: int) -> Scenario:
    prefix = "F" + uuid.uuid4().hex[:5].upper()
    series, frames, rules = {}, {}, []
    for i in range(symbols):
        symbol = f"{prefix}{i:02d}"
        frame = load_bars(SOURCES[i % len(SOURCES)]).iloc[100 * i: 100 * i + bars]
        series[symbol] = frame_to_bars(symbol, frame)
        frames[symbol] = frame
        mid = float(np.median(frame["close"]))
        rules += [Rule("mid-up", symbol, "price_above", {"level": mid}),
                  Rule("rsi", symbol, "rsi_cross", {"upper": 60, "lower": 40}, cooldown_bars=2),
                  Rule("move", symbol, "pct_move", {"bars": 3, "threshold": 0.02})]
    return Scenario(prefix, series, frames, rules)


def expected_alerts(case: Scenario) -> set[str]:
    ids: set[str] = set()
    for symbol, frame in case.frames.items():
        full = enrich(frame)
        rules = [r for r in case.rules if r.symbol == symbol]
        window = BarWindow.from_frame(full)
        last_fired: dict = {}
        previous = None
        for index, (bar, record) in enumerate(zip(case.series[symbol],
                                                  full.to_dict("records"), strict=True)):
            current = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                       for k, v in record.items()}
            alerts, _ = evaluate_rules(rules, bar, previous, current,
                                       window.upto(index + 1, 600), last_fired)
            ids |= {a.alert_id for a in alerts}
            previous = current
    return ids


@contextmanager
def alert_inbox(stack, case: Scenario) -> Iterator[Callable[[], list[str]]]:
    """An SQS queue subscribed to the alerts topic for the scenario's symbols."""
    sqs, sns = stack.client("sqs"), stack.client("sns")
    url = sqs.create_queue(QueueName=f"faults-{case.prefix.lower()}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    subscription = sns.subscribe(
        TopicArn=stack.outputs["alerts_topic_arn"], Protocol="sqs", Endpoint=arn,
        Attributes={"RawMessageDelivery": "true", "FilterPolicy": json.dumps(
            {"symbol": [{"prefix": case.prefix}]})})["SubscriptionArn"]
    received: list[str] = []

    def drain() -> list[str]:
        while True:
            batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])
            if not batch:
                return received
            for message in batch:
                received.append(json.loads(message["Body"])["alert_id"])
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])

    try:
        yield drain
    finally:
        sns.unsubscribe(SubscriptionArn=subscription)
        sqs.delete_queue(QueueUrl=url)


def stream(stack, case: Scenario, seconds: float, malformed: bool = True) -> None:
    """Put one bar of every symbol per step, spread over ``seconds``; one malformed record."""
    kinesis = stack.client("kinesis")
    name = stack.outputs["stream_name"]
    steps = len(next(iter(case.series.values())))
    pause = seconds / steps
    for k in range(steps):
        records = [{"Data": bars[k].to_json(), "PartitionKey": symbol}
                   for symbol, bars in case.series.items()]
        if malformed and k == steps // 3:
            records.append({"Data": b'{"symbol": "' + case.prefix.encode() + b'00", "bar_time":'
                            b' "not a time"}', "PartitionKey": f"{case.prefix}00"})
        response = kinesis.put_records(StreamName=name, Records=records)
        assert response["FailedRecordCount"] == 0
        time.sleep(pause)


def failure_messages(stack, case: Scenario) -> list[dict]:
    sqs = stack.client("sqs")
    url = stack.outputs["failure_queue_url"]
    found = []
    while True:
        batch = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                                    VisibilityTimeout=1).get("Messages", [])
        if not batch:
            return found
        for message in batch:
            body = json.loads(message["Body"])
            text = json.dumps(body)
            if "KinesisBatchInfo" in body or case.prefix in text:
                found.append(body)
                sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def assert_recovered(stack, case: Scenario, inbox: Callable[[], list[str]]) -> float:
    """Check the end state (module docstring); return when it was reached (``time.time()``)."""
    assert stack.runtime.drain(timeout=300), "the event source mapping did not catch up"
    table = stack.resource("dynamodb").Table(stack.outputs["results_table"])
    expected_ids = expected_alerts(case)
    deadline = time.time() + 180
    while True:  # pending predictions and outboxes complete with the next batches
        items = {s: table.query(KeyConditionExpression=Key("symbol").eq(s),
                                ConsistentRead=True)["Items"] for s in case.series}
        pending = sum(1 for rows in items.values() for i in rows
                      if i.get("prediction_status") == "pending")
        delivered = inbox()
        if (pending == 0 and set(delivered) >= expected_ids) or time.time() > deadline:
            recovered_at = time.time()
            break
        nudge(stack, case)
        time.sleep(3)
    for symbol, frame in case.frames.items():
        rows = sorted(items[symbol], key=lambda i: i["bar_time"])
        assert [r["bar_time"] for r in rows] == \
            [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in frame.index], symbol
        full = enrich(frame)
        for name in (*STACK.indicator_columns, *STACK.features):
            want = full[name].to_numpy()
            have = np.array([float(r[name]) if name in r else np.nan for r in rows])
            assert (np.isnan(want) == np.isnan(have)).all(), (symbol, name)
            ok = np.isnan(want) | (np.abs(have - want) <= 1e-9 * np.abs(want) + 1e-9)
            assert ok.all(), (symbol, name)
        finite = ~full[list(STACK.features)].isna().any(axis=1).to_numpy()
        statuses = [r.get("prediction_status") for r in rows]
        assert all(s == "ready" for s, f in zip(statuses, finite, strict=True) if f), symbol
        assert all("prob_up" in r for r, f in zip(rows, finite, strict=True) if f), symbol
    delivered = inbox()
    assert len(delivered) == len(set(delivered)), "an alert was delivered twice"
    assert set(delivered) == expected_ids
    failures = failure_messages(stack, case)
    assert not [f for f in failures if "KinesisBatchInfo" in f], "a batch was given up"
    # Only the malformed record (a redelivered batch may quarantine it again: same record).
    assert {f.get("eventID") for f in failures} and len({f.get("eventID") for f in failures}) == 1
    assert all(f["kind"] == "MalformedRecord" and f["rejectionKind"] == "missing_field"
               for f in failures), failures
    return recovered_at


def nudge(stack, case: Scenario) -> None:
    """One more bar per symbol, re-sent (a duplicate): it makes the symbol's next batch run,
    which fills pending predictions and publishes the outbox (as any live bar would)."""
    kinesis = stack.client("kinesis")
    kinesis.put_records(StreamName=stack.outputs["stream_name"], Records=[
        {"Data": bars[-1].to_json(), "PartitionKey": symbol}
        for symbol, bars in case.series.items()])
    stack.runtime.drain(timeout=60)


@contextmanager
def rules_of(stack, case: Scenario) -> Iterator[None]:
    dynamodb = stack.resource("dynamodb")
    for rule in case.rules:
        put_rule(dynamodb, stack.outputs["rules_table"], rule)
    time.sleep(1.0)
    try:
        yield
    finally:
        table = dynamodb.Table(stack.outputs["rules_table"])
        for rule in case.rules:
            table.delete_item(Key={"symbol": rule.symbol, "rule_id": rule.rule_id})


def run_with_fault(stack, case: Scenario, seconds: float, start: float,
                   fault: Callable[[], None], stop: Callable[[], None] | None = None) -> None:
    timer = threading.Timer(start, fault)
    timer.start()
    try:
        stream(stack, case, seconds)
    finally:
        timer.cancel()
        if stop is not None:
            stop()


def _pending_count(stack, case: Scenario) -> int:
    table = stack.resource("dynamodb").Table(stack.outputs["results_table"])
    return sum(1 for symbol in case.series for item in table.query(
        KeyConditionExpression=Key("symbol").eq(symbol), ConsistentRead=True,
        ProjectionExpression="prediction_status")["Items"]
        if item.get("prediction_status") == "pending")


def test_endpoint_down_90_s_mid_stream(stack):
    case = scenario(symbols=20, bars=150)
    started = time.time()
    outage_end = started + 30 + 90
    cleared: list[float] = []
    peak: list[int] = []

    def watch() -> None:  # when do the pending predictions clear after the outage?
        time.sleep(max(0.0, outage_end - time.time()))
        while time.time() < outage_end + 120:
            count = _pending_count(stack, case)
            peak.append(count)
            if count == 0:
                cleared.append(time.time())
                return
            time.sleep(1.0)

    watcher = threading.Thread(target=watch, daemon=True)
    watcher.start()
    with rules_of(stack, case), alert_inbox(stack, case) as inbox:
        run_with_fault(stack, case, seconds=150, start=30, fault=lambda: faults.endpoint_outage(
            stack.runtime.sagemaker_url, seconds=90))
        watcher.join(timeout=150)
        assert_recovered(stack, case, inbox)
    assert cleared, "pending predictions did not clear within 120 s of the outage's end"
    record = {"test": "endpoint down 90 s mid-stream", "symbols": 20, "bars": 3000,
              "pending_at_outage_end": peak[0] if peak else 0,
              "recovery_s_after_outage_end": round(cleared[0] - outage_end, 1),
              "measured": time.strftime("%Y-%m-%d %H:%M:%S")}
    out = Path("out/bench")
    out.mkdir(parents=True, exist_ok=True)  # docs/BENCHMARKS.md quotes this measurement
    (out / "endpoint-outage-recovery.json").write_text(json.dumps(record))


def test_sns_failing_60_s(stack):
    case = scenario(symbols=10, bars=120)
    with rules_of(stack, case), alert_inbox(stack, case) as inbox:
        run_with_fault(stack, case, seconds=100, start=20, fault=lambda: faults.fail_sns(
            stack.endpoints.aws, fraction=1.0, seconds=60))
        assert_recovered(stack, case, inbox)


def test_dynamodb_throttling_30_percent_of_writes_for_60_s(stack):
    case = scenario(symbols=10, bars=120)
    with rules_of(stack, case), alert_inbox(stack, case) as inbox:
        run_with_fault(stack, case, seconds=100, start=20, fault=lambda: faults.throttle_dynamodb(
            stack.endpoints.aws, fraction=0.3, seconds=60, seed=7))
        assert_recovered(stack, case, inbox)


def test_every_batch_delivered_twice(stack):
    case = scenario(symbols=10, bars=80)
    engine = stack.runtime.engine
    with rules_of(stack, case), alert_inbox(stack, case) as inbox:
        engine.faults.redeliver = True
        try:
            stream(stack, case, seconds=20)
            assert stack.runtime.drain(timeout=300)
        finally:
            engine.faults.redeliver = False
        assert sum(m.redeliveries for m in engine.stats().values()) > 0
        assert_recovered(stack, case, inbox)


def test_processor_killed_mid_batch_and_the_runtime_restarted(stack):
    case = scenario(symbols=10, bars=100)
    with rules_of(stack, case), alert_inbox(stack, case) as inbox:
        killer = threading.Timer(8, stack.runtime.kill)
        killer.start()
        stream(stack, case, seconds=25)
        killer.join()
        old = stack.runtime
        stack.runtime = LocalRuntime(endpoint_url=stack.endpoints.aws,
                                     sagemaker_port=stack.endpoints.sagemaker_port,
                                     state_dir=old.state_dir, discovery_interval=1.0).start()
        assert_recovered(stack, case, inbox)


def test_parallelization_factor_2(stack):
    case = scenario(symbols=12, bars=80)
    lam = stack.client("lambda")
    uuid_ = stack.outputs["processor_event_source_mapping_uuid"]
    lam.update_event_source_mapping(UUID=uuid_, ParallelizationFactor=2)
    try:
        time.sleep(2.5)  # the runtime re-reads the mapping every second
        with rules_of(stack, case), alert_inbox(stack, case) as inbox:
            stream(stack, case, seconds=20)
            assert_recovered(stack, case, inbox)
    finally:
        lam.update_event_source_mapping(UUID=uuid_, ParallelizationFactor=1)


def _processor_dependencies(stack):
    """The processor's own adapters, configured from the deployed function (as the CLI does)."""
    import os

    from stocksage.adapters.wiring import Dependencies
    from stocksage.settings import ProcessorSettings

    variables = stack.client("lambda").get_function_configuration(
        FunctionName=stack.outputs["processor_function_name"])["Environment"]["Variables"]
    saved = {k: os.environ.get(k) for k in variables}
    os.environ.update(variables)
    try:
        return Dependencies(ProcessorSettings.from_env())
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def test_redrive_reprocesses_a_range_the_mapping_gave_up_on(stack):
    from stocksage.adapters.failure_queue import SqsFailureQueue
    from stocksage.adapters.stream_reader import KinesisRangeReader
    from stocksage.operations.redrive import redrive

    case = scenario(symbols=3, bars=40)
    kinesis, sqs = stack.client("kinesis"), stack.client("sqs")
    name = f"redrive-{case.prefix.lower()}"  # a stream no mapping reads: nothing else stores it
    kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = kinesis.describe_stream_summary(StreamName=name)["StreamDescriptionSummary"][
        "StreamARN"]
    sequences = []
    for k in range(40):
        response = kinesis.put_records(StreamName=name, Records=[
            {"Data": bars[k].to_json(), "PartitionKey": s} for s, bars in case.series.items()])
        sequences += [r["SequenceNumber"] for r in response["Records"]]
    shard = kinesis.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    queue = sqs.create_queue(QueueName=f"redrive-{case.prefix.lower()}")["QueueUrl"]
    sqs.send_message(QueueUrl=queue, MessageBody=json.dumps({  # AWS's on-failure record
        "requestContext": {"condition": "RetryAttemptsExhausted", "approximateInvokeCount": 4},
        "KinesisBatchInfo": {"shardId": shard, "startSequenceNumber": sequences[0],
                             "endSequenceNumber": sequences[-1], "batchSize": len(sequences),
                             "streamArn": arn}}))
    deps = _processor_dependencies(stack)
    report = redrive(SqsFailureQueue(sqs, queue), KinesisRangeReader(kinesis), deps.ports,
                     deps.quarantine)
    assert (report.batches, report.records, report.bars, report.kept) == (1, 120, 120, [])
    assert sqs.receive_message(QueueUrl=queue).get("Messages", []) == []
    table = stack.resource("dynamodb").Table(stack.outputs["results_table"])
    for symbol, frame in case.frames.items():
        rows = table.query(KeyConditionExpression=Key("symbol").eq(symbol))["Items"]
        assert len(rows) == 40
        want = enrich(frame)["rsi_14"].to_numpy()
        have = np.array([float(r.get("rsi_14", "nan")) for r in
                         sorted(rows, key=lambda r: r["bar_time"])])
        assert np.allclose(have, want, rtol=1e-9, equal_nan=True)
    sqs.delete_queue(QueueUrl=queue)


def test_late_bar_is_repaired_from_the_history(stack):
    from stocksage.adapters.s3_history import iter_history
    from stocksage.operations.redrive import repair

    case = scenario(symbols=1, bars=60)
    (symbol, bars), = case.series.items()
    kinesis = stack.client("kinesis")
    name = stack.outputs["stream_name"]
    for k, bar in enumerate(bars):
        if k != 30:
            kinesis.put_records(StreamName=name, Records=[
                {"Data": bar.to_json(), "PartitionKey": symbol}])
    assert stack.runtime.drain(timeout=120)
    kinesis.put_records(StreamName=name, Records=[  # bar 30 arrives late
        {"Data": bars[30].to_json(), "PartitionKey": symbol}])
    assert stack.runtime.drain(timeout=120)
    stack.runtime.flush_history()  # Firehose delivers the raw bars, the late one included
    deps = _processor_dependencies(stack)
    items = deps.ports.results.items_for(symbol)
    assert len(items) == 59
    result, problems = repair(symbol, deps.ports, items,
                              partial(iter_history, stack.client("s3"),
                                      stack.outputs["history_bucket"]))
    assert problems == {} and result.inserted == 1 and len(result.items) == 30
    rows = sorted(deps.ports.results.items_for(symbol), key=lambda r: r["bar_time"])
    full = enrich(case.frames[symbol])
    for column in ("ema_26", "rsi_14", "obv", "atr_14"):
        have = np.array([r.get(column, np.nan) for r in rows], dtype=float)
        assert np.allclose(have, full[column].to_numpy(), rtol=1e-9, equal_nan=True), column
