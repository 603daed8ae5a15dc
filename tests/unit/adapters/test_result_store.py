"""DynamoResultStore against the patched emulator: writes and idempotent fills of pending
predictions, with and without the range output of a two-output model."""

from __future__ import annotations

from decimal import Decimal

import boto3
import pytest

from stocksage.adapters.dynamodb.result_store import DynamoResultStore
from stocksage.config import STACK
from stocksage.processing import PREDICTION_PENDING, PREDICTION_READY, PredictionFill, range_band


@pytest.fixture(scope="module")
def store(kw):
    client = boto3.client("dynamodb", **kw)
    keys = STACK.keys["results"]
    client.create_table(
        TableName="results", BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": keys["partition"], "KeyType": "HASH"},
                   {"AttributeName": keys["sort"], "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": keys["partition"], "AttributeType": "S"},
                              {"AttributeName": keys["sort"], "AttributeType": "S"}])
    return DynamoResultStore(client, "results")


def _pending(symbol: str, bar_time: str, close: float) -> dict:
    return {"symbol": symbol, "bar_time": bar_time, "close": close, "interval": "1d",
            "prediction_status": PREDICTION_PENDING}


def test_fill_writes_probability_range_and_band_once(store):
    store.put_results([_pending("IBM", "2024-01-02T00:00:00Z", 160.0),
                       _pending("IBM", "2024-01-03T00:00:00Z", 161.0)])
    band = range_band(160.0, 0.02)
    fills = [PredictionFill("IBM", "2024-01-02T00:00:00Z", 0.55, "v3", 0.02,
                            band["range_low"], band["range_high"]),
             PredictionFill("IBM", "2024-01-03T00:00:00Z", 0.45, "v3")]
    assert store.fill_predictions(fills) == {}
    first, second = store.items_for("IBM")
    assert first["prediction_status"] == PREDICTION_READY and first["model_version"] == "v3"
    assert float(first["prob_up"]) == pytest.approx(0.55)
    assert float(first["range_forecast"]) == pytest.approx(0.02)
    assert float(first["range_low"]) == pytest.approx(band["range_low"])
    assert float(first["range_high"]) == pytest.approx(band["range_high"])
    assert float(first["range_low"]) < 160.0 < float(first["range_high"])
    assert float(second["prob_up"]) == pytest.approx(0.45)
    assert "range_forecast" not in second and "range_low" not in second

    # Redelivered fill with other values: the item is no longer pending, nothing changes.
    assert store.fill_predictions([PredictionFill("IBM", "2024-01-02T00:00:00Z", 0.9, "v4",
                                                  0.5, 1.0, 2.0)]) == {}
    again = store.items_for("IBM")[0]
    assert again["model_version"] == "v3" and again["prob_up"] == first["prob_up"]
    assert isinstance(again["range_forecast"], (Decimal, float))


def test_fill_of_a_missing_table_reports_the_symbol(kw):
    store = DynamoResultStore(boto3.client("dynamodb", **kw), "no-such-table")
    failed = store.fill_predictions([PredictionFill("MSFT", "2024-01-02T00:00:00Z", 0.5, "v1")])
    assert list(failed) == ["MSFT"] and failed["MSFT"]


def test_chain_reads_the_prev_links_from_a_time_on_and_none_for_items_before_the_chain(store):
    base = {"interval": "1d", "close": 1.0}
    store.put_results([
        {**base, "symbol": "CHN", "bar_time": "2024-01-01T00:00:00Z"},  # before the chain
        {**base, "symbol": "CHN", "bar_time": "2024-01-02T00:00:00Z", "prev_bar_time": ""},
        {**base, "symbol": "CHN", "bar_time": "2024-01-03T00:00:00Z",
         "prev_bar_time": "2024-01-02T00:00:00Z"},
        {**base, "symbol": "OTHER", "bar_time": "2024-01-03T00:00:00Z", "prev_bar_time": ""}])
    assert store.chain("CHN", "2024-01-02T00:00:00Z") == {
        "2024-01-02T00:00:00Z": "", "2024-01-03T00:00:00Z": "2024-01-02T00:00:00Z"}
    assert store.chain("CHN", "2024-01-01T00:00:00Z")["2024-01-01T00:00:00Z"] is None
    assert store.chain("NONE", "2024-01-01T00:00:00Z") == {}


def test_an_item_dynamodb_refuses_fails_only_its_own_symbol(store):
    """DynamoDB refuses a whole BatchWriteItem for one item it cannot store (here a number
    below its smallest magnitude, 1E-130); the chunk's other symbols are still written."""
    good = [_pending(s, "2024-02-01T00:00:00Z", 10.0) for s in ("AAA", "BBB", "CCC")]
    bad = {**_pending("BAD", "2024-02-01T00:00:00Z", 10.0), "sma_20": 1e-200}
    failed = store.put_results([good[0], bad, good[1], good[2]])
    assert set(failed) == {"BAD"} and "2024-02-01T00:00:00Z" in failed["BAD"]
    assert "ValidationException" in failed["BAD"]
    for symbol in ("AAA", "BBB", "CCC"):
        assert [i["bar_time"] for i in store.items_for(symbol)] == ["2024-02-01T00:00:00Z"]
    assert store.items_for("BAD") == []
