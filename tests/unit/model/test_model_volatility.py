"""Next-bar log-range target, its baselines and the walk-forward verdict on real daily bars."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.model.dataset import build_training_frame
from stocksage.model.volatility import (
    RANGE_BASELINES,
    RANGE_TARGET,
    evaluate_range,
    log_range,
    range_columns,
    range_metric_values,
    summarize_range,
)
from stocksage.model.walkforward import walk_forward_splits

FEATURES = list(STACK.features)


def test_target_is_the_log_of_the_next_bars_log_high_low_range():
    frame = load_bars("IBM").iloc[:40]
    cols = range_columns(frame)
    t = 30
    expected = math.log(math.log(frame["high"].iloc[t + 1] / frame["low"].iloc[t + 1]))
    assert cols[RANGE_TARGET].iloc[t] == pytest.approx(expected)
    assert math.isnan(cols[RANGE_TARGET].iloc[-1])
    # a bar with high == low is floored at 1 bp, not -inf
    assert log_range([10.0], [10.0])[0] == pytest.approx(math.log(1e-4))


def test_baselines_use_bars_up_to_t_only():
    frame = load_bars("MSFT").iloc[:60]
    cols = range_columns(frame)
    lr = np.log(np.log(frame["high"] / frame["low"]).to_numpy())
    t = 40
    assert cols["range_last"].iloc[t] == pytest.approx(lr[t])
    assert cols["range_mean22"].iloc[t] == pytest.approx(lr[t - 21:t + 1].mean())
    assert cols["range_mean22"].iloc[:21].isna().all()
    m = lr[0]
    for value in lr[1:t + 1]:
        m = 0.94 * m + 0.06 * value  # RiskMetrics lambda = 0.94
    assert cols["range_ewma"].iloc[t] == pytest.approx(m)
    # changing a future bar does not change any forecast made before it
    changed = frame.copy()
    changed.iloc[t + 1, changed.columns.get_loc("high")] *= 1.5
    again = range_columns(changed)
    pd.testing.assert_frame_equal(again.drop(columns=RANGE_TARGET).iloc[:t + 1],
                                  cols.drop(columns=RANGE_TARGET).iloc[:t + 1])


@pytest.fixture(scope="module")
def real_holdout():
    frames = {s: load_bars(s) for s in ("AAPL", "IBM", "MSFT", "GOOG")}
    frame = build_training_frame(frames, FEATURES)
    frame = frame.dropna(subset=[RANGE_TARGET, *(f"range_{n}" for n in RANGE_BASELINES)])
    frame = frame.reset_index(drop=True)
    folds = walk_forward_splits(frame["bar_time"], frame["label_time"], n_folds=5,
                                min_train_bars=500)
    return frame, folds, evaluate_range(frame, folds, FEATURES)


def test_walk_forward_range_verdict_on_real_bars(real_holdout):
    """Volatility clusters: on real daily bars of AAPL, IBM, MSFT and GOOG the range model
    beats the best of last value / 22-bar mean / EWMA with a block-bootstrap CI above 0, and
    the 22-bar mean and the EWMA beat the random walk (the last value) by far."""
    _, folds, holdout = real_holdout
    assert len(holdout) == sum(f.valid.size for f in folds)
    summary = summarize_range(holdout, reps=300)
    mse = {n: b["mse"] for n, b in summary["holdout"]["baselines"].items()}
    assert mse["ewma"] < mse["last"] and mse["mean22"] < mse["last"]
    assert summary["best_baseline"] == min(mse, key=mse.get)
    margin = summary["margin"]["mse"]
    assert margin["ci_low"] <= margin["estimate"] <= margin["ci_high"]
    assert summary["beats_baselines"] and margin["ci_low"] > 0
    values = range_metric_values(summary)
    assert values["range:beats_baselines"] == 1.0
    assert values["range:validation_rows"] == len(holdout)


def test_a_model_no_better_than_a_baseline_does_not_pass(real_holdout):
    _, _, holdout = real_holdout
    copy = holdout.copy()
    copy["f_model"] = copy["f_ewma"]  # the model IS the baseline: margin 0, CI around 0
    summary = summarize_range(copy, reps=200)
    assert not summary["beats_baselines"]
    assert "does NOT beat" in summary["verdict"]
