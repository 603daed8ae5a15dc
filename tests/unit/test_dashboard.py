"""Results reader (the patched emulator: DynamoDB, SNS -> SQS) and the plotly dashboards.

The results frames are real data: bundled TSLA bars through ``stocksage.indicators.features.enrich``
(the indicator + feature pipeline), plus a synthetic ``prob_up`` that is NaN during warm-up.
"""

from __future__ import annotations

import json
import math
import re
from decimal import Decimal

import boto3
import numpy as np
import pandas as pd
import pytest

from stocksage import datasets
from stocksage.adapters.results_reader import (
    RESULT_COLUMNS,
    list_symbols,
    read_alerts,
    read_results,
)
from stocksage.alerts.received import alert_bar_time, alert_symbol, parse_alert_message
from stocksage.config import STACK
from stocksage.dashboard import (
    build_symbol_figure,
    page_name,
    render_dashboards,
    render_index,
    render_symbol_dashboard,
    summarize,
)

WARM_UP = 33  # macd_signal needs 26 + 9 - 1 bars


@pytest.fixture(scope="module")
def results_frame() -> pd.DataFrame:
    from stocksage.indicators.features import enrich

    frame = enrich(datasets.load_bars("TSLA").iloc[:120])
    rng = np.random.default_rng(3)
    prob = rng.uniform(0.2, 0.8, len(frame))
    prob[:WARM_UP] = np.nan
    frame["prob_up"] = prob
    frame["model_version"] = "test-1"
    return frame


def alert_message(symbol: str, bar_time: str, close: float, rule: str = "tsla-250") -> dict:
    """An SNS notification body as it lands in SQS (payload shape of stocksage.alerts)."""
    payload = {
        "alert_id": f"{rule}#{symbol}#{bar_time}", "symbol": symbol, "rule_id": rule,
        "rule_type": "price_above", "severity": "warning",
        "bar": {"symbol": symbol, "bar_time": bar_time, "close": close},
        "details": {"level": 250.0}, "text": f"{symbol} closed above 250",
    }
    return payload


# ---------------------------------------------------------------------------- results reader
def test_read_results_and_list_symbols(kw, results_frame):
    ddb = boto3.client("dynamodb", **kw)
    table = "stocksage-test-results"
    pk, sk = STACK.keys["results"]["partition"], STACK.keys["results"]["sort"]
    ddb.create_table(
        TableName=table, BillingMode="PAY_PER_REQUEST",
        KeySchema=[{"AttributeName": pk, "KeyType": "HASH"},
                   {"AttributeName": sk, "KeyType": "RANGE"}],
        AttributeDefinitions=[{"AttributeName": pk, "AttributeType": "S"},
                              {"AttributeName": sk, "AttributeType": "S"}],
    )
    resource = boto3.resource("dynamodb", **kw)
    frame = results_frame.iloc[:60]
    with resource.Table(table).batch_writer() as writer:
        for symbol in ("TSLA", "AAPL"):
            for when, row in frame.iterrows():
                item = {pk: symbol, sk: when.strftime("%Y-%m-%dT%H:%M:%SZ"),
                        "model_version": row["model_version"],
                        "processed_at": "2026-11-22T00:00:00Z"}
                for column, value in row.items():
                    numeric = isinstance(value, float) and math.isfinite(value)
                    if column != "model_version" and numeric:
                        item[column] = Decimal(repr(value))  # NaN (warm-up) left out, as stored
                writer.put_item(Item=item)

    got = read_results(ddb, table, "TSLA")
    assert list(got.columns[: len(RESULT_COLUMNS)]) == list(RESULT_COLUMNS)
    assert got.index.name == "bar_time" and str(got.index.tz) == "UTC"
    assert got.index.is_monotonic_increasing and len(got) == 60
    assert got["close"].dtype == np.float64 and got["prob_up"].dtype == np.float64
    assert got["prob_up"].iloc[:WARM_UP].isna().all()
    assert got["prob_up"].iloc[WARM_UP:].notna().all()
    pd.testing.assert_series_equal(got["rsi_14"], frame["rsi_14"], check_names=False,
                                   check_freq=False, check_index_type=False)
    assert set(got["model_version"]) == {"test-1"}

    window = read_results(ddb, table, "TSLA", start="2021-04-01", end="2021-04-30T23:59:59Z")
    assert len(window) > 0 and window.index.min() >= pd.Timestamp("2021-04-01", tz="UTC")
    empty = read_results(ddb, table, "NONE")
    assert empty.empty and list(empty.columns) == list(RESULT_COLUMNS)
    assert list_symbols(ddb, table) == ["AAPL", "TSLA"]


