"""Operator commands of the model lifecycle on the local stack (``make retrain|rollback|report``).

::

    python -m stocksage.local.model_ops retrain [--set c=1.0 --set symbols=IBM] [--timeout 600]
    python -m stocksage.local.model_ops rollback
    python -m stocksage.local.model_ops versions
    python -m stocksage.local.model_ops report [--out out/lifecycle/report.html] [--cost-bps 5]

``retrain`` fires the retrain schedule now, as EventBridge Scheduler would: the schedule's
target Lambda runs in this process with the Scheduler payload (the tick = now), and creates
the training job on the emulator. The local runtime (``make up``) runs the job, announces it on
EventBridge and the promote Lambda applies the gate; this command follows along and prints
the job status, metrics against the baselines, the gate verdict and the endpoint's version.

``rollback`` and ``report`` use the same domain code and adapters as the Lambdas, with
operator credentials (they are operator tools, not functions).
"""

from __future__ import annotations

import argparse
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

from stocksage.lifecycle import versions as V

REPO_ROOT = Path(__file__).resolve().parents[2]


def _stack():
    import boto3

    from stocksage.local.stack import LocalEndpoints, outputs, use_local_environ

    endpoints = use_local_environ(LocalEndpoints.from_env())
    out = outputs(endpoints)
    return endpoints, out, boto3


def _adapters(boto3, out):
    from stocksage.adapters.model_registry import DynamoModelRegistry
    from stocksage.adapters.sagemaker_platform import SageMakerPlatform

    return (DynamoModelRegistry(boto3.resource("dynamodb"), out["versions_table"]),
            SageMakerPlatform(boto3.client("sagemaker"), boto3.client("s3")))


def _metrics_lines(metrics: dict[str, float]) -> list[str]:
    def g(name):
        return metrics.get(name, float("nan"))

    lines = [
        "  holdout rows            "
        f"{int(g('validation:rows')) if 'validation:rows' in metrics else '-'}",
        f"  model log loss          {g('validation:log_loss'):.5f}",
        f"  majority baseline       {g('baseline:majority_log_loss'):.5f}",
        f"  persistence baseline    {g('baseline:persistence_log_loss'):.5f}",
        (f"  margin vs best baseline {g('validation:margin_log_loss'):+.5f} nats/row, 95% CI "
         f"[{g('validation:margin_log_loss_ci_low'):+.5f}, "
         f"{g('validation:margin_log_loss_ci_high'):+.5f}]"),
    ]
    if metrics.get("validation:champion_rows"):
        lines.append(
            f"  margin vs serving model {g('validation:margin_champion_log_loss'):+.5f} on "
            f"{int(g('validation:champion_rows'))} rows, 95% CI "
            f"[{g('validation:margin_champion_log_loss_ci_low'):+.5f}, "
            f"{g('validation:margin_champion_log_loss_ci_high'):+.5f}]")
    else:
        lines.append("  margin vs serving model - (no holdout rows after the serving model's data)")
    lines[0:0] = ["  P(up), next-bar direction:"]
    lines.append("  next-bar range, MSE of ln(ln(high/low)) (stocksage.model.volatility):")
    if not g("range:validation_rows") > 0:
        lines.append("    not evaluated (too few rows)")
        return lines
    verdict = "beats" if g("range:beats_baselines") == 1.0 else "does NOT beat"
    lines += [
        f"    range model MSE       {g('range:validation_mse'):.5f}",
        (f"    best baseline MSE     {g('range:baseline_best_mse'):.5f} "
         "(best of last value, 22-bar mean, EWMA 0.94)"),
        (f"    margin vs best baseline {g('range:margin_mse'):+.5f}, 95% CI "
         f"[{g('range:margin_mse_ci_low'):+.5f}, {g('range:margin_mse_ci_high'):+.5f}]: "
         f"{verdict} its baselines; in the artifact: "
         f"{'yes' if g('range:in_artifact') == 1.0 else 'no'}"),
    ]
    if g("range:champion_has_model") == 1.0:
        lines.append(
            f"    margin vs serving range model {g('range:margin_champion_mse'):+.5f} on "
            f"{int(g('range:champion_rows'))} rows, 95% CI "
            f"[{g('range:margin_champion_mse_ci_low'):+.5f}, "
            f"{g('range:margin_champion_mse_ci_high'):+.5f}]")
    else:
        lines.append("    margin vs serving range model - (no range model serves)")
    return lines


