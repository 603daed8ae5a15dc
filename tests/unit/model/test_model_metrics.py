"""Scores, baselines, block bootstrap, metric regexes and the evaluation verdict."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stocksage.model import metrics as M
from stocksage.model.baselines import majority_proba, persistence_proba


def test_scores_on_known_values():
    y = np.array([1, 0, 1, 0])
    assert M.log_loss(y, np.full(4, 0.5)) == pytest.approx(math.log(2))
    assert M.brier(y, np.full(4, 0.5)) == pytest.approx(0.25)
    assert M.auc(y, np.array([0.9, 0.1, 0.8, 0.2])) == 1.0
    assert M.auc(y, np.array([0.1, 0.9, 0.2, 0.8])) == 0.0
    assert M.auc(y, np.full(4, 0.3)) == 0.5
    assert math.isnan(M.auc(np.ones(3), np.full(3, 0.3)))
    assert M.accuracy(y, np.array([0.6, 0.4, 0.4, 0.6])) == 0.5
    assert np.isfinite(M.log_loss(y, np.array([1.0, 0.0, 0.0, 1.0])))  # clipped, finite
    from sklearn.metrics import log_loss, roc_auc_score

    rng = np.random.default_rng(1)
    yy, pp = rng.integers(0, 2, 500), rng.random(500)
    assert M.log_loss(yy, pp) == pytest.approx(log_loss(yy, pp))
    assert M.auc(yy, pp) == pytest.approx(roc_auc_score(yy, pp))


def test_baselines():
    y = np.array([1, 1, 1, 0])
    assert majority_proba(y, 3).tolist() == [0.75] * 3
    last = np.array([0.01, 0.02, -0.01, -0.02])  # after up: 1,1 ; after down: 1,0
    p = persistence_proba(last, y, np.array([0.5, -0.5, 0.0]))
    assert p.tolist() == pytest.approx([(2 + 1) / (2 + 2), (1 + 1) / (2 + 2), 0.5])


def test_block_bootstrap_is_reproducible_and_covers_the_mean():
    rng = np.random.default_rng(0)
    dates = pd.bdate_range("2010-01-01", periods=600, tz="UTC")
    times = np.repeat(dates.to_numpy(), 4)
    values = rng.normal(0.3, 1.0, times.size)
    a = M.block_bootstrap_mean(values, times, block_bars=10, reps=400, seed=3)
    b = M.block_bootstrap_mean(values, times, block_bars=10, reps=400, seed=3)
    assert a == b
    assert a.ci_low < a.estimate < a.ci_high
    assert a.ci_low > 0.2 and a.ci_high < 0.4
    zero = M.block_bootstrap_mean(values - values.mean(), times, reps=400)
    assert zero.ci_low < 0 < zero.ci_high


def test_metric_regexes_capture_printed_lines():
    values = {name: (i - 7) * 0.123456789 for i, name in enumerate(M.METRIC_NAMES)}
    values["validation:auc"] = float("nan")
    log = "noise\n" + "\n".join(M.format_metric_line(n, v) for n, v in values.items())
    log += "\n" + M.format_metric_line("validation:log_loss", 0.5) + "\n"
    parsed = M.parse_metric_lines(log)
    assert set(parsed) == set(M.METRIC_NAMES)
    assert parsed["validation:log_loss"] == 0.5  # last value wins
    assert math.isnan(parsed["validation:auc"])
    for name in M.METRIC_NAMES:
        if name not in ("validation:log_loss", "validation:auc"):
            assert parsed[name] == pytest.approx(values[name], abs=1e-6)
    # names that share a suffix do not capture each other
    assert M.parse_metric_lines("validation:margin_log_loss=0.1;") == {
        "validation:margin_log_loss": 0.1
    }


def test_metric_definitions_json_matches_the_constant():
    path = Path(M.__file__).with_name("metric_definitions.json")
    assert json.loads(path.read_text()) == [dict(d) for d in M.METRIC_DEFINITIONS]
    for d in M.METRIC_DEFINITIONS:
        assert d["Regex"].count("(") == 1 and "(?" not in d["Regex"]


def test_evaluation_on_real_data_reports_baselines_and_an_honest_verdict():
    from stocksage.config import STACK
    from stocksage.datasets import load_bars
    from stocksage.model.dataset import build_training_frame
    from stocksage.model.estimator import make_model
    from stocksage.model.holdout import metric_values, summarize, walk_forward_evaluate
    from stocksage.model.walkforward import walk_forward_splits

    frame = build_training_frame({s: load_bars(s) for s in ("AAPL", "IBM", "MSFT")})
    folds = walk_forward_splits(
        frame["bar_time"], frame["label_time"], n_folds=4, min_train_bars=500
    )
    result = walk_forward_evaluate(frame, folds, lambda: make_model("logreg"), STACK.features)
    summary = summarize(result, reps=300)
    hold = summary["holdout"]
    assert hold["model"]["rows"] == sum(f.valid.size for f in folds)
    assert set(hold["baselines"]) == {"majority", "persistence"}
    ll = summary["margin"]["log_loss"]
    assert ll["ci_low"] <= ll["estimate"] <= ll["ci_high"]
    assert summary["beats_baselines"] == (ll["ci_low"] > 0)
    assert ("does NOT beat" in summary["verdict"]) == (not summary["beats_baselines"])
    # daily direction is near a coin flip: every log loss is close to ln 2
    for scores in [hold["model"], *hold["baselines"].values()]:
        assert abs(scores["log_loss"] - math.log(2)) < 0.01
    values = metric_values(summary, len(frame), 0.69)
    # The champion comparison is added by train.py (stocksage.model.champion).
    assert set(values) == (set(M.METRIC_NAMES) - set(M.CHAMPION_METRIC_NAMES)
                           - set(M.RANGE_METRIC_NAMES))
