"""The processor handler's partial-batch semantics, on moto's in-process mock (one function).

The endpoint is the only stand-in: moto's sagemaker-runtime returns canned bytes, so the tests
either give the handler a deterministic predictor or let the canned answer fail it.
"""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws

from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars
from tests.helpers.events import kinesis_event
from tests.helpers.predictors import LogisticOfReturn


@pytest.fixture()
def handler(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "test")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "test")
    monkeypatch.setenv("POWERTOOLS_TRACE_DISABLED", "true")
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    with mock_aws():
        ddb = boto3.client("dynamodb")
        for name, keys in (("results", ["symbol", "bar_time"]), ("state", ["symbol"]),
                           ("rules", ["symbol", "rule_id"]), ("idem", ["id"])):
            schema = [{"AttributeName": keys[0], "KeyType": "HASH"}]
            if len(keys) > 1:
                schema.append({"AttributeName": keys[1], "KeyType": "RANGE"})
            ddb.create_table(TableName=name, KeySchema=schema, BillingMode="PAY_PER_REQUEST",
                             AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"}
                                                   for k in keys])
        topic = boto3.client("sns").create_topic(Name="alerts")["TopicArn"]
        queue = boto3.client("sqs").create_queue(QueueName="failures")["QueueUrl"]
        for key, value in {"RESULTS_TABLE": "results", "STATE_TABLE": "state",
                           "RULES_TABLE": "rules", "IDEMPOTENCY_TABLE": "idem",
                           "ALERTS_TOPIC_ARN": topic, "FAILURE_QUEUE_URL": queue,
                           "ENDPOINT_NAME": "predictor"}.items():
            monkeypatch.setenv(key, value)
        from lambdas import processor

        processor.dependencies.cache_clear()
        yield processor, queue
        processor.dependencies.cache_clear()


def _quarantined(queue):
    messages = boto3.client("sqs").receive_message(QueueUrl=queue, MaxNumberOfMessages=10)
    return [json.loads(m["Body"]) for m in messages.get("Messages", [])]


def test_malformed_record_is_quarantined_and_its_batch_succeeds(handler, lambda_context):
    processor, queue = handler
    processor.dependencies().ports.predictor = LogisticOfReturn()
    payloads = list(frame_to_bars("TSLA", load_bars("TSLA").tail(40)))
    payloads.insert(20, b'{"symbol": "TSLA", "bar_time": "yesterday"}')
    response = processor.lambda_handler(kinesis_event(payloads, first_sequence=100),
                                        lambda_context)
    assert response == {"batchItemFailures": []}
    (report,) = _quarantined(queue)
    assert report["sequenceNumber"] == "120" and "missing field" in report["reason"]
    items = boto3.client("dynamodb").scan(TableName="results")["Items"]
    assert len(items) == 40
    assert sum("prob_up" in i for i in items) > 0


def test_endpoint_failure_leaves_predictions_pending_and_fails_no_record(handler,
                                                                         lambda_context):
    processor, queue = handler  # moto's canned endpoint answer is not a predictions list
    bars = frame_to_bars("TSLA", load_bars("TSLA").tail(60))
    event = kinesis_event([b"not json", *bars], partition_key="TSLA")
    response = processor.lambda_handler(event, lambda_context)
    assert response == {"batchItemFailures": []}
    assert len(_quarantined(queue)) == 1
    items = boto3.client("dynamodb").scan(TableName="results")["Items"]
    assert len(items) == 60
    assert {i.get("prediction_status", {}).get("S") for i in items} == {None, "pending"}
    (state,) = boto3.client("dynamodb").scan(TableName="state")["Items"]
    assert state["bars_seen"]["N"] == "60" and "pending_since" in state


def test_state_conflict_fails_only_that_symbols_records(handler, lambda_context):
    processor, _ = handler
    processor.dependencies().ports.predictor = LogisticOfReturn()
    bars = frame_to_bars("TSLA", load_bars("TSLA").tail(30))
    processor.lambda_handler(kinesis_event(bars[:10]), lambda_context)
    ddb = boto3.client("dynamodb")  # another writer advanced the state meanwhile
    ddb.update_item(TableName="state", Key={"symbol": {"S": "TSLA"}},
                    UpdateExpression="SET version = :v", ExpressionAttributeValues={
                        ":v": {"N": "7"}})
    store = processor.dependencies().ports.states
    stale, _ = store.get_states(["TSLA"])
    stale["TSLA"].version = 1
    assert "changed since it was read" in store.put_states([stale["TSLA"]])["TSLA"]


