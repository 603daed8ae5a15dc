"""Local runtime pieces of the model lifecycle against the patched emulator (in process):
event-pattern matching and delivery, the Scheduler payload, the training-job lifecycle patch and
the Firehose delivery layout."""

from __future__ import annotations

import gzip
import json
import uuid
from datetime import UTC, datetime, timedelta

import boto3
import pytest
from botocore.exceptions import ClientError

from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars
from stocksage.history import SkippedLines, decode_object, history_key
from stocksage.local.esm import _Clients
from stocksage.local.events import EventRouter, training_job_state_change
from stocksage.local.firehose import FirehoseWorker, render_prefix
from stocksage.local.lambda_invoker import InvocationResult
from stocksage.local.scheduler import SchedulerRunner, parse_rate, render_input
from stocksage.local.training import script_mode_job
from stocksage.local.training.runner import finish_training_job

PREFIX = ("!{partitionKeyFromQuery:record}/symbol=!{partitionKeyFromQuery:symbol}/"
          "year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/")
RULE_PATTERN = {  # what services/lifecycle.tf deploys
    "source": ["aws.sagemaker"], "detail-type": ["SageMaker Training Job State Change"],
    "detail": {"TrainingJobName": [{"prefix": "stocksage-local-retrain-"}],
               "TrainingJobStatus": ["Completed", "Failed", "Stopped"]}}


def ok(payload):
    return InvocationResult(payload=payload, error=None, request_id="r", duration_ms=1.0)


def _event(name, status="Completed"):
    return training_job_state_change({"TrainingJobName": name, "TrainingJobStatus": status,
                                      "TrainingJobArn": f"arn:aws:sagemaker:us-east-1:1:"
                                                        f"training-job/{name}",
                                      "CreationTime": datetime.now(UTC)}, region="us-east-1")


def test_rules_match_training_events_by_pattern_and_reach_lambda_targets(kw):
    clients = _Clients(kw)
    events = clients.client("events")
    rule = f"training-{uuid.uuid4().hex[:6]}"
    events.put_rule(Name=rule, EventPattern=json.dumps(RULE_PATTERN))
    fn = "arn:aws:lambda:us-east-1:123456789012:function:promote"
    events.put_targets(Rule=rule, Targets=[{"Id": "promote", "Arn": fn}])
    seen = []
    router = EventRouter(clients, lambda arn, payload: seen.append((arn, payload)) or ok("done"))

    for name, status, match in (("stocksage-local-retrain-20261120T0600Z", "Completed", True),
                                ("stocksage-local-retrain-20261120T0600Z", "Failed", True),
                                ("stocksage-local-retrain-20261120T0600Z", "InProgress", False),
                                ("someone-elses-job", "Completed", False)):
        matched = [r["Name"] for r in router.matching_rules(_event(name, status))]
        assert (rule in matched) is match, (name, status)

    deliveries = router.deliver(_event("stocksage-local-retrain-x", "Completed"))
    mine = [d for d in deliveries if d.rule == rule]
    assert len(mine) == 1 and mine[0].ok and mine[0].payload == "done"
    assert seen[-1][0] == fn and seen[-1][1]["detail"]["TrainingJobStatus"] == "Completed"
    assert isinstance(seen[-1][1]["detail"]["CreationTime"], int)  # epoch ms, as AWS sends
    events.remove_targets(Rule=rule, Ids=["promote"])
    events.delete_rule(Name=rule)


def test_scheduler_payload_fills_the_context_attributes_even_when_json_escaped():
    template = json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>",
                           "schedule_arn": "<aws.scheduler.schedule-arn>"}).replace(
        "<", "\\u003c").replace(">", "\\u003e")
    when = datetime(2026, 11, 20, 6, 0, tzinfo=UTC)
    assert render_input(template, schedule_arn="arn:s", scheduled_time=when) == {
        "scheduled_time": "2026-11-20T06:00:00Z", "schedule_arn": "arn:s"}
    assert render_input(None, schedule_arn="a", scheduled_time=when) == {}
    assert parse_rate("rate(3 days)") == timedelta(days=3)
    assert parse_rate("rate(1 minute)") == timedelta(minutes=1)
    assert parse_rate("cron(0 6 * * ? *)") is None


