"""Walk-forward evaluation of the model against the naive baselines.

Every fold fits the model and the baselines on its training rows only and predicts its
validation rows; the validation predictions of all folds form the holdout. On the holdout we
report log loss, Brier, AUC and accuracy for the model and each baseline, pick the best
baseline by log loss (chosen after the fact, which favours the baselines: conservative), and
bootstrap the margin ``baseline loss - model loss`` with a circular block bootstrap over dates.
The model "beats the baselines" only if the lower end of the 95% CI of the log-loss margin is
above zero.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import pandas as pd

import stocksage.model.metrics as M
from stocksage.model.baselines import BASELINES, baseline_probabilities
from stocksage.model.dataset import LABEL
from stocksage.model.estimator import Classifier, positive_proba
from stocksage.model.walkforward import Fold


@dataclass
class WalkForwardResult:
    """Holdout predictions (one row per validation row) and the per-fold scores."""

    holdout: pd.DataFrame
    folds: list[dict] = field(default_factory=list)


def walk_forward_evaluate(
    frame: pd.DataFrame,
    folds: Sequence[Fold],
    model_factory: Callable[[], Classifier],
    features: Sequence[str],
) -> WalkForwardResult:
    """Fit and predict every fold.

    Returns holdout columns ``fold, symbol, bar_time, up, p_model, p_<baseline>...``.
    """
    features = list(features)
    X = frame[features].to_numpy(dtype=float)
    y = frame[LABEL].to_numpy(dtype=int)
    parts, fold_rows = [], []
    for fold in folds:
        train, valid = frame.iloc[fold.train], frame.iloc[fold.valid]
        if fold.train.size == 0 or fold.valid.size == 0:
            raise ValueError(f"fold {fold.number} has an empty train or validation set")
        model = model_factory()
        if np.unique(y[fold.train]).size < 2:
            p_model = np.full(fold.valid.size, float(y[fold.train].mean()))
        else:
            model.fit(X[fold.train], y[fold.train])
            p_model = positive_proba(model, X[fold.valid])
        base = baseline_probabilities(train, valid)
        part = pd.DataFrame(
            {
                "fold": fold.number,
                "symbol": valid["symbol"].to_numpy(),
                "bar_time": valid["bar_time"].to_numpy(),
                LABEL: y[fold.valid],
                "p_model": p_model,
            }
        )
        for name in BASELINES:
            part[f"p_{name}"] = base[name]
        parts.append(part)
        row = fold.describe()
        row["model"] = M.score(part[LABEL], part["p_model"])
        row["baselines"] = {n: M.score(part[LABEL], part[f"p_{n}"]) for n in BASELINES}
        fold_rows.append(row)
    holdout = pd.concat(parts, ignore_index=True)
    return WalkForwardResult(holdout=holdout, folds=fold_rows)


def summarize(
    result: WalkForwardResult, *, block_bars: int = 20, reps: int = 1000, seed: int = 0
) -> dict:
    """Holdout scores, the best baseline, margins with block-bootstrap CIs and a verdict."""
    h = result.holdout
    y = h[LABEL].to_numpy()
    model_scores = M.score(y, h["p_model"])
    base_scores = {n: M.score(y, h[f"p_{n}"]) for n in BASELINES}
    best = min(BASELINES, key=lambda n: base_scores[n]["log_loss"])
    times = pd.to_datetime(h["bar_time"], utc=True).to_numpy()
    ll_diff = M.row_log_loss(y, h[f"p_{best}"]) - M.row_log_loss(y, h["p_model"])
    br_diff = M.row_brier(y, h[f"p_{best}"]) - M.row_brier(y, h["p_model"])
    ll_ci = M.block_bootstrap_mean(
        ll_diff, times, block_bars=block_bars, reps=reps, seed=seed
    )
    br_ci = M.block_bootstrap_mean(
        br_diff, times, block_bars=block_bars, reps=reps, seed=seed
    )
    best_auc = (
        max(base_scores[n]["auc"] for n in BASELINES if not np.isnan(base_scores[n]["auc"]))
        if any(not np.isnan(base_scores[n]["auc"]) for n in BASELINES)
        else float("nan")
    )
    best_acc = max(base_scores[n]["accuracy"] for n in BASELINES)
    beats = bool(ll_ci.ci_low > 0)
    pct = round(ll_ci.level * 100)
    if beats:
        verdict = (
            f"The model beats the best naive baseline ({best}) on walk-forward log loss: "
            f"margin {ll_ci.estimate:+.5f} nats/row, {pct}% block-bootstrap CI "
            f"[{ll_ci.ci_low:+.5f}, {ll_ci.ci_high:+.5f}] lies above 0."
        )
    else:
        verdict = (
            f"The model does NOT beat the best naive baseline ({best}) on walk-forward "
            f"log loss: margin {ll_ci.estimate:+.5f} nats/row, {pct}% block-bootstrap "
            f"CI [{ll_ci.ci_low:+.5f}, {ll_ci.ci_high:+.5f}] includes or lies below 0. "
            "Treat p_up as close to a coin flip, not as a trading signal."
        )
    return {
        "holdout": {"model": model_scores, "baselines": base_scores},
        "best_baseline": best,
        "margin": {
            "definition": "best baseline minus model, per row (positive = model better); "
            "AUC and accuracy: model minus best baseline value",
            "log_loss": ll_ci.to_dict(),
            "brier": br_ci.to_dict(),
            "auc": model_scores["auc"] - best_auc,
            "accuracy": model_scores["accuracy"] - best_acc,
        },
        "bootstrap": {
            "method": "circular block bootstrap over distinct bar dates "
            "(all symbols of a date move together)",
            "block_bars": ll_ci.block_bars,
            "reps": reps,
            "seed": seed,
            "level": ll_ci.level,
        },
        "beats_baselines": beats,
        "verdict": verdict,
        "folds": result.folds,
    }


def metric_values(summary: dict, train_rows: int, train_log_loss: float) -> dict[str, float]:
    """The flat ``name -> value`` map printed as metric lines (see ``metrics.METRIC_NAMES``)."""
    hold = summary["holdout"]
    values: dict[str, float] = {}
    for key in ("log_loss", "brier", "auc", "accuracy"):
        values[f"validation:{key}"] = hold["model"][key]
    for name, scores in hold["baselines"].items():
        for key in ("log_loss", "brier", "auc", "accuracy"):
            values[f"baseline:{name}_{key}"] = scores[key]
    for key in ("log_loss", "brier"):
        m = summary["margin"][key]
        values[f"validation:margin_{key}"] = m["estimate"]
        values[f"validation:margin_{key}_ci_low"] = m["ci_low"]
        values[f"validation:margin_{key}_ci_high"] = m["ci_high"]
    values["validation:beats_baselines"] = 1.0 if summary["beats_baselines"] else 0.0
    values["validation:rows"] = float(hold["model"]["rows"])
    values["train:rows"] = float(train_rows)
    values["train:log_loss"] = train_log_loss
    return values
