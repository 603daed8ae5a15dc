"""S3 history adapter and the backfill script against the patched emulator (S3)."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import boto3
import pytest

from stocksage.adapters.s3_history import iter_history, list_history_keys, put_history
from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars

ROOT = Path(__file__).resolve().parents[3]
CREDS = {
    "AWS_ACCESS_KEY_ID": "test",
    "AWS_SECRET_ACCESS_KEY": "test",
    "AWS_DEFAULT_REGION": "us-east-1",
}


@pytest.fixture(scope="module")
def s3(kw):
    return boto3.client("s3", **kw)


def test_put_and_iter_round_trip_is_idempotent(s3):
    s3.create_bucket(Bucket="roundtrip")
    bars = frame_to_bars("FB", load_bars("FB"), source="test")
    first = put_history(s3, "roundtrip", bars)
    again = put_history(s3, "roundtrip", bars)
    assert first.keys == again.keys  # deterministic names: a re-run overwrites
    keys = list(list_history_keys(s3, "roundtrip"))
    assert keys == sorted(first.keys)
    assert all(k.startswith("bars/symbol=FB/year=") and k.endswith(".json.gz") for k in keys)
    read = sorted(iter_history(s3, "roundtrip"), key=lambda b: b.bar_time)
    assert read == bars
    named = put_history(s3, "roundtrip", bars[:50], name="backfill")
    assert all(k.endswith("/backfill.json.gz") for k in named.keys)


def test_iter_history_paginates(s3):
    s3.create_bucket(Bucket="many")
    bars = frame_to_bars("IBM", load_bars("IBM"), source="test")  # 13 years = 157 objects
    summary = put_history(s3, "many", bars, name="backfill")
    assert len(summary.keys) > 100
    pages = list(
        s3.get_paginator("list_objects_v2").paginate(
            Bucket="many", Prefix="bars/", PaginationConfig={"PageSize": 50}
        )
    )
    assert len(pages) > 1
    assert len(list(iter_history(s3, "many", "bars/symbol=IBM/"))) == len(bars)


def test_backfill_script(emulator, s3):
    env = dict(os.environ, AWS_ENDPOINT_URL=emulator.endpoint_url, PYTHONPATH=str(ROOT), **CREDS)
    cmd = [
        sys.executable,
        str(ROOT / "scripts" / "backfill_history.py"),
        "--bucket",
        "backfill",
        "--symbols",
        "FB",
        "TSLA",
        "--exclude-last",
        "10",
        "--create-bucket",
    ]
    proc = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc.returncode == 0, proc.stderr
    fb, tsla = len(load_bars("FB")) - 10, len(load_bars("TSLA")) - 10
    assert f"total bars={fb + tsla}" in proc.stdout
    keys = list(list_history_keys(s3, "backfill"))
    proc2 = subprocess.run(cmd, env=env, capture_output=True, text=True, timeout=120, check=False)
    assert proc2.returncode == 0 and list(list_history_keys(s3, "backfill")) == keys
    stored = list(iter_history(s3, "backfill"))
    assert len(stored) == fb + tsla
    assert max(b.bar_time for b in stored if b.symbol == "FB") == load_bars("FB").index[-11]
    until = subprocess.run(
        [*cmd[:7], "--until", "2012-06-30", "--create-bucket"],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert until.returncode == 0, until.stderr
    assert "TSLA     bars=     0" in until.stdout
