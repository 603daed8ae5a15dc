"""Fault injection against a live emulator (HTTP) and the SageMaker endpoint host: the faults
really reach boto3 with the codes AWS uses."""

from __future__ import annotations

import json
import time
import uuid

import boto3
import pytest
from botocore.config import Config
from botocore.exceptions import ClientError, ReadTimeoutError

from stocksage.local import fault_injection as faults
from stocksage.local.sagemaker_host import SageMakerHost
from tests.helpers.aws import client_kwargs

ONE_TRY = Config(retries={"total_max_attempts": 1, "mode": "standard"})


@pytest.fixture(autouse=True)
def _clear(emulator):
    faults.clear(emulator.endpoint_url)
    yield
    faults.clear(emulator.endpoint_url)


@pytest.fixture(scope="module")
def ddb(kw):
    client = boto3.client("dynamodb", config=ONE_TRY, **kw)
    names = []
    for _ in range(2):
        name = f"t-{uuid.uuid4().hex[:8]}"
        client.create_table(TableName=name, BillingMode="PAY_PER_REQUEST",
                            AttributeDefinitions=[{"AttributeName": "pk", "AttributeType": "S"}],
                            KeySchema=[{"AttributeName": "pk", "KeyType": "HASH"}])
        names.append(name)
    return client, names


def count(client, table: str) -> int:
    return client.scan(TableName=table, Select="COUNT")["Count"]


def test_dynamodb_writes_throttled_then_cleared(emulator, ddb):
    client, (table, _) = ddb
    faults.throttle_dynamodb(emulator.endpoint_url, fraction=1.0, seconds=300)
    with pytest.raises(ClientError) as caught:
        client.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert caught.value.response["Error"]["Code"] == "ProvisionedThroughputExceededException"
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == 400
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.update_item(TableName=table, Key={"pk": {"S": "a"}},
                           UpdateExpression="SET v = :v",
                           ExpressionAttributeValues={":v": {"N": "1"}})
    client.get_item(TableName=table, Key={"pk": {"S": "a"}})  # reads are not throttled
    assert count(client, table) == 0
    faults.clear(emulator.endpoint_url)
    client.put_item(TableName=table, Item={"pk": {"S": "a"}})
    assert count(client, table) == 1


def test_fraction_of_puts_throttled_and_counted(emulator, ddb):
    client, (table, _) = ddb
    faults.throttle_dynamodb(emulator.endpoint_url, fraction=0.3, seconds=300,
                             operations=["PutItem"], seed=7)
    failed = 0
    for i in range(60):
        try:
            client.put_item(TableName=table, Item={"pk": {"S": f"f{i}"}})
        except client.exceptions.ProvisionedThroughputExceededException:
            failed += 1
    assert 0 < failed < 60
    stats = faults.active(emulator.endpoint_url)["faults"]["dynamodb_throttle"]
    assert stats["injected"] == failed and stats["calls"] == 60


def test_batch_write_returns_unprocessed_items(emulator, ddb):
    client, (table, other) = ddb
    faults.throttle_dynamodb(emulator.endpoint_url, fraction=0.5, seconds=300, seed=3,
                             tables=[table])
    items = [{"PutRequest": {"Item": {"pk": {"S": f"b{i}"}}}} for i in range(20)]
    before = count(client, table)
    resp = client.batch_write_item(RequestItems={table: items})
    unprocessed = resp["UnprocessedItems"].get(table, [])
    assert 0 < len(unprocessed) < 20
    assert count(client, table) - before == 20 - len(unprocessed)
    written = {json.dumps(r) for r in items} - {json.dumps(r) for r in unprocessed}
    assert len(written) == 20 - len(unprocessed)
    # another table is not hit
    client.put_item(TableName=other, Item={"pk": {"S": "x"}})
    # everything held back: the whole call is throttled
    faults.throttle_dynamodb(emulator.endpoint_url, fraction=1.0, seconds=300)
    with pytest.raises(client.exceptions.ProvisionedThroughputExceededException):
        client.batch_write_item(RequestItems={table: items[:3]})


