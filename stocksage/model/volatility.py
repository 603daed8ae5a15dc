"""Next-bar volatility: the log high-low range target, its baselines and the range model.

Target (per symbol, bar ``t``)::

    range[t]          = ln(high[t] / low[t])                      (log-price units, >= 0)
    log_range_next[t] = ln(max(range[t+1], RANGE_FLOOR))          (RANGE_FLOOR = 1e-4 = 1 bp)

``range`` is the high-low range of Parkinson (1980), whose variance estimator is
``range**2 / (4 ln 2)``; its logarithm is close to Gaussian and forecastable because volatility
clusters (Alizadeh, Brandt & Diebold 2002, "Range-based estimation of stochastic volatility
models"). The floor only matters for bars with ``high == low``.

Loss: mean squared error on ``log_range_next`` (nats**2 per row); lower is better. The
baselines are the field's standard forecasts, computed in log space from bars ``<= t`` only
(so a constant bias such as Jensen's ``E[ln r] != ln E[r]`` does not penalise them):

* ``last``: ``ln range[t]`` (random walk);
* ``mean22``: mean of ``ln range`` over the last 22 bars (one trading month, the longest HAR
  term of Corsi 2009);
* ``ewma``: exponentially weighted mean of ``ln range`` with RiskMetrics' decay
  ``lambda = 0.94`` (J.P. Morgan/Reuters 1996), ``m[t] = 0.94 m[t-1] + 0.06 ln range[t]``
  seeded with the first value (``pandas.ewm(alpha=0.06, adjust=False)``).

Model (``make_range_model``): ordinary least squares (``Ridge(alpha=1)`` after
standardisation) on the features the processor already streams (``STACK.features``) plus
``ln max(|x|, 1e-4)`` of ``ret_1``, ``ret_5``, ``atr_norm`` and ``volume_ratio`` (HAR-like
magnitude terms: ATR(14) is a Wilder average of the true range, ~ the 1/14-decay volatility
level; ``|ret_1|`` and ``|ret_5|`` are the 1- and 5-bar magnitudes). Only scikit-learn
built-ins and numpy functions are pickled, so ``sagemaker/inference.py`` serves it without
stocksage. The output is the forecast of ``ln range[t+1]``; ``exp`` of it (the
``range_forecast`` served by the endpoint) is the median next-bar range if the log range is
Gaussian, in log-price units (0.02 = a high 2 % above the low).

Nothing here is tuned on the holdout: the features, ``alpha`` and the floors were fixed
before the first walk-forward run.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import numpy.typing as npt
import pandas as pd

if TYPE_CHECKING:
    from sklearn.pipeline import Pipeline

    from stocksage.model.walkforward import Fold

RANGE_TARGET = "log_range_next"
#: File of the fitted range model inside ``model.tar.gz`` (absent when it did not beat the
#: baselines: the endpoint then serves P(up) only).
RANGE_MODEL_FILE = "range_model.joblib"
#: Smallest ``ln(high / low)`` used before taking the log (1 basis point).
RANGE_FLOOR = 1e-4
#: RiskMetrics daily decay.
EWMA_LAMBDA = 0.94
#: Bars of the rolling-mean baseline (Corsi's monthly HAR term).
MEAN_BARS = 22
RANGE_BASELINES: tuple[str, ...] = ("last", "mean22", "ewma")
#: Features that enter the model also as ``ln max(|x|, 1e-4)``.
MAGNITUDE_FEATURES: tuple[str, ...] = ("ret_1", "ret_5", "atr_norm", "volume_ratio")


def log_range(high: npt.ArrayLike, low: npt.ArrayLike) -> npt.NDArray[np.float64]:
    """``ln(max(ln(high / low), RANGE_FLOOR))`` element-wise (arrays of prices > 0)."""
    h = np.asarray(high, dtype=float)
    lo = np.asarray(low, dtype=float)
    return np.log(np.maximum(np.log(h / lo), RANGE_FLOOR))


def range_columns(frame: pd.DataFrame) -> pd.DataFrame:
    """Target and baseline columns of one symbol's OHLCV frame (index ``bar_time``, sorted).

    Returns a frame on the same index with ``log_range`` (bar ``t``), ``log_range_next``
    (bar ``t+1``; NaN on the last bar) and ``range_last``, ``range_mean22``, ``range_ewma``
    (forecasts of ``log_range_next`` from bars ``<= t``; ``mean22`` is NaN for the first 21).
    """
    lr = pd.Series(log_range(frame["high"], frame["low"]), index=frame.index)
    return pd.DataFrame(
        {
            "log_range": lr,
            RANGE_TARGET: lr.shift(-1),
            "range_last": lr,
            "range_mean22": lr.rolling(MEAN_BARS, min_periods=MEAN_BARS).mean(),
            "range_ewma": lr.ewm(alpha=1 - EWMA_LAMBDA, adjust=False).mean(),
        },
        index=frame.index,
    )


def make_range_model(features: Sequence[str], alpha: float = 1.0) -> Pipeline:
    """Unfitted sklearn Pipeline: ``X`` (n, len(features)) in ``features`` order -> ln range.

    Raises:
        ValueError: if a magnitude feature is missing from ``features``.
    """
    from sklearn.compose import ColumnTransformer
    from sklearn.linear_model import Ridge
    from sklearn.pipeline import Pipeline
    from sklearn.preprocessing import FunctionTransformer, StandardScaler

    features = list(features)
    missing = [f for f in MAGNITUDE_FEATURES if f not in features]
    if missing:
        raise ValueError(f"the range model needs features {missing}")
    magnitude = Pipeline(
        [
            ("abs", FunctionTransformer(np.abs)),
            ("floor", FunctionTransformer(np.clip, kw_args={"a_min": 1e-4, "a_max": None})),
            ("log", FunctionTransformer(np.log)),
        ]
    )
    columns = ColumnTransformer(
        [
            ("magnitude", magnitude, [features.index(f) for f in MAGNITUDE_FEATURES]),
            ("raw", "passthrough", list(range(len(features)))),
        ]
    )
    return Pipeline(
        [("terms", columns), ("scale", StandardScaler()), ("ols", Ridge(alpha=float(alpha)))]
    )


def row_squared_error(y: npt.ArrayLike, forecast: npt.ArrayLike) -> npt.NDArray[np.float64]:
    y = np.asarray(y, dtype=float).ravel()
    f = np.asarray(forecast, dtype=float).ravel()
    if y.shape != f.shape:
        raise ValueError(f"targets and forecasts differ in length: {y.size} != {f.size}")
    return (f - y) ** 2


def evaluate_range(
    frame: pd.DataFrame, folds: Sequence[Fold], features: Sequence[str]
) -> pd.DataFrame:
    """Walk-forward holdout of the range model and the baselines.

    ``frame`` is a training frame with ``log_range_next`` and the ``range_*`` baseline columns
    (rows with any NaN there must be dropped first); ``folds`` come from
    ``walk_forward_splits`` on the same frame. Returns columns ``fold, symbol, bar_time,
    log_range_next, f_model, f_last, f_mean22, f_ewma`` (one row per validation row).
    """
    features = list(features)
    X = frame[features].to_numpy(dtype=float)
    y = frame[RANGE_TARGET].to_numpy(dtype=float)
    parts = []
    for fold in folds:
        model = make_range_model(features).fit(X[fold.train], y[fold.train])
        valid = frame.iloc[fold.valid]
        part = pd.DataFrame(
            {
                "fold": fold.number,
                "symbol": valid["symbol"].to_numpy(),
                "bar_time": valid["bar_time"].to_numpy(),
                RANGE_TARGET: y[fold.valid],
                "f_model": model.predict(X[fold.valid]),
            }
        )
        for name in RANGE_BASELINES:
            part[f"f_{name}"] = valid[f"range_{name}"].to_numpy(dtype=float)
        parts.append(part)
    return pd.concat(parts, ignore_index=True)


def summarize_range(holdout: pd.DataFrame, *, block_bars: int = 20, reps: int = 1000,
                    seed: int = 0) -> dict:
    """MSE of the model and each baseline, the best baseline, the margin and its CI, a verdict.

    The margin is ``best baseline MSE - model MSE`` per row (positive = model better), with the
    same circular block bootstrap over dates as the direction model
    (``metrics.block_bootstrap_mean``). The model beats the baselines only if the CI low > 0.
    """
    from stocksage.model.metrics import block_bootstrap_mean

    y = holdout[RANGE_TARGET].to_numpy(dtype=float)
    errors = {n: row_squared_error(y, holdout[f"f_{n}"]) for n in ("model", *RANGE_BASELINES)}
    mse = {n: float(e.mean()) for n, e in errors.items()}
    best = min(RANGE_BASELINES, key=lambda n: mse[n])
    times = pd.to_datetime(holdout["bar_time"], utc=True).to_numpy()
    ci = block_bootstrap_mean(errors[best] - errors["model"], times, block_bars=block_bars,
                              reps=reps, seed=seed)
    beats = bool(ci.ci_low > 0)
    pct = round(ci.level * 100)
    verdict = (
        f"The range model {'beats' if beats else 'does NOT beat'} the best volatility baseline "
        f"({best}) on walk-forward MSE of the next bar's log range: margin "
        f"{ci.estimate:+.5f}/row (model {mse['model']:.5f} vs {mse[best]:.5f}), {pct}% "
        f"block-bootstrap CI [{ci.ci_low:+.5f}, {ci.ci_high:+.5f}]"
        + (" lies above 0." if beats else " includes or lies below 0: not served.")
    )
    return {
        "target": "ln(max(ln(high[t+1]/low[t+1]), 1e-4))",
        "loss": "mse",
        "holdout": {"model": {"mse": mse["model"], "rows": int(y.size)},
                    "baselines": {n: {"mse": mse[n]} for n in RANGE_BASELINES}},
        "best_baseline": best,
        "margin": {"definition": "best baseline MSE minus model MSE per row (positive = model "
                                 "better)", "mse": ci.to_dict()},
        "beats_baselines": beats,
        "verdict": verdict,
    }


def range_metric_values(summary: dict | None) -> dict[str, float]:
    """Flat metric lines of the range model (``metrics.RANGE_METRIC_NAMES`` without the
    ``range:champion_*`` ones); NaN (rows 0, beats 0) when it was not evaluated."""
    nan = float("nan")
    if not summary:
        return {"range:validation_mse": nan, "range:baseline_best_mse": nan,
                "range:margin_mse": nan, "range:margin_mse_ci_low": nan,
                "range:margin_mse_ci_high": nan, "range:beats_baselines": 0.0,
                "range:validation_rows": 0.0}
    m = summary["margin"]["mse"]
    return {
        "range:validation_mse": summary["holdout"]["model"]["mse"],
        "range:baseline_best_mse": summary["holdout"]["baselines"][summary["best_baseline"]][
            "mse"],
        "range:validation_rows": float(summary["holdout"]["model"]["rows"]),
        "range:margin_mse": m["estimate"],
        "range:margin_mse_ci_low": m["ci_low"],
        "range:margin_mse_ci_high": m["ci_high"],
        "range:beats_baselines": 1.0 if summary["beats_baselines"] else 0.0,
    }


def compare_range_with_champion(holdout: pd.DataFrame, frame: pd.DataFrame,
                                champion_dir: str | Path, features: Sequence[str], *,
                                block_bars: int = 20, reps: int = 1000,
                                seed: int = 0) -> dict[str, Any]:
    """The serving model's range model vs the candidate's on the range holdout rows after the
    serving model's last training bar (as ``stocksage.model.champion`` does for P(up)).

    Returns ``{"has_model": False}`` when the serving artifact has no range model; otherwise
    ``rows``, ``mse`` (serving), ``candidate_mse`` and ``margin_mse`` (serving MSE minus
    candidate MSE per row with its block-bootstrap CI; positive = candidate better).
    """
    import json
    import math

    import joblib

    from stocksage.model.metrics import block_bootstrap_mean

    champion_dir = Path(champion_dir)
    metadata = json.loads((champion_dir / "metadata.json").read_text())
    info = metadata.get("range_model")
    if not isinstance(info, dict) or not (champion_dir / str(info.get("file", ""))).is_file():
        return {"has_model": False, "rows": 0}
    out = {"has_model": True, "rows": 0, "mse": math.nan, "candidate_mse": math.nan,
           "margin_mse": {"estimate": math.nan, "ci_low": math.nan, "ci_high": math.nan}}
    last = (metadata.get("data_range") or {}).get("last_bar_time")
    if not last or list(metadata.get("features") or []) != list(features):
        return out
    cutoff = pd.Timestamp(last)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    rows = holdout.loc[pd.to_datetime(holdout["bar_time"], utc=True) > cutoff]
    if rows.empty:
        return out
    keyed = frame.set_index(["symbol", "bar_time"])[list(features)]
    X = keyed.loc[list(zip(rows["symbol"], rows["bar_time"], strict=True))].to_numpy(float)
    served = joblib.load(champion_dir / info["file"]).predict(X)
    y = rows[RANGE_TARGET].to_numpy(float)
    diff = row_squared_error(y, served) - row_squared_error(y, rows["f_model"])
    ci = block_bootstrap_mean(diff, pd.to_datetime(rows["bar_time"], utc=True).to_numpy(),
                              block_bars=block_bars, reps=reps, seed=seed)
    out.update(rows=len(rows), mse=float(row_squared_error(y, served).mean()),
               candidate_mse=float(row_squared_error(y, rows["f_model"]).mean()),
               margin_mse=ci.to_dict())
    return out


def range_champion_metric_values(champion: dict | None) -> dict[str, float]:
    """``range:champion_*`` metric lines (``has_model`` 0 and NaN margins when none)."""
    nan = float("nan")
    if not champion or not champion.get("has_model"):
        return {"range:champion_has_model": 0.0, "range:champion_rows": 0.0,
                "range:margin_champion_mse": nan, "range:margin_champion_mse_ci_low": nan,
                "range:margin_champion_mse_ci_high": nan}
    m = champion["margin_mse"]
    return {"range:champion_has_model": 1.0, "range:champion_rows": float(champion["rows"]),
            "range:margin_champion_mse": m["estimate"],
            "range:margin_champion_mse_ci_low": m["ci_low"],
            "range:margin_champion_mse_ci_high": m["ci_high"]}


__all__ = [
    "EWMA_LAMBDA",
    "MEAN_BARS",
    "RANGE_BASELINES",
    "RANGE_FLOOR",
    "RANGE_MODEL_FILE",
    "RANGE_TARGET",
    "compare_range_with_champion",
    "evaluate_range",
    "log_range",
    "make_range_model",
    "range_champion_metric_values",
    "range_columns",
    "range_metric_values",
    "summarize_range",
]
