"""The local runtime: runs what the emulator only stores.

``LocalRuntime`` reads the deployed configuration back from the emulator and runs

* every Kinesis event source mapping (``stocksage.local.esm``: one polling thread per mapping,
  handlers in process with a Lambda context), rediscovering mappings every few seconds so that
  mappings created later (``terraform apply`` after the runtime started) are picked up;
* the SageMaker endpoint host on 127.0.0.1:4567 (``stocksage.local.sagemaker_host``);
* the model lifecycle pieces AWS runs by itself: Firehose delivery of the stream into the S3
  history (``stocksage.local.firehose``), EventBridge Scheduler schedules
  (``stocksage.local.scheduler``: due ``rate`` schedules; ``make retrain`` fires one now),
  training jobs created in the emulator (``stocksage.local.training.runner``) and the delivery of
  their state-change events to matching EventBridge rules' Lambda targets
  (``stocksage.local.events``). All are rediscovered by the same discovery loop.

``start()`` sets, in this process, ``AWS_ENDPOINT_URL`` (the emulator),
``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME`` (the host), the region and dummy credentials when absent,
so invoked handlers reach the local stack with plain ``boto3.client(...)``. ``stop()`` restores
the environment.

Command line (pid/log files in the state dir; checkpoints in ``<state dir>/esm-checkpoints.json``
so a restarted runtime resumes; a stats snapshot in ``<state dir>/runtime-stats.json``)::

    python -m stocksage.local.runtime start  [--endpoint-url http://127.0.0.1:4566]
                                             [--sagemaker-port 4567] [--state-dir .local]
    python -m stocksage.local.runtime status
    python -m stocksage.local.runtime stop
    python -m stocksage.local.runtime serve   # foreground
"""

from __future__ import annotations

import argparse
import contextlib
import json
import logging
import os
import signal
import sys
import threading
import time
from dataclasses import asdict
from pathlib import Path
from typing import Any, Self

from stocksage.local.clients import Clients
from stocksage.local.daemon import DEFAULT_STATE_DIR, Daemon
from stocksage.local.emulator import probe
from stocksage.local.esm import EsmEngine, EsmFaults, MappingStats
from stocksage.local.events import EventRouter
from stocksage.local.firehose import FirehoseWorker
from stocksage.local.sagemaker_host import DEFAULT_PORT as SAGEMAKER_PORT
from stocksage.local.sagemaker_host import SageMakerHost, ping
from stocksage.local.scheduler import SchedulerRunner
from stocksage.local.training.runner import TrainingJobRunner

log = logging.getLogger("stocksage.local.runtime")

DEFAULT_ENDPOINT_URL = "http://127.0.0.1:4566"
DEFAULT_REGION = "us-east-1"