def test_partition_key_other_than_the_symbol_is_quarantined(handler, lambda_context):
    processor, queue = handler
    processor.dependencies().ports.predictor = LogisticOfReturn()
    bar = frame_to_bars("IBM", load_bars("IBM").tail(1))[0]
    response = processor.lambda_handler(kinesis_event([bar], partition_key="TSLA"),
                                        lambda_context)
    assert response == {"batchItemFailures": []}
    (report,) = _quarantined(queue)
    assert "partition key 'TSLA' is not the symbol IBM" in report["reason"]


def test_missing_setting_names_the_variable(handler, monkeypatch):
    processor, _ = handler
    processor.dependencies.cache_clear()
    monkeypatch.delenv("RESULTS_TABLE")
    from stocksage.settings import ProcessorSettings, SettingsError

    with pytest.raises(SettingsError, match="RESULTS_TABLE"):
        ProcessorSettings.from_env()


def test_trades_record_with_one_bad_tick_processes_the_rest_and_reports_the_tick(
        handler, lambda_context):
    from stocksage.bars.aggregation import DEFAULT_GRACE_NS
    from stocksage.bars.trades import encode_watermark
    from tests.helpers.trades import es_trades, payloads

    processor, queue = handler
    processor.dependencies().ports.predictor = LogisticOfReturn()
    trades = es_trades(3_000, start=20_000)
    records = payloads(trades, per_record=500)
    bad = json.loads(records[2])
    bad["p"][17] = -1.0  # one hostile tick
    records[2] = json.dumps(bad).encode()
    last = int(trades["time_ns"].iloc[-1])
    records.append(encode_watermark("ES", last - last % 60_000_000_000 + 60_000_000_000
                                    + DEFAULT_GRACE_NS))
    response = processor.lambda_handler(kinesis_event(records, first_sequence=500),
                                        lambda_context)
    assert response == {"batchItemFailures": []}
    (report,) = _quarantined(queue)
    assert report["kind"] == "RejectedTrades" and report["sequenceNumber"] == "502"
    assert report["rejectedCount"] == 1
    (tick,) = report["rejectedTrades"]
    assert tick["index"] == 17 and tick["kind"] == "value_negative" and tick["raw"]["p"] == -1.0
    items = boto3.client("dynamodb").scan(TableName="results")["Items"]
    volume = sum(float(i["volume"]["N"]) for i in items)
    assert volume == trades["size"].sum() - trades["size"].iloc[1_017]
    state = boto3.client("dynamodb").get_item(TableName="state", Key={"symbol": {"S": "ES"}})
    assert json.loads(state["Item"]["trades"]["S"])["applied"] == {
        "shardId-000000000000": "506"}
    again = processor.lambda_handler(kinesis_event(records, first_sequence=500), lambda_context)
    assert again == {"batchItemFailures": []}  # a redelivery changes nothing
    items_again = boto3.client("dynamodb").scan(TableName="results")["Items"]
    assert sum(float(i["volume"]["N"]) for i in items_again) == volume


def test_event_data_that_is_not_base64_is_quarantined_alone(handler, lambda_context):
    processor, queue = handler
    processor.dependencies().ports.predictor = LogisticOfReturn()
    event = kinesis_event(list(frame_to_bars("TSLA", load_bars("TSLA").tail(5))),
                          first_sequence=300)
    event["Records"][2]["kinesis"]["data"] = "not base64!"
    assert processor.lambda_handler(event, lambda_context) == {"batchItemFailures": []}
    (report,) = _quarantined(queue)
    assert report["rejectionKind"] == "invalid_base64" and report["sequenceNumber"] == "302"
    assert len(boto3.client("dynamodb").scan(TableName="results")["Items"]) == 4
