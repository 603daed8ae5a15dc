"""Kinesis event source mapping semantics of ``stocksage.local.esm``.

A real (patched) moto server over HTTP; functions are created in it with ``create_function``
(dummy zip) and a handler string pointing at ``tests/fixtures/stocksage_test_handlers.py``; the
mappings with ``create_event_source_mapping``. The engine runs rounds in the test thread
(``drain``) so every test is deterministic.
"""

from __future__ import annotations

import contextlib
import io
import json
import sys
import time
import uuid
import zipfile
from pathlib import Path

import boto3
import pytest

sys.path.insert(0, str(Path(__file__).resolve().parents[2] / "fixtures"))
import stocksage_test_handlers as handlers

from stocksage.local.demo import runtime_progress
from stocksage.local.emulator import Emulator
from stocksage.local.esm import EsmEngine, EsmFaults, MappingConfig, failure_record, lane_of
from stocksage.local.lambda_invoker import LambdaFunction
from tests.helpers.aws import client_kwargs
from tests.helpers.events import kinesis_event

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures"
REGION = "us-east-1"
ROLE = "arn:aws:iam::123456789012:role/stocksage-test"


def create_role(kw) -> None:
    iam = boto3.client("iam", **kw)
    trust = {"Version": "2012-10-17",
             "Statement": [{"Effect": "Allow", "Action": "sts:AssumeRole",
                            "Principal": {"Service": "lambda.amazonaws.com"}}]}
    with contextlib.suppress(iam.exceptions.EntityAlreadyExistsException):
        iam.create_role(RoleName=ROLE.rsplit("/", 1)[1], AssumeRolePolicyDocument=json.dumps(trust))


@pytest.fixture(scope="module")
def aws(kw):
    create_role(kw)

    class Clients:
        kinesis = boto3.client("kinesis", **kw)
        lam = boto3.client("lambda", **kw)
        sqs = boto3.client("sqs", **kw)
        sns = boto3.client("sns", **kw)

    return Clients


@pytest.fixture(autouse=True)
def _reset_handlers():
    handlers.reset()
    yield


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("placeholder.py", "# code runs from tests/fixtures\n")
    return buf.getvalue()


def make_stack(aws, shards: int = 1, env: dict | None = None, timeout: int = 30,
               handler: str = "stocksage_test_handlers.handle", dlq: bool = True,
               **mapping):
    """Stream + function + (optional) SQS on-failure queue + mapping. Returns a dict."""
    name = f"t-{uuid.uuid4().hex[:10]}"
    aws.kinesis.create_stream(StreamName=name, ShardCount=shards)
    stream_arn = aws.kinesis.describe_stream_summary(StreamName=name)[
        "StreamDescriptionSummary"]["StreamARN"]
    fn = aws.lam.create_function(
        FunctionName=name, Runtime="python3.11", Role=ROLE, Handler=handler,
        Code={"ZipFile": _zip()}, Timeout=timeout, MemorySize=256,
        Environment={"Variables": env or {}})
    out = {"name": name, "stream_arn": stream_arn, "function_arn": fn["FunctionArn"]}
    if dlq:
        url = aws.sqs.create_queue(QueueName=f"{name}-dlq")["QueueUrl"]
        out["dlq_url"] = url
        out["dlq_arn"] = aws.sqs.get_queue_attributes(
            QueueUrl=url, AttributeNames=["QueueArn"])["Attributes"]["QueueArn"]
        mapping.setdefault("DestinationConfig", {"OnFailure": {"Destination": out["dlq_arn"]}})
    mapping.setdefault("StartingPosition", "TRIM_HORIZON")
    esm = aws.lam.create_event_source_mapping(
        EventSourceArn=stream_arn, FunctionName=name, **mapping)
    out["uuid"] = esm["UUID"]
    return out


def put(aws, stack, values, key="k", keys=None):
    """Put string records (in order, 500 per call); returns the put_records entries."""
    entries = []
    values = list(values)
    for i in range(0, len(values), 500):
        chunk = values[i:i + 500]
        resp = aws.kinesis.put_records(StreamARN=stack["stream_arn"], Records=[
            {"Data": v.encode(), "PartitionKey": keys[i + j] if keys else key}
            for j, v in enumerate(chunk)])
        entries += resp["Records"]
    return entries


def engine_for(kw, stack, **kwargs) -> EsmEngine:
    kwargs.setdefault("retry_backoff", (0.0, 0.0))
    return EsmEngine(kw, code_roots=[FIXTURES],
                     function_filter=lambda arn: arn == stack["function_arn"], **kwargs)


def calls(stack):
    return handlers.CALLS[stack["name"]]


