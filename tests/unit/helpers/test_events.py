"""The shared test helpers: Kinesis events equal the fixture AWS-shaped event, and parse as the
processor parses them (Powertools' ``KinesisStreamEvent``, ``parse_bar``)."""

from __future__ import annotations

import math

import pytest
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamEvent

from stocksage.bars import frame_to_bars, parse_bar
from stocksage.datasets import load_bars
from tests.helpers.events import FIRST_SEQUENCE, kinesis_event, kinesis_record, load_event
from tests.helpers.lambda_context import LambdaContext
from tests.helpers.predictors import LogisticOfReturn, logistic_prob_up


def test_kinesis_event_of_bars_is_the_fixture_event():
    bars = frame_to_bars("TSLA", load_bars("TSLA").tail(2))
    assert kinesis_event(bars) == load_event("kinesis_data_streams_event")


def test_kinesis_event_parses_like_the_processor_reads_it():
    bars = [*frame_to_bars("IBM", load_bars("IBM").tail(2)),
            *frame_to_bars("AAPL", load_bars("AAPL").tail(1))]
    stream = "arn:aws:kinesis:eu-west-1:210987654321:stream/other"
    event = kinesis_event(bars, shard_id="shardId-000000000007", stream_arn=stream, arrival=2e9)
    records = list(KinesisStreamEvent(event).records)
    assert [r.kinesis.partition_key for r in records] == ["IBM", "IBM", "AAPL"]
    assert [int(r.kinesis.sequence_number) for r in records] == \
        [FIRST_SEQUENCE, FIRST_SEQUENCE + 1, FIRST_SEQUENCE + 2]
    assert [r.event_id for r in records] == \
        [f"shardId-000000000007:{r.kinesis.sequence_number}" for r in records]
    assert {(r.event_source_arn, r.aws_region) for r in records} == {(stream, "eu-west-1")}
    assert [parse_bar(r.kinesis.data_as_bytes(), partition_key=r.kinesis.partition_key,
                      arrived_at=r.kinesis.approximate_arrival_timestamp)
            for r in records] == bars


def test_raw_payloads_need_a_partition_key_unless_they_name_a_symbol():
    assert kinesis_record({"symbol": "FB", "close": 1})["kinesis"]["partitionKey"] == "FB"
    assert kinesis_record(b'{"symbol": "FB"}')["kinesis"]["partitionKey"] == "FB"
    assert kinesis_record(b"not json", partition_key="X")["kinesis"]["data"] == "bm90IGpzb24="
    with pytest.raises(ValueError, match="partition_key"):
        kinesis_record(b"not json")


def test_lambda_context_and_logistic_stand_in():
    context = LambdaContext(function_name="retrain", memory_limit_in_mb=256)
    assert context.invoked_function_arn == \
        "arn:aws:lambda:us-east-1:123456789012:function:retrain"
    assert context.get_remaining_time_in_millis() == 60_000
    prediction = LogisticOfReturn().predict(["rsi_14", "ret_1"], [[50.0, 0.0], [40.0, 0.01]])
    assert prediction.probabilities == [0.5, pytest.approx(1 / (1 + math.exp(-0.5)))]
    assert prediction.model_version == "unit-v1"
    assert math.isnan(logistic_prob_up(float("nan")))
