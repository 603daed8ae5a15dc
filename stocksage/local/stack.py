"""The local stack: ``make up``, ``make down``, ``make status``.

``up`` does, in order, each step idempotent so it can be re-run at any time:

1. start the embedded AWS (``stocksage.local.emulator``, moto on 127.0.0.1:4566) in the
   background (pid and log under ``.local/``) and wait until it answers;
2. apply the ``services/`` Terraform root with the ``local`` environment (``scripts/tf.sh``);
   the state lives in a bucket on the emulator, so ``down`` forgets it;
3. make sure a model serves the endpoint: when the artifact the SageMaker model points at is
   missing, backfill the S3 history with the packaged real data (all but the last
   ``DEMO_REPLAY_BARS`` bars of each demo symbol, which the demo streams) and run a training job
   through the local training-job executor;
4. start the local runtime (event source mappings, SageMaker endpoint host on :4567).

Command line: ``python -m stocksage.local.stack up|down|status``.
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksage.config import STACK

REPO_ROOT = Path(__file__).resolve().parents[2]
STATE_DIR = REPO_ROOT / ".local"
DEMO_REPLAY_BARS = 300
"""Bars per symbol the demo streams; the initial model is trained on the bars before them."""


class StackError(RuntimeError):
    """A step of ``up``/``down`` failed; the message says which and where its log is."""


@dataclass(frozen=True)
class LocalEndpoints:
    """Where the local stack listens."""

    aws: str
    sagemaker_runtime: str

    @classmethod
    def from_env(cls) -> LocalEndpoints:
        """``AWS_ENDPOINT_URL`` / ``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` or the stack.json ports."""
        ports = STACK.raw["ports"]
        return cls(
            aws=os.environ.get("AWS_ENDPOINT_URL", f"http://127.0.0.1:{ports['emulator']}"),
            sagemaker_runtime=os.environ.get("AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                                             f"http://127.0.0.1:{ports['sagemaker_runtime']}"),
        )

    @property
    def port(self) -> int:
        return int(self.aws.rsplit(":", 1)[1].strip("/"))

    @property
    def sagemaker_port(self) -> int:
        return int(self.sagemaker_runtime.rsplit(":", 1)[1].strip("/"))


def local_environ(endpoints: LocalEndpoints) -> dict[str, str]:
    """Process environment for anything that talks to the local stack (dummy credentials)."""
    env = dict(os.environ)
    env.setdefault("AWS_ACCESS_KEY_ID", "test")
    env.setdefault("AWS_SECRET_ACCESS_KEY", "test")
    env.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    env.setdefault("AWS_REGION", env["AWS_DEFAULT_REGION"])
    env["AWS_ENDPOINT_URL"] = endpoints.aws
    env["AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME"] = endpoints.sagemaker_runtime
    return env


def use_local_environ(endpoints: LocalEndpoints | None = None) -> LocalEndpoints:
    """Point this process's boto3 at the local stack (sets the variables of ``local_environ``)."""
    endpoints = endpoints or LocalEndpoints.from_env()
    os.environ.update(local_environ(endpoints))
    return endpoints


def _run(args: list[str], env: dict[str, str], what: str, capture: bool = False) -> str:
    started = time.monotonic()
    proc = subprocess.run(args, cwd=REPO_ROOT, env=env, text=True, check=False,
                          capture_output=capture)
    if proc.returncode != 0:
        detail = (proc.stderr or proc.stdout or "")[-3000:] if capture else ""
        raise StackError(f"{what} failed (exit {proc.returncode}) after "
                         f"{time.monotonic() - started:.0f} s\n{detail}")
    return proc.stdout if capture else ""


def terraform(command: str, *extra: str, endpoints: LocalEndpoints, capture: bool = False) -> str:
    """``scripts/tf.sh services local <command>`` against the emulator at ``endpoints.aws``."""
    return _run([str(REPO_ROOT / "scripts" / "tf.sh"), "services", "local", command, *extra],
                local_environ(endpoints), f"terraform {command}", capture=capture)


def outputs(endpoints: LocalEndpoints | None = None) -> dict[str, Any]:
    """Terraform outputs of the local services root: ``{name: value}``."""
    endpoints = endpoints or LocalEndpoints.from_env()
    raw = json.loads(terraform("output", "-json", endpoints=endpoints, capture=True) or "{}")
    if not raw:
        raise StackError("the local stack has no Terraform outputs: run `make up` first")
    return {name: item["value"] for name, item in raw.items()}


def _module(name: str, *args: str, endpoints: LocalEndpoints, what: str) -> None:
    _run([sys.executable, "-m", name, *args], local_environ(endpoints), what)


def _running(name: str, endpoints: LocalEndpoints, *extra: str) -> bool:
    """True when ``python -m <name> status`` says the daemon runs (exit code 0)."""
    proc = subprocess.run([sys.executable, "-m", name, "status", "--state-dir", str(STATE_DIR),
                           *extra], cwd=REPO_ROOT, env=local_environ(endpoints),
                          capture_output=True, text=True, check=False)
    return proc.returncode == 0


def require_running(endpoints: LocalEndpoints | None = None) -> dict[str, Any]:
    """The Terraform outputs of the running local stack, with this process pointed at it
    (``use_local_environ``).

    Raises:
        StackError: the emulator or the local runtime does not run (``make up`` first).
    """
    endpoints = use_local_environ(endpoints)
    for name in ("stocksage.local.emulator", "stocksage.local.runtime"):
        extra = ("--port", str(endpoints.port)) if name.endswith("emulator") else ()
        if not _running(name, endpoints, *extra):
            raise StackError(f"{name} is not running: start the local stack with `make up` "
                             "first")
    return outputs(endpoints)


def start_emulator(endpoints: LocalEndpoints) -> bool:
    """Start the emulator unless it runs already; True when it was started now."""
    if _running("stocksage.local.emulator", endpoints, "--port", str(endpoints.port)):
        return False
    _module("stocksage.local.emulator", "start", "--port", str(endpoints.port),
            "--state-dir", str(STATE_DIR), endpoints=endpoints, what="starting the emulator")
    return True


def start_runtime(endpoints: LocalEndpoints) -> bool:
    """(Re)start the local runtime so it runs the code and configuration just applied.

    Returns True when a running runtime was restarted. Its checkpoints persist in
    ``.local/esm-checkpoints.json``: nothing is processed twice.
    """
    restarted = _running("stocksage.local.runtime", endpoints)
    if restarted:
        _module("stocksage.local.runtime", "stop", "--state-dir", str(STATE_DIR),
                endpoints=endpoints, what="stopping the local runtime")
    _module("stocksage.local.runtime", "start", "--state-dir", str(STATE_DIR),
            "--sagemaker-port", str(endpoints.sagemaker_port),
            endpoints=endpoints, what="starting the local runtime")
    return restarted


def ensure_model(out: dict[str, Any], endpoints: LocalEndpoints, *,
                 log: Callable[..., None] = print) -> str:
    """Train and upload the initial model artifact when the endpoint's model has none.

    Returns:
        ``"present"`` or ``"trained"``.
    """
    import boto3
    from botocore.exceptions import ClientError

    use_local_environ(endpoints)
    s3 = boto3.client("s3")
    bucket = out["history_bucket"]
    key = STACK.raw["model"]["artifact_key"]
    try:
        s3.head_object(Bucket=bucket, Key=key)
        return "present"
    except ClientError:
        pass
    from stocksage.adapters.s3_history import BACKFILL_OBJECT_NAME, put_history
    from stocksage.datasets import DEMO_SYMBOLS, dataset_bars
    from stocksage.local.training import train_initial_model

    total = 0
    for symbol in DEMO_SYMBOLS:
        bars = dataset_bars(symbol, exclude_last=DEMO_REPLAY_BARS)
        put_history(s3, bucket, bars, name=BACKFILL_OBJECT_NAME)
        total += len(bars)
    log(f"history: {total} real bars of {len(DEMO_SYMBOLS)} symbols backfilled to s3://{bucket}/bars/")
    result = train_initial_model(s3, bucket, key)
    log(f"initial model trained: {result}")
    return "trained"


def up(endpoints: LocalEndpoints | None = None, *,
       log: Callable[..., None] = print) -> dict[str, Any]:
    """Bring the local stack up (see the module docstring); returns the Terraform outputs."""
    endpoints = endpoints or LocalEndpoints.from_env()
    t0 = time.monotonic()
    started = start_emulator(endpoints)
    log(f"emulator: {endpoints.aws} ({'started' if started else 'already running'})")
    STATE_DIR.mkdir(exist_ok=True)
    tf_log = STATE_DIR / "terraform-apply.log"
    log(f"terraform: applying services/ with env local (log: {tf_log.relative_to(REPO_ROOT)})")
    try:
        tf_log.write_text(terraform("apply", "-no-color", endpoints=endpoints, capture=True))
    except StackError as err:
        tf_log.write_text(str(err))
        raise
    summary = [line for line in tf_log.read_text().splitlines()
               if line.startswith("Apply complete")]
    out = outputs(endpoints)
    log(f"terraform: {summary[-1] if summary else 'applied'} ({time.monotonic() - t0:.0f} s)")
    state = ensure_model(out, endpoints, log=log)
    log(f"model artifact: {state} ({time.monotonic() - t0:.0f} s)")
    started = start_runtime(endpoints)
    log(f"local runtime ({'restarted' if started else 'started'}): event source mappings "
        f"running, endpoint host {endpoints.sagemaker_runtime}")
    log(f"stack up in {time.monotonic() - t0:.0f} s. Explore: `make status`, "
        "`AWS_ENDPOINT_URL=" + endpoints.aws + " aws dynamodb scan --table-name "
        + out["results_table"] + "`, `make down` to stop.")
    return out


