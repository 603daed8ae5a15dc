"""Runs the training jobs created in the emulator and announces their outcome.

moto stores ``CreateTrainingJob`` (kept ``InProgress`` by the emulator patch
``sagemaker_training_job_lifecycle``). ``TrainingJobRunner``:

1. ``refresh()`` lists ``InProgress`` jobs (``list_training_jobs StatusEquals=InProgress``) and
   queues the new ones;
2. a worker thread runs each with ``stocksage.local.training.run_training_job`` (the real
   ``sagemaker/train.py`` in a subprocess, the script-mode contract, artifact uploaded to
   ``{S3OutputPath}/{job}/output/model.tar.gz``);
3. reports the outcome to the emulator through its private route
   ``POST /moto-api/stocksage/finish-training-job`` (status, failure reason, artifact,
   ``FinalMetricDataList``; emulator patch ``sagemaker_training_job_lifecycle``), so
   ``DescribeTrainingJob`` answers like SageMaker;
4. builds the "SageMaker Training Job State Change" event from ``DescribeTrainingJob`` and
   hands it to the ``EventRouter`` (the promote Lambda, in process).

Why a private route rather than a runtime-side status table: the emulator stays the one place
every reader asks (the promote Lambda, ``make retrain``, the AWS CLI) and the runtime may
restart without losing what happened. A job that is still ``InProgress`` when the runtime
restarts is run again (same output path: idempotent).
"""

from __future__ import annotations

import json
import logging
import math
import queue
import threading
import time
import urllib.error
import urllib.request
from dataclasses import dataclass, field
from typing import Any

from stocksage.local.events import EventRouter, training_job_state_change
from stocksage.local.moto_patches.sagemaker import FINISH_TRAINING_JOB_PATH
from stocksage.local.training.executor import run_training_job
from stocksage.local.training.result import TrainingResult

log = logging.getLogger("stocksage.local.training.runner")


def finish_training_job(client_kwargs: dict[str, Any], name: str, status: str, *,
                        failure_reason: str | None = None, artifact: str | None = None,
                        metrics: dict[str, float] | None = None,
                        billable_seconds: int | None = None) -> dict[str, Any]:
    """Record a job's outcome through the emulator's private route (see the module docstring).

    Raises:
        RuntimeError: the emulator refused (unknown job, job not InProgress ...).
    """
    body: dict[str, Any] = {"TrainingJobName": name, "TrainingJobStatus": status,
                            "Region": client_kwargs.get("region_name") or "us-east-1"}
    if failure_reason:
        body["FailureReason"] = failure_reason[:1024]
    if artifact:
        body["S3ModelArtifacts"] = artifact
    if metrics:
        body["FinalMetricDataList"] = [
            {"MetricName": k, "Value": v} for k, v in sorted(metrics.items())
            if math.isfinite(v)  # NaN is not valid JSON for SageMaker either
        ]
    if billable_seconds is not None:
        body["BillableSeconds"] = int(billable_seconds)
    url = client_kwargs["endpoint_url"].rstrip("/") + FINISH_TRAINING_JOB_PATH
    request = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise RuntimeError(f"finishing training job {name}: HTTP {err.code} "
                           f"{err.read()[:500]!r}") from None


@dataclass
class JobRecord:
    name: str
    state: str = "queued"  # queued | running | done
    result: TrainingResult | None = None
    deliveries: list[Any] = field(default_factory=list)
    error: str | None = None


class TrainingJobRunner:
    def __init__(self, clients: Any, client_kwargs: dict[str, Any], router: EventRouter,
                 region: str, work_root: str | None = None) -> None:
        self.clients = clients
        self.client_kwargs = client_kwargs
        self.router = router
        self.region = region
        self.work_root = work_root
        self.jobs: dict[str, JobRecord] = {}
        self._queue: queue.Queue[str] = queue.Queue()
        self._lock = threading.Lock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._busy = threading.Event()

    def refresh(self) -> list[str]:
        sm = self.clients.client("sagemaker")
        new, kwargs = [], {"StatusEquals": "InProgress", "MaxResults": 100}
        while True:
            page = sm.list_training_jobs(**kwargs)
            for summary in page.get("TrainingJobSummaries", []):
                name = summary["TrainingJobName"]
                with self._lock:
                    if name not in self.jobs:
                        self.jobs[name] = JobRecord(name)
                        self._queue.put(name)
                        new.append(name)
            if not page.get("NextToken"):
                return new
            kwargs["NextToken"] = page["NextToken"]

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="training-jobs", daemon=True)
        self._thread.start()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)

    def idle(self) -> bool:
        with self._lock:
            pending = any(j.state != "done" for j in self.jobs.values())
        return self._queue.empty() and not self._busy.is_set() and not pending

    def _loop(self) -> None:
        while not self._stop.is_set():
            try:
                name = self._queue.get(timeout=0.2)
            except queue.Empty:
                continue
            self._busy.set()
            try:
                self.run(name)
            except Exception as err:
                log.exception("training job %s", name)
                self.jobs[name].error = str(err)
            finally:
                self.jobs[name].state = "done"
                self._busy.clear()

    def run(self, name: str) -> JobRecord:
        """Run one job to its end, report it, deliver its state-change event."""
        record = self.jobs.setdefault(name, JobRecord(name))
        record.state = "running"
        sm = self.clients.client("sagemaker")
        description = sm.describe_training_job(TrainingJobName=name)
        log.info("training job %s: running %s", name,
                 description.get("AlgorithmSpecification", {}).get("TrainingImage"))
        t0 = time.monotonic()
        result = run_training_job(self.clients.client("s3"), description,
                                  work_root=self.work_root)
        record.result = result
        log.info("training job %s: %s in %.1f s", name, result.status, time.monotonic() - t0)
        finish_training_job(self.client_kwargs, name, result.status,
                            failure_reason=result.failure_reason,
                            artifact=result.model_artifact, metrics=result.final_metrics,
                            billable_seconds=int((result.ended_at - result.started_at)
                                                 .total_seconds()))
        final = sm.describe_training_job(TrainingJobName=name)
        event = training_job_state_change(final, region=self.region)
        record.deliveries = self.router.deliver(event)
        record.state = "done"
        return record
