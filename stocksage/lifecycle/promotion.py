"""What happens when a training job finishes, and rollback (pure orchestration over ports).

``handle_training_job_event`` (the promote Lambda's work), idempotent per job:

1. ignore jobs that are not ours (name prefix) and jobs already decided (EventBridge delivers
   at least once);
2. Failed/Stopped -> record ``failed`` with the reason;
3. Completed -> read ``FinalMetricDataList`` and the artifact's ``metadata.json`` (data range,
   symbols, rows), find the model serving now (recording the bootstrap model if the lifecycle
   has not met it), apply the gate (``stocksage.lifecycle.gate``);
4. rejected -> record ``rejected`` with the verdict (nothing deployed);
5. passed -> create the SageMaker model + endpoint configuration (a copy of the serving one
   with the new model), UpdateEndpoint, then record the new version ``serving`` and the
   previous one ``retired`` (deploy first: a crash between leaves a deployed-but-unrecorded
   version that the next delivery of the event completes, never a recorded-but-absent one).

``rollback`` re-points the endpoint to the previous promoted version and records it.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import stocksage.lifecycle.versions as V
from stocksage.lifecycle.gate import GatePolicy, evaluate_gate
from stocksage.lifecycle.schedule import decode_hyperparameter

DETAIL_TYPE = "SageMaker Training Job State Change"


@dataclass(frozen=True)
class ServingModel:
    """What the endpoint serves now."""

    endpoint_name: str
    endpoint_config_name: str
    model_name: str
    model_data_url: str | None
    model_version: str | None
    metadata: Mapping[str, Any]


class Registry(Protocol):
    def get(self, model_version: str) -> V.ModelVersion | None: ...
    def put(self, version: V.ModelVersion) -> None: ...
    def all(self) -> list[V.ModelVersion]: ...


class Platform(Protocol):
    def describe_training_job(self, name: str) -> dict[str, Any]: ...
    def artifact_documents(self, uri: str) -> dict[str, Any]: ...
    def serving_model(self, endpoint_name: str) -> ServingModel: ...
    def deploy(self, version: str, artifact: str, serving: ServingModel) -> tuple[str, str]: ...
    def point_endpoint(self, endpoint_name: str, endpoint_config_name: str) -> None: ...


@dataclass(frozen=True)
class Outcome:
    action: str  # ignored | duplicate | failed | rejected | promoted | rolled_back
    model_version: str | None
    detail: str = ""
    gate: Mapping[str, Any] | None = None
    endpoint_config_name: str | None = None


def final_metrics(description: Mapping[str, Any]) -> dict[str, float]:
    return {m["MetricName"]: float(m["Value"])
            for m in description.get("FinalMetricDataList") or []}


def ensure_serving_recorded(registry: Registry, serving: ServingModel, at: str
                            ) -> V.ModelVersion | None:
    """Record the model the endpoint serves if the lifecycle has not met it yet."""
    if not serving.model_version:
        return None
    record = registry.get(serving.model_version)
    if record is None:
        meta = serving.metadata or {}
        summary = (meta.get("metrics") or {})
        record = V.ModelVersion(
            model_version=serving.model_version, status=V.SERVING, created_at=at,
            artifact=serving.model_data_url, data_range=dict(meta.get("data_range") or {}),
            symbols=list(meta.get("symbols") or []), rows=meta.get("rows"),
            gate={"summary": "deployed outside the lifecycle (bootstrap); "
                             f"beats_baselines={summary.get('beats_baselines')}"},
            model_name=serving.model_name, endpoint_config_name=serving.endpoint_config_name,
            promoted_at=at, source="bootstrap")
        record.history.append({"at": at, "event": "recorded", "from": "", "to": V.SERVING,
                               "detail": "found serving on the endpoint"})
        registry.put(record)
    elif record.status != V.SERVING:  # e.g. an operator re-pointed the endpoint by hand
        record.transition(V.SERVING, "observed", at, "found serving on the endpoint")
        registry.put(record)
    return record


def handle_training_job_event(
    event: Mapping[str, Any],
    *,
    registry: Registry,
    platform: Platform,
    endpoint_name: str,
    job_prefix: str,
    policy: GatePolicy | None = None,
    now: datetime | None = None,
) -> Outcome:
    policy = policy or GatePolicy()
    at = V.now_iso(now)
    detail = event.get("detail") or {}
    name = detail.get("TrainingJobName")
    status = detail.get("TrainingJobStatus")
    if event.get("detail-type") != DETAIL_TYPE or not name:
        return Outcome("ignored", None, "not a training job state change")
    if not name.startswith(f"{job_prefix}-"):
        return Outcome("ignored", name, f"not a {job_prefix} job")
    if status not in ("Completed", "Failed", "Stopped"):
        return Outcome("ignored", name, f"status {status} is not final")
    record = registry.get(name)
    if record is not None and record.status in V.DECIDED:
        return Outcome("duplicate", name, f"already {record.status}")
    description = platform.describe_training_job(name)
    hps = {k: decode_hyperparameter(v)
           for k, v in (description.get("HyperParameters") or {}).items()}
    if record is None:  # created outside the retrain Lambda (operator): record it now
        record = V.ModelVersion(model_version=name, status=V.TRAINING, created_at=at,
                                training_job_name=name, source="manual")
    record.metrics = final_metrics(description)
    record.champion_version = hps.get("champion-version") or None
    status = description.get("TrainingJobStatus", status)
    if status != "Completed":
        record.failure_reason = description.get("FailureReason") or status
        record.transition(V.FAILED, "training_finished", at, record.failure_reason)
        registry.put(record)
        return Outcome("failed", name, record.failure_reason)

    artifact: str | None = (description.get("ModelArtifacts") or {}).get("S3ModelArtifacts")
    record.artifact = artifact
    docs = platform.artifact_documents(artifact) if artifact else {}
    meta = docs.get("metadata") or {}
    record.data_range = dict(meta.get("data_range") or {})
    record.symbols = list(meta.get("symbols") or [])
    record.rows = meta.get("rows")
    serving = platform.serving_model(endpoint_name)
    current = ensure_serving_recorded(registry, serving, at)
    verdict = evaluate_gate(record.metrics, serving_version=serving.model_version,
                            trained_against=record.champion_version, policy=policy)
    verdict_dict: dict[str, Any]
    if artifact is None or not meta:
        verdict_dict = {"passed": False, "summary": "REJECTED: the job wrote no readable "
                                                    "model artifact", "checks": []}
    else:
        verdict_dict = verdict.to_dict()
    record.gate = verdict_dict
    if artifact is None or not verdict_dict["passed"]:  # no artifact: never passed (above)
        record.transition(V.REJECTED, "gate", at, verdict_dict["summary"])
        registry.put(record)
        return Outcome("rejected", name, verdict_dict["summary"], verdict_dict)

    model_name, config_name = platform.deploy(name, artifact, serving)
    record.model_name, record.endpoint_config_name = model_name, config_name
    record.promoted_at = at
    record.transition(V.SERVING, "promoted", at, verdict_dict["summary"])
    registry.put(record)
    if current is not None and current.model_version != name:
        current.transition(V.RETIRED, "superseded", at, f"replaced by {name}")
        registry.put(current)
    return Outcome("promoted", name, verdict_dict["summary"], verdict_dict, config_name)


def rollback(*, registry: Registry, platform: Platform, endpoint_name: str,
             now: datetime | None = None) -> Outcome:
    """Re-point the endpoint to the previous promoted version and record both changes."""
    at = V.now_iso(now)
    serving = platform.serving_model(endpoint_name)
    current = ensure_serving_recorded(registry, serving, at)
    target = V.rollback_target(registry.all(), current)
    if target is None or not target.endpoint_config_name:  # rollback_target requires one
        return Outcome("none", current.model_version if current else None,
                       "no previous promoted version to roll back to")
    platform.point_endpoint(endpoint_name, target.endpoint_config_name)
    if current is not None:
        current.transition(V.ROLLED_BACK, "rollback", at, f"endpoint back to "
                                                          f"{target.model_version}")
        registry.put(current)
    target.transition(V.SERVING, "rollback", at,
                      f"restored (was {current.model_version if current else 'unknown'})")
    target.promoted_at = at
    registry.put(target)
    return Outcome("rolled_back", target.model_version,
                   f"{current.model_version if current else '?'} -> {target.model_version}",
                   endpoint_config_name=target.endpoint_config_name)
