"""`stocksage alerts add|list|remove` against moto, and the SNS message format."""

from __future__ import annotations

import json

import boto3
import pytest
from moto import mock_aws
from rich.console import Console
from typer.testing import CliRunner

from stocksage import cli
from stocksage.adapters.dynamodb.rule_source import DynamoRuleSource
from stocksage.alerts import Rule, evaluate_rules
from stocksage.bars import frame_to_bars
from stocksage.config import resource_name
from stocksage.datasets import load_bars

TABLE = resource_name("local", "rules_table")


@pytest.fixture
def aws(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_ENDPOINT_URL_SNS",
                 "AWS_ENDPOINT_URL_SQS", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    monkeypatch.setenv("AWS_ACCOUNT_ID_ENDPOINT_MODE", "disabled")
    monkeypatch.setattr(cli, "console", Console(width=250))
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(
            TableName=TABLE, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"},
                       {"AttributeName": "rule_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"},
                                  {"AttributeName": "rule_id", "AttributeType": "S"}])
        yield dynamodb


def run(*args: str):
    return CliRunner().invoke(cli.app, ["alerts", *args])


def stored(dynamodb):
    items = dynamodb.Table(TABLE).scan()["Items"]
    return {(i["symbol"], i["rule_id"]): json.loads(i["rule"]) for i in items}


def test_add_list_remove_round_trip(aws):
    result = run("add", "msft", "pct_move", "--bars", "5", "--threshold", "0.05",
                 "--direction", "down", "--cooldown-bars", "3", "--severity", "critical")
    assert result.exit_code == 0, result.output
    assert run("add", "*", "candlestick", "--pattern", "hammer", "--params",
               '{"trend_bars": 3}', "--rule-id", "hammer-all").exit_code == 0
    assert run("add", "NVDA", "rsi_cross", "--params", '{"upper": 80, "lower": 20}').exit_code == 0
    assert run("add", "BTC-USD", "price_above", "--level", "50000").exit_code == 0

    rules = stored(aws)
    assert rules[("MSFT", "pct_move-5-down-0.05")] == {
        "type": "pct_move", "params": {"bars": 5, "threshold": 0.05, "direction": "down"},
        "severity": "critical", "cooldown_bars": 3}
    assert rules[("*", "hammer-all")]["params"] == {"pattern": "hammer", "trend_bars": 3}
    assert ("NVDA", "rsi_cross-20-80") in rules
    assert ("BTC-USD", "price_above-50000") in rules

    listing = run("list")
    assert listing.exit_code == 0, listing.output
    for text in ("pct_move-5-down-0.05", '"direction": "down"', "critical", "3 bars",
                 "hammer-all", "rsi_cross", "4 rule(s)"):
        assert text in listing.output
    only = run("list", "msft")
    assert "pct_move" in only.output and "hammer-all" not in only.output

    # the processor reads them back through Powertools Parameters (wildcard rules included)
    rules_for, errors = DynamoRuleSource(TABLE, client=boto3.client("dynamodb")).rules_for(["MSFT"])
    assert errors == []
    assert {r.rule_id: r.cooldown_bars for r in rules_for["MSFT"]} == {
        "pct_move-5-down-0.05": 3, "hammer-all": 0}
    assert {r.symbol for r in rules_for["MSFT"]} == {"MSFT"}

    assert run("remove", "MSFT", "pct_move-5-down-0.05").exit_code == 0
    assert ("MSFT", "pct_move-5-down-0.05") not in stored(aws)
    missing = run("remove", "MSFT", "pct_move-5-down-0.05")
    assert missing.exit_code == 1 and "no rule" in missing.output


