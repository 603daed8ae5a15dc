"""Scoring of next-bar direction probabilities and the block bootstrap of a model's margin.

All scores take ``y`` (0/1 labels, 1 = the next close is higher) and ``p`` (predicted
probability of up). Log loss and Brier are proper scoring rules, lower is better; AUC and
accuracy are reported for readability. A constant forecast has AUC 0.5 within one fold (a
pooled holdout of per-fold constants can differ slightly from 0.5).

``METRIC_DEFINITIONS`` are the SageMaker metric definitions (name + regex) that capture the
lines ``sagemaker/train.py`` prints, e.g. ``validation:auc=0.512300;``. Terraform reads the same
list from ``stocksage/model/metric_definitions.json`` (kept equal by a unit test), the retrain
Lambda and the local training-job executor import the constant.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, TypeAlias

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

#: A 1-D run of numbers: a numpy array, a pandas Series or a list (``len`` and ``np.asarray``).
Vector: TypeAlias = "npt.NDArray[np.generic] | pd.Series | Sequence[float]"

EPS = 1e-15

#: Regex fragment for one printed number (train.py prints ``%.6f`` or ``nan``).
#: One capturing group, no look-arounds or non-capturing groups (SageMaker-safe).
NUMBER_REGEX = r"([-+]?[0-9][0-9.eE+-]*|nan)"


def _definition(name: str) -> dict[str, str]:
    return {"Name": name, "Regex": name + "=" + NUMBER_REGEX + ";"}


#: SageMaker ``AlgorithmSpecification.MetricDefinitions`` for ``sagemaker/train.py``.
#: ``validation:*`` = the model on the pooled walk-forward holdout; ``baseline:*`` = the naive
#: baselines on the same rows; ``validation:margin_*`` = best baseline minus model (positive =
#: model better) with the block-bootstrap 95% CI; ``validation:beats_baselines`` is 1 only when
#: the CI of the log-loss margin lies above 0. ``champion:*`` / ``*_champion_*``: the model serving
#: when the job started, scored on the holdout rows after its own training data
#: (``stocksage.model.champion``); ``validation:champion_rows`` is 0 when there was none.
#: ``range:*``: the next-bar log-range model (``stocksage.model.volatility``): MSE of ln range of
#: the model and of the best baseline (each baseline's MSE is in ``metrics.json``; SageMaker
#: accepts at most 40 metric definitions per job), the margin best baseline minus model with
#: its CI, and
#: ``range:beats_baselines`` (1 = the artifact carries the range model).
METRIC_NAMES: tuple[str, ...] = (
    "validation:log_loss",
    "validation:brier",
    "validation:auc",
    "validation:accuracy",
    "baseline:majority_log_loss",
    "baseline:majority_brier",
    "baseline:majority_auc",
    "baseline:majority_accuracy",
    "baseline:persistence_log_loss",
    "baseline:persistence_brier",
    "baseline:persistence_auc",
    "baseline:persistence_accuracy",
    "validation:margin_log_loss",
    "validation:margin_log_loss_ci_low",
    "validation:margin_log_loss_ci_high",
    "validation:margin_brier",
    "validation:margin_brier_ci_low",
    "validation:margin_brier_ci_high",
    "validation:beats_baselines",
    "validation:rows",
    "train:rows",
    "train:log_loss",
    "champion:log_loss",
    "validation:champion_rows",
    "validation:margin_champion_log_loss",
    "validation:margin_champion_log_loss_ci_low",
    "validation:margin_champion_log_loss_ci_high",
    "range:validation_mse",
    "range:baseline_best_mse",
    "range:margin_mse",
    "range:margin_mse_ci_low",
    "range:margin_mse_ci_high",
    "range:beats_baselines",
    "range:validation_rows",
    "range:in_artifact",
    "range:champion_has_model",
    "range:champion_rows",
    "range:margin_champion_mse",
    "range:margin_champion_mse_ci_low",
    "range:margin_champion_mse_ci_high",
)
METRIC_DEFINITIONS: tuple[dict[str, str], ...] = tuple(_definition(n) for n in METRIC_NAMES)
#: CreateTrainingJob accepts at most this many MetricDefinitions.
MAX_METRIC_DEFINITIONS = 40
assert len(METRIC_DEFINITIONS) <= MAX_METRIC_DEFINITIONS
#: The names of the comparison with the serving model (``stocksage.model.champion``); printed
#: as ``nan`` (and ``validation:champion_rows=0``) when the job had no champion.
CHAMPION_METRIC_NAMES: tuple[str, ...] = tuple(
    n for n in METRIC_NAMES if "champion" in n
)
#: The names of the next-bar range model (``stocksage.model.volatility.range_metric_values``).
RANGE_METRIC_NAMES: tuple[str, ...] = tuple(n for n in METRIC_NAMES if n.startswith("range:"))


def format_metric_line(name: str, value: float) -> str:
    """One line the metric regexes capture: ``name=0.123456;``."""
    value = float(value)
    text = "nan" if not math.isfinite(value) else f"{value:.6f}"
    return f"{name}={text};"


def parse_metric_lines(
    log: str, definitions: Sequence[Mapping[str, str]] = METRIC_DEFINITIONS
) -> dict[str, float]:
    """Final value of each metric found in ``log`` (last match wins, as SageMaker reports)."""
    import re

    found: dict[str, float] = {}
    for definition in definitions:
        matches = re.findall(definition["Regex"], log)
        if matches:
            last = matches[-1]
            found[definition["Name"]] = float(last[0] if isinstance(last, tuple) else last)
    return found


def _arrays(y: Vector, p: Vector) -> tuple[npt.NDArray[np.float64], npt.NDArray[np.float64]]:
    ya = np.asarray(y, dtype=float).ravel()
    pa = np.asarray(p, dtype=float).ravel()
    if ya.shape != pa.shape:
        raise ValueError(f"labels and probabilities differ in length: {ya.size} != {pa.size}")
    return ya, pa


def row_log_loss(y: Vector, p: Vector) -> npt.NDArray[np.float64]:
    """Per-row log loss (natural log), probabilities clipped to [1e-15, 1 - 1e-15]."""
    ya, pa = _arrays(y, p)
    pa = np.clip(pa, EPS, 1 - EPS)
    return -(ya * np.log(pa) + (1 - ya) * np.log1p(-pa))


def row_brier(y: Vector, p: Vector) -> npt.NDArray[np.float64]:
    """Per-row squared error of the probability."""
    ya, pa = _arrays(y, p)
    return (pa - ya) ** 2


def log_loss(y: Vector, p: Vector) -> float:
    return float(np.mean(row_log_loss(y, p))) if len(y) else math.nan


def brier(y: Vector, p: Vector) -> float:
    return float(np.mean(row_brier(y, p))) if len(y) else math.nan


def accuracy(y: Vector, p: Vector) -> float:
    ya, pa = _arrays(y, p)
    return float(np.mean((pa > 0.5) == (ya > 0.5))) if ya.size else math.nan


def auc(y: Vector, p: Vector) -> float:
    """ROC AUC via ranks (ties averaged); NaN when only one class is present."""
    ya, pa = _arrays(y, p)
    pos = ya > 0.5
    n_pos, n_neg = int(pos.sum()), int((~pos).sum())
    if n_pos == 0 or n_neg == 0:
        return math.nan
    from scipy.stats import rankdata

    ranks = rankdata(pa)
    return float((ranks[pos].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def score(y: Vector, p: Vector) -> dict[str, float]:
    """All four scores plus the row count and the realised up-rate."""
    ya, pa = _arrays(y, p)
    return {
        "log_loss": log_loss(ya, pa),
        "brier": brier(ya, pa),
        "auc": auc(ya, pa),
        "accuracy": accuracy(ya, pa),
        "rows": int(ya.size),
        "up_rate": float(ya.mean()) if ya.size else math.nan,
    }


@dataclass(frozen=True)
class MarginCI:
    """Mean per-row loss difference (baseline - model; > 0 = model better) and its CI."""

    estimate: float
    ci_low: float
    ci_high: float
    level: float
    block_bars: int
    reps: int

    def to_dict(self) -> dict[str, float]:
        return {
            "estimate": self.estimate,
            "ci_low": self.ci_low,
            "ci_high": self.ci_high,
            "level": self.level,
            "block_bars": self.block_bars,
            "reps": self.reps,
        }


def block_bootstrap_mean(
    values: Vector,
    time_keys: Vector | pd.DatetimeIndex,
    *,
    block_bars: int = 20, reps: int = 1000, level: float = 0.95, seed: int = 0
) -> MarginCI:
    """Circular block bootstrap over calendar bars of the mean of ``values``.

    Rows sharing a time key (all symbols on one date) stay together, and blocks of
    ``block_bars`` consecutive dates are resampled, so both the cross-sectional correlation of
    a date and short-range serial correlation are kept in every replicate.

    Args:
        values: Per-row quantity (e.g. baseline loss minus model loss).
        time_keys: Per-row sortable time (e.g. ``bar_time``) of the same length.
        block_bars: Block length in distinct dates.
        reps: Bootstrap replicates.
        level: Two-sided confidence level.
        seed: Seed of the generator (results are reproducible).
    """
    vals = np.asarray(values, dtype=float).ravel()
    keys = np.asarray(time_keys).ravel()
    if vals.shape != keys.shape:
        raise ValueError("values and time_keys differ in length")
    if vals.size == 0:
        return MarginCI(math.nan, math.nan, math.nan, level, block_bars, reps)
    uniq, codes = np.unique(keys, return_inverse=True)
    sums = np.bincount(codes, weights=vals, minlength=uniq.size)
    counts = np.bincount(codes, minlength=uniq.size).astype(float)
    n = uniq.size
    block = max(1, min(int(block_bars), n))
    n_blocks = math.ceil(n / block)
    rng = np.random.default_rng(seed)
    starts = rng.integers(0, n, size=(reps, n_blocks))
    idx = (starts[:, :, None] + np.arange(block)[None, None, :]) % n
    idx = idx.reshape(reps, -1)[:, :n]
    boot = sums[idx].sum(axis=1) / counts[idx].sum(axis=1)
    alpha = (1 - level) / 2
    low, high = np.quantile(boot, [alpha, 1 - alpha])
    return MarginCI(float(vals.mean()), float(low), float(high), level, block, reps)
