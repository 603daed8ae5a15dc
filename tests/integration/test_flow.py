"""The real-time flow end to end on the Terraform-provisioned emulator.

Real bars go through the collector into Kinesis; the local runtime's event source mapping
invokes the deployed processor handler; the results are read back from DynamoDB and compared
with ``ta`` run once on the same series.
"""

from __future__ import annotations

import base64
import json
import time

import numpy as np
import pytest

from stocksage.adapters.dynamodb.rule_source import put_rule
from stocksage.adapters.results_reader import read_alerts, read_results
from stocksage.alerts import Rule
from stocksage.bars import frame_to_bars
from stocksage.collector.app import collect
from stocksage.collector.sink.kinesis_sink import KinesisSink
from stocksage.collector.sources import ReplaySource
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.local.esm import build_event
from stocksage.local.lambda_invoker import LambdaFunction

pytestmark = pytest.mark.integration


def _drain(stack, timeout=120.0):
    assert stack.runtime.drain(timeout=timeout), "the event source mapping did not catch up"


def _sqs_bodies(stack, queue_url):
    sqs = stack.client("sqs")
    bodies = []
    while True:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, MessageAttributeNames=["All"])
        messages = response.get("Messages", [])
        if not messages:
            return bodies
        for message in messages:
            bodies.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])


def test_bars_flow_from_collector_to_dynamodb_with_indicators_equal_to_ta(stack):
    symbols, limit = ["IBM", "GOOG", "FB"], 120
    out = stack.outputs
    # A rule that real IBM data must cross in the replayed window.
    ibm = load_bars("IBM").tail(limit)
    level = float(np.median(ibm["close"]))
    put_rule(stack.resource("dynamodb"), out["rules_table"],
             Rule("it-median-up", "IBM", "price_above", {"level": level}, "critical"))

    source = ReplaySource(symbols, limit=limit, speed=0, interleave="round-robin")
    result = collect(source, KinesisSink(stack.client("kinesis"), out["stream_name"]))
    assert result.bars_read == 3 * limit
    _drain(stack)

    dynamodb = stack.client("dynamodb")
    for symbol in symbols:
        frame = read_results(dynamodb, out["results_table"], symbol)
        expected = enrich(load_bars(symbol).tail(limit))
        assert len(frame) == limit
        assert list(frame.index) == list(expected.index)
        for column in (*STACK.indicator_columns, *STACK.features):
            want, got = expected[column].to_numpy(), frame[column].to_numpy(dtype=float)
            assert np.array_equal(np.isnan(want), np.isnan(got)), column
            mask = ~np.isnan(want)
            np.testing.assert_allclose(got[mask], want[mask], rtol=1e-6, atol=1e-9,
                                       err_msg=column)
        warm = expected[list(STACK.features)].notna().all(axis=1)
        assert frame.loc[warm, "prob_up"].between(0, 1).all()
        assert frame.loc[~warm, "prob_up"].isna().all()
        assert frame.loc[warm, "model_version"].nunique() == 1

    state = stack.resource("dynamodb").Table(out["state_table"]).get_item(
        Key={"symbol": "IBM"}, ConsistentRead=True)["Item"]
    assert state["last_bar_time"] == frame_to_bars("IBM", ibm)[-1].to_dict()["bar_time"]

    closes = ibm["close"].to_numpy()
    crossings = [t for p, c, t in zip(closes[:-1], closes[1:], ibm.index[1:], strict=True)
                 if p <= level < c]
    alerts = [a for a in read_alerts(stack.client("sqs"), out["alerts_queue_url"], wait_seconds=0)
              if a.get("MessageAttributes", {}).get("rule_type") == "price_above"
              and a.get("MessageAttributes", {}).get("symbol") == "IBM"]
    assert len(alerts) == len(crossings) >= 1
    assert all(a["MessageAttributes"]["severity"] == "critical" for a in alerts)


