"""The Athena SQL of the dashboard, proven offline on data produced by the local stack.

Terraform renders services/sql/*.sql (output ``analytics_sql``: exactly what the QuickSight
data sets send) and declares the tables (output ``analytics_schema``: the Glue columns of the
bar history and the alerts archive, the connector's results columns, each query's output
columns). Here each query is parsed in the Athena (Trino) dialect with sqlglot, its Athena table
names are pointed at duckdb tables built from that schema, and it runs on duckdb over:

- ``results``: the DynamoDB results table exported from the emulator (items deserialized, one
  JSON object per line; missing attributes are NULL, as through the Athena DynamoDB connector);
- ``bars``: the S3 history bucket copied key by key and read with hive partitioning (the
  partition-projection layout ``bars/symbol=/year=/month=``);
- ``alerts``: the alert payloads SNS delivered (read from the inbox queue), written in the
  archive layout ``alerts/dt=YYYY-MM-DD/`` that the SNS -> Firehose subscription produces (moto
  does not deliver SNS to Firehose), one of them twice as an at-least-once redelivery would.

The answers are checked against DynamoDB read with the project's own reader.
"""

from __future__ import annotations

import gzip
import json
import math
import re
import sys
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import pandas as pd
import pytest
import sqlglot
from boto3.dynamodb.types import TypeDeserializer
from sqlglot import exp

from stocksage.adapters.results_reader import read_alerts, read_results
from stocksage.dashboard import summarize

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "fixtures"))
from analytics_data import LIMIT, SYMBOLS, stream_with_alerts

pytestmark = pytest.mark.integration

QUERIES = ("results", "latest", "alerts", "history_monthly")
_DUCKDB_TYPES = {"string": "VARCHAR", "double": "DOUBLE", "bigint": "BIGINT", "int": "INTEGER",
                 "timestamp": "TIMESTAMP"}


def duckdb_type(hive: str) -> str:
    """Glue/Hive column type -> duckdb type (``struct<a:string,b:double>`` included)."""
    match = re.fullmatch(r"struct<(.*)>", hive)
    if match:
        fields = [f.split(":", 1) for f in match.group(1).split(",")]
        return "STRUCT(" + ", ".join(f'"{n}" {duckdb_type(t)}' for n, t in fields) + ")"
    return _DUCKDB_TYPES[hive]


def to_duckdb(sql: str) -> str:
    """Athena SQL -> duckdb SQL: parsed as Athena (Trino) and every table reference
    ``"catalog"."database"."table"`` pointed at the duckdb table of the same name."""
    tree = sqlglot.parse_one(sql, read="athena")
    for table in tree.find_all(exp.Table):
        table.set("catalog", None)
        table.set("db", None)
    return tree.sql(dialect="duckdb")


def _columns(spec: list[dict]) -> str:
    return "{" + ", ".join(f"'{c['name']}': '{duckdb_type(c['type'])}'" for c in spec) + "}"


def _copy_prefix(s3, bucket: str, prefix: str, root: Path) -> list[str]:
    keys = []
    for page in s3.get_paginator("list_objects_v2").paginate(Bucket=bucket, Prefix=prefix):
        for item in page.get("Contents", []):
            target = root / item["Key"]
            target.parent.mkdir(parents=True, exist_ok=True)
            target.write_bytes(s3.get_object(Bucket=bucket, Key=item["Key"])["Body"].read())
            keys.append(item["Key"])
    return keys


@pytest.fixture(scope="module")
def lake(stack, tmp_path_factory):
    """Stream two symbols with alert rules through the stack, then build the duckdb tables."""
    out = stack.outputs
    schema = out["analytics_schema"]
    stream_with_alerts(stack)

    root = tmp_path_factory.mktemp("lake")
    # results: DynamoDB scan -> NDJSON (Decimal -> float, as the connector maps numbers)
    deserializer = TypeDeserializer()
    lines = []
    for page in stack.client("dynamodb").get_paginator("scan").paginate(
            TableName=out["results_table"]):
        for item in page["Items"]:
            plain = {k: deserializer.deserialize(v) for k, v in item.items()}
            lines.append(json.dumps({k: float(v) if not isinstance(v, str) else v
                                     for k, v in plain.items()}))
    (root / "results.ndjson").write_text("\n".join(lines) + "\n")
    # bars: the history bucket as is
    s3 = stack.client("s3")
    bar_keys = _copy_prefix(s3, out["history_bucket"], schema["bars"]["prefix"], root)
    # alerts: payloads SNS delivered, in the archive layout (one redelivered twice)
    alerts = [a for a in read_alerts(stack.client("sqs"), out["alerts_queue_url"], wait_seconds=0)
              if a["Payload"] and a["Payload"].get("symbol") in SYMBOLS]
    assert alerts, "the rules should have fired"
    payloads = [a["Payload"] for a in alerts]
    day = datetime.now(UTC).strftime("%Y-%m-%d")
    folder = root / schema["alerts"]["prefix"] / f"dt={day}"
    folder.mkdir(parents=True)
    records = [json.dumps(p) + "\n" for p in [*payloads, payloads[0]]]
    with gzip.open(folder / "archive-0.json.gz", "wt") as handle:
        handle.writelines(records)

    db = duckdb.connect()
    db.execute("SET TimeZone = 'UTC'")  # Athena sessions are UTC
    db.execute(f"CREATE TABLE results AS SELECT * FROM read_json('{root}/results.ndjson', "
               f"format = 'newline_delimited', columns = {_columns(schema['results_columns'])})")
    for name in ("bars", "alerts"):
        table = schema[name]
        depth = "/".join("*" for _ in table["partitions"])
        hive_types = "{" + ", ".join(f"'{p['name']}': '{duckdb_type(p['type'])}'"
                                     for p in table["partitions"]) + "}"
        db.execute(
            f"CREATE TABLE {name} AS SELECT * FROM read_json('{root}/{table['prefix']}{depth}/"
            f"*.json.gz', format = 'newline_delimited', compression = 'gzip', "
            f"columns = {_columns(table['columns'])}, hive_partitioning = true, "
            f"hive_types = {hive_types})")
    return {"db": db, "sql": out["analytics_sql"], "schema": schema, "payloads": payloads,
            "bar_keys": bar_keys}