def down(endpoints: LocalEndpoints | None = None, *, log: Callable[..., None] = print) -> None:
    """Stop the runtime and the emulator; the Terraform state (on the emulator) goes with it."""
    endpoints = endpoints or LocalEndpoints.from_env()
    for name in ("stocksage.local.runtime", "stocksage.local.emulator"):
        try:
            _module(name, "stop", "--state-dir", str(STATE_DIR), endpoints=endpoints,
                    what=f"stopping {name}")
        except StackError as err:
            log(str(err))
    log("local stack stopped; its resources and Terraform state are gone with the emulator")


def status(endpoints: LocalEndpoints | None = None, *, log: Callable[..., None] = print) -> int:
    """Print what runs and the deployed outputs; 0 when the emulator answers."""
    endpoints = endpoints or LocalEndpoints.from_env()
    code = 0
    for name in ("stocksage.local.emulator", "stocksage.local.runtime"):
        proc = subprocess.run([sys.executable, "-m", name, "status", "--state-dir", str(STATE_DIR)],
                              cwd=REPO_ROOT, env=local_environ(endpoints), text=True,
                              capture_output=True, check=False)
        log((proc.stdout or proc.stderr).strip())
        code = code or proc.returncode
    if code == 0:
        for name, value in outputs(endpoints).items():
            log(f"  {name:36} {value}")
    return code


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stocksage.local.stack",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("command", choices=("up", "down", "status"))
    args = parser.parse_args(argv)
    try:
        if args.command == "up":
            up()
        elif args.command == "down":
            down()
        else:
            return status()
    except StackError as err:
        print(f"error: {err}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main())