def dlq_messages(aws, stack):
    out = []
    while True:
        resp = aws.sqs.receive_message(QueueUrl=stack["dlq_url"], MaxNumberOfMessages=10)
        msgs = resp.get("Messages", [])
        if not msgs:
            return out
        for m in msgs:
            out.append(json.loads(m["Body"]))
            aws.sqs.delete_message(QueueUrl=stack["dlq_url"], ReceiptHandle=m["ReceiptHandle"])


# ------------------------------------------------------------------------------------------


def test_mapping_config_read_back(aws, kw):
    stack = make_stack(aws, BatchSize=7, MaximumBatchingWindowInSeconds=2,
                       BisectBatchOnFunctionError=True, MaximumRetryAttempts=3,
                       MaximumRecordAgeInSeconds=120, ParallelizationFactor=2,
                       FunctionResponseTypes=["ReportBatchItemFailures"])
    engine = engine_for(kw, stack)
    (config,) = engine.list_mappings()
    assert config == MappingConfig(
        uuid=stack["uuid"], event_source_arn=stack["stream_arn"],
        function_arn=stack["function_arn"], batch_size=7, batching_window_s=2.0,
        starting_position="TRIM_HORIZON", bisect_on_error=True, max_retry_attempts=3,
        max_record_age_s=120, report_batch_item_failures=True,
        on_failure_destination=stack["dlq_arn"], parallelization_factor=2,
        state="Enabled", last_modified=config.last_modified)


def test_event_shape_and_batch_size(aws, kw):
    stack = make_stack(aws, BatchSize=10, env={"MARKER": "from-function-env"})
    entries = put(aws, stack, [f"r{i}" for i in range(25)], key="TSLA")
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    got = calls(stack)
    assert [len(c["data"]) for c in got] == [10, 10, 5]
    assert [d for c in got for d in c["data"]] == [f"r{i}" for i in range(25)]
    first = got[0]["event"]["Records"][0]
    assert first["eventSource"] == "aws:kinesis" and first["eventVersion"] == "1.0"
    assert first["eventName"] == "aws:kinesis:record"
    assert first["eventSourceARN"] == stack["stream_arn"]
    assert first["awsRegion"] == REGION and first["invokeIdentityArn"] == ROLE
    assert first["eventID"] == f"{entries[0]['ShardId']}:{entries[0]['SequenceNumber']}"
    k = first["kinesis"]
    assert k["kinesisSchemaVersion"] == "1.0" and k["partitionKey"] == "TSLA"
    assert k["sequenceNumber"] == entries[0]["SequenceNumber"]
    assert isinstance(k["approximateArrivalTimestamp"], float)
    assert abs(k["approximateArrivalTimestamp"] - time.time()) < 60
    # function environment and context applied
    assert got[0]["marker"] == "from-function-env" and got[0]["memory"] == 256
    assert 0 < got[0]["remaining_ms"] <= 30_000
    s = engine.stats()[stack["uuid"]]
    assert (s.invocations, s.records_succeeded, s.function_errors) == (3, 25, 0)
    # caught up: a second drain invokes nothing
    assert engine.drain(timeout=5)
    assert len(calls(stack)) == 3


def test_batching_window_waits_for_a_fuller_batch(aws, kw):
    stack = make_stack(aws, BatchSize=100, MaximumBatchingWindowInSeconds=1)
    engine = engine_for(kw, stack)
    engine.refresh()
    put(aws, stack, ["a", "b"])
    engine.run_once()  # reads a, b; the window has not passed: no invocation
    assert calls(stack) == []
    put(aws, stack, ["c"])
    started = time.monotonic()
    assert engine.drain(timeout=10)
    assert time.monotonic() - started >= 0.5
    assert [c["data"] for c in calls(stack)] == [["a", "b", "c"]]


def test_no_window_invokes_at_once(aws, kw):
    stack = make_stack(aws, BatchSize=100)
    engine = engine_for(kw, stack)
    put(aws, stack, ["a"])
    started = time.monotonic()
    assert engine.drain(timeout=10)
    assert time.monotonic() - started < 1.0
    assert [c["data"] for c in calls(stack)] == [["a"]]