def test_read_alerts_peek_then_delete(kw):
    sns, sqs = boto3.client("sns", **kw), boto3.client("sqs", **kw)
    topic = sns.create_topic(Name="alerts")["TopicArn"]
    queue_url = sqs.create_queue(QueueName="alerts-inbox")["QueueUrl"]
    arn = sqs.get_queue_attributes(QueueUrl=queue_url, AttributeNames=["QueueArn"])[
        "Attributes"]["QueueArn"]
    sns.subscribe(TopicArn=topic, Protocol="sqs", Endpoint=arn)
    for day, close in (("2021-04-05", 251.0), ("2021-04-12", 255.5)):
        payload = alert_message("TSLA", f"{day}T00:00:00Z", close)
        sns.publish(TopicArn=topic, Subject=f"TSLA above 250 on {day}",
                    Message=json.dumps(payload),
                    MessageAttributes={"symbol": {"DataType": "String", "StringValue": "TSLA"},
                                       "severity": {"DataType": "String",
                                                    "StringValue": "warning"}})
    sns.publish(TopicArn=topic, Subject="plain", Message="not json")

    first = read_alerts(sqs, queue_url, wait_seconds=0)
    assert len(first) == 3
    tsla = [a for a in first if a["Subject"] and a["Subject"].startswith("TSLA")]
    assert tsla[0]["MessageAttributes"] == {"symbol": "TSLA", "severity": "warning"}
    assert tsla[0]["Payload"]["rule_type"] == "price_above"
    assert {alert_bar_time(a) for a in tsla} == {pd.Timestamp("2021-04-05", tz="UTC"),
                                                  pd.Timestamp("2021-04-12", tz="UTC")}
    plain = next(a for a in first if a["Subject"] == "plain")
    assert plain["Message"] == "not json" and plain["Payload"] is None
    assert alert_symbol(plain) is None and alert_bar_time(plain) is None

    again = read_alerts(sqs, queue_url, wait_seconds=0, delete=True)  # peek kept them
    assert len(again) == 3
    assert read_alerts(sqs, queue_url, wait_seconds=0) == []


def test_parse_raw_delivery_body():
    alert = parse_alert_message(json.dumps(alert_message("AAPL", "2013-01-02T00:00:00Z", 1.0)),
                                {"symbol": {"DataType": "String", "StringValue": "AAPL"}})
    assert alert["Subject"] is None and alert["MessageAttributes"] == {"symbol": "AAPL"}
    assert alert_symbol(alert) == "AAPL"
    assert alert_bar_time(alert) == pd.Timestamp("2013-01-02", tz="UTC")


# ---------------------------------------------------------------------------- dashboards
def _alerts_for_frame(frame: pd.DataFrame) -> list[dict]:
    times = [frame.index[50], frame.index[90]]
    alerts = [parse_alert_message(json.dumps({
        "Type": "Notification", "MessageId": f"m{i}", "Subject": f"TSLA alert {i}",
        "Message": json.dumps(alert_message("TSLA", t.strftime("%Y-%m-%dT%H:%M:%SZ"), 1.0)),
        "MessageAttributes": {"symbol": {"Type": "String", "Value": "TSLA"}},
    })) for i, t in enumerate(times)]
    other = parse_alert_message(json.dumps({
        "Type": "Notification", "Subject": "AAPL", "Message": json.dumps(
            alert_message("AAPL", "2013-01-02T00:00:00Z", 1.0)),
        "MessageAttributes": {"symbol": {"Type": "String", "Value": "AAPL"}}}))
    return [*alerts, other]


def _traces(html: str) -> list[str]:
    return re.findall(r'"name":"([^"]+)"', html)


