"""DynamoStateStore against the patched emulator: conditional puts per symbol, and no state
dropped silently when a transaction is cancelled by another symbol's conflict."""

from __future__ import annotations

import boto3
import pytest
from botocore.exceptions import ClientError

from stocksage.adapters.dynamodb.calls import Backoff
from stocksage.adapters.dynamodb.state_store import DynamoStateStore
from stocksage.config import STACK
from stocksage.state import SymbolState


@pytest.fixture
def client(kw, request):
    client = boto3.client("dynamodb", **kw)
    name = f"state-{request.node.name[:40]}"
    client.create_table(
        TableName=name, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": STACK.keys["state"]["partition"], "KeyType": "HASH"}],
        AttributeDefinitions=[{"AttributeName": STACK.keys["state"]["partition"],
                               "AttributeType": "S"}])
    client.table = name
    return client


def test_a_conflict_fails_its_symbol_alone_even_on_the_last_attempt(client):
    store = DynamoStateStore(client, client.table, backoff=Backoff(attempts=1))
    assert store.put_states([SymbolState("IBM")]) == {}
    stale, fresh = SymbolState("IBM"), SymbolState("MSFT")  # IBM: read before the write above
    failed = store.put_states([stale, fresh])
    assert list(failed) == ["IBM"] and "changed since it was read" in failed["IBM"]
    states, problems = store.get_states(["IBM", "MSFT"])
    assert problems == {} and set(states) == {"IBM", "MSFT"}  # MSFT written, not dropped
    assert states["IBM"].version == 1 and states["MSFT"].version == 1


def test_whole_call_failures_report_every_pending_symbol(client):
    class Throttled:
        calls = 0

        def transact_write_items(self, **_):
            Throttled.calls += 1
            raise ClientError({"Error": {"Code": "ThrottlingException", "Message": "slow"}},
                              "TransactWriteItems")

    store = DynamoStateStore(Throttled(), client.table, backoff=Backoff(attempts=3, base=0))
    failed = store.put_states([SymbolState("IBM"), SymbolState("MSFT")])
    assert set(failed) == {"IBM", "MSFT"} and Throttled.calls == 3
    assert all("after 3 attempts" in reason for reason in failed.values())


def test_a_state_dynamodb_cannot_store_fails_alone(client):
    """One state with a number below DynamoDB's range cancels the whole transaction; it fails
    its own symbol with the reason, the other symbols' states are written."""
    class Unstorable(SymbolState):  # e.g. an item over 400 KB, or a number out of range
        def to_item(self) -> dict:
            return {**super().to_item(), "bad_number": 1e-200}

    store = DynamoStateStore(client, client.table, backoff=Backoff(attempts=2, base=0))
    bad = Unstorable("BAD")
    failed = store.put_states([SymbolState("IBM"), bad, SymbolState("MSFT")])
    assert list(failed) == ["BAD"] and "refused by DynamoDB" in failed["BAD"]
    states, problems = store.get_states(["IBM", "MSFT"])
    assert problems == {} and states["IBM"].version == states["MSFT"].version == 1
