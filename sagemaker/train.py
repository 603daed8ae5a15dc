"""SageMaker script-mode training entry point for the next-bar direction model.

Contract (SageMaker training toolkit, also followed by ``stocksage.local.training``):

* input: ``SM_CHANNEL_TRAIN`` = directory holding the bar history objects in the layout of
  ``stocksage.history`` (``bars/symbol=X/year=YYYY/month=MM/*.json.gz``, gzip NDJSON, one bar
  per line; any depth below the channel directory is accepted);
* hyperparameters: command-line ``--key value`` arguments (``--model-type``, ``--c``,
  ``--folds``, ``--min-train-bars``, ``--model-version`` ...; ``-`` and ``_`` are equivalent),
  with ``SM_HPS`` (JSON) as the fallback for keys not on the command line; ``--start`` /
  ``--end`` (ISO times, end exclusive) bound the training window;
* optional channel ``champion`` (``SM_CHANNEL_CHAMPION``): the serving model's artifact; it is
  scored on the holdout rows after its own training data (``stocksage.model.champion``);
* output: ``SM_MODEL_DIR``/``model.joblib``, ``metadata.json``, ``metrics.json``, and
  ``range_model.joblib`` (next-bar log-range model, ``stocksage.model.volatility``) only when
  it beats its baselines walk-forward (``metadata.json`` ``range_model`` then names it) (tarred to
  ``model.tar.gz`` by the platform); a copy of ``metrics.json`` in ``SM_OUTPUT_DATA_DIR`` when
  set; on failure the reason goes to ``SM_OUTPUT_DIR``/``failure`` and the exit code is 1;
* stdout: metric lines such as ``validation:auc=0.512300;`` captured by
  ``stocksage.model.metrics.METRIC_DEFINITIONS``.

Run locally::

    SM_MODEL_DIR=/tmp/m SM_CHANNEL_TRAIN=/tmp/history PYTHONPATH=. python sagemaker/train.py
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
import traceback
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pandas as pd

HERE = Path(__file__).resolve().parent
if (HERE / "stocksage").is_dir() and str(HERE) not in sys.path:  # inside sourcedir.tar.gz
    sys.path.insert(0, str(HERE))

DEFAULTS = {
    "model-type": "logreg",
    "c": 0.001,
    "folds": 5,
    "min-train-bars": 500,
    "embargo-bars": 1,
    "train-bars": 0,
    "model-version": "",
    "bootstrap-reps": 1000,
    "block-bars": 20,
    "seed": 0,
    "min-symbol-bars": 60,
    "symbols": "",
    "channel": "train",
    "interval": "1d",
    "start": "",
    "end": "",
    "champion-channel": "champion",
    "range-model": "auto",
}
TYPES = {
    "model-type": str,
    "c": float,
    "folds": int,
    "min-train-bars": int,
    "embargo-bars": int,
    "train-bars": int,
    "model-version": str,
    "bootstrap-reps": int,
    "block-bars": int,
    "seed": int,
    "min-symbol-bars": int,
    "symbols": str,
    "channel": str,
    "interval": str,
    "start": str,
    "end": str,
    "champion-channel": str,
    "range-model": str,
}
#: Fewest distinct bar dates train.py accepts at all.
MIN_DATES = 120


def parse_hyperparameters(argv: list[str] | None = None, env: dict[str, str] | None = None) -> dict:
    """Merge command-line arguments over ``SM_HPS`` over the defaults."""
    env = os.environ if env is None else env
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    for key in DEFAULTS:
        parser.add_argument(
            f"--{key}",
            f"--{key.replace('-', '_')}",
            dest=key.replace("-", "_"),
            type=str,
            default=None,
        )
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        print(f"ignoring unknown arguments: {unknown}", file=sys.stderr)
    try:
        sm_hps = json.loads(env.get("SM_HPS") or "{}")
    except json.JSONDecodeError as exc:
        raise SystemExit(f"SM_HPS is not valid JSON: {exc}") from exc
    sm_hps = {k.replace("_", "-"): v for k, v in sm_hps.items()}
    hps = {}
    for key, default in DEFAULTS.items():
        value = getattr(args, key.replace("-", "_"))
        if value is None:
            value = sm_hps.get(key, default)
        try:
            hps[key] = TYPES[key](value)
        except (TypeError, ValueError) as exc:
            raise SystemExit(
                f"hyperparameter {key}={value!r} is not a valid {TYPES[key].__name__}"
            ) from exc
    return hps


def _print_metrics(values: dict[str, float]) -> None:
    from stocksage.model.metrics import METRIC_NAMES, format_metric_line

    for name in METRIC_NAMES:
        if name in values:
            print(format_metric_line(name, values[name]), flush=True)


def train(hps: dict, channel_dir: Path, model_dir: Path, output_data_dir: Path | None) -> dict:
    """Read history, evaluate walk-forward, fit the final model and write the artifact."""
    from stocksage.config import STACK
    from stocksage.model.dataset import (
        LABEL,
        build_training_frame,
        frames_from_bars,
        history_files,
        read_history_dir,
    )

    started = time.perf_counter()
    features = list(STACK.features)
    files = history_files(channel_dir)
    if not files:
        raise RuntimeError(f"no *.json.gz history objects under {channel_dir}")
    # scikit-learn (and scipy) take seconds to import: only once there is data to train on.
    from stocksage.model import metrics as M
    from stocksage.model.artifact import build_metadata, library_versions, write_artifact
    from stocksage.model.estimator import make_model, positive_proba
    from stocksage.model.holdout import metric_values, summarize, walk_forward_evaluate
    from stocksage.model.walkforward import walk_forward_splits

    bars = _select_bars(read_history_dir(channel_dir), hps)
    frames = frames_from_bars(bars)
    if hps["symbols"]:
        wanted = {s.strip().upper() for s in hps["symbols"].split(",") if s.strip()}
        frames = {s: f for s, f in frames.items() if s in wanted}
    print(
        f"read {len(bars)} bars from {len(files)} objects: "
        + ", ".join(f"{s}={len(f)}" for s, f in sorted(frames.items())),
        flush=True,
    )
    frame = build_training_frame(frames, features, min_bars=hps["min-symbol-bars"])
    n_dates = frame["bar_time"].nunique()
    if n_dates < MIN_DATES:
        raise RuntimeError(f"only {n_dates} distinct labelled bar dates; need >= {MIN_DATES}")
    min_train = _min_train_bars(n_dates, hps)
    folds = walk_forward_splits(
        frame["bar_time"],
        frame["label_time"],
        n_folds=hps["folds"],
        min_train_bars=min_train,
        embargo_bars=hps["embargo-bars"],
        train_bars=hps["train-bars"] or None,
    )

    def factory():
        return make_model(hps["model-type"], c=hps["c"], seed=hps["seed"])

    result = walk_forward_evaluate(frame, folds, factory, features)
    summary = summarize(
        result, block_bars=hps["block-bars"], reps=hps["bootstrap-reps"], seed=hps["seed"]
    )
    from stocksage.model.champion import (
        champion_metric_values,
        compare_with_champion,
        find_champion,
    )

    champion = None
    champion_dir = find_champion(
        os.environ.get(f"SM_CHANNEL_{hps['champion-channel'].upper().replace('-', '_')}")
    )
    if champion_dir is not None:
        champion = compare_with_champion(
            frame, result.holdout, champion_dir, features,
            block_bars=hps["block-bars"], reps=hps["bootstrap-reps"], seed=hps["seed"],
        )
        print(
            f"champion {champion['model_version']}: {champion['rows']} comparable holdout rows"
            + (f" ({champion['reason']})" if champion["reason"] else ""),
            flush=True,
        )
    range_summary, range_model, range_holdout, range_rows = _range_model(
        frame, features, hps, min_train)
    range_champion = None
    if champion_dir is not None and range_holdout is not None:
        from stocksage.model.volatility import compare_range_with_champion

        range_champion = compare_range_with_champion(
            range_holdout, frame, champion_dir, features, block_bars=hps["block-bars"],
            reps=hps["bootstrap-reps"], seed=hps["seed"])
        if range_summary is not None:
            range_summary["champion"] = range_champion
    X = frame[features].to_numpy(dtype=float)
    y = frame[LABEL].to_numpy(dtype=int)
    model = factory().fit(X, y)
    train_ll = M.log_loss(y, positive_proba(model, X))
    version = (
        hps["model-version"]
        or os.environ.get("TRAINING_JOB_NAME")
        or f"{hps['model-type']}-{time.strftime('%Y%m%dT%H%M%SZ', time.gmtime())}"
    )
    report = {
        "model_version": version,
        "model_type": hps["model-type"],
        "features": features,
        "hyperparameters": hps,
        "rows": len(frame),
        "symbols": sorted(frame["symbol"].unique().tolist()),
        "min_train_bars_used": int(min_train),
        **summary,
        "champion": champion,
        "final_model": {
            "train_rows": len(frame),
            "train_log_loss": train_ll,
            "train_up_rate": float(y.mean()),
        },
        "library_versions": library_versions(),
        "elapsed_seconds": None,
    }
    short_summary = {
        k: summary[k] for k in ("holdout", "best_baseline", "margin", "beats_baselines", "verdict")
    }
    short_summary["champion"] = champion
    report["range"] = range_summary
    from stocksage.model.volatility import RANGE_MODEL_FILE

    short_summary["range"] = {
        k: range_summary[k]
        for k in ("target", "loss", "best_baseline", "margin", "beats_baselines", "verdict")
    } if range_summary else None
    metadata = build_metadata(
        features=features,
        model_version=version,
        model_type=hps["model-type"],
        hyperparameters=hps,
        symbols=report["symbols"],
        first_bar_time=frame["bar_time"].min(),
        last_bar_time=frame["bar_time"].max(),
        rows=len(frame),
        metrics_summary=short_summary,
    )
    if range_model is not None:  # served only when it beats its baselines (see volatility)
        metadata["range_model"] = {
            "file": RANGE_MODEL_FILE,
            "output": "range_forecast = exp(forecast of ln(ln(high[t+1]/low[t+1]))), "
                      "log-price units",
            "rows": range_rows,
        }
    report["elapsed_seconds"] = round(time.perf_counter() - started, 3)
    write_artifact(model_dir, model, metadata, report)
    if range_model is not None:
        import joblib

        joblib.dump(range_model, model_dir / RANGE_MODEL_FILE)
    if output_data_dir is not None:
        _write_output_data(output_data_dir, model_dir, result.holdout, frame, range_holdout)
    _print_folds(summary["folds"])
    print(summary["verdict"], flush=True)
    if range_summary:
        print(range_summary["verdict"], flush=True)
    from stocksage.model.volatility import range_champion_metric_values, range_metric_values

    _print_metrics({**metric_values(summary, len(frame), train_ll),
                    **champion_metric_values(champion),
                    **range_metric_values(range_summary),
                    "range:in_artifact": 1.0 if range_model is not None else 0.0,
                    **range_champion_metric_values(range_champion)})
    print(
        f"model_version={version} rows={len(frame)} elapsed={report['elapsed_seconds']}s",
        flush=True,
    )
    return report


def _select_bars(bars: list, hps: dict) -> list:
    """The bars of the model's bar length (``interval``) inside the training window
    (``start`` inclusive, ``end`` exclusive), saying how many were dropped."""
    if hps["interval"]:  # one bar length per model: never pool daily with 15-minute bars
        skipped = sum(1 for b in bars if b.interval != hps["interval"])
        bars = [b for b in bars if b.interval == hps["interval"]]
        if skipped:
            print(f"skipped {skipped} bars whose interval is not {hps['interval']}", flush=True)
    if hps["start"] or hps["end"]:  # the training window decided by the retrain schedule
        start = _utc(hps["start"]) if hps["start"] else None
        end = _utc(hps["end"]) if hps["end"] else None
        before = len(bars)
        bars = [b for b in bars if (start is None or b.bar_time >= start)
                and (end is None or b.bar_time < end)]
        print(f"training window [{hps['start'] or '-'}, {hps['end'] or '-'}): "
              f"{len(bars)} of {before} bars", flush=True)
    return bars


def _min_train_bars(n_dates: int, hps: dict) -> int:
    """``min-train-bars``, lowered (with a warning) when ``n_dates`` leave too few dates for
    the folds after it."""
    min_train = hps["min-train-bars"]
    if n_dates - min_train - hps["embargo-bars"] < hps["folds"] * 20:
        adjusted = max(MIN_DATES // 2, n_dates // 2)
        print(
            f"warning: {n_dates} dates are too few for min-train-bars={min_train}; "
            f"using {adjusted}",
            flush=True,
        )
        min_train = adjusted
    return min_train


def _write_output_data(output_data_dir: Path, model_dir: Path, holdout: pd.DataFrame,
                       frame: pd.DataFrame, range_holdout: pd.DataFrame | None) -> None:
    """Copy ``metrics.json`` and write the holdout predictions to ``SM_OUTPUT_DATA_DIR``."""
    from stocksage.model.dataset import LABEL

    output_data_dir.mkdir(parents=True, exist_ok=True)
    (output_data_dir / "metrics.json").write_text((model_dir / "metrics.json").read_text())
    cols = ["fold", "symbol", "bar_time", LABEL, "p_model", "p_majority", "p_persistence"]
    # ret_next (close[t+1]/close[t] - 1) lets `make report` backtest the signal.
    holdout = holdout[cols].merge(
        frame[["symbol", "bar_time", "ret_next"]], on=["symbol", "bar_time"], how="left"
    )
    holdout.to_csv(output_data_dir / "holdout_predictions.csv.gz", index=False)
    if range_holdout is not None:
        range_holdout.to_csv(output_data_dir / "range_holdout_predictions.csv.gz",
                             index=False)


def _print_folds(folds: list[dict]) -> None:
    """One line per walk-forward fold: its windows and the model's and baselines' log loss."""
    for fold in folds:
        print(
            f"fold {fold['fold']}: train {fold['train_start'][:10]}..{fold['train_end'][:10]} "
            f"({fold['train_rows']} rows) valid {fold['valid_start'][:10]}.."
            f"{fold['valid_end'][:10]} ({fold['valid_rows']} rows) "
            f"model_ll={fold['model']['log_loss']:.5f} "
            f"majority_ll={fold['baselines']['majority']['log_loss']:.5f} "
            f"persistence_ll={fold['baselines']['persistence']['log_loss']:.5f}",
            flush=True,
        )


def _range_model(frame, features, hps, min_train):
    """Walk-forward verdict of the next-bar log-range model and, if it beats the best
    baseline (CI low of the MSE margin > 0), the model fitted on every row.

    Returns ``(summary | None, fitted model | None, holdout | None, rows)``; ``None`` summary
    when the frame has too few rows with the range columns for the folds. Hyperparameter
    ``range-model=off`` evaluates but never ships it (the bootstrap model of a new stack, which
    serves without passing the gate, so the range output reaches the endpoint only through
    the promotion gate).
    """
    from stocksage.model.volatility import (
        RANGE_BASELINES,
        RANGE_TARGET,
        evaluate_range,
        make_range_model,
        summarize_range,
    )
    from stocksage.model.walkforward import walk_forward_splits

    columns = [RANGE_TARGET, *(f"range_{n}" for n in RANGE_BASELINES)]
    usable = frame.dropna(subset=columns).reset_index(drop=True)
    try:
        folds = walk_forward_splits(
            usable["bar_time"], usable["label_time"], n_folds=hps["folds"],
            min_train_bars=min_train, embargo_bars=hps["embargo-bars"],
            train_bars=hps["train-bars"] or None,
        )
    except ValueError as exc:
        print(f"range model: not evaluated ({exc})", flush=True)
        return None, None, None, 0
    holdout = evaluate_range(usable, folds, features)
    summary = summarize_range(holdout, block_bars=hps["block-bars"],
                              reps=hps["bootstrap-reps"], seed=hps["seed"])
    model = None
    if summary["beats_baselines"] and hps["range-model"] != "off":
        model = make_range_model(features).fit(
            usable[features].to_numpy(dtype=float), usable[RANGE_TARGET].to_numpy(dtype=float))
    return summary, model, holdout, len(usable)


def _utc(text: str):
    from datetime import UTC, datetime

    value = datetime.fromisoformat(text)
    return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


def main(argv: list[str] | None = None) -> int:
    hps = parse_hyperparameters(argv)
    model_dir = Path(os.environ.get("SM_MODEL_DIR", "/opt/ml/model"))
    channel_env = f"SM_CHANNEL_{hps['channel'].upper()}"
    channel_dir = Path(os.environ.get(channel_env, f"/opt/ml/input/data/{hps['channel']}"))
    out_data = os.environ.get("SM_OUTPUT_DATA_DIR")
    try:
        train(hps, channel_dir, model_dir, Path(out_data) if out_data else None)
    except Exception as exc:  # noqa: BLE001 - report every failure the SageMaker way
        reason = f"{type(exc).__name__}: {exc}"
        traceback.print_exc()
        output_dir = os.environ.get("SM_OUTPUT_DIR")
        if output_dir:
            Path(output_dir).mkdir(parents=True, exist_ok=True)
            (Path(output_dir) / "failure").write_text(reason[:1000])
        print(f"training failed: {reason}", file=sys.stderr, flush=True)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
