"""Score the model that serves now (the champion) on the candidate's walk-forward holdout.

"Does the new model beat the current one?" needs both scored on the same rows, and the
champion must not have trained on them. The champion artifact (``model.tar.gz`` or its
extracted files: ``model.joblib`` + ``metadata.json``) comes in as an extra training channel;
its ``metadata.json`` ``data_range.last_bar_time`` is the newest bar it learned from. The
comparable rows are the candidate's holdout rows with ``bar_time`` strictly after that time:
out of sample for the champion (frozen) and for the candidate (walk-forward fold models only
saw earlier rows). On those rows we report both log losses and the margin
``champion loss - candidate loss`` (positive = candidate better) with the same circular block
bootstrap over dates as the baseline margin.

Why not re-fit the champion's recipe on the new folds? With unchanged hyperparameters both
recipes give identical walk-forward predictions, so the comparison would say nothing about
the model actually serving; the frozen champion on data it never saw is what production
would have got.
"""

from __future__ import annotations

import json
import math
import tempfile
from pathlib import Path

import numpy as np
import pandas as pd

import stocksage.model.metrics as M
from stocksage.model.dataset import LABEL


def find_champion(channel_dir: str | Path | None) -> Path | None:
    """Directory holding the champion's ``model.joblib`` + ``metadata.json`` (or None).

    ``model.tar.gz`` files in the channel are extracted to a temporary directory first.
    """
    if not channel_dir or not Path(channel_dir).is_dir():
        return None
    root = Path(channel_dir)
    for meta in sorted(root.rglob("metadata.json")):
        if (meta.parent / "model.joblib").is_file():
            return meta.parent
    for archive in sorted(root.rglob("*.tar.gz")):
        from stocksage.model.artifact import extract_tar

        dest = Path(tempfile.mkdtemp(prefix="champion-"))
        extract_tar(archive.read_bytes(), dest)
        if (dest / "metadata.json").is_file() and (dest / "model.joblib").is_file():
            return dest
    return None


def compare_with_champion(
    frame: pd.DataFrame,
    holdout: pd.DataFrame,
    champion_dir: Path,
    features: list[str],
    *,
    block_bars: int = 20,
    reps: int = 1000,
    seed: int = 0,
) -> dict:
    """Champion vs candidate on the holdout rows the champion never trained on."""
    import joblib

    from stocksage.model.estimator import positive_proba

    metadata = json.loads((champion_dir / "metadata.json").read_text())
    version = str(metadata.get("model_version", "unknown"))
    last = (metadata.get("data_range") or {}).get("last_bar_time")
    out: dict = {"model_version": version, "trained_until": last, "rows": 0,
                 "log_loss": math.nan, "candidate_log_loss": math.nan,
                 "margin_log_loss": {"estimate": math.nan, "ci_low": math.nan,
                                     "ci_high": math.nan},
                 "comparable": False, "reason": ""}
    champ_features = list(metadata.get("features") or [])
    if champ_features != list(features):
        out["reason"] = f"feature lists differ: champion {champ_features} vs {list(features)}"
        return out
    if not last:
        out["reason"] = "champion metadata has no data_range.last_bar_time"
        return out
    cutoff = pd.Timestamp(last)
    cutoff = cutoff.tz_localize("UTC") if cutoff.tzinfo is None else cutoff.tz_convert("UTC")
    times = pd.to_datetime(holdout["bar_time"], utc=True)
    rows = holdout.loc[times > cutoff]
    if rows.empty:
        out["reason"] = f"no holdout row after the champion's last training bar ({last})"
        return out
    keyed = frame.set_index(["symbol", "bar_time"])[features]
    X = keyed.loc[list(zip(rows["symbol"], rows["bar_time"], strict=True))].to_numpy(float)
    model = joblib.load(champion_dir / "model.joblib")
    p_champ = positive_proba(model, X)
    y = rows[LABEL].to_numpy()
    diff = M.row_log_loss(y, p_champ) - M.row_log_loss(y, rows["p_model"].to_numpy())
    ci = M.block_bootstrap_mean(diff, pd.to_datetime(rows["bar_time"], utc=True).to_numpy(),
                                block_bars=block_bars, reps=reps, seed=seed)
    out.update({
        "rows": len(rows),
        "log_loss": M.log_loss(y, p_champ),
        "candidate_log_loss": M.log_loss(y, rows["p_model"].to_numpy()),
        "margin_log_loss": ci.to_dict(),
        "comparable": True,
        "first_bar_time": str(pd.to_datetime(rows["bar_time"], utc=True).min()),
        "p_champion_mean": float(np.mean(p_champ)),
    })
    return out


def champion_metric_values(champion: dict | None) -> dict[str, float]:
    """The flat metric lines of the champion comparison (rows 0 when there is none)."""
    if not champion:
        nan = math.nan
        return {"champion:log_loss": nan, "validation:champion_rows": 0.0,
                "validation:margin_champion_log_loss": nan,
                "validation:margin_champion_log_loss_ci_low": nan,
                "validation:margin_champion_log_loss_ci_high": nan}
    m = champion["margin_log_loss"]
    return {
        "champion:log_loss": champion["log_loss"],
        "validation:champion_rows": float(champion["rows"]),
        "validation:margin_champion_log_loss": m["estimate"],
        "validation:margin_champion_log_loss_ci_low": m["ci_low"],
        "validation:margin_champion_log_loss_ci_high": m["ci_high"],
    }
