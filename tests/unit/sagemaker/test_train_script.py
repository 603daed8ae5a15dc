"""sagemaker/train.py end to end in script mode on real packaged data (subprocess, SM_* env)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import joblib
import numpy as np
import pytest

from stocksage.bars import frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import DEMO_SYMBOLS, load_bars
from stocksage.history import encode_objects
from stocksage.model.metrics import METRIC_NAMES, parse_metric_lines

ROOT = Path(__file__).resolve().parents[3]
TRAIN = ROOT / "sagemaker" / "train.py"


def write_history(root: Path, symbols) -> int:
    """Real packaged bars written as history objects (the S3 layout) under ``root``."""
    count = 0
    for symbol in symbols:
        bars = frame_to_bars(symbol, load_bars(symbol), source="test")
        for key, body in encode_objects(bars).items():
            path = root / key
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(body)
            count += 1
    return count


def run_train(tmp: Path, channel: Path, args=(), hps: dict | None = None):
    env = dict(os.environ)
    env.update(
        {
            "SM_MODEL_DIR": str(tmp / "model"),
            "SM_CHANNEL_TRAIN": str(channel),
            "SM_OUTPUT_DATA_DIR": str(tmp / "output" / "data"),
            "SM_OUTPUT_DIR": str(tmp / "output"),
            "PYTHONPATH": str(ROOT),
            "SM_HPS": json.dumps(hps or {}),
        }
    )
    return subprocess.run(
        [sys.executable, str(TRAIN), *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        cwd=tmp,
        check=False,
    )


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("train")
    channel = tmp / "input" / "data" / "train"
    write_history(channel, DEMO_SYMBOLS)
    # 15-minute bars in the same bucket must not be pooled into the daily model
    btc = frame_to_bars("BTC-USD", load_bars("BTC-USD").iloc[:500], interval="15m")
    for key, body in encode_objects(btc).items():
        (channel / key).parent.mkdir(parents=True, exist_ok=True)
        (channel / key).write_bytes(body)
    proc = run_train(
        tmp,
        channel,
        ["--model-version", "test-v1", "--folds", "5"],
        hps={"c": 0.001, "model-version": "ignored-cli-wins"},
    )
    return tmp, proc


def test_writes_artifact_files(trained):
    tmp, proc = trained
    assert proc.returncode == 0, proc.stdout + proc.stderr
    model_dir = tmp / "model"
    assert {p.name for p in model_dir.iterdir()} == {
        "model.joblib",
        "range_model.joblib",  # the range model beats its baselines on these real bars
        "metadata.json",
        "metrics.json",
    }
    meta = json.loads((model_dir / "metadata.json").read_text())
    assert meta["features"] == list(STACK.features)
    assert meta["model_version"] == "test-v1"  # command line beats SM_HPS
    assert meta["hyperparameters"]["c"] == 0.001  # from SM_HPS
    assert meta["symbols"] == sorted(DEMO_SYMBOLS)
    assert "skipped 500 bars whose interval is not 1d" in proc.stdout
    assert meta["data_range"]["first_bar_time"] < meta["data_range"]["last_bar_time"]
    assert meta["data_range"]["last_bar_time"].endswith("Z")
    assert meta["library_versions"]["scikit-learn"]
    assert meta["trained_at"].endswith("Z")
    assert isinstance(meta["metrics"]["beats_baselines"], bool)
    model = joblib.load(model_dir / "model.joblib")
    p = model.predict_proba(np.zeros((3, len(STACK.features))))[:, 1]
    assert ((p > 0) & (p < 1)).all()
    assert (tmp / "output" / "data" / "metrics.json").exists()


def test_metrics_report_baselines_margin_and_verdict(trained):
    tmp, proc = trained
    report = json.loads((tmp / "model" / "metrics.json").read_text())
    assert len(report["folds"]) == 5
    hold = report["holdout"]
    assert set(hold["baselines"]) == {"majority", "persistence"}
    assert report["best_baseline"] in hold["baselines"]
    margin = report["margin"]["log_loss"]
    assert margin["ci_low"] <= margin["estimate"] <= margin["ci_high"]
    assert report["beats_baselines"] == (margin["ci_low"] > 0)
    assert report["verdict"] in proc.stdout
    for fold in report["folds"]:
        assert fold["train_end"] < fold["valid_start"]


def test_prints_metric_lines_the_regexes_capture(trained):
    _, proc = trained
    parsed = parse_metric_lines(proc.stdout)
    assert set(parsed) == set(METRIC_NAMES)
    assert "validation:auc=" in proc.stdout and "baseline:majority_log_loss=" in proc.stdout
    assert 0.4 < parsed["validation:auc"] < 0.6
    assert parsed["validation:beats_baselines"] in (0.0, 1.0)


def test_range_model_beats_the_best_volatility_baseline_on_real_bars(trained):
    """Real daily bars of the demo symbols: the log-range model is served because the CI of
    its MSE margin over the best of last value / 22-bar mean / EWMA(0.94) lies above 0."""
    tmp, proc = trained
    report = json.loads((tmp / "model" / "metrics.json").read_text())["range"]
    assert set(report["holdout"]["baselines"]) == {"last", "mean22", "ewma"}
    mses = {n: b["mse"] for n, b in report["holdout"]["baselines"].items()}
    assert report["best_baseline"] == min(mses, key=mses.get)
    margin = report["margin"]["mse"]
    assert margin["estimate"] == pytest.approx(
        mses[report["best_baseline"]] - report["holdout"]["model"]["mse"])
    assert margin["ci_low"] > 0 and report["beats_baselines"]
    assert report["verdict"] in proc.stdout
    parsed = parse_metric_lines(proc.stdout)
    assert parsed["range:beats_baselines"] == 1.0
    assert parsed["range:margin_mse_ci_low"] > 0
    meta = json.loads((tmp / "model" / "metadata.json").read_text())
    assert meta["range_model"]["file"] == "range_model.joblib"
    model = joblib.load(tmp / "model" / "range_model.joblib")
    frame = load_bars("IBM")
    from stocksage.indicators.features import enrich

    X = enrich(frame)[list(STACK.features)].dropna().to_numpy(dtype=float)
    forecast = np.exp(model.predict(X))
    # daily IBM ranges are between ~0.3 % and ~15 %; the median forecast lives inside that
    assert 0.003 < np.median(forecast) < 0.05


def test_failure_is_reported_the_sagemaker_way(tmp_path):
    channel = tmp_path / "empty"
    channel.mkdir()
    proc = run_train(tmp_path, channel)
    assert proc.returncode == 1
    reason = (tmp_path / "output" / "failure").read_text()
    assert "no *.json.gz history objects" in reason


def test_bad_hyperparameter_is_a_clear_error(tmp_path):
    proc = run_train(tmp_path, tmp_path, ["--folds", "many"])
    assert proc.returncode != 0
    assert "folds" in proc.stderr and "int" in proc.stderr
