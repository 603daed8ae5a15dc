"""Alert routing on the Terraform-provisioned emulator: SNS filter policies deliver to each
subscriber exactly the alerts its filter implies, once, also when the same bars come again.

Real bars go through the collector into Kinesis, the local runtime runs the deployed processor,
which evaluates the rules stored in the alert-rules table and publishes to the alerts topic.
Three SQS queues subscribe to the topic with filter policies on the message attributes
(``symbol``, ``severity``, ``rule_type``). The expected alerts are computed here from the rule
definitions (docs/ALERTS.md) with pandas over the same real series.
"""

from __future__ import annotations

import json
import time
import uuid

import numpy as np
import pandas as pd
import pytest
from boto3.dynamodb.conditions import Key

from stocksage.adapters.dynamodb.rule_source import put_rule
from stocksage.adapters.dynamodb.values import from_dynamo
from stocksage.alerts import Rule
from stocksage.collector.app import collect
from stocksage.collector.sink.kinesis_sink import KinesisSink
from stocksage.collector.sources import ReplaySource
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.state import SymbolState

pytestmark = pytest.mark.integration

SYMBOLS = ("MSFT", "NVDA", "BTC-USD")  # used by no other integration test
LIMIT = 150


def _iso(moment: pd.Timestamp) -> str:
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _mask_times(mask: pd.Series) -> list[pd.Timestamp]:
    return list(mask.index[mask.fillna(False).to_numpy(dtype=bool)])


def _with_cooldown(frame: pd.DataFrame, times: list[pd.Timestamp], cooldown: int):
    position = {t: i for i, t in enumerate(frame.index)}
    kept, last = [], None
    for t in times:
        if last is None or position[t] - last > cooldown:
            kept.append(t)
            last = position[t]
    return kept


def _rules_and_expected(frames: dict[str, pd.DataFrame]):
    """The rules of this test and, from their definitions, the bars each one fires on."""
    rules: list[Rule] = []
    expected: dict[str, list[pd.Timestamp]] = {}

    def add(rule: Rule, times: list[pd.Timestamp]) -> None:
        rules.append(rule)
        expected[rule.rule_id + "#" + rule.symbol] = times

    msft = frames["MSFT"]
    close, prev = msft["close"], msft["close"].shift(1)
    level = float(close.median())
    add(Rule("it-route-mid-up", "MSFT", "price_above", {"level": level}, "warning"),
        _mask_times((prev <= level) & (level < close)))
    diff, pdiff = msft["macd_diff"], msft["macd_diff"].shift(1)
    add(Rule("it-route-macd", "MSFT", "macd_cross", {}, "critical"),
        _mask_times(((pdiff <= 0) & (diff > 0)) | ((pdiff >= 0) & (diff < 0))))

    nvda = frames["NVDA"]
    close, prev = nvda["close"], nvda["close"].shift(1)
    above = (close > nvda["bb_high"]) & (prev <= nvda["bb_high"].shift(1))
    below = (close < nvda["bb_low"]) & (prev >= nvda["bb_low"].shift(1))
    add(Rule("it-route-bb", "NVDA", "bollinger_break", {}, "critical"), _mask_times(above | below))

    for symbol, severity, cooldown in (("MSFT", "info", 0), ("NVDA", "warning", 0),
                                       ("BTC-USD", "info", 5)):
        frame = frames[symbol]
        body, rng = (frame["close"] - frame["open"]).abs(), frame["high"] - frame["low"]
        doji = _mask_times((rng > 0) & (body <= 0.1 * rng))
        add(Rule("it-route-doji", symbol, "candlestick", {"pattern": "doji", "trend_bars": 0},
                 severity, cooldown_bars=cooldown), _with_cooldown(frame, doji, cooldown))

    btc = frames["BTC-USD"]
    close, prev = btc["close"], btc["close"].shift(1)
    level = float(close.median())
    add(Rule("it-route-mid-down", "BTC-USD", "price_below", {"level": level}, "critical"),
        _mask_times((prev >= level) & (level > close)))
    return rules, expected


def _drain_queue(sqs, url: str) -> list[dict]:
    messages = []
    while True:
        response = sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10, WaitTimeSeconds=0,
                                       VisibilityTimeout=60)
        batch = response.get("Messages", [])
        if not batch:
            return messages
        for message in batch:
            messages.append(json.loads(message["Body"]))
            sqs.delete_message(QueueUrl=url, ReceiptHandle=message["ReceiptHandle"])