def test_poison_pill_is_quarantined_with_its_reason_and_the_good_bars_are_processed(stack):
    out = stack.outputs
    bars = frame_to_bars("NFLX", load_bars("NFLX").tail(3))
    poison = b'{"symbol": "NFLX", "bar_time": "2030-01-01T00:00:00Z", "open": 5, "high": 4, ' \
             b'"low": 3, "close": 6, "volume": 10}'
    entries = [{"Data": bars[0].to_json(), "PartitionKey": "NFLX"},
               {"Data": bars[1].to_json(), "PartitionKey": "NFLX"},
               {"Data": poison, "PartitionKey": "NFLX"},
               {"Data": bars[2].to_json(), "PartitionKey": "NFLX"}]
    response = stack.client("kinesis").put_records(StreamName=out["stream_name"], Records=entries)
    assert response["FailedRecordCount"] == 0
    poison_seq = response["Records"][2]["SequenceNumber"]
    _drain(stack)

    frame = read_results(stack.client("dynamodb"), out["results_table"], "NFLX")
    assert [t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in frame.index] == \
        [b.to_dict()["bar_time"] for b in bars]
    reports = [b for b in _sqs_bodies(stack, out["failure_queue_url"])
               if b.get("kind") == "MalformedRecord"]
    assert len(reports) == 1
    report = reports[0]
    assert report["sequenceNumber"] == poison_seq and report["partitionKey"] == "NFLX"
    assert "high" in report["reason"]
    assert base64.b64decode(report["data"]) == poison  # nothing is lost


def _snapshot(stack, symbol):
    out = stack.outputs
    dynamodb = stack.resource("dynamodb")
    results = read_results(stack.client("dynamodb"), out["results_table"], symbol)
    state = dynamodb.Table(out["state_table"]).get_item(Key={"symbol": symbol},
                                                        ConsistentRead=True).get("Item")
    idempotency = dynamodb.Table(out["idempotency_table"]).scan()["Items"]
    return results.drop(columns=["processed_at"]), state, len(idempotency)


def test_redelivered_batch_leaves_the_same_dynamodb_state_and_sends_no_alert_twice(stack):
    out = stack.outputs
    symbol = "AMZN"
    bars = frame_to_bars(symbol, load_bars(symbol).tail(80))
    closes = [b.close for b in bars]
    put_rule(stack.resource("dynamodb"), out["rules_table"],
             Rule("it-mid-down", symbol, "price_below", {"level": float(np.median(closes))}))
    kinesis = stack.client("kinesis")
    kinesis.put_records(StreamName=out["stream_name"],
                        Records=[{"Data": b.to_json(), "PartitionKey": symbol} for b in bars])
    _drain(stack)
    before = _snapshot(stack, symbol)
    alerts_before = len(read_alerts(stack.client("sqs"), out["alerts_queue_url"], wait_seconds=0))

    # Kinesis redelivers the last 40 records as one batch: rebuild that exact event.
    stream_arn = out["stream_arn"]
    shard = kinesis.list_shards(StreamName=out["stream_name"])["Shards"][0]["ShardId"]
    iterator = kinesis.get_shard_iterator(StreamName=out["stream_name"], ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    records = []
    while iterator:
        page = kinesis.get_records(ShardIterator=iterator, Limit=1000)
        records += [r for r in page["Records"] if r["PartitionKey"] == symbol]
        iterator = page.get("NextShardIterator") if page["Records"] else None
    mapping = stack.client("lambda").get_event_source_mapping(
        UUID=out["processor_event_source_mapping_uuid"])
    from stocksage.local.esm import KRecord, MappingConfig

    config = MappingConfig.from_api(mapping)
    krecords = [KRecord(sequence_number=r["SequenceNumber"], partition_key=r["PartitionKey"],
                        data=r["Data"], arrival=r["ApproximateArrivalTimestamp"].timestamp())
                for r in records[-40:]]
    event = build_event(krecords, shard, config, role=mapping.get("FunctionArn", ""))
    assert event["Records"][0]["eventSourceARN"] == stream_arn
    function = LambdaFunction.from_deployed(stack.client("lambda"), out["processor_function_name"])
    first = function.invoke_detailed(event)
    second = function.invoke_detailed(event)
    assert first.function_error is None and second.function_error is None
    assert first.payload == second.payload == {"batchItemFailures": []}

    after = _snapshot(stack, symbol)
    assert after[0].equals(before[0])
    assert after[1] == before[1]
    assert after[2] == before[2]
    time.sleep(0.2)
    assert len(read_alerts(stack.client("sqs"), out["alerts_queue_url"],
                           wait_seconds=0)) == alerts_before