def test_scheduler_fires_due_rate_schedules_once_without_backfill_and_on_demand(kw, tmp_path):
    clients = _Clients(kw)
    scheduler = clients.client("scheduler")
    name = f"retrain-{uuid.uuid4().hex[:6]}"
    fn = "arn:aws:lambda:us-east-1:123456789012:function:retrain"
    scheduler.create_schedule(
        Name=name, ScheduleExpression="rate(3 days)", FlexibleTimeWindow={"Mode": "OFF"},
        Target={"Arn": fn, "RoleArn": "arn:aws:iam::123456789012:role/s",
                "Input": json.dumps({"scheduled_time": "<aws.scheduler.scheduled-time>"})})
    calls = []
    runner = SchedulerRunner(clients, lambda arn, p: calls.append(p) or ok({"ok": True}),
                             tmp_path / "state.json")
    now = datetime.now(UTC)
    assert [f for f in runner.run_due(now) if f.schedule == name] == []  # not due yet
    later = now + timedelta(days=10)  # three periods missed: fire the latest only
    fired = [f for f in runner.run_due(later) if f.schedule == name]
    assert len(fired) == 1 and len(calls) == 1
    assert [f for f in runner.run_due(later) if f.schedule == name] == []
    manual = runner.fire(name, scheduled_time=datetime(2026, 1, 1, tzinfo=UTC),
                         extra={"overrides": {"c": "1.0"}})
    assert manual.payload == {"scheduled_time": "2026-01-01T00:00:00Z",
                              "overrides": {"c": "1.0"}}
    assert manual.response == {"ok": True}
    scheduler.delete_schedule(Name=name)


def test_training_jobs_stay_in_progress_until_finished_and_names_are_unique(kw):
    sm = boto3.client("sagemaker", **kw)
    name = f"stocksage-t-{uuid.uuid4().hex[:8]}"
    request = script_mode_job(job_name=name, bucket="b")
    sm.create_training_job(**request)
    desc = sm.describe_training_job(TrainingJobName=name)
    assert desc["TrainingJobStatus"] == "InProgress" and "ModelArtifacts" not in desc
    assert desc["AlgorithmSpecification"]["MetricDefinitions"] == \
        request["AlgorithmSpecification"]["MetricDefinitions"]
    listed = sm.list_training_jobs(StatusEquals="InProgress")["TrainingJobSummaries"]
    assert name in {j["TrainingJobName"] for j in listed}
    with pytest.raises(ClientError) as err:
        sm.create_training_job(**request)
    assert err.value.response["Error"]["Code"] == "ResourceInUse"

    finish_training_job(kw, name, "Completed", artifact=f"s3://b/{name}/output/model.tar.gz",
                        metrics={"validation:log_loss": 0.69, "validation:auc": float("nan")})
    desc = sm.describe_training_job(TrainingJobName=name)
    assert desc["TrainingJobStatus"] == "Completed"
    assert desc["ModelArtifacts"]["S3ModelArtifacts"].endswith("/model.tar.gz")
    assert [(m["MetricName"], m["Value"]) for m in desc["FinalMetricDataList"]] == [
        ("validation:log_loss", 0.69)]
    with pytest.raises(RuntimeError, match="not InProgress"):
        finish_training_job(kw, name, "Failed", failure_reason="late")