def test_filter_policies_route_each_alert_once_to_the_subscribers_that_match(stack):
    out = stack.outputs
    frames = {s: enrich(load_bars(s).tail(LIMIT)) for s in SYMBOLS}
    rules, expected_times = _rules_and_expected(frames)
    by_id = {f"{r.rule_id}#{r.symbol}": r for r in rules}
    expected = {}  # alert id -> rule
    for key, times in expected_times.items():
        rule_id, symbol = key.split("#")
        for t in times:
            expected[f"{rule_id}#{symbol}#{_iso(t)}"] = by_id[key]
    for key, times in expected_times.items():
        assert times, f"{key}: the real series must fire at least once"

    sns, sqs = stack.client("sns"), stack.client("sqs")
    dynamodb = stack.resource("dynamodb")
    policies = {
        "msft": {"symbol": ["MSFT"]},
        "critical": {"severity": ["critical"], "symbol": list(SYMBOLS)},
        "candles": {"rule_type": ["candlestick"], "symbol": list(SYMBOLS)},
    }
    suffix = uuid.uuid4().hex[:8]
    queues, subscriptions = {}, []
    try:
        for name, policy in policies.items():
            url = sqs.create_queue(QueueName=f"it-alerts-{name}-{suffix}")["QueueUrl"]
            arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
                "Attributes"]["QueueArn"]
            queues[name] = url
            subscriptions.append(sns.subscribe(
                TopicArn=out["alerts_topic_arn"], Protocol="sqs", Endpoint=arn,
                Attributes={"FilterPolicy": json.dumps(policy),
                            "FilterPolicyScope": "MessageAttributes"},
                ReturnSubscriptionArn=True)["SubscriptionArn"])
        for rule in rules:
            put_rule(dynamodb, out["rules_table"], rule)

        source = ReplaySource(list(SYMBOLS), limit=LIMIT, speed=0, interleave="round-robin")
        result = collect(source, KinesisSink(stack.client("kinesis"), out["stream_name"]))
        assert result.bars_read == len(SYMBOLS) * LIMIT
        assert stack.runtime.drain(timeout=180), "the event source mapping did not catch up"

        received = {name: _drain_queue(sqs, url) for name, url in queues.items()}
        matches = {
            "msft": lambda r: r.symbol == "MSFT",
            "critical": lambda r: r.severity == "critical",
            "candles": lambda r: r.type == "candlestick",
        }
        for name, messages in received.items():
            ids = [json.loads(m["Message"])["alert_id"] for m in messages]
            want = {alert_id for alert_id, rule in expected.items() if matches[name](rule)}
            assert len(ids) == len(set(ids)), f"{name}: an alert was delivered twice"
            assert set(ids) == want, name
            for message in messages:
                payload = json.loads(message["Message"])
                rule = expected[payload["alert_id"]]
                attributes = {k: v["Value"] for k, v in message["MessageAttributes"].items()}
                assert attributes == {"symbol": rule.symbol, "rule_type": rule.type,
                                      "severity": rule.severity}
                assert message["Subject"] == payload["subject"]
                assert len(message["Subject"]) < 100 and rule.symbol in message["Subject"]
                assert payload["rule_id"] == rule.rule_id and payload["text"]
        assert received["msft"] and received["critical"] and received["candles"]

        # The same bars again (a producer replay): duplicates, nothing new is published.
        source = ReplaySource(list(SYMBOLS), limit=LIMIT, speed=0, interleave="round-robin")
        collect(source, KinesisSink(stack.client("kinesis"), out["stream_name"]))
        assert stack.runtime.drain(timeout=180), "the event source mapping did not catch up"
        time.sleep(0.2)
        for name, url in queues.items():
            assert _drain_queue(sqs, url) == [], f"{name}: re-sent bars published again"

        state = dynamodb.Table(out["state_table"]).get_item(
            Key={"symbol": "BTC-USD"}, ConsistentRead=True)["Item"]
        last_doji = max(t for t in expected_times["it-route-doji#BTC-USD"])
        stored = SymbolState.from_item(from_dynamo(state))
        times = sorted(item["bar_time"] for item in dynamodb.Table(out["results_table"]).query(
            KeyConditionExpression=Key("symbol").eq("BTC-USD"),
            ProjectionExpression="bar_time")["Items"])
        assert len(times) == stored.bars_seen  # one results item per bar, in series order
        assert times[stored.last_fired["it-route-doji"]] == _iso(last_doji)
        assert np.isfinite(stored.previous_values()["close"])
    finally:
        for arn in subscriptions:  # unsubscribe before deleting: a missing queue breaks SNS
            sns.unsubscribe(SubscriptionArn=arn)
        for url in queues.values():
            sqs.delete_queue(QueueUrl=url)
        for rule in rules:
            dynamodb.Table(out["rules_table"]).delete_item(
                Key={"symbol": rule.symbol, "rule_id": rule.rule_id})
