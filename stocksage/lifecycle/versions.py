"""The record of every model version and the rules that move it between states.

One item per version in the ``model-versions`` DynamoDB table (key ``model_version`` = the
training job name, which is also the ``model_version`` the endpoint reports). Statuses::

    training --(job Failed/Stopped)--> failed
    training --(gate rejects)--------> rejected          (recorded, never deployed)
    training --(gate passes)---------> serving           (the one the endpoint uses)
    serving  --(a newer one promoted)> retired           (kept deployable: model + config stay)
    serving  --(make rollback)-------> rolled_back
    retired  --(make rollback)-------> serving

The bootstrap model (trained by ``make up`` and deployed by Terraform) is recorded as
``serving`` the first time the lifecycle meets it, so a rollback can return to it.
Every transition is appended to ``history`` with its time.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any

TRAINING = "training"
FAILED = "failed"
REJECTED = "rejected"
SERVING = "serving"
RETIRED = "retired"
ROLLED_BACK = "rolled_back"
STATUSES = (TRAINING, FAILED, REJECTED, SERVING, RETIRED, ROLLED_BACK)
DECIDED = (FAILED, REJECTED, SERVING, RETIRED, ROLLED_BACK)


def now_iso(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


@dataclass
class ModelVersion:
    """One model version. ``metrics`` are flat metric name -> value; ``gate`` is
    ``GateVerdict.to_dict()``; ``data_range`` holds ``first_bar_time``/``last_bar_time``."""

    model_version: str
    status: str
    created_at: str
    training_job_name: str | None = None
    scheduled_time: str | None = None
    artifact: str | None = None
    data_range: dict[str, str] = field(default_factory=dict)
    symbols: list[str] = field(default_factory=list)
    rows: int | None = None
    metrics: dict[str, float] = field(default_factory=dict)
    gate: dict[str, Any] = field(default_factory=dict)
    failure_reason: str | None = None
    champion_version: str | None = None
    model_name: str | None = None
    endpoint_config_name: str | None = None
    promoted_at: str | None = None
    source: str = "retrain"  # "retrain" | "bootstrap" | "manual"
    history: list[dict[str, str]] = field(default_factory=list)

    def transition(self, status: str, event: str, at: str, detail: str = "") -> None:
        if status not in STATUSES:
            raise ValueError(f"unknown status {status!r}")
        self.history.append({"at": at, "event": event, "from": self.status, "to": status,
                             "detail": detail})
        self.status = status

    # DynamoDB item: plain strings/numbers; nested documents as JSON text (no Decimal games).
    _JSON_FIELDS = ("data_range", "symbols", "metrics", "gate", "history")

    def to_item(self) -> dict[str, Any]:
        item: dict[str, Any] = {}
        for key, value in asdict(self).items():
            if key in self._JSON_FIELDS:
                item[key] = json.dumps(value, sort_keys=True, allow_nan=True)
            elif value is not None:
                item[key] = value if not isinstance(value, float) else str(value)
        return item

    @classmethod
    def from_item(cls, item: dict[str, Any]) -> ModelVersion:
        kwargs: dict[str, Any] = {}
        for name in cls.__dataclass_fields__:
            if name not in item:
                continue
            value = item[name]
            if name in cls._JSON_FIELDS:
                value = json.loads(value) if isinstance(value, str) else value
            elif name == "rows" and value is not None:
                value = int(value)
            kwargs[name] = value
        return cls(**kwargs)


def serving(versions: list[ModelVersion]) -> ModelVersion | None:
    """The version recorded as serving (the most recently promoted one if several)."""
    current = [v for v in versions if v.status == SERVING]
    return max(current, key=lambda v: v.promoted_at or "") if current else None


def rollback_target(versions: list[ModelVersion], current: ModelVersion | None
                    ) -> ModelVersion | None:
    """The previous version: the most recently promoted ``retired`` one with a deployable
    endpoint configuration (never a rejected, failed or rolled-back one)."""
    candidates = [v for v in versions
                  if v.status == RETIRED and v.endpoint_config_name
                  and (current is None or v.model_version != current.model_version)]
    return max(candidates, key=lambda v: v.promoted_at or "") if candidates else None