def test_firehose_worker_delivers_the_stream_in_the_history_layout(kw):
    clients = _Clients(kw)
    kinesis, s3, firehose = (clients.client(s) for s in ("kinesis", "s3", "firehose"))
    tag = uuid.uuid4().hex[:6]
    stream, bucket, delivery = f"bars-{tag}", f"history-{tag}", f"history-delivery-{tag}"
    kinesis.create_stream(StreamName=stream, ShardCount=1)
    stream_arn = kinesis.describe_stream_summary(StreamName=stream)[
        "StreamDescriptionSummary"]["StreamARN"]
    s3.create_bucket(Bucket=bucket)
    role = "arn:aws:iam::123456789012:role/firehose"
    firehose.create_delivery_stream(
        DeliveryStreamName=delivery, DeliveryStreamType="KinesisStreamAsSource",
        KinesisStreamSourceConfiguration={"KinesisStreamARN": stream_arn, "RoleARN": role},
        ExtendedS3DestinationConfiguration={
            "RoleARN": role, "BucketARN": f"arn:aws:s3:::{bucket}", "Prefix": PREFIX,
            "ErrorOutputPrefix": "errors/history/!{firehose:error-output-type}/",
            "BufferingHints": {"SizeInMBs": 64, "IntervalInSeconds": 300},
            "CompressionFormat": "GZIP"})
    # Two symbols across a month boundary, interleaved, plus one record Firehose cannot parse.
    ibm = frame_to_bars("IBM", load_bars("IBM").loc["2012-01-20":"2012-02-10"])
    msft = frame_to_bars("MSFT", load_bars("MSFT").loc["2012-01-25":"2012-02-03"])
    records = [{"Data": b.to_json(), "PartitionKey": b.symbol}
               for b in sorted(ibm + msft, key=lambda b: (b.bar_time, b.symbol))]
    records.insert(3, {"Data": b"{not json", "PartitionKey": "IBM"})
    # A bar the processor quarantines (price 0) still partitions: the real delivery stream
    # stores it in the history, and so does the local one.
    quarantined = {**ibm[0].to_dict(), "open": 0, "low": 0}
    records.insert(5, {"Data": json.dumps(quarantined).encode(), "PartitionKey": "IBM"})
    kinesis.put_records(StreamName=stream, Records=records)

    worker = FirehoseWorker(clients)
    assert delivery in worker.refresh()
    worker.poll_once()
    assert s3.list_objects_v2(Bucket=bucket).get("KeyCount", 0) == 0  # buffered (300 s)
    worker.flush()
    keys = sorted(o["Key"] for o in s3.list_objects_v2(Bucket=bucket)["Contents"])
    history = [k for k in keys if k.startswith("bars/")]
    assert {k.rsplit("/", 1)[0] for k in history} == {
        "bars/symbol=IBM/year=2012/month=01", "bars/symbol=IBM/year=2012/month=02",
        "bars/symbol=MSFT/year=2012/month=01", "bars/symbol=MSFT/year=2012/month=02"}
    for key in history:
        assert key == history_key(key.split("=")[1].split("/")[0],
                                  datetime(int(key.split("year=")[1][:4]),
                                           int(key.split("month=")[1][:2]), 1, tzinfo=UTC),
                                  key.rsplit("/", 1)[1].removesuffix(".json.gz"))
    body = s3.get_object(Bucket=bucket, Key=history[0])["Body"].read()
    assert body[:2] == b"\x1f\x8b" and gzip.decompress(body).endswith(b"\n")  # gzip NDJSON
    skipped = SkippedLines()
    delivered = [b for k in history for b in decode_object(
        s3.get_object(Bucket=bucket, Key=k)["Body"].read(), on_invalid=skipped.recorder(k))]
    (key, _, reason), = skipped.lines
    assert key.startswith("bars/symbol=IBM/year=2012/month=01/") and reason.endswith(
        "open is zero")
    assert sorted(delivered, key=lambda b: (b.symbol, b.bar_time)) == \
        sorted(ibm + msft, key=lambda b: (b.symbol, b.bar_time))
    errors = [k for k in keys if k.startswith("errors/history/processing-failed/")]
    assert len(errors) == 1
    assert "rawData" in s3.get_object(Bucket=bucket, Key=errors[0])["Body"].read().decode()
    assert render_prefix(PREFIX, ibm[0]) == "bars/symbol=IBM/year=2012/month=01/"

    # Own checkpoints: a new worker (restart) delivers only what is new.
    more = frame_to_bars("IBM", load_bars("IBM").loc["2012-02-13":"2012-02-14"])
    kinesis.put_records(StreamName=stream, Records=[{"Data": b.to_json(), "PartitionKey": "IBM"}
                                                    for b in more])
    worker.flush()
    again = FirehoseWorker(clients, checkpoint_path=None)
    again.checkpoints = worker.checkpoints
    again.refresh()
    assert again.flush() == 0
    total = sum(len(decode_object(s3.get_object(Bucket=bucket, Key=o["Key"])["Body"].read(),
                                  on_invalid=lambda *_: None))
                for o in s3.list_objects_v2(Bucket=bucket, Prefix="bars/")["Contents"])
    assert total == len(ibm) + len(msft) + len(more)


def test_the_deployed_partition_query_files_trades_and_watermarks_under_trades():
    """The local Firehose runs the deployed JQ query (libjq): bars under ``bars/``, trades
    records by their first trade's month under ``trades/``, unpartitionable ones refused."""
    from stocksage.bars.trades import Trade, encode_trades, encode_watermark
    from stocksage.local.firehose import partition_keys

    bar = frame_to_bars("IBM", load_bars("IBM").loc["2012-01-31":"2012-01-31"])[0]
    first = 1_380_585_599_000_000_000  # 2013-09-30T23:59:59Z
    trades = encode_trades("ES", [Trade("ES", first, 1640.25, 3.0),
                                  Trade("ES", first + 2_000_000_000, 1640.5, 1.0)])
    assert partition_keys(bar.to_json()) == {"record": "bars", "symbol": "IBM",
                                             "year": "2012", "month": "01"}
    assert partition_keys(trades) == {"record": "trades", "symbol": "ES", "year": "2013",
                                      "month": "09"}
    assert partition_keys(encode_watermark("ES", first + 2_000_000_000))["month"] == "10"
    assert render_prefix(PREFIX, partition_keys(trades)) == \
        "trades/symbol=ES/year=2013/month=09/"
    for hostile in (b'{"symbol": 5, "bar_time": "2012-01-03T00:00:00Z"}',
                    b'{"symbol": "ES", "type": "trades", "t": "soon"}',
                    b'{"symbol": "ES"}', b"[1, 2]", b"\xff"):
        with pytest.raises(ValueError):
            partition_keys(hostile)
