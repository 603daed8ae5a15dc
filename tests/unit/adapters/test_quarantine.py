"""Quarantine adapter: message shape, cap, S3 spill (moto ``mock_aws``)."""

from __future__ import annotations

import base64
import json

import boto3
import pytest
from moto import mock_aws

from stocksage.adapters.quarantine import SqsQuarantine
from tests.helpers.events import kinesis_record


def record(data: bytes) -> dict:
    """A record of shard 3 of the stream ``stocksage-bars`` with partition key TSLA."""
    return kinesis_record(data, partition_key="TSLA", shard_id="shardId-000000000003")


@pytest.fixture
def aws(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SQS", "AWS_ENDPOINT_URL_S3"):
        monkeypatch.delenv(name, raising=False)  # e.g. set by the integration session
    with mock_aws():
        sqs = boto3.client("sqs")
        s3 = boto3.client("s3")
        url = sqs.create_queue(QueueName="failures")["QueueUrl"]
        s3.create_bucket(Bucket="history")
        yield sqs, s3, url


def received(sqs, url) -> list[dict]:
    msgs = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10,
                               MessageAttributeNames=["All"]).get("Messages", [])
    return [dict(json.loads(m["Body"]), _attrs=m["MessageAttributes"]) for m in msgs]


def test_small_payload_inline_with_coordinates(aws):
    sqs, s3, url = aws
    data = b'{"symbol":"TSLA","open":0}'
    SqsQuarantine(sqs, url, s3_client=s3, bucket="history").send(
        record(data), "open is zero", kind="price_zero")
    (msg,) = received(sqs, url)
    assert msg["kind"] == "MalformedRecord" and msg["rejectionKind"] == "price_zero"
    assert msg["reason"] == "open is zero"
    assert msg["shardId"] == "shardId-000000000003" and msg["partitionKey"] == "TSLA"
    assert msg["sequenceNumber"].startswith("4959")
    assert base64.b64decode(msg["data"]) == data and msg["dataBytes"] == len(data)
    assert msg["_attrs"]["rejectionKind"]["StringValue"] == "price_zero"
    assert "Contents" not in s3.list_objects_v2(Bucket="history")


def test_large_payload_goes_to_s3_idempotently(aws):
    sqs, s3, url = aws
    data = b"x" * 900_000  # a Kinesis record may hold 1 MiB
    q = SqsQuarantine(sqs, url, s3_client=s3, bucket="history")
    q.send(record(data), "payload of 900000 bytes exceeds 65536", kind="payload_too_large")
    q.send(record(data), "payload of 900000 bytes exceeds 65536", kind="payload_too_large")
    msgs = received(sqs, url)
    assert len(msgs) == 2
    for msg in msgs:
        assert msg["data"] is None and msg["dataBytes"] == 900_000
        assert len(json.dumps(msg)) < 4096
    location = msgs[0]["dataLocation"]
    assert location == msgs[1]["dataLocation"]
    bucket, key = location.removeprefix("s3://").split("/", 1)
    assert key.startswith("quarantine/stocksage-bars/shardId-000000000003/4959")
    assert s3.get_object(Bucket=bucket, Key=key)["Body"].read() == data
    assert s3.list_objects_v2(Bucket="history")["KeyCount"] == 1


def test_without_bucket_large_payload_is_truncated_not_dropped(aws):
    sqs, _, url = aws
    SqsQuarantine(sqs, url, max_inline_bytes=1000).send(record(b"y" * 5000), "too large",
                                                        kind="payload_too_large")
    (msg,) = received(sqs, url)
    assert msg["dataTruncated"] is True and len(msg["data"]) == 1000
    assert msg["dataBytes"] == 5000


def test_s3_failure_raises_so_the_record_is_retried(aws):
    sqs, s3, url = aws
    q = SqsQuarantine(sqs, url, s3_client=s3, bucket="no-such-bucket", max_inline_bytes=10)
    with pytest.raises(s3.exceptions.NoSuchBucket):
        q.send(record(b"z" * 100), "r", kind="payload_too_large")
    assert received(sqs, url) == []