def test_symbol_dashboard_real_data(tmp_path, results_frame):
    alerts = _alerts_for_frame(results_frame)
    path = render_symbol_dashboard("TSLA", results_frame, alerts, tmp_path)
    assert path == tmp_path / "TSLA.html"
    html = path.read_text()
    assert re.search(r'<script[^>]*src="plotly.min.js"', html)
    assert (tmp_path / "plotly.min.js").exists()
    names = set(_traces(html))
    assert {"OHLC", "SMA 20", "EMA 12", "EMA 26", "BB high", "BB low", "BB mid", "Alerts",
            "RSI 14", "MACD", "MACD signal", "MACD histogram", "P(up)"} <= names

    fig = build_symbol_figure("TSLA", results_frame, alerts)
    marker = next(t for t in fig.data if t.name == "Alerts")
    assert len(marker.x) == 2  # the AAPL alert is not drawn on TSLA
    assert pd.Timestamp(marker.x[0]) == results_frame.index[50]
    # 4 rows share one x axis; 30/70 and 0.5 reference lines exist
    assert {t.xaxis for t in fig.data} <= {"x", "x2", "x3", "x4"}
    assert [fig.layout[f"xaxis{n}"].matches for n in ("", 2, 3)] == ["x4"] * 3
    assert {s.y0 for s in fig.layout.shapes} == {30, 70, 0.5}
    prob = next(t for t in fig.data if t.name == "P(up)")
    assert np.isnan(np.asarray(prob.y, dtype=float)[:WARM_UP]).all()


def test_dashboard_without_predictions_and_empty(tmp_path, results_frame):
    no_prob = results_frame.drop(columns=["prob_up", "model_version"])
    html = render_symbol_dashboard("TSLA", no_prob, [], tmp_path).read_text()
    assert "no predictions yet" in html and "P(up)" not in _traces(html)
    close_only = results_frame[["close"]].iloc[:10]
    names = _traces(render_symbol_dashboard("AAPL", close_only, [], tmp_path).read_text())
    assert "Close" in names and "OHLC" not in names
    empty = read_empty_frame()
    html = render_symbol_dashboard("^GSPC", empty, [], tmp_path).read_text()
    assert "no results for ^GSPC yet" in html and (tmp_path / "_GSPC.html").exists()


def read_empty_frame() -> pd.DataFrame:
    from stocksage.adapters.results_reader import items_to_frame

    return items_to_frame([])


def test_index_links_and_summary(tmp_path, results_frame):
    alerts = _alerts_for_frame(results_frame)
    row = summarize("TSLA", results_frame, alerts)
    assert row["bars"] == 120 and row["alerts"] == 2
    assert row["last_close"] == pytest.approx(results_frame["close"].iloc[-1])
    assert row["last_prob_up"] == pytest.approx(results_frame["prob_up"].iloc[-1])
    index = render_dashboards({"TSLA": results_frame,
                               "AAPL": results_frame.drop(columns=["prob_up"])}, alerts, tmp_path)
    html = index.read_text()
    assert '<a href="TSLA.html">TSLA</a>' in html and '<a href="AAPL.html">AAPL</a>' in html
    assert (tmp_path / "TSLA.html").exists() and (tmp_path / "AAPL.html").exists()
    assert "&ndash;" in html  # AAPL has no prob_up
    mapping = render_index({"BRK.B": {"bars": 1, "last_close": 1.5}}, tmp_path / "x").read_text()
    assert f'href="{page_name("BRK.B")}"' in mapping and "1.50" in mapping


def test_forecast_range_band_is_drawn_at_the_bar_it_forecasts(tmp_path, results_frame):
    frame = results_frame.copy()
    r = 2 * frame["atr_14"] / frame["close"]  # a stand-in range forecast (log-price units)
    frame["range_forecast"] = r
    frame["range_low"] = frame["close"] * np.exp(-r / 2)
    frame["range_high"] = frame["close"] * np.exp(r / 2)
    fig = build_symbol_figure("TSLA", frame, [])
    high = next(t for t in fig.data if t.name == "Forecast range high")
    low = next(t for t in fig.data if t.name == "Forecast range low")
    assert pd.Timestamp(high.x[0]) == frame.index[1]  # made at bar 0, for bar 1
    assert high.y[-1] == pytest.approx(frame["range_high"].iloc[-2])
    assert low.fill == "tonexty"
    assert "Forecast range high" not in {t.name for t in build_symbol_figure(
        "TSLA", results_frame, []).data}
