"""`stocksage bars SYMBOL` prints the stored bars with their indicators, as CSV or JSON, read
from a results table written by the real processor path and the real DynamoDB adapter."""

from __future__ import annotations

import io
import json

import boto3
import numpy as np
import pandas as pd
from moto import mock_aws
from typer.testing import CliRunner

from stocksage.adapters.dynamodb.result_store import DynamoResultStore
from stocksage.adapters.memory import memory_ports
from stocksage.bars import frame_to_bars
from stocksage.cli import app
from stocksage.config import STACK, resource_name
from stocksage.datasets import load_bars
from stocksage.indicators.features import enrich
from stocksage.processing import StreamBar, process_batch


def test_bars_prints_what_the_processor_stored(monkeypatch):
    monkeypatch.setenv("AWS_DEFAULT_REGION", "us-east-1")
    frame = load_bars("IBM").iloc[:60]
    ports = memory_ports()
    process_batch([StreamBar(b, str(k)) for k, b in enumerate(frame_to_bars("IBM", frame))],
                  ports)
    with mock_aws():
        client = boto3.client("dynamodb")
        keys = STACK.keys["results"]
        table = resource_name("dev", "results_table")
        client.create_table(
            TableName=table, BillingMode="PAY_PER_REQUEST",
            KeySchema=[{"AttributeName": keys["partition"], "KeyType": "HASH"},
                       {"AttributeName": keys["sort"], "KeyType": "RANGE"}],
            AttributeDefinitions=[{"AttributeName": keys["partition"], "AttributeType": "S"},
                                  {"AttributeName": keys["sort"], "AttributeType": "S"}])
        assert DynamoResultStore(client, table).put_results(ports.results.items_for("IBM")) == {}
        runner = CliRunner()
        csv = runner.invoke(app, ["bars", "ibm", "--env", "dev", "--start",
                                  str(frame.index[40].date())])
        js = runner.invoke(app, ["bars", "IBM", "--env", "dev", "--format", "json"])
        other = runner.invoke(app, ["bars", "IBM", "--env", "dev", "--interval", "1m"])
    assert csv.exit_code == 0, csv.output
    printed = pd.read_csv(io.StringIO(csv.stdout))
    assert len(printed) == 20 and printed["bar_time"].iloc[0].startswith(
        str(frame.index[40].date()))
    want = enrich(frame)["rsi_14"].to_numpy()[40:]
    assert np.allclose(printed["rsi_14"].to_numpy(), want, rtol=1e-12)
    rows = json.loads(js.stdout)
    assert len(rows) == 60 and rows[0]["rsi_14"] is None and rows[-1]["close"] == frame[
        "close"].iloc[-1]
    assert other.exit_code == 0 and other.stdout.strip().startswith("bar_time,")
    assert len(other.stdout.strip().splitlines()) == 1  # header only: no 1m bars stored
