"""The patched emulator: patches are active (checked by behaviour), the CLI and the API work."""

from __future__ import annotations

import io
import json
import os
import socket
import subprocess
import sys
import time
import uuid
import zipfile
from datetime import UTC, datetime
from pathlib import Path

import boto3
import pytest
from botocore.exceptions import ClientError

from stocksage.local.emulator import PATCHES, Emulator, applied_patches, probe, wait_until
from tests.helpers.aws import client_kwargs

REPO = Path(__file__).resolve().parents[3]
ROLE_NAME = "emu-test"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def clients(endpoint_url: str):
    kw = client_kwargs(endpoint_url)
    return {name: boto3.client(name, **kw)
            for name in ("kinesis", "lambda", "logs", "iam", "sagemaker")}


def _zip() -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        zf.writestr("h.py", "def handler(e, c):\n    return e\n")
    return buf.getvalue()


def stream_with_mapping(c) -> tuple[str, str]:
    """A stream with a Lambda event source mapping on it; returns (stream ARN, function)."""
    name = f"emu-{uuid.uuid4().hex[:8]}"
    try:
        role = c["iam"].create_role(RoleName=ROLE_NAME, AssumeRolePolicyDocument=json.dumps({
            "Version": "2012-10-17", "Statement": [{
                "Effect": "Allow", "Action": "sts:AssumeRole",
                "Principal": {"Service": "lambda.amazonaws.com"}}]}))["Role"]["Arn"]
    except c["iam"].exceptions.EntityAlreadyExistsException:
        role = c["iam"].get_role(RoleName=ROLE_NAME)["Role"]["Arn"]
    c["kinesis"].create_stream(StreamName=name, ShardCount=1)
    arn = c["kinesis"].describe_stream_summary(StreamName=name)[
        "StreamDescriptionSummary"]["StreamARN"]
    c["lambda"].create_function(FunctionName=name, Runtime="python3.11", Role=role,
                                Handler="h.handler", Code={"ZipFile": _zip()})
    c["lambda"].create_event_source_mapping(EventSourceArn=arn, FunctionName=name,
                                            StartingPosition="TRIM_HORIZON", BatchSize=10)
    return arn, name


def lambda_side_effects(c, function: str) -> int:
    """Log streams moto wrote for the function (each Docker invocation attempt writes one)."""
    try:
        return len(c["logs"].describe_log_streams(
            logGroupName=f"/aws/lambda/{function}")["logStreams"])
    except ClientError:
        return 0


def test_patches_applied(emulator):
    assert set(applied_patches()) == {p.name for p in PATCHES}
    assert probe(emulator.endpoint_url)


def test_put_records_does_not_invoke_lambda(emulator):
    c = clients(emulator.endpoint_url)
    arn, function = stream_with_mapping(c)
    for _ in range(3):
        resp = c["kinesis"].put_records(StreamARN=arn, Records=[
            {"Data": f"r{i}".encode(), "PartitionKey": "k"} for i in range(100)])
        assert resp["FailedRecordCount"] == 0
    assert lambda_side_effects(c, function) == 0
    # the mapping is still stored and listed for the local runtime
    (m,) = c["lambda"].list_event_source_mappings(FunctionName=function)["EventSourceMappings"]
    assert m["EventSourceArn"] == arn and m["BatchSize"] == 10
    # deleting the function no longer breaks puts on the mapped stream
    c["lambda"].delete_function(FunctionName=function)
    c["kinesis"].put_record(StreamARN=arn, Data=b"x", PartitionKey="k")


def test_control_unpatched_moto_invokes_lambda_from_puts(tmp_path):
    """The behavioural check above is meaningful: plain moto does write Lambda side effects."""
    port = free_port()
    with open(tmp_path / "moto.log", "wb") as log:
        proc = subprocess.Popen([sys.executable, "-m", "moto.server", "-H", "127.0.0.1", "-p",
                                 str(port)], stdout=log, stderr=subprocess.STDOUT)
        try:
            url = f"http://127.0.0.1:{port}"
            assert wait_until(lambda: probe(url), 30)
            c = clients(url)
            arn, function = stream_with_mapping(c)
            c["kinesis"].put_records(StreamARN=arn, Records=[
                {"Data": b"x", "PartitionKey": "k"} for _ in range(3)])
            assert lambda_side_effects(c, function) == 3
        finally:
            proc.terminate()
            proc.wait(timeout=10)


