"""The quality gate: when may a freshly trained model replace the one that serves?

The artifact carries two outputs: P(up) (direction) and, when it beat its baselines, the
next-bar range forecast (``stocksage.model.volatility``). The gate promotes it when

* ``holdout_size`` passes, and
* at least one output passes both of its checks (direction: ``beats_baselines`` and
  ``beats_serving_model``; range: ``range_beats_baselines`` and
  ``range_beats_serving_model``), and
* no output is shown worse than the serving model's (``direction_not_worse``: the CI high of
  the P(up) champion margin is not below 0; ``range_not_worse``: same for the range MSE, and
  a serving range output is not dropped).

So a range model that beats the last value, the 22-bar mean and the EWMA(0.94) of the log
range (MSE, CI low > ``min_margin``) is promoted even though P(up) does not beat the majority
baseline on real daily bars, as long as the P(up) it ships is not measurably worse than the
one serving. Each check records its value, threshold and a readable detail.

Direction checks:

1. ``holdout_size``: the walk-forward holdout has at least ``min_holdout_rows`` rows (a
   verdict on a handful of rows means nothing).
2. ``beats_baselines``: the model beats the best naive baseline (majority class or last-move
   persistence, whichever had the lower holdout log loss, chosen after the fact, which favours
   the baselines) on walk-forward log loss: the lower end of the 95 % circular block-bootstrap
   CI of ``baseline loss - model loss`` is above ``min_margin`` nats/row.
3. ``beats_serving_model``: the model beats the model that serves now on the same holdout rows
   that model never trained on (``stocksage.model.champion``): at least ``min_champion_rows``
   such rows and the CI of ``serving loss - candidate loss`` above ``min_margin``. Passes
   trivially when nothing serves yet. Fails when the serving model changed since the job
   started (the comparison would be against the wrong model), and when there are too few
   comparable rows: without evidence we keep what serves.

Inputs are the flat metric names of ``stocksage.model.metrics.METRIC_NAMES`` (the training
job's ``FinalMetricDataList``). A missing or NaN metric fails its check.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class GatePolicy:
    min_margin: float = 0.0
    min_holdout_rows: int = 200
    min_champion_rows: int = 100


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str
    value: float | None = None
    threshold: float | None = None


@dataclass(frozen=True)
class GateVerdict:
    passed: bool
    checks: tuple[Check, ...]

    @property
    def summary(self) -> str:
        head = "PASSED" if self.passed else "REJECTED"
        failed = [c for c in self.checks if not c.passed]
        shown = list(self.checks) if self.passed else failed
        return f"{head}: " + "; ".join(f"{c.name}: {c.detail}" for c in shown)

    def to_dict(self) -> dict:
        return {
            "passed": self.passed,
            "summary": self.summary,
            "checks": [
                {k: (None if isinstance(v, float) and not math.isfinite(v) else v)
                 for k, v in asdict(c).items()}
                for c in self.checks
            ],
        }


def _get(metrics: Mapping[str, float], name: str) -> float | None:
    value = metrics.get(name)
    if value is None:
        return None
    value = float(value)
    return value if math.isfinite(value) else None


def _margin_check(name: str, what: str, metrics: Mapping[str, float], prefix: str,
                  min_margin: float, unit: str = "nats/row") -> Check:
    est = _get(metrics, prefix)
    low = _get(metrics, f"{prefix}_ci_low")
    high = _get(metrics, f"{prefix}_ci_high")
    if est is None or low is None:
        return Check(name, False, f"metric {prefix if est is None else prefix + '_ci_low'} "
                                  "missing or NaN", None, min_margin)
    ci = f"95% CI [{low:+.5f}, {high:+.5f}]" if high is not None else f"CI low {low:+.5f}"
    passed = low > min_margin
    verb = "beats" if passed else "does not beat"
    return Check(name, passed, f"{verb} {what}: margin {est:+.5f} {unit}, {ci} "
                               f"({'above' if passed else 'not above'} {min_margin:+.5f})",
                 low, min_margin)


def evaluate_gate(
    metrics: Mapping[str, float],
    *,
    serving_version: str | None,
    trained_against: str | None,
    policy: GatePolicy = GatePolicy(),
) -> GateVerdict:
    """Apply the gate to a candidate's metrics.

    Args:
        metrics: Flat metric name -> value (``FinalMetricDataList``).
        serving_version: Model version serving now (None: nothing serves yet).
        trained_against: The serving version the training job scored as champion
            (hyperparameter ``champion-version``; None/"" if it had none).
        policy: Thresholds.
    """
    checks: list[Check] = []
    rows = _get(metrics, "validation:rows")
    checks.append(Check(
        "holdout_size",
        rows is not None and rows >= policy.min_holdout_rows,
        f"{int(rows) if rows is not None else 'no'} walk-forward holdout rows "
        f"(need >= {policy.min_holdout_rows})",
        rows, float(policy.min_holdout_rows)))
    checks.append(_margin_check("beats_baselines", "the best naive baseline", metrics,
                                "validation:margin_log_loss", policy.min_margin))
    if not serving_version:
        checks.append(Check("beats_serving_model", True, "no model serves yet"))
    elif (trained_against or "") != serving_version:
        checks.append(Check(
            "beats_serving_model", False,
            f"the job was compared with {trained_against or 'no model'}, but "
            f"{serving_version} serves now: retrain against the serving model"))
    else:
        n = _get(metrics, "validation:champion_rows") or 0.0
        if n < policy.min_champion_rows:
            checks.append(Check(
                "beats_serving_model", False,
                f"only {int(n)} holdout rows after {serving_version}'s training data "
                f"(need >= {policy.min_champion_rows}); keeping the serving model",
                n, float(policy.min_champion_rows)))
        else:
            checks.append(_margin_check(
                "beats_serving_model", f"the serving model {serving_version} on {int(n)} rows",
                metrics, "validation:margin_champion_log_loss", policy.min_margin))
    direction_ok = all(c.passed for c in checks[1:3])
    checks.append(_not_worse("direction_not_worse", "P(up)", metrics,
                             "validation:margin_champion_log_loss",
                             serving_version, trained_against, "validation:champion_rows"))
    checks.extend(_range_checks(metrics, serving_version, trained_against, policy))
    by_name = {c.name: c for c in checks}
    range_ok = by_name["range_beats_baselines"].passed and \
        by_name["range_beats_serving_model"].passed and \
        (_get(metrics, "range:in_artifact") or 0.0) > 0
    passed = (by_name["holdout_size"].passed and (direction_ok or range_ok)
              and by_name["direction_not_worse"].passed and by_name["range_not_worse"].passed)
    return GateVerdict(passed, tuple(checks))


def _not_worse(name: str, what: str, metrics: Mapping[str, float], prefix: str,
               serving_version: str | None, trained_against: str | None,
               rows_name: str) -> Check:
    """Passes unless the CI of ``serving loss - candidate loss`` lies wholly below 0."""
    high = _get(metrics, f"{prefix}_ci_high")
    rows = _get(metrics, rows_name) or 0.0
    if not serving_version or (trained_against or "") != serving_version or not rows \
            or high is None:
        return Check(name, True, f"no evidence that the candidate's {what} is worse")
    passed = high >= 0
    return Check(name, passed, f"{what} vs the serving model: CI high of the margin "
                               f"{high:+.5f} {'>=' if passed else '<'} 0", high, 0.0)


def _range_checks(metrics: Mapping[str, float], serving_version: str | None,
                  trained_against: str | None, policy: GatePolicy) -> list[Check]:
    checks = [_margin_check("range_beats_baselines",
                            "the best volatility baseline (last, mean22, ewma)", metrics,
                            "range:margin_mse", policy.min_margin, "MSE of ln range/row")]
    serving_has = (_get(metrics, "range:champion_has_model") or 0.0) > 0
    candidate_has = (_get(metrics, "range:in_artifact") or 0.0) > 0
    if not serving_version or not serving_has:
        checks.append(Check("range_beats_serving_model", True,
                            "no range model serves yet"))
    elif (trained_against or "") != serving_version:
        checks.append(Check("range_beats_serving_model", False,
                            f"the job was compared with {trained_against or 'no model'}, but "
                            f"{serving_version} serves now"))
    else:
        n = _get(metrics, "range:champion_rows") or 0.0
        if n < policy.min_champion_rows:
            checks.append(Check("range_beats_serving_model", False,
                                f"only {int(n)} range holdout rows after {serving_version}'s "
                                f"training data (need >= {policy.min_champion_rows})",
                                n, float(policy.min_champion_rows)))
        else:
            checks.append(_margin_check(
                "range_beats_serving_model",
                f"the serving range model {serving_version} on {int(n)} rows", metrics,
                "range:margin_champion_mse", policy.min_margin, "MSE of ln range/row"))
    if serving_version and serving_has and not candidate_has:
        checks.append(Check("range_not_worse", False,
                            f"{serving_version} serves a range forecast and the candidate has "
                            "none (it did not beat its baselines)"))
    else:
        checks.append(_not_worse("range_not_worse", "range forecast", metrics,
                                 "range:margin_champion_mse", serving_version if serving_has
                                 else None, trained_against, "range:champion_rows"))
    return checks
