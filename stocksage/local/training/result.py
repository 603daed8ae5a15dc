"""The outcome of a local training job, and the error for one that did not complete."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

#: Characters of the job's log quoted in ``TrainingJobError``.
LOG_TAIL_CHARS = 2000

#: Metrics shown by ``str(TrainingResult)`` when present (the promotion gate's inputs).
_SUMMARY_METRICS = (
    "validation:log_loss",
    "baseline:majority_log_loss",
    "validation:margin_log_loss_ci_low",
    "validation:beats_baselines",
)


@dataclass
class TrainingResult:
    """Outcome of one local training job (the fields describe_training_job would report).

    Attributes:
        job_name: ``TrainingJobName``.
        status: ``"Completed"`` or ``"Failed"``.
        failure_reason: ``FailureReason`` (``ClientError: ...``, ``AlgorithmError: ...``,
            ``MaxRuntimeExceeded: ...``), None on success.
        model_artifact: ``s3://`` URI of ``model.tar.gz`` (``ModelArtifacts.S3ModelArtifacts``).
        final_metrics: The metric definitions' last values in the log (``FinalMetricDataList``).
        log: The program's output (stdout and stderr) with the executor's own lines.
        started_at: When the job started (UTC).
        ended_at: When it ended (UTC).
        exit_code: The program's exit code (None: it did not run to an end).
        output_artifact: ``s3://`` URI of ``output.tar.gz`` when the program wrote output data.
        workdir: The ``/opt/ml``-like tree when kept (``keep_workdir``).
        details: Extras (``channel_objects``: objects downloaded per channel,
            ``published_artifact``: where ``train_initial_model`` copied the model).
    """

    job_name: str
    status: str  # "Completed" | "Failed"
    failure_reason: str | None
    model_artifact: str | None  # s3:// URI of model.tar.gz
    final_metrics: dict[str, float]
    log: str
    started_at: datetime
    ended_at: datetime
    exit_code: int | None = None
    output_artifact: str | None = None
    workdir: str | None = None
    details: dict[str, Any] = field(default_factory=dict)

    def __str__(self) -> str:
        parts = [f"job={self.job_name}", f"status={self.status}"]
        if self.failure_reason:
            parts.append(f"reason={self.failure_reason!r}")
        if self.model_artifact:
            parts.append(f"artifact={self.model_artifact}")
        parts.extend(f"{name}={self.final_metrics[name]:.6g}" for name in _SUMMARY_METRICS
                     if name in self.final_metrics)
        seconds = (self.ended_at - self.started_at).total_seconds()
        return f"TrainingResult({', '.join(parts)}, {seconds:.1f} s)"

    __repr__ = __str__

    @property
    def ok(self) -> bool:
        return self.status == "Completed"

    def final_metric_data_list(self) -> list[dict[str, Any]]:
        """``FinalMetricDataList`` as ``describe_training_job`` returns it."""
        return [
            {"MetricName": k, "Value": v, "Timestamp": self.ended_at}
            for k, v in sorted(self.final_metrics.items())
        ]


class TrainingJobError(RuntimeError):
    """A training job did not complete (carries the result with log and reason)."""

    def __init__(self, result: TrainingResult) -> None:
        tail = result.log[-LOG_TAIL_CHARS:]
        super().__init__(
            f"training job {result.job_name} failed: {result.failure_reason}\n"
            f"--- log tail ---\n{tail}"
        )
        self.result = result