def test_get_records_semantics_with_fast_shard_ops(emulator):
    k = clients(emulator.endpoint_url)["kinesis"]
    name = f"gr-{uuid.uuid4().hex[:8]}"
    k.create_stream(StreamName=name, ShardCount=1)
    shard = k.list_shards(StreamName=name)["Shards"][0]["ShardId"]
    it = k.get_shard_iterator(StreamName=name, ShardId=shard,
                              ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    empty = k.get_records(ShardIterator=it)
    assert empty["Records"] == [] and empty["MillisBehindLatest"] == 0
    before = datetime.now(UTC)
    seqs = [r["SequenceNumber"] for r in k.put_records(StreamName=name, Records=[
        {"Data": f"{i}".encode(), "PartitionKey": "p"} for i in range(25)])["Records"]]
    assert seqs == [str(i) for i in range(1, 26)]
    first = k.get_records(ShardIterator=empty["NextShardIterator"], Limit=10)
    assert [r["Data"] for r in first["Records"]] == [f"{i}".encode() for i in range(10)]
    rest = k.get_records(ShardIterator=first["NextShardIterator"], Limit=100)
    assert [r["SequenceNumber"] for r in rest["Records"]] == seqs[10:]
    assert rest["MillisBehindLatest"] == 0
    assert k.get_records(ShardIterator=rest["NextShardIterator"])["Records"] == []
    after = k.get_shard_iterator(StreamName=name, ShardId=shard,
                                 ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                                 StartingSequenceNumber="20")["ShardIterator"]
    assert [r["SequenceNumber"] for r in k.get_records(ShardIterator=after)["Records"]] == \
        seqs[20:]
    at = k.get_shard_iterator(StreamName=name, ShardId=shard, ShardIteratorType="AT_TIMESTAMP",
                              Timestamp=before)["ShardIterator"]
    assert len(k.get_records(ShardIterator=at)["Records"]) == 25
    latest = k.get_shard_iterator(StreamName=name, ShardId=shard,
                                  ShardIteratorType="LATEST")["ShardIterator"]
    k.put_record(StreamName=name, Data=b"new", PartitionKey="p")
    assert [r["Data"] for r in k.get_records(ShardIterator=latest)["Records"]] == [b"new"]


def test_update_endpoint_patch(emulator):
    sm = clients(emulator.endpoint_url)["sagemaker"]
    model = f"m-{uuid.uuid4().hex[:6]}"
    sm.create_model(ModelName=model, ExecutionRoleArn="arn:aws:iam::123456789012:role/r",
                    PrimaryContainer={"Image": "img"})
    for cfg in ("a", "b"):
        sm.create_endpoint_config(EndpointConfigName=f"{model}-{cfg}", ProductionVariants=[{
            "VariantName": "v", "ModelName": model, "InitialInstanceCount": 1,
            "InstanceType": "ml.m5.large"}])
    sm.create_endpoint(EndpointName=model, EndpointConfigName=f"{model}-a")
    arn = sm.update_endpoint(EndpointName=model, EndpointConfigName=f"{model}-b")["EndpointArn"]
    desc = sm.describe_endpoint(EndpointName=model)
    assert desc["EndpointArn"] == arn
    assert desc["EndpointConfigName"] == f"{model}-b" and desc["EndpointStatus"] == "InService"
    with pytest.raises(ClientError):
        sm.update_endpoint(EndpointName=model, EndpointConfigName="missing")
    with pytest.raises(ClientError):
        sm.update_endpoint(EndpointName="missing", EndpointConfigName=f"{model}-b")


def test_process_mode_is_isolated(tmp_path):
    with Emulator(port=0, mode="process", state_dir=tmp_path) as emu:
        assert emu.port > 0 and probe(emu.endpoint_url)
        k = clients(emu.endpoint_url)["kinesis"]
        assert k.list_streams()["StreamNames"] == []
        k.create_stream(StreamName="only-here", ShardCount=1)
        assert k.list_streams()["StreamNames"] == ["only-here"]
    assert not probe(emu.endpoint_url)


def test_cli_start_status_stop(tmp_path):
    port = free_port()
    state = tmp_path / "state"
    env = {**os.environ, "PYTHONPATH": str(REPO)}

    def cli(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([sys.executable, "-m", "stocksage.local.emulator", *args,
                               "--port", str(port), "--state-dir", str(state)],
                              check=False, capture_output=True, text=True, cwd=REPO, env=env,
                              timeout=90)

    started = cli("start")
    try:
        assert started.returncode == 0, started.stderr
        assert (state / "emulator.pid").exists() and (state / "emulator.log").exists()
        status = cli("status")
        assert status.returncode == 0 and json.loads(status.stdout)["healthy"] is True
        again = cli("start")
        assert again.returncode == 1 and "already running" in again.stderr
    finally:
        stopped = cli("stop")
    assert stopped.returncode == 0 and "stopped" in stopped.stdout
    assert not (state / "emulator.pid").exists()
    assert wait_until(lambda: not probe(f"http://127.0.0.1:{port}"), 10)
    assert cli("status").returncode == 3


def test_cli_start_reports_a_busy_port(tmp_path):
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        s.listen()
        port = s.getsockname()[1]
        t0 = time.monotonic()
        proc = subprocess.run([sys.executable, "-m", "stocksage.local.emulator", "start",
                               "--port", str(port), "--state-dir", str(tmp_path)],
                              check=False, capture_output=True, text=True, cwd=REPO, timeout=60,
                              env={**os.environ, "PYTHONPATH": str(REPO)})
    assert proc.returncode == 1 and "in use" in proc.stderr
    assert time.monotonic() - t0 < 30


def test_runtime_cli_start_status_stop(tmp_path):
    """``python -m stocksage.local.runtime start|status|stop`` against an emulator."""
    with Emulator(port=0, mode="process", state_dir=tmp_path / "emu") as emu:
        port = free_port()
        state = tmp_path / "rt"
        env = {**os.environ, "PYTHONPATH": str(REPO)}

        def cli(*args: str) -> subprocess.CompletedProcess[str]:
            return subprocess.run(
                [sys.executable, "-m", "stocksage.local.runtime", *args, "--endpoint-url",
                 emu.endpoint_url, "--sagemaker-port", str(port), "--state-dir", str(state),
                 "--discovery-interval", "0.2"],
                check=False, capture_output=True, text=True, cwd=REPO, env=env, timeout=90)

        started = cli("start")
        try:
            assert started.returncode == 0, started.stderr
            assert probe(emu.endpoint_url)
            assert wait_until((state / "runtime-stats.json").exists, 10)
            status = cli("status")
            assert status.returncode == 0, status.stdout
            doc = json.loads(status.stdout)
            assert doc["healthy"] is True and doc["stats"]["endpoint_url"] == emu.endpoint_url
        finally:
            stopped = cli("stop")
        assert stopped.returncode == 0 and not (state / "runtime.pid").exists()
        assert cli("status").returncode == 3


def test_transactions_stay_all_or_nothing_and_name_the_failed_item(kw):
    ddb = boto3.client("dynamodb", **kw)
    ddb.create_table(TableName="tx", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "k", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "k", "AttributeType": "S"}])
    for i in range(300):  # a table much larger than the transaction
        ddb.put_item(TableName="tx", Item={"k": {"S": f"x{i}"}, "v": {"N": "1"}})

    def put(key, expected):
        return {"Put": {"TableName": "tx", "Item": {"k": {"S": key}, "v": {"N": "2"}},
                        "ConditionExpression": "v = :v",
                        "ExpressionAttributeValues": {":v": {"N": expected}}}}

    with pytest.raises(ddb.exceptions.TransactionCanceledException) as failure:
        ddb.transact_write_items(TransactItems=[put("x1", "1"), put("x2", "9"),
                                                put("new", "1")])
    codes = [r["Code"] for r in failure.value.response["CancellationReasons"]]
    assert codes == ["None", "ConditionalCheckFailed", "ConditionalCheckFailed"]
    assert ddb.get_item(TableName="tx", Key={"k": {"S": "x1"}})["Item"]["v"] == {"N": "1"}
    assert "Item" not in ddb.get_item(TableName="tx", Key={"k": {"S": "new"}})
    ddb.transact_write_items(TransactItems=[put("x1", "1"), put("x2", "1")])
    assert ddb.get_item(TableName="tx", Key={"k": {"S": "x2"}})["Item"]["v"] == {"N": "2"}
    assert ddb.scan(TableName="tx", Select="COUNT")["Count"] == 300