@pytest.mark.parametrize("args, message", [
    (["MSFT", "moon_phase"], "unknown type"),
    (["MSFT", "pct_move", "--bars", "5"], "needs params.threshold"),
    (["MSFT", "pct_move", "--bars", "0", "--threshold", "0.1"], "params.bars must be"),
    (["MSFT", "pct_move", "--bars", "5", "--threshold", "0.1", "--level", "3"],
     "does not take level"),
    (["MSFT", "candlestick", "--pattern", "shooting_star"], "params.pattern must be one of"),
    (["MSFT", "rsi_cross", "--params", '{"upper": 20, "lower": 80}'], "lower must be below"),
    (["MSFT", "rsi_cross", "--params", "{oops"], "--params is not JSON"),
    (["MSFT", "rsi_cross", "--params", "[1]"], "must be a JSON object"),
    (["MSFT", "macd_cross", "--direction", "sideways"], "params.direction"),
    (["MSFT", "macd_cross", "--cooldown-bars", "-2"], "cooldown_bars"),
    (["MSFT", "macd_cross", "--severity", "loud"], "severity"),
    (["MSFT", "macd_cross", "--rule-id", "has space"], "rule_id"),
    (["bad symbol!", "macd_cross"], "not a valid symbol"),
    (["MSFT", "price_above", "--level", "5", "--params", '{"level": 6}'], "different values"),
])
def test_invalid_rules_exit_with_code_2_and_a_clear_message(aws, args, message):
    result = run("add", *args)
    assert result.exit_code == 2
    assert message in result.output
    assert "Traceback" not in result.output
    assert stored(aws) == {}


def test_non_numeric_option_is_a_usage_error_with_code_2(aws):
    result = run("add", "MSFT", "pct_move", "--bars", "five", "--threshold", "0.1")
    assert result.exit_code == 2 and stored(aws) == {}


def test_list_reports_a_broken_rule_instead_of_failing(aws):
    aws.Table(TABLE).put_item(Item={"symbol": "NVDA", "rule_id": "x",
                                    "rule": '{"type": "pct_move"}'})
    result = run("list")
    assert result.exit_code == 0 and "broken" in result.output
    assert "needs params.bars" in result.output


def test_sns_message_has_json_default_email_text_sms_and_filterable_attributes(aws):
    from stocksage.adapters.sns_alerts import SnsAlertPublisher

    aws.create_table(TableName="idem", BillingMode="PAY_PER_REQUEST",
                     KeySchema=[{"AttributeName": "id", "KeyType": "HASH"}],
                     AttributeDefinitions=[{"AttributeName": "id", "AttributeType": "S"}])
    sns, sqs = boto3.client("sns"), boto3.client("sqs")
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queues = {}
    for name, policy in (("msft", {"symbol": ["MSFT"]}), ("critical", {"severity": ["critical"]}),
                         ("macd", {"rule_type": ["macd_cross"]})):
        url = sqs.create_queue(QueueName=name)["QueueUrl"]
        arn = sqs.get_queue_attributes(QueueUrl=url, AttributeNames=["QueueArn"])[
            "Attributes"]["QueueArn"]
        sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn, Attributes={
            "FilterPolicy": json.dumps(policy), "FilterPolicyScope": "MessageAttributes"})
        queues[name] = url
    publisher = SnsAlertPublisher(sns, topic, "idem", dynamodb_client=boto3.client("dynamodb"))

    frame = load_bars("MSFT").tail(2)
    prev, bar = frame_to_bars("MSFT", frame)
    level = (prev.close + bar.close) / 2
    kind = "price_above" if bar.close > prev.close else "price_below"
    (alert,), _ = evaluate_rules([Rule("mid", "MSFT", kind, {"level": level}, "critical")], bar,
                                 {"close": prev.close}, {"close": bar.close})
    assert publisher.publish(alert) is True
    assert publisher.publish(alert) is False  # idempotent per alert id

    def receive(url):
        return sqs.receive_message(QueueUrl=url, MaxNumberOfMessages=10).get("Messages", [])

    (message,) = receive(queues["msft"])
    envelope = json.loads(message["Body"])
    assert envelope["Subject"] == alert.subject and len(alert.subject) < 100
    payload = json.loads(envelope["Message"])  # SQS gets the "default" JSON payload
    assert payload["alert_id"] == alert.alert_id and payload["details"]["level"] == level
    assert {k: v["Value"] for k, v in envelope["MessageAttributes"].items()} == {
        "symbol": "MSFT", "rule_type": kind, "severity": "critical"}
    assert len(receive(queues["critical"])) == 1
    assert receive(queues["macd"]) == []