def test_partial_batch_failure_retries_from_lowest_failed(aws, kw):
    stack = make_stack(aws, BatchSize=10, FunctionResponseTypes=["ReportBatchItemFailures"],
                       env={"MODE": "partial", "POISON": "r3,r6", "FAIL_TIMES": "1"})
    put(aws, stack, [f"r{i}" for i in range(10)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    got = [c["data"] for c in calls(stack)]
    # r3 and r6 fail once: retry starts at r3 (the lowest) and re-sends everything after it
    assert got == [[f"r{i}" for i in range(10)], [f"r{i}" for i in range(3, 10)]]
    s = engine.stats()[stack["uuid"]]
    assert s.partial_failures == 1 and s.retries == 1 and s.records_to_destination == 0
    assert dlq_messages(aws, stack) == []


def test_empty_or_missing_failures_is_success_and_invalid_id_fails_batch(aws, kw):
    stack = make_stack(aws, BatchSize=5, FunctionResponseTypes=["ReportBatchItemFailures"],
                       MaximumRetryAttempts=1, env={"MODE": "bad_id"})
    put(aws, stack, ["a", "b"])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    assert [c["data"] for c in calls(stack)] == [["a", "b"], ["a", "b"]]  # 1 try + 1 retry
    (msg,) = dlq_messages(aws, stack)
    assert msg["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert "functionError" not in msg["responseContext"]  # the function itself succeeded
    assert msg["KinesisBatchInfo"]["batchSize"] == 2


def test_report_batch_item_failures_off_ignores_response(aws, kw):
    stack = make_stack(aws, BatchSize=5, env={"MODE": "partial", "POISON": "a"})
    put(aws, stack, ["a", "b"])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    assert len(calls(stack)) == 1


def test_retries_bounded_then_failure_record_in_sqs(aws, kw):
    stack = make_stack(aws, BatchSize=4, MaximumRetryAttempts=2,
                       env={"MODE": "always_raise"})
    entries = put(aws, stack, [f"r{i}" for i in range(6)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    got = [c["data"] for c in calls(stack)]
    # each batch: 1 attempt + 2 retries, then skipped
    assert got == [["r0", "r1", "r2", "r3"]] * 3 + [["r4", "r5"]] * 3
    msgs = dlq_messages(aws, stack)
    assert len(msgs) == 2
    first = msgs[0]
    assert first["version"] == "1.0" and first["timestamp"].endswith("Z")
    assert first["requestContext"]["functionArn"] == stack["function_arn"]
    assert first["requestContext"]["condition"] == "RetryAttemptsExhausted"
    assert first["requestContext"]["approximateInvokeCount"] == 3
    assert first["requestContext"]["requestId"] == calls(stack)[2]["request_id"]
    assert first["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST",
                                        "functionError": "Unhandled"}
    info = first["KinesisBatchInfo"]
    assert info == {
        "shardId": entries[0]["ShardId"],
        "startSequenceNumber": entries[0]["SequenceNumber"],
        "endSequenceNumber": entries[3]["SequenceNumber"],
        "approximateArrivalOfFirstRecord": info["approximateArrivalOfFirstRecord"],
        "approximateArrivalOfLastRecord": info["approximateArrivalOfLastRecord"],
        "batchSize": 4,
        "streamArn": stack["stream_arn"],
    }
    assert info["approximateArrivalOfFirstRecord"].endswith("Z")
    assert msgs[1]["KinesisBatchInfo"]["startSequenceNumber"] == entries[4]["SequenceNumber"]
    s = engine.stats()[stack["uuid"]]
    assert (s.function_errors, s.retries, s.records_to_destination, s.destination_messages) \
        == (6, 4, 6, 2)
    # checkpoint moved past the discarded records: nothing more to do
    assert engine.drain(timeout=5) and len(calls(stack)) == 6


def test_bisect_isolates_poison_record(aws, kw):
    stack = make_stack(aws, BatchSize=8, BisectBatchOnFunctionError=True,
                       MaximumRetryAttempts=1, env={"MODE": "raise", "POISON": "r5"})
    entries = put(aws, stack, [f"r{i}" for i in range(8)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    got = [c["data"] for c in calls(stack)]
    assert got == [
        [f"r{i}" for i in range(8)],        # fails -> split (does not count as a retry)
        ["r0", "r1", "r2", "r3"],           # ok
        ["r4", "r5", "r6", "r7"],           # fails -> split
        ["r4", "r5"],                       # fails -> split
        ["r4"],                             # ok
        ["r5"], ["r5"],                     # attempt + 1 retry, then to the destination
        ["r6", "r7"],                       # ok
    ]
    (msg,) = dlq_messages(aws, stack)
    info = msg["KinesisBatchInfo"]
    assert info["batchSize"] == 1
    assert info["startSequenceNumber"] == info["endSequenceNumber"] == entries[5]["SequenceNumber"]
    assert msg["requestContext"]["approximateInvokeCount"] == 5
    s = engine.stats()[stack["uuid"]]
    assert s.bisections == 3 and s.records_succeeded == 7 and s.records_to_destination == 1


def test_partial_failure_with_bisect_isolates_poison(aws, kw):
    stack = make_stack(aws, BatchSize=6, BisectBatchOnFunctionError=True,
                       MaximumRetryAttempts=0, FunctionResponseTypes=["ReportBatchItemFailures"],
                       env={"MODE": "partial", "POISON": "r2"})
    put(aws, stack, [f"r{i}" for i in range(6)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    got = [c["data"] for c in calls(stack)]
    assert got == [
        [f"r{i}" for i in range(6)],   # r2 reported: r0, r1 checkpointed
        ["r2", "r3", "r4", "r5"],      # split at the reported record (not a retry)
        ["r2", "r3"],                  # r2 first again: bisected like a function error
        ["r2"],                        # alone: MaximumRetryAttempts=0 -> destination
        ["r3"],
        ["r4", "r5"],
    ]
    (msg,) = dlq_messages(aws, stack)
    assert msg["KinesisBatchInfo"]["batchSize"] == 1   # only the poison record is discarded


def test_per_shard_order_with_multiple_shards(aws, kw):
    stack = make_stack(aws, shards=3, BatchSize=7)
    keys = [f"SYM{i % 5}" for i in range(120)]
    values = [f"{k}:{i}" for i, k in enumerate(keys)]
    entries = put(aws, stack, values, keys=keys)
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=30)
    got = calls(stack)
    assert sorted(d for c in got for d in c["data"]) == sorted(values)
    by_shard: dict[str, list[int]] = {}
    for c in got:
        assert len({c["shard"]}) == 1 and len(c["data"]) <= 7
        by_shard.setdefault(c["shard"], []).extend(int(s) for s in c["seqs"])
    expected_shards = {e["ShardId"] for e in entries}
    assert set(by_shard) == expected_shards and len(expected_shards) > 1
    for seqs in by_shard.values():
        assert seqs == sorted(seqs) and len(seqs) == len(set(seqs))
    # per key, data arrives in put order
    for key in set(keys):
        idx = [int(d.split(":")[1]) for c in got for d in c["data"] if d.startswith(key + ":")]
        assert idx == sorted(idx)


def test_record_age_expiry_sends_record_age_exceeded(aws, kw):
    stack = make_stack(aws, BatchSize=10, MaximumRecordAgeInSeconds=60,
                       MaximumRetryAttempts=-1, env={"MODE": "always_raise"})
    put(aws, stack, ["old1", "old2"])
    engine = engine_for(kw, stack)
    engine.refresh()
    engine.run_once()  # first attempt fails; retries are unbounded
    engine.run_once()
    assert len(calls(stack)) == 2
    # age the pending records (instead of waiting 60 s): the engine compares arrival times
    worker = engine.workers[stack["uuid"]]
    for shard in worker.shards.values():
        for batch in shard.pending:
            batch.records = [r.__class__(r.sequence_number, r.partition_key, r.data,
                                         r.arrival - 120) for r in batch.records]
    assert engine.drain(timeout=10)
    assert len(calls(stack)) == 2  # expired records are not sent to the function again
    (msg,) = dlq_messages(aws, stack)
    assert msg["requestContext"]["condition"] == "RecordAgeExceeded"
    assert msg["requestContext"]["approximateInvokeCount"] == 2
    assert msg["KinesisBatchInfo"]["batchSize"] == 2
    assert engine.stats()[stack["uuid"]].records_expired == 2


def test_checkpoints_persist_and_resume(aws, kw, tmp_path):
    stack = make_stack(aws, BatchSize=10)
    path = tmp_path / "checkpoints.json"
    put(aws, stack, ["a", "b", "c"])
    first = engine_for(kw, stack, checkpoint_path=path)
    assert first.drain(timeout=10)
    saved = json.loads(path.read_text())[stack["uuid"]]
    assert saved["stream"] == stack["stream_arn"] and list(saved["shards"].values()) == ["3"]
    put(aws, stack, ["d"])
    second = engine_for(kw, stack, checkpoint_path=path)  # a restarted daemon
    assert second.drain(timeout=10)
    assert [c["data"] for c in calls(stack)] == [["a", "b", "c"], ["d"]]


def test_latest_starting_position_skips_older_records(aws, kw):
    name = f"t-{uuid.uuid4().hex[:10]}"
    aws.kinesis.create_stream(StreamName=name, ShardCount=1)
    arn = aws.kinesis.describe_stream_summary(StreamName=name)[
        "StreamDescriptionSummary"]["StreamARN"]
    aws.kinesis.put_record(StreamARN=arn, Data=b"before", PartitionKey="k")
    time.sleep(1.1)  # LastModified has whole-second precision
    aws.lam.create_function(FunctionName=name, Runtime="python3.11", Role=ROLE,
                            Handler="stocksage_test_handlers.handle", Code={"ZipFile": _zip()})
    esm = aws.lam.create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                              StartingPosition="LATEST")
    aws.kinesis.put_record(StreamARN=arn, Data=b"after", PartitionKey="k")
    stack = {"name": name, "function_arn": esm["FunctionArn"]}
    engine = engine_for(kw, stack)  # discovered after "after" was put: still delivered
    assert engine.drain(timeout=10)
    assert [c["data"] for c in calls(stack)] == [["after"]]


def test_threaded_engine_picks_up_new_records(aws, kw):
    stack = make_stack(aws, BatchSize=50)
    engine = engine_for(kw, stack, idle_sleep=0.05)
    engine.refresh()
    engine.start()
    try:
        put(aws, stack, [f"x{i}" for i in range(120)])
        assert engine.drain(timeout=20)
        assert sum(len(c["data"]) for c in calls(stack)) == 120
    finally:
        engine.stop()


def test_function_error_types(aws, kw):
    stack = make_stack(aws, BatchSize=5, MaximumRetryAttempts=0,
                       handler="stocksage_test_handlers.not_json")
    put(aws, stack, ["a"])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=10)
    s = engine.stats()[stack["uuid"]]
    assert s.function_errors == 1 and "Runtime.MarshalError" in s.last_error
    assert s.records_to_destination == 1


def test_failure_record_omits_function_error_when_none():
    from stocksage.local.esm import KRecord, PendingBatch

    cfg = MappingConfig("u", "arn:aws:kinesis:us-east-1:1:stream/s", "arn:fn")
    batch = PendingBatch([KRecord("1", "k", b"x", 1.5), KRecord("2", "k", b"y", 2.5)], invokes=2)
    rec = failure_record(cfg, "shardId-000000000000", batch, "RecordAgeExceeded")
    assert rec["responseContext"] == {"statusCode": 200, "executedVersion": "$LATEST"}
    assert rec["KinesisBatchInfo"]["approximateArrivalOfFirstRecord"] == \
        "1970-01-01T00:00:01.500Z"


# ------------------------------------------------------------------------------------------
# In-process Lambda invocation


def test_lambda_function_from_deployed_and_errors(aws, kw):
    import os

    stack = make_stack(aws, dlq=False, timeout=1, env={"MODE": "raise", "POISON": "bad",
                                                      "MARKER": "m1"})
    fn = LambdaFunction.from_deployed(aws.lam, stack["name"], code_roots=[FIXTURES])
    assert fn.handler == "stocksage_test_handlers.handle"
    assert fn.timeout == 1.0 and fn.memory_size == 256 and fn.role == ROLE
    assert fn.environment["MARKER"] == "m1" and fn.function_arn == stack["function_arn"]

    def event(value: str) -> dict:
        return kinesis_event([value], partition_key="k", first_sequence=1)

    response, error = fn.invoke(event("good"))
    assert error is None and response == {"batchItemFailures": []}
    call = calls(stack)[-1]
    assert call["marker"] == "m1" and call["lambda_name_env"] == stack["name"]
    assert "MARKER" not in os.environ  # the environment is restored
    response, error = fn.invoke(event("bad"))
    assert response is None and error["errorType"] == "ValueError"
    assert "poison" in error["errorMessage"] and error["stackTrace"]

    slow = LambdaFunction(stack["name"], "stocksage_test_handlers.handle", timeout=0.2,
                          environment={"MODE": "sleep", "SLEEP": "0.3"},
                          code_roots=(str(FIXTURES),))
    result = slow.invoke_detailed(event("x"))
    assert result.error["errorType"] == "Sandbox.Timedout"
    assert "Task timed out after 0.20 seconds" in result.error["errorMessage"]
    assert result.function_error == "Unhandled"

    missing = LambdaFunction("f", "no_such_module.handler", code_roots=(str(FIXTURES),))
    assert missing.invoke({})[1]["errorType"] == "Runtime.ImportModuleError"


# ------------------------------------------------------------------------------------------
# Faithfulness: bisect, timeouts, destination failures, ParallelizationFactor, faults, crashes


def test_bisect_when_the_first_record_fails(aws, kw):
    stack = make_stack(aws, BatchSize=4, BisectBatchOnFunctionError=True,
                       MaximumRetryAttempts=0, env={"MODE": "raise", "POISON": "r0"})
    entries = put(aws, stack, [f"r{i}" for i in range(4)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    assert [c["data"] for c in calls(stack)] == [
        ["r0", "r1", "r2", "r3"],   # function error -> split (AWS bisects any failed batch > 1)
        ["r0", "r1"],               # fails again -> split
        ["r0"],                     # alone, MaximumRetryAttempts=0 -> destination
        ["r1"],
        ["r2", "r3"],
    ]
    (msg,) = dlq_messages(aws, stack)
    assert msg["KinesisBatchInfo"]["startSequenceNumber"] == entries[0]["SequenceNumber"]
    assert msg["KinesisBatchInfo"]["batchSize"] == 1
    s = engine.stats()[stack["uuid"]]
    assert s.bisections == 2 and s.records_succeeded == 3


def test_bisect_when_the_first_record_is_reported_failed(aws, kw):
    stack = make_stack(aws, BatchSize=4, BisectBatchOnFunctionError=True,
                       MaximumRetryAttempts=0, FunctionResponseTypes=["ReportBatchItemFailures"],
                       env={"MODE": "partial", "POISON": "r0"})
    put(aws, stack, [f"r{i}" for i in range(4)])
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=20)
    assert [c["data"] for c in calls(stack)] == [
        ["r0", "r1", "r2", "r3"], ["r0", "r1"], ["r0"], ["r1"], ["r2", "r3"]]
    assert dlq_messages(aws, stack)[0]["KinesisBatchInfo"]["batchSize"] == 1


def test_timeout_stops_the_invocation_and_is_bisected_like_an_error(aws, kw):
    stack = make_stack(aws, BatchSize=2, timeout=1, BisectBatchOnFunctionError=True,
                       MaximumRetryAttempts=0, env={"MODE": "block", "POISON": "p"})
    put(aws, stack, ["a", "p"])
    engine = engine_for(kw, stack)
    try:
        # the first handler call holding "p" blocks until released: the runtime stops
        # waiting at Timeout, bisects, and the halves (not blocked any more) succeed
        assert engine.drain(timeout=30)
        assert [c["data"] for c in calls(stack)] == [["a", "p"], ["a"], ["p"]]
        assert handlers.FINISHED_LATE[stack["name"]] == []  # still blocked: abandoned
        s = engine.stats()[stack["uuid"]]
        assert (s.timeouts, s.function_errors, s.bisections, s.records_succeeded) == (1, 1, 1, 2)
        assert s.last_error.startswith("Sandbox.Timedout")
        assert dlq_messages(aws, stack) == []
    finally:
        handlers.release(stack["name"])


def test_failed_destination_send_keeps_the_checkpoint_and_is_retried(aws, kw):
    stack = make_stack(aws, BatchSize=5, MaximumRetryAttempts=0,
                       env={"MODE": "always_raise"})
    aws.sqs.delete_queue(QueueUrl=stack["dlq_url"])
    put(aws, stack, ["x", "y"])
    engine = engine_for(kw, stack)
    engine.refresh()
    for _ in range(4):
        engine.run_once()
    s = engine.stats()[stack["uuid"]]
    assert s.destination_failures >= 2 and s.records_to_destination == 0
    assert len(calls(stack)) == 1  # the send is retried, not the batch
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"], "shardId-000000000000") \
        is None
    stack["dlq_url"] = aws.sqs.create_queue(QueueName=f"{stack['name']}-dlq")["QueueUrl"]
    assert engine.drain(timeout=20)
    (msg,) = dlq_messages(aws, stack)
    assert msg["KinesisBatchInfo"]["batchSize"] == 2
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"],
                                  "shardId-000000000000") == "2"


def test_parallelization_factor_runs_lanes_concurrently_in_key_order(aws, kw):
    stack = make_stack(aws, BatchSize=3, ParallelizationFactor=4,
                       env={"MODE": "barrier", "BARRIER": "2"})
    keys = [f"SYM{i % 8}" for i in range(64)]
    values = [f"{k}:{i}" for i, k in enumerate(keys)]
    put(aws, stack, values, keys=keys)
    assert len({lane_of(k, 4) for k in keys}) >= 2
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=60)
    s = engine.stats()[stack["uuid"]]
    assert s.function_errors == 0  # the first two invocations met inside the handler
    got = calls(stack)
    assert sorted(d for c in got for d in c["data"]) == sorted(values)  # each once
    for c in got:  # one lane per batch
        assert len({lane_of(d.split(":")[0], 4) for d in c["data"]}) == 1
    for key in set(keys):
        idx = [int(d.split(":")[1]) for c in got for d in c["data"] if d.startswith(key + ":")]
        assert idx == sorted(idx)
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"],
                                  "shardId-000000000000") == "64"


def test_parallelization_factor_checkpoint_waits_for_a_failing_lane(aws, kw):
    stack = make_stack(aws, BatchSize=5, ParallelizationFactor=2,
                       env={"MODE": "raise", "POISON": "A:1", "FAIL_TIMES": "1"})
    a, b = "AAPL", next(k for k in ("MSFT", "TSLA", "NVDA", "IBM", "GOOG")
                        if lane_of(k, 2) != lane_of("AAPL", 2))
    put(aws, stack, ["A:1", "B:1", "B:2", "A:2"], keys=[a, b, b, a])
    engine = engine_for(kw, stack)
    engine.refresh()
    engine.run_once()  # lane of A fails, lane of B succeeds
    shard = "shardId-000000000000"
    assert sorted(c["data"] for c in calls(stack)) == [["A:1", "A:2"], ["B:1", "B:2"]]
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"], shard) is None
    assert engine.drain(timeout=20)
    assert calls(stack)[-1]["data"] == ["A:1", "A:2"]
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"], shard) == "4"


def test_concurrent_invocations_see_their_own_environment():
    import os
    import threading

    functions = [LambdaFunction(f"env-{m}", "stocksage_test_handlers.handle",
                                environment={"MODE": "barrier", "BARRIER": "2",
                                             "BARRIER_KEY": "env-test", "MARKER": m},
                                code_roots=(str(FIXTURES),)) for m in ("a", "b")]
    event = kinesis_event([b"x"], partition_key="k", first_sequence=1)
    results = {}
    threads = [threading.Thread(target=lambda f=f: results.__setitem__(
        f.function_name, f.invoke_detailed(event))) for f in functions]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert all(r.error is None for r in results.values())  # they ran at the same time
    assert handlers.CALLS["env-a"][0]["marker"] == "a"
    assert handlers.CALLS["env-b"][0]["marker"] == "b"
    assert handlers.CALLS["env-a"][0]["lambda_name_env"] == "env-a"
    assert "MARKER" not in os.environ and "BARRIER" not in os.environ


def test_redelivery_fault_delivers_every_batch_twice(aws, kw):
    stack = make_stack(aws, BatchSize=10)
    put(aws, stack, ["a", "b"])
    engine = engine_for(kw, stack, faults=EsmFaults(redeliver=True))
    assert engine.drain(timeout=10)
    first, second = calls(stack)
    assert first["data"] == second["data"] == ["a", "b"]
    assert first["request_id"] != second["request_id"]
    s = engine.stats()[stack["uuid"]]
    assert (s.redeliveries, s.invocations, s.records_succeeded) == (1, 2, 2)
    engine.faults.redeliver = False
    put(aws, stack, ["c"])
    assert engine.drain(timeout=10) and calls(stack)[-1]["data"] == ["c"]
    assert len(calls(stack)) == 3


def test_kill_mid_batch_then_restart_redelivers_from_the_checkpoint(aws, kw, tmp_path):
    stack = make_stack(aws, BatchSize=2, env={"MODE": "block", "POISON": "r2"})
    path = tmp_path / "checkpoints.json"
    put(aws, stack, ["r0", "r1", "r2", "r3"])
    engine = engine_for(kw, stack, checkpoint_path=path, idle_sleep=0.05)
    engine.refresh()
    engine.start()
    try:
        assert wait_for(lambda: len(calls(stack)) == 2, 20)  # second batch is in the handler
        engine.kill()
    finally:
        handlers.release(stack["name"])
    assert wait_for(lambda: handlers.FINISHED_LATE[stack["name"]] == [["r2", "r3"]], 20)
    saved = json.loads(path.read_text())[stack["uuid"]]["shards"]
    assert saved == {"shardId-000000000000": "2"}  # the late outcome was not applied
    assert [p.name for p in tmp_path.iterdir()] == ["checkpoints.json"]  # no torn temp file
    restarted = engine_for(kw, stack, checkpoint_path=path)
    assert restarted.drain(timeout=20)
    assert [c["data"] for c in calls(stack)] == [["r0", "r1"], ["r2", "r3"], ["r2", "r3"]]
    assert json.loads(path.read_text())[stack["uuid"]]["shards"] == {
        "shardId-000000000000": "4"}


# ------------------------------------------------------------------------------------------
# LocalRuntime (its own emulator process: it runs every mapping it finds)


def test_local_runtime_discovers_mappings_created_later(tmp_path):
    from stocksage.local.runtime import LocalRuntime
    from stocksage.local.sagemaker_host import ping

    with Emulator(port=0, mode="process", state_dir=tmp_path / "emu") as emu:
        kw2 = client_kwargs(emu.endpoint_url)
        create_role(kw2)

        class C:
            kinesis = boto3.client("kinesis", **kw2)
            lam = boto3.client("lambda", **kw2)
            sqs = boto3.client("sqs", **kw2)

        rt = LocalRuntime(emu.endpoint_url, sagemaker_port=0, state_dir=tmp_path / "state",
                          code_roots=[FIXTURES], discovery_interval=0.2)
        with rt:
            assert ping(rt.sagemaker_url)
            assert rt.stats()["mappings"] == {}
            stack = make_stack(C, BatchSize=20)  # created after the runtime started
            put(C, stack, [f"v{i}" for i in range(50)])
            assert wait_for(lambda: stack["uuid"] in rt.stats()["mappings"], 10)
            assert rt.drain(timeout=20)
            assert sum(len(c["data"]) for c in calls(stack)) == 50
            call = calls(stack)[0]
            assert call["endpoint_url"] == emu.endpoint_url
            assert call["sagemaker_url"] == rt.sagemaker_url
            stats = rt.stats()["mappings"][stack["uuid"]]
            assert stats["records_succeeded"] == 50 and stats["caught_up"]
        assert (tmp_path / "state" / "esm-checkpoints.json").exists()
        assert json.loads((tmp_path / "state" / "runtime-stats.json").read_text())["mappings"]
        # what `make demo` reads from it: records handled and Lambda batches
        progress = runtime_progress(tmp_path / "state" / "runtime-stats.json")
        assert progress.handled == 50 and progress.batches == stats["invocations"] >= 3
        assert progress.caught_up and progress.started_at == rt.started_at


def wait_for(predicate, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return True
        time.sleep(0.05)
    return False


def test_a_read_error_keeps_the_retry_count_and_reads_nothing_twice(aws, kw):
    """A failed GetRecords takes a new iterator after the last record read; the batch being
    retried keeps its attempts (1 + MaximumRetryAttempts in all, as on AWS) and no record is
    delivered twice."""
    stack = make_stack(aws, BatchSize=4, MaximumRetryAttempts=2, env={"MODE": "always_raise"})
    put(aws, stack, [f"r{i}" for i in range(6)])
    engine = engine_for(kw, stack)
    engine.refresh()
    worker = engine.workers[stack["uuid"]]
    kinesis = worker.clients.kinesis
    real, reads = kinesis.get_records, []

    def flaky(**kwargs):
        reads.append(1)
        if len(reads) in (2, 3):  # the reads between the first attempts fail
            raise ConnectionError("read timed out")
        return real(**kwargs)

    kinesis.get_records = flaky
    assert engine.drain(timeout=20)
    got = [c["data"] for c in calls(stack)]
    assert got == [["r0", "r1", "r2", "r3"]] * 3 + [["r4", "r5"]] * 3
    assert worker.stats.read_errors == 2
    counts = [m["requestContext"]["approximateInvokeCount"] for m in dlq_messages(aws, stack)]
    assert counts == [3, 3]


def test_child_shards_wait_until_their_parent_is_read_to_its_end(aws, kw):
    """After a split, a key's newer records are in a child shard; they are delivered only
    after the parent's records, even while the parent's batch is being retried."""
    stack = make_stack(aws, BatchSize=5, env={"MODE": "raise", "POISON": "A:3",
                                              "FAIL_TIMES": "3"})
    put(aws, stack, [f"A:{i}" for i in range(10)], key="A")
    parent = aws.kinesis.list_shards(StreamARN=stack["stream_arn"])["Shards"][0]["ShardId"]
    aws.kinesis.split_shard(StreamName=stack["name"], ShardToSplit=parent,
                            NewStartingHashKey=str(2**127))
    put(aws, stack, [f"A:{i}" for i in range(10, 20)], key="A")
    shards = aws.kinesis.list_shards(StreamARN=stack["stream_arn"])["Shards"]
    assert [s.get("ParentShardId") for s in shards].count(parent) == 2
    engine = engine_for(kw, stack)
    assert engine.drain(timeout=30)
    got = calls(stack)
    delivered = [d for c in got for d in c["data"]]
    assert set(delivered) == {f"A:{i}" for i in range(20)}
    first_child = next(i for i, c in enumerate(got) if c["shard"] != parent)
    assert parent in {c["shard"] for c in got}, [(c["shard"], c["data"]) for c in got]
    last_parent = max(i for i, c in enumerate(got) if c["shard"] == parent)
    assert last_parent < first_child, [(c["shard"], c["data"]) for c in got]
    order = [int(d.split(":")[1]) for c in got[last_parent:] for d in c["data"]]
    assert order == sorted(order)


def test_a_stuck_lane_bounds_what_the_shard_holds(aws, kw):
    """One lane retries a poison record for ever while its keys are rare; the other lane's
    keys keep flowing, and their finished records wait behind the stuck one for the
    checkpoint. Reading stops at ``max_outstanding`` records not checkpointed (plus one
    read), never the whole stream."""
    stack = make_stack(aws, BatchSize=10, ParallelizationFactor=2, MaximumRetryAttempts=-1,
                       env={"MODE": "raise", "POISON": "A:0"})
    a, b = "AAPL", next(k for k in ("MSFT", "TSLA", "NVDA", "IBM", "GOOG")
                        if lane_of(k, 2) != lane_of("AAPL", 2))
    values = ["A:0"] + [f"{'A' if i % 200 == 0 else 'B'}:{i}" for i in range(1, 3000)]
    put(aws, stack, values, keys=[a if v.startswith("A") else b for v in values])
    engine = engine_for(kw, stack)
    engine.refresh()
    worker = engine.workers[stack["uuid"]]
    worker.max_outstanding = 500
    for _ in range(300):
        engine.run_once()
    shard = next(iter(worker.shards.values()))
    read_limit = max(10 * 2, 100)
    assert 500 <= len(shard.outstanding) <= 500 + read_limit
    assert worker.stats.records_read == len(shard.outstanding) < len(values)
    assert engine.checkpoints.get(stack["uuid"], stack["stream_arn"], shard.shard_id) is None
