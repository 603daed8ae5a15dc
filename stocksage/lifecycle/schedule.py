"""From a schedule tick to an idempotent ``CreateTrainingJob`` request (pure).

The EventBridge Scheduler target input carries the tick's scheduled time
(``<aws.scheduler.scheduled-time>``). Everything about the job derives from it:

* the job name ``{prefix}-{YYYYMMDDTHHMMZ}``: a second delivery of the same tick (Scheduler is
  at-least-once, a retry after a timeout, ``make retrain`` twice in a minute) names the same
  job, and SageMaker refuses a second job with that name (``ResourceInUse``), so one tick
  trains at most once;
* the training window ``[tick - window_days, tick)`` (``window_days = 0``: all history before
  the tick); bars stamped after the tick never enter, so re-running a tick later trains on the
  same bars (history only grows at the end).

The request follows the SageMaker script-mode contract (see ``stocksage.local.training``):
JSON-encoded hyperparameters with ``sagemaker_program``/``sagemaker_submit_directory``, the
``train`` channel on ``s3://<bucket>/bars/``, and a ``champion`` channel holding the artifact
of the model that serves now, which ``train.py`` scores on the candidate's holdout.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

from stocksage.config import STACK

#: Hyperparameters an operator may override per run (``make retrain OVERRIDES=...``).
ALLOWED_OVERRIDES = frozenset(
    {"symbols", "model-type", "c", "folds", "min-train-bars", "bootstrap-reps", "window-days"}
)
_JOB_NAME_RE = re.compile(r"^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,62}$")


class TickError(ValueError):
    """The event is not a usable schedule tick (the message says why)."""


@dataclass(frozen=True)
class Tick:
    """One firing of the retrain schedule."""

    scheduled_time: datetime  # UTC, truncated to the minute
    schedule_arn: str = ""
    overrides: dict[str, str] = field(default_factory=dict)


def _parse_time(text: str) -> datetime:
    try:
        value = datetime.fromisoformat(str(text).strip())
    except ValueError:
        raise TickError(f"scheduled time {text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None:
        value = value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def parse_tick(event: Mapping[str, Any], now: datetime | None = None) -> Tick:
    """Read a tick from the Scheduler payload (``scheduled_time``), an EventBridge scheduled
    event (``time``), or fall back to ``now`` (manual invocation without a time)."""
    if not isinstance(event, Mapping):
        raise TickError("the event must be a JSON object")
    raw = event.get("scheduled_time") or event.get("time")
    when = _parse_time(raw) if raw else (now or datetime.now(UTC)).astimezone(UTC)
    overrides = event.get("overrides") or {}
    if not isinstance(overrides, Mapping):
        raise TickError("overrides must be an object of hyperparameter -> value")
    unknown = sorted(set(overrides) - ALLOWED_OVERRIDES)
    if unknown:
        raise TickError(f"overrides {unknown} are not allowed; "
                        f"allowed: {sorted(ALLOWED_OVERRIDES)}")
    return Tick(
        scheduled_time=when.replace(second=0, microsecond=0),
        schedule_arn=str(event.get("schedule_arn") or ""),
        overrides={str(k): str(v) for k, v in overrides.items()},
    )


def job_name(prefix: str, tick: Tick) -> str:
    """``{prefix}-{YYYYMMDDTHHMMZ}`` (SageMaker: <= 63 letters, digits and hyphens)."""
    name = f"{prefix}-{tick.scheduled_time:%Y%m%dT%H%M}Z"
    if not _JOB_NAME_RE.match(name):
        raise ValueError(f"training job name {name!r} is not valid (prefix too long?)")
    return name


def training_window(tick: Tick, window_days: int) -> tuple[datetime | None, datetime]:
    """``(start or None, end)``: bars with ``start <= bar_time < end`` train the model."""
    end = tick.scheduled_time
    days = int(tick.overrides.get("window-days", window_days))
    if days < 0:
        raise TickError("window-days must be >= 0")
    return (end - timedelta(days=days) if days else None), end


@dataclass(frozen=True)
class RetrainConfig:
    """Where things are and how the job runs (from the retrain Lambda's settings)."""

    bucket: str
    job_prefix: str
    role_arn: str
    image: str
    region: str
    history_prefix: str = "bars/"
    source_key: str = "code/sourcedir.tar.gz"
    output_prefix: str = "model-artifacts/training-jobs"
    program: str = "train.py"
    instance_type: str = "ml.m5.large"
    volume_gb: int = 5
    max_runtime_s: int = 3600
    kms_key_arn: str | None = None
    window_days: int = 0
    hyperparameters: Mapping[str, str] = field(default_factory=dict)
    metric_definitions: Sequence[Mapping[str, str]] = ()


def _iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def training_job_request(
    config: RetrainConfig,
    tick: Tick,
    champion_artifact: str | None = None,
    champion_version: str | None = None,
) -> dict[str, Any]:
    """``CreateTrainingJob`` keyword arguments for this tick."""
    name = job_name(config.job_prefix, tick)
    start, end = training_window(tick, config.window_days)
    hps: dict[str, Any] = {
        "sagemaker_program": config.program,
        "sagemaker_submit_directory": f"s3://{config.bucket}/{config.source_key}",
        "sagemaker_region": config.region,
        # the bar interval the processor sends to the endpoint (stack.json model.interval)
        "interval": STACK.raw["model"]["interval"],
        **dict(config.hyperparameters),
        **{k: v for k, v in tick.overrides.items() if k != "window-days"},
        "model-version": name,
        "start": _iso(start) if start else "",
        "end": _iso(end),
        "champion-version": champion_version or "",
    }
    channels = [_channel("train", f"s3://{config.bucket}/{config.history_prefix}")]
    if champion_artifact:
        channels.append(_channel("champion", champion_artifact))
    output: dict[str, Any] = {"S3OutputPath": f"s3://{config.bucket}/{config.output_prefix}"}
    resources: dict[str, Any] = {
        "InstanceType": config.instance_type,
        "InstanceCount": 1,
        "VolumeSizeInGB": int(config.volume_gb),
    }
    if config.kms_key_arn:
        output["KmsKeyId"] = config.kms_key_arn
        resources["VolumeKmsKeyId"] = config.kms_key_arn
    return {
        "TrainingJobName": name,
        "AlgorithmSpecification": {
            "TrainingImage": config.image,
            "TrainingInputMode": "File",
            "MetricDefinitions": [dict(d) for d in config.metric_definitions],
        },
        "RoleArn": config.role_arn,
        # JSON-encoded values, as the SageMaker SDK sends them (the toolkit decodes them).
        "HyperParameters": {k: json.dumps(v) for k, v in hps.items()},
        "InputDataConfig": channels,
        "OutputDataConfig": output,
        "ResourceConfig": resources,
        "StoppingCondition": {"MaxRuntimeInSeconds": int(config.max_runtime_s)},
        "Tags": [{"Key": "stocksage:scheduled-time", "Value": _iso(tick.scheduled_time)}],
    }


def _channel(name: str, uri: str) -> dict[str, Any]:
    return {
        "ChannelName": name,
        "DataSource": {
            "S3DataSource": {
                "S3DataType": "S3Prefix",
                "S3Uri": uri,
                "S3DataDistributionType": "FullyReplicated",
            }
        },
        "InputMode": "File",
    }


def decode_hyperparameter(value: str) -> str:
    """A JSON-encoded hyperparameter back to its text (plain text stays as is)."""
    try:
        decoded = json.loads(value)
    except (TypeError, ValueError):
        return str(value)
    return decoded if isinstance(decoded, str) else json.dumps(decoded)