def test_fault_ends_by_itself(emulator, ddb):
    client, (table, _) = ddb
    faults.throttle_dynamodb(emulator.endpoint_url, fraction=1.0, seconds=0.5)
    deadline = time.monotonic() + 15
    while faults.active(emulator.endpoint_url)["faults"] and time.monotonic() < deadline:
        time.sleep(0.1)
    assert faults.active(emulator.endpoint_url) == {"faults": {}}
    client.put_item(TableName=table, Item={"pk": {"S": "after"}})


def test_bad_fault_values_are_refused(emulator):
    with pytest.raises(faults.FaultError, match="fraction"):
        faults.throttle_dynamodb(emulator.endpoint_url, fraction=1.5)
    with pytest.raises(faults.FaultError, match="error must be"):
        faults.fail_sns(emulator.endpoint_url, error="Nope")


@pytest.mark.parametrize(("error", "status"), [("InternalError", 500), ("Throttled", 429)])
def test_sns_publish_fails_and_delivers_nothing(emulator, kw, error, status):
    sns = boto3.client("sns", config=ONE_TRY, **kw)
    sqs = boto3.client("sqs", **kw)
    topic = sns.create_topic(Name=f"t-{uuid.uuid4().hex[:8]}")["TopicArn"]
    url = sqs.create_queue(QueueName=f"q-{uuid.uuid4().hex[:8]}")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn,
                  Attributes={"RawMessageDelivery": "true"})
    faults.fail_sns(emulator.endpoint_url, fraction=1.0, seconds=300, error=error)
    with pytest.raises(ClientError) as caught:
        sns.publish(TopicArn=topic, Message="lost")
    assert caught.value.response["Error"]["Code"] == error
    assert caught.value.response["ResponseMetadata"]["HTTPStatusCode"] == status
    assert sqs.receive_message(QueueUrl=url).get("Messages", []) == []
    faults.clear(emulator.endpoint_url)
    sns.publish(TopicArn=topic, Message="delivered")
    (msg,) = sqs.receive_message(QueueUrl=url)["Messages"]
    assert msg["Body"] == "delivered"


@pytest.fixture
def host(kw):
    with SageMakerHost(kw, port=0) as h:
        yield h


def test_endpoint_outage_fail_then_model_error_then_over(host):
    runtime = boto3.client("sagemaker-runtime", **client_kwargs(host.url), config=ONE_TRY)

    def code() -> tuple[str, int]:
        with pytest.raises(ClientError) as caught:
            runtime.invoke_endpoint(EndpointName="stocksage-missing", Body=b"[[1]]",
                                    ContentType="application/json")
        err = caught.value.response
        return err["Error"]["Code"], err["ResponseMetadata"]["HTTPStatusCode"]

    faults.endpoint_outage(host.url, seconds=300, mode="fail")
    assert code() == ("ServiceUnavailable", 503)
    faults.endpoint_outage(host.url, seconds=300, mode="model_error")
    assert code() == ("ModelError", 424)
    faults.endpoint_outage(host.url, seconds=300, mode="fail", endpoint="another-endpoint")
    assert code()[0] == "ValidationError"  # only the named endpoint is down
    faults.endpoint_outage(host.url, seconds=300, mode="fail")
    faults.clear(sagemaker_url=host.url)
    assert code()[0] == "ValidationError"  # the normal answer for a missing endpoint


def test_endpoint_outage_hang_times_the_client_out(host):
    runtime = boto3.client(
        "sagemaker-runtime", **client_kwargs(host.url),
        config=Config(read_timeout=1, retries={"total_max_attempts": 1, "mode": "standard"}))
    faults.endpoint_outage(host.url, seconds=300, mode="hang")
    try:
        with pytest.raises(ReadTimeoutError):
            runtime.invoke_endpoint(EndpointName="e", Body=b"[[1]]",
                                    ContentType="application/json")
    finally:
        faults.clear(sagemaker_url=host.url)
    with pytest.raises(ClientError, match="ValidationError"):
        runtime.invoke_endpoint(EndpointName="e", Body=b"[[1]]", ContentType="application/json")