def retrain(overrides: dict[str, str], timeout: float, log: Callable[..., None] = print) -> int:
    from stocksage.local.clients import Clients
    from stocksage.local.lambda_invoker import LambdaFunction
    from stocksage.local.scheduler import SchedulerRunner
    from stocksage.local.stack import REPO_ROOT as ROOT

    endpoints, out, boto3 = _stack()
    clients = Clients({"endpoint_url": endpoints.aws})
    lam = boto3.client("lambda")

    def invoke(arn: str, payload: Any) -> Any:
        return LambdaFunction.from_deployed(lam, arn).invoke_detailed(payload)

    runner = SchedulerRunner(clients, invoke, ROOT / ".local" / "scheduler-state.json")
    t0 = time.monotonic()
    extra = {"overrides": overrides} if overrides else None
    firing = runner.fire(out["retrain_schedule_name"], extra=extra)
    if firing.error:
        log(f"retrain Lambda failed: {firing.error.get('errorType')}: "
            f"{firing.error.get('errorMessage')}")
        return 1
    response = firing.response
    name = response["training_job_name"]
    log(f"schedule {firing.schedule} fired (tick {firing.scheduled_time}) -> retrain Lambda")
    log(f"training job {name} ({'created' if response['created'] else 'exists: same tick'}), "
        f"window {response['window'][0] or 'start'} .. {response['window'][1]}, "
        f"compared with serving model {response['champion']}")
    sm = boto3.client("sagemaker")
    registry, platform = _adapters(boto3, out)
    seen, status = None, None
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        desc = sm.describe_training_job(TrainingJobName=name)
        status = desc["TrainingJobStatus"]
        if status != seen:
            log(f"  [{time.monotonic() - t0:5.1f} s] training job {status}"
                + (" (the local runtime runs sagemaker/train.py)" if status == "InProgress"
                   else ""))
            seen = status
        if status in ("Completed", "Failed", "Stopped"):
            break
        time.sleep(1.0)
    else:
        log("timed out waiting for the training job: is the local runtime running (make up)?")
        return 1
    if status != "Completed":
        log(f"  failure: {desc.get('FailureReason')}")
    metrics = {m["MetricName"]: m["Value"] for m in desc.get("FinalMetricDataList") or []}
    if metrics:
        log("metrics (walk-forward holdout, log loss in nats/row, lower is better):")
        for line in _metrics_lines(metrics):
            log(line)
    record = None
    while time.monotonic() < deadline:
        record = registry.get(name)
        if record is not None and record.status in V.DECIDED:
            break
        time.sleep(0.5)
    if record is None or record.status not in V.DECIDED:
        log("timed out waiting for the promote Lambda's decision")
        return 1
    log(f"gate: {(record.gate or {}).get('summary') or record.failure_reason}")
    log(f"version {name}: {record.status}")
    serving = platform.serving_model(out["endpoint_name"])
    log(f"endpoint {out['endpoint_name']} serves {serving.model_version} "
        f"(config {serving.endpoint_config_name}) after {time.monotonic() - t0:.0f} s")
    return 0


def rollback(log: Callable[..., None] = print) -> int:
    from stocksage.lifecycle.promotion import rollback as do_rollback

    _, out, boto3 = _stack()
    registry, platform = _adapters(boto3, out)
    outcome = do_rollback(registry=registry, platform=platform,
                          endpoint_name=out["endpoint_name"])
    if outcome.action != "rolled_back":
        log(f"nothing to roll back: {outcome.detail}")
        return 1
    log(f"rolled back: {outcome.detail} (endpoint config {outcome.endpoint_config_name})")
    return 0


def show_versions(log: Callable[..., None] = print) -> int:
    _, out, boto3 = _stack()
    registry, platform = _adapters(boto3, out)
    serving = platform.serving_model(out["endpoint_name"]).model_version
    for v in registry.all():
        mark = "*" if v.model_version == serving else " "
        log(f"{mark} {v.model_version:42} {v.status:12} {v.created_at}  "
            f"{(v.gate or {}).get('summary', v.failure_reason or '')[:110]}")
    return 0


def report(path: str, cost_bps: float, log: Callable[..., None] = print) -> int:
    import io

    import pandas as pd

    from stocksage.lifecycle.report import build_report

    _, out, boto3 = _stack()
    registry, platform = _adapters(boto3, out)
    versions = registry.all()
    serving = platform.serving_model(out["endpoint_name"]).model_version
    s3 = boto3.client("s3")
    holdouts: dict[str, pd.DataFrame] = {}
    wanted = [v for v in versions if v.model_version == serving]
    wanted += [v for v in reversed(versions) if v.model_version != serving and v.artifact][:2]
    for v in wanted:
        if not v.artifact:
            continue
        uri = v.artifact.replace("/model.tar.gz", "/output.tar.gz")
        bucket, _, key = uri[5:].partition("/")
        try:
            body = s3.get_object(Bucket=bucket, Key=key)["Body"].read()
        except Exception as err:  # noqa: BLE001 - bootstrap model: no output archive
            log(f"no holdout predictions for {v.model_version}: {err}")
            continue
        import tarfile

        with tarfile.open(fileobj=io.BytesIO(body), mode="r:gz") as tar:
            member = next((m for m in tar.getmembers()
                           if m.name.endswith("holdout_predictions.csv.gz")), None)
            if member is None:
                continue
            stream = tar.extractfile(member)
            if stream is None:  # a directory or link entry: no holdout file here
                continue
            frame = pd.read_csv(io.BytesIO(stream.read()), compression="gzip")
        if "ret_next" in frame:
            holdouts[f"{v.model_version} ({v.status})"] = frame
    written = build_report(versions, holdouts, path, serving_version=serving, cost_bps=cost_bps)
    log(f"report: {written} ({len(versions)} versions, {len(holdouts)} backtests)")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stocksage.local.model_ops",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("retrain", "rollback", "versions", "report"))
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="hyperparameter override for this run (retrain)")
    parser.add_argument("--timeout", type=float, default=900.0)
    parser.add_argument("--out", default=str(REPO_ROOT / "out" / "lifecycle" / "report.html"))
    parser.add_argument("--cost-bps", type=float, default=5.0)
    args = parser.parse_args(argv)
    from stocksage.local.stack import StackError

    try:
        if args.command == "retrain":
            overrides = dict(item.split("=", 1) for item in args.set)
            return retrain(overrides, args.timeout)
        if args.command == "rollback":
            return rollback()
        if args.command == "versions":
            return show_versions()
        return report(args.out, args.cost_bps)
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