def run(lake, name: str) -> pd.DataFrame:
    return lake["db"].sql(to_duckdb(lake["sql"][name])).df()


def _dynamo(stack, symbol: str) -> pd.DataFrame:
    return read_results(stack.client("dynamodb"), stack.outputs["results_table"], symbol)


def test_every_query_parses_as_athena_and_returns_the_declared_columns(lake):
    assert set(QUERIES) <= set(lake["sql"])
    for name in QUERIES:
        sql = lake["sql"][name]
        assert "${" not in sql and "--" not in sql  # rendered, comments stripped
        sqlglot.parse_one(sql, read="athena")  # raises on anything Athena's parser would not read
        result = lake["db"].sql(to_duckdb(sql))
        declared = lake["schema"]["queries"][name]
        assert result.columns == [c["name"] for c in declared], name
        assert [str(t) for t in result.types] == [duckdb_type(c["type"]) for c in declared], name


def test_results_query_returns_what_dynamodb_holds(stack, lake):
    frame = run(lake, "results")
    for symbol in SYMBOLS:
        expected = _dynamo(stack, symbol)
        got = frame[frame["symbol"] == symbol].sort_values("bar_ts").set_index("bar_ts")
        assert len(got) == len(expected) == LIMIT
        assert list(got.index) == list(expected.index.tz_convert(None))
        for column in expected.columns:
            if column not in got.columns:
                continue
            want, have = expected[column].to_numpy(), got[column].to_numpy()
            if not pd.api.types.is_numeric_dtype(expected[column]):
                assert [None if isinstance(v, float) and math.isnan(v) else v for v in want] == \
                    [None if v is None or (isinstance(v, float) and math.isnan(v)) else v
                     for v in have], column
            else:
                np.testing.assert_array_equal(have.astype(float), want.astype(float), column)


def test_latest_query_is_the_index_pages_numbers(stack, lake):
    latest = run(lake, "latest").set_index("symbol")
    symbols = sorted(latest.index)
    assert set(SYMBOLS) <= set(symbols)
    for symbol in symbols:
        row, want = latest.loc[symbol], summarize(symbol, _dynamo(stack, symbol))
        assert row["bars"] == want["bars"]
        assert row["last_bar_ts"].tz_localize(UTC).isoformat() == want["last_bar_time"]
        assert row["last_close"] == want["last_close"]
        if want["last_prob_up"] is None:
            assert pd.isna(row["last_prob_up"])
        else:
            assert row["last_prob_up"] == want["last_prob_up"]


def test_alerts_query_lists_each_delivered_alert_once(lake):
    alerts = run(lake, "alerts")
    by_id = {p["alert_id"]: p for p in lake["payloads"]}
    assert sorted(alerts["alert_id"]) == sorted(by_id)  # the redelivered copy is folded
    for row in alerts.itertuples():
        payload = by_id[row.alert_id]
        assert row.symbol == payload["symbol"] and row.severity == payload["severity"]
        assert row.bar_ts.tz_localize(UTC) == pd.Timestamp(payload["bar"]["bar_time"])
        assert row.close == payload["bar"]["close"]


def test_history_query_reads_the_projected_layout_and_matches_dynamodb(stack, lake):
    prefix = lake["schema"]["bars"]["prefix"]
    pattern = re.compile(rf"^{re.escape(prefix)}symbol=[A-Z0-9.^-]+/year=\d{{4}}/month=\d{{2}}/"
                         r"[^/]+\.json\.gz$")
    assert lake["bar_keys"] and all(pattern.match(k) for k in lake["bar_keys"])
    history = run(lake, "history_monthly")
    for symbol in SYMBOLS:
        expected = _dynamo(stack, symbol)
        months = expected.groupby([expected.index.year, expected.index.month])
        got = history[history["symbol"] == symbol].set_index(["year", "month"]).sort_index()
        # The history also holds the backfill (older bars that never went through Kinesis).
        assert set(months.groups) <= set(got.index)
        for (year, month), part in months:
            row = got.loc[(year, month)]
            assert row["bars"] == len(part) <= row["bars_stored"]
            assert row["last_close"] == part["close"].iloc[-1]
            assert row["low"] == part["low"].min() and row["high"] == part["high"].max()
            assert row["last_bar_ts"].tz_localize(UTC) == part.index.max()