class LocalRuntime:
    """ESM engine + SageMaker host against one emulator.

    Args:
        endpoint_url: The emulator.
        sagemaker_port: Port of the SageMaker host (0 = free port; see ``sagemaker_url``).
        region: AWS region of the deployed resources.
        state_dir: Checkpoints, model cache and stats (None: memory/temporary only).
        code_roots: Folders handler modules are imported from (default: the repository root).
        discovery_interval: Seconds between ``list_event_source_mappings`` calls.
        retry_backoff: (first, cap) delay in seconds between retries of a failed batch.
        esm_faults: Test-only event source mapping faults (``EsmFaults``; default: from the
            environment, ``STOCKSAGE_ESM_REDELIVER=1`` delivers every batch twice). Switch
            them at run time through ``runtime.engine.faults``.
    """

    def __init__(
        self,
        endpoint_url: str = DEFAULT_ENDPOINT_URL,
        sagemaker_port: int = SAGEMAKER_PORT,
        region: str = DEFAULT_REGION,
        state_dir: str | Path | None = DEFAULT_STATE_DIR,
        code_roots: list[str | Path] | None = None,
        discovery_interval: float = 3.0,
        retry_backoff: tuple[float, float] = (0.1, 2.0),
        sagemaker_host: str = "127.0.0.1",
        esm_faults: EsmFaults | None = None,
    ) -> None:
        self.endpoint_url = endpoint_url.rstrip("/")
        self.region = region
        self.state_dir = Path(state_dir) if state_dir else None
        self.discovery_interval = discovery_interval
        self.client_kwargs: dict[str, Any] = {
            "endpoint_url": self.endpoint_url,
            "region_name": region,
            "aws_access_key_id": os.environ.get("AWS_ACCESS_KEY_ID", "test"),
            "aws_secret_access_key": os.environ.get("AWS_SECRET_ACCESS_KEY", "test"),
        }
        checkpoint = self.state_dir / "esm-checkpoints.json" if self.state_dir else None
        if esm_faults is None:
            esm_faults = EsmFaults(
                redeliver=os.environ.get("STOCKSAGE_ESM_REDELIVER", "") in ("1", "true"))
        self.engine = EsmEngine(self.client_kwargs, checkpoint_path=checkpoint,
                                code_roots=code_roots, retry_backoff=retry_backoff,
                                faults=esm_faults)
        self.clients = Clients(self.client_kwargs)
        self.events = EventRouter(self.clients, self.invoke_function)
        self.scheduler = SchedulerRunner(
            self.clients, self.invoke_function,
            self.state_dir / "scheduler-state.json" if self.state_dir else None)
        self.training = TrainingJobRunner(self.clients, self.client_kwargs, self.events, region)
        self.firehose = FirehoseWorker(
            self.clients,
            str(self.state_dir / "firehose-checkpoints.json") if self.state_dir else None)
        self._sm_port = sagemaker_port
        self._sm_bind = sagemaker_host
        self.host: SageMakerHost | None = None
        self._stop = threading.Event()
        self._discovery: threading.Thread | None = None
        self._saved_env: dict[str, str | None] = {}
        self.started_at: float | None = None

    @property
    def sagemaker_url(self) -> str:
        port = self.host.port if self.host else self._sm_port
        return f"http://{self._sm_bind}:{port}"

    # ---------------------------------------------------------------- lifecycle
    def _set_env(self) -> None:
        wanted = {
            "AWS_ENDPOINT_URL": self.endpoint_url,
            "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME": self.sagemaker_url,
            "AWS_REGION": self.region,
            "AWS_DEFAULT_REGION": self.region,
        }
        defaults = {"AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test"}
        for key, value in {**wanted, **defaults}.items():
            if key not in self._saved_env:
                self._saved_env[key] = os.environ.get(key)
            if key in wanted or not os.environ.get(key):
                os.environ[key] = value

    def _restore_env(self) -> None:
        for key, value in self._saved_env.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
        self._saved_env.clear()

    def start(self) -> Self:
        """Start the SageMaker host, discover mappings and start their polling threads."""
        cache = self.state_dir / "sagemaker-cache" if self.state_dir else None
        self.host = SageMakerHost(self.client_kwargs, port=self._sm_port, host=self._sm_bind,
                                  cache_dir=cache).start()
        self._set_env()
        try:
            self.engine.refresh()
        except Exception as err:  # noqa: BLE001 - the discovery thread retries
            log.warning("mapping discovery failed: %s", err)
        self.engine.start()
        self._refresh_lifecycle()
        self.firehose.start()
        self.training.start()
        self._stop.clear()
        self._discovery = threading.Thread(target=self._discover_loop, name="esm-discovery",
                                           daemon=True)
        self._discovery.start()
        self.started_at = time.time()
        return self

    def invoke_function(self, function_arn: str, event: Any) -> Any:
        """Invoke a deployed function in process (its configuration re-read)."""
        return self.engine.function(function_arn, reload=True).invoke_detailed(event)

    def _refresh_lifecycle(self) -> None:
        for what, step in (("delivery streams", self.firehose.refresh),
                           ("training jobs", self.training.refresh),
                           ("schedules", self.scheduler.run_due)):
            try:
                step()
            except Exception as err:  # noqa: BLE001 - emulator restarting, keep going
                log.warning("%s discovery failed: %s", what, err)

    def flush_history(self) -> int:
        """Deliver everything on the stream to the S3 history now (Firehose buffers)."""
        self.firehose.refresh()
        return self.firehose.flush()

    def wait_training_idle(self, timeout: float = 120.0) -> bool:
        """Discover training jobs and wait until none is queued or running."""
        deadline = time.monotonic() + timeout
        self.training.refresh()
        while time.monotonic() < deadline:
            if self.training.idle():
                return True
            time.sleep(0.2)
        return False

    def _discover_loop(self) -> None:
        while not self._stop.wait(self.discovery_interval):
            try:
                self.engine.refresh()
            except Exception as err:  # noqa: BLE001 - emulator restarting, keep going
                log.warning("mapping discovery failed: %s", err)
            self._refresh_lifecycle()
            if self.state_dir:
                self.write_stats()

    def stop(self) -> None:
        self._stop.set()
        if self._discovery:
            self._discovery.join(timeout=10)
            self._discovery = None
        self.engine.stop()
        self.training.stop()
        self.firehose.stop()
        if self.host:
            self.host.stop()
            self.host = None
        if self.state_dir:
            self.write_stats()
        self._restore_env()

    def kill(self) -> None:
        """Simulate a crash (tests): the event source mappings stop mid-batch without applying
        or checkpointing anything more (``EsmEngine.kill``), then everything else stops. A new
        ``LocalRuntime`` on the same ``state_dir`` resumes from the checkpoints."""
        self.engine.kill()
        self.stop()

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def drain(self, timeout: float = 60.0) -> bool:
        """Discover mappings, then wait until every shard is caught up (see ``EsmEngine``)."""
        return self.engine.drain(timeout=timeout, refresh=True)

    # ---------------------------------------------------------------- progress
    def stats(self) -> dict[str, Any]:
        mappings: dict[str, MappingStats] = self.engine.stats()
        host = self.host.stats if self.host else None
        return {
            "endpoint_url": self.endpoint_url,
            "sagemaker_url": self.sagemaker_url,
            "started_at": self.started_at,
            "mappings": {uid: asdict(s) for uid, s in mappings.items()},
            "sagemaker": asdict(host) if host else None,
            "firehose": self.firehose.stats(),
            "training_jobs": {n: {"state": j.state,
                                  "status": j.result.status if j.result else None,
                                  "error": j.error}
                              for n, j in list(self.training.jobs.items())},
            "schedule_firings": len(self.scheduler.firings),
        }

    def write_stats(self) -> None:
        if not self.state_dir:
            return
        self.state_dir.mkdir(parents=True, exist_ok=True)
        path = self.state_dir / "runtime-stats.json"
        tmp = path.with_suffix(".json.tmp")
        tmp.write_text(json.dumps({**self.stats(), "written_at": time.time()}, indent=1))
        tmp.replace(path)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def serve(args: argparse.Namespace) -> int:
    logging.basicConfig(level=getattr(logging, args.log_level.upper(), logging.INFO),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    if not probe(args.endpoint_url):
        log.warning("no emulator answers at %s yet; mappings are discovered when it does",
                    args.endpoint_url)
    runtime = LocalRuntime(args.endpoint_url, args.sagemaker_port, args.region,
                           args.state_dir, discovery_interval=args.discovery_interval)
    stop = threading.Event()
    signal.signal(signal.SIGTERM, lambda *_: stop.set())
    signal.signal(signal.SIGINT, lambda *_: stop.set())
    runtime.start()
    log.info("local runtime: emulator %s, SageMaker host %s, state %s",
             runtime.endpoint_url, runtime.sagemaker_url, args.state_dir)
    try:
        while not stop.wait(1.0):
            pass
    finally:
        runtime.stop()
        log.info("local runtime stopped")
    return 0


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stocksage.local.runtime",
                                     description="Runs event source mappings and SageMaker "
                                                 "endpoints for the embedded emulator.")
    parser.add_argument("command", choices=["start", "stop", "status", "serve"])
    parser.add_argument("--endpoint-url",
                        default=os.environ.get("AWS_ENDPOINT_URL", DEFAULT_ENDPOINT_URL))
    parser.add_argument("--sagemaker-port", type=int, default=SAGEMAKER_PORT)
    parser.add_argument("--region", default=os.environ.get("AWS_DEFAULT_REGION",
                                                           DEFAULT_REGION))
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--discovery-interval", type=float, default=3.0)
    parser.add_argument("--log-level", default="INFO")
    parser.add_argument("--timeout", type=float, default=60.0)
    args = parser.parse_args(argv)
    sm_url = f"http://127.0.0.1:{args.sagemaker_port}"
    daemon = Daemon("runtime", "stocksage.local.runtime", Path(args.state_dir),
                    lambda: ping(sm_url))

    if args.command == "serve":
        return serve(args)
    if args.command == "start":
        try:
            pid = daemon.start(["--endpoint-url", args.endpoint_url, "--sagemaker-port",
                                str(args.sagemaker_port), "--region", args.region,
                                "--state-dir", args.state_dir, "--discovery-interval",
                                str(args.discovery_interval), "--log-level", args.log_level],
                               args.timeout)
        except RuntimeError as err:
            print(str(err), file=sys.stderr)
            return 1
        print(f"local runtime running (pid {pid}; SageMaker host {sm_url}; "
              f"log {daemon.log_file})")
        return 0
    if args.command == "stop":
        print("local runtime stopped" if daemon.stop() else "local runtime was not running")
        return 0
    running = daemon.pid()
    status: dict[str, Any] = {"pid": running, "sagemaker_url": sm_url, "healthy": ping(sm_url),
                              "log": str(daemon.log_file)}
    stats_file = Path(args.state_dir) / "runtime-stats.json"
    if stats_file.exists():
        with contextlib.suppress(ValueError):
            status["stats"] = json.loads(stats_file.read_text())
    print(json.dumps(status, indent=1))
    return 0 if status["healthy"] else 3


if __name__ == "__main__":
    sys.exit(main())
