"""The rules source reads the (small) rules table whole, cached, and sees a new symbol's rules
at the symbol's first batch (moto's in-process mock: one adapter)."""

from __future__ import annotations

import threading
import time

import boto3
import pytest
from moto import mock_aws

from stocksage.adapters.dynamodb.rule_source import DynamoRuleSource, put_rule
from stocksage.alerts import Rule


class Clock:
    now = 100.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def table(monkeypatch):
    for name in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_DYNAMODB", "AWS_PROFILE"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        dynamodb = boto3.resource("dynamodb")
        dynamodb.create_table(
            TableName="rules", BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": "symbol", "KeyType": "HASH"},
                       {"AttributeName": "rule_id", "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": "symbol", "AttributeType": "S"},
                                  {"AttributeName": "rule_id", "AttributeType": "S"}])
        yield dynamodb


def counted_source() -> tuple[Clock, list[int], DynamoRuleSource]:
    """A rules source on a fake clock (max_age 60 s) and the list its Scans are counted in."""
    clock = Clock()
    client = boto3.client("dynamodb")
    calls: list[int] = []
    client.meta.events.register("before-call.dynamodb.Scan", lambda **kw: calls.append(1))
    return clock, calls, DynamoRuleSource("rules", max_age=60, client=client, clock=clock)


def test_new_symbols_rules_apply_from_its_first_batch_known_symbols_use_the_cache(table):
    clock, calls, source = counted_source()
    put_rule(table, "rules", Rule("up", "IBM", "price_above", {"level": 100.0}))
    put_rule(table, "rules", Rule("all", "*", "rsi_cross", {}))
    rules, errors = source.rules_for(["IBM"])
    assert errors == [] and {r.rule_id for r in rules["IBM"]} == {"up", "all"}
    assert len(calls) == 1

    put_rule(table, "rules", Rule("down", "MSFT", "price_below", {"level": 50.0}))
    clock.now += 0.5
    rules, _ = source.rules_for(["IBM"])  # cached: the new rule is not read yet
    assert len(calls) == 1
    clock.now += 1.0
    rules, _ = source.rules_for(["IBM", "MSFT"])  # a symbol never asked for: read again
    assert len(calls) == 2 and {r.rule_id for r in rules["MSFT"]} == {"down", "all"}
    rules, _ = source.rules_for(["MSFT", "IBM"])
    assert len(calls) == 2


def test_a_failed_re_read_keeps_the_rules_read_before(table):
    clock = Clock()
    client = boto3.client("dynamodb")
    source = DynamoRuleSource("rules", max_age=0, client=client, clock=clock)
    put_rule(table, "rules", Rule("up", "IBM", "price_above", {"level": 100.0}))
    assert [r.rule_id for r in source.rules_for(["IBM"])[0]["IBM"]] == ["up"]
    table.Table("rules").delete()
    clock.now += 5
    assert [r.rule_id for r in source.rules_for(["IBM"])[0]["IBM"]] == ["up"]
    cold = DynamoRuleSource("rules", max_age=0, client=client, clock=clock)
    with pytest.raises(Exception, match=r"rules|Requested resource not found|ResourceNotFound"):
        cold.rules_for(["IBM"])


def test_a_new_symbol_within_a_second_of_a_forced_read_is_re_read_after_the_second(table):
    """The re-read is throttled to once a second, but a symbol first seen inside that second
    is not taken as read: its next batch after the second re-reads (before: it waited for
    ``max_age``, and two concurrent lanes lost the alerts of one lane's first bars)."""
    clock, calls, source = counted_source()
    put_rule(table, "rules", Rule("up", "IBM", "price_above", {"level": 100.0}))
    source.rules_for(["IBM"])
    put_rule(table, "rules", Rule("down", "MSFT", "price_below", {"level": 50.0}))
    clock.now += 0.3
    rules, _ = source.rules_for(["MSFT"])  # throttled: the read of 0.3 s ago
    assert len(calls) == 1 and rules["MSFT"] == []
    clock.now += 0.8
    rules, _ = source.rules_for(["MSFT"])
    assert len(calls) == 2 and [r.rule_id for r in rules["MSFT"]] == ["down"]
    clock.now += 5
    source.rules_for(["MSFT", "IBM"])
    assert len(calls) == 2


def test_concurrent_first_batches_of_two_lanes_both_see_their_rules(table):
    """Two threads (the local runtime's lanes share one instance) each bring new symbols:
    the second waits for the first one's read instead of taking the stale cache as read."""
    client = boto3.client("dynamodb")
    source = DynamoRuleSource("rules", max_age=60, client=client)
    source.rules_for(["OLD"])  # the cache of an earlier batch, without the new rules
    put_rule(table, "rules", Rule("a", "AAA", "price_above", {"level": 1.0}))
    put_rule(table, "rules", Rule("b", "BBB", "price_above", {"level": 1.0}))
    time.sleep(1.05)  # past the throttle of the first read
    client.meta.events.register("before-call.dynamodb.Scan",
                                lambda **kw: time.sleep(0.3))  # the other lane comes mid-read
    started = threading.Barrier(2)
    seen: dict[str, list[list[str]]] = {"AAA": [], "BBB": []}

    def lane(symbol: str) -> None:
        started.wait()
        for _ in range(3):  # the lane's next batches
            seen[symbol].append([r.rule_id for r in source.rules_for([symbol])[0][symbol]])
            time.sleep(0.6)

    threads = [threading.Thread(target=lane, args=(s,)) for s in ("AAA", "BBB")]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert seen == {"AAA": [["a"]] * 3, "BBB": [["b"]] * 3}
