"""Collector health file and metrics.

Health: after every poll (live) or every flushed request (replay) the collector rewrites a small
JSON file (atomically: temp file + rename) with the time of the beat, the bars sent so far and
whether the last poll succeeded. The container health check (``python -m stocksage.collector
health``, in the task definition and the Dockerfile) passes while the file is younger than
``max_age`` seconds and the last poll succeeded -- so a hung poll loop, a dead Kinesis client
or a provider outage marks the task unhealthy and ECS replaces it. The file lives on ``/tmp``,
the one writable path under the read-only root filesystem.

Metrics: CloudWatch embedded metric format through Powertools ``Metrics`` (namespace from
``POWERTOOLS_METRICS_NAMESPACE``, dimension ``service``): ``BarsSent``, ``PollErrors``,
``BarsSkipped``. The JSON lines go to stdout -> awslogs -> CloudWatch Logs, which extracts the
metrics; no PutMetricData call and no IAM permission are needed.
"""

from __future__ import annotations

import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

DEFAULT_HEALTH_FILE = "/tmp/collector-health.json"
DEFAULT_MAX_AGE = 180.0


class HealthFile:
    """Writes the heartbeat file."""

    def __init__(self, path: str | os.PathLike[str] = DEFAULT_HEALTH_FILE,
                 clock: Callable[[], float] = time.time) -> None:
        self.path = Path(path)
        self._clock = clock
        self.bars = 0

    def beat(self, bars: int = 0, ok: bool = True, **extra: Any) -> None:
        self.bars += bars
        record = {"time": self._clock(), "bars_sent": self.bars, "ok": ok, "pid": os.getpid(),
                  **extra}
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + ".tmp")
        tmp.write_text(json.dumps(record))
        os.replace(tmp, self.path)


def check_health(path: str | os.PathLike[str] = DEFAULT_HEALTH_FILE,
                 max_age: float = DEFAULT_MAX_AGE,
                 now: float | None = None) -> tuple[bool, str]:
    """(healthy, reason) from the heartbeat file."""
    try:
        record = json.loads(Path(path).read_text())
        age = (time.time() if now is None else now) - float(record["time"])
    except FileNotFoundError:
        return False, f"no heartbeat file {path}"
    except (ValueError, KeyError, TypeError) as err:
        return False, f"unreadable heartbeat file {path}: {err}"
    if age > max_age:
        return False, f"last heartbeat {age:.0f}s ago (limit {max_age:.0f}s)"
    if not record.get("ok", False):
        return False, "last poll failed"
    return True, f"ok: heartbeat {age:.0f}s ago, {record.get('bars_sent', 0)} bars sent"


class CollectorMetrics:
    """Powertools EMF metrics; a no-op when Powertools is missing."""

    def __init__(self, service: str, namespace: str | None = None) -> None:
        namespace = namespace or os.environ.get("POWERTOOLS_METRICS_NAMESPACE", "stocksage")
        try:
            from aws_lambda_powertools import Metrics
            from aws_lambda_powertools.metrics import MetricUnit
        except ImportError:  # pragma: no cover - powertools is installed in every image
            self._metrics = None
            return
        self._unit = MetricUnit.Count
        self._metrics = Metrics(namespace=namespace, service=service)

    def count(self, name: str, value: float) -> None:
        if self._metrics is not None:
            self._metrics.add_metric(name=name, unit=self._unit, value=value)

    def flush(self) -> None:
        if self._metrics is not None:
            self._metrics.flush_metrics(raise_on_empty_metrics=False)


__all__ = ["DEFAULT_HEALTH_FILE", "DEFAULT_MAX_AGE", "CollectorMetrics", "HealthFile",
           "check_health"]
