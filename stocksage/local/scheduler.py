"""EventBridge Scheduler for the local stack: schedules are stored by the emulator, never fired.

``SchedulerRunner`` reads the deployed schedules back (``list_schedules`` / ``get_schedule``)
and fires them:

* ``run_due(now)``: every ENABLED ``rate(...)`` schedule whose next time has come (first
  time = creation/start date + rate, then every rate; last fire times are kept in
  ``<state dir>/scheduler-state.json``); ``at(...)`` fires once; ``cron(...)`` is not
  evaluated locally (logged once);
* ``fire(name)``: now, whatever the expression (``make retrain``); a manual firing does not
  move the automatic cadence. Missed automatic times are not backfilled (Scheduler does not
  either): only the latest one fires.

Firing = invoking the target Lambda in process with the target ``Input`` after substituting
Scheduler's context attributes (``<aws.scheduler.schedule-arn>``,
``<aws.scheduler.scheduled-time>``, ``<aws.scheduler.execution-id>``,
``<aws.scheduler.attempt-number>``); without ``Input`` the payload is ``{}``, as on AWS.
"""

from __future__ import annotations

import json
import logging
import re
import threading
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

log = logging.getLogger("stocksage.local.scheduler")

_RATE = re.compile(r"^rate\((\d+)\s+(minute|minutes|hour|hours|day|days)\)$")
_AT = re.compile(r"^at\((\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2})\)$")
_UNITS = {"minute": 60, "hour": 3600, "day": 86400}


def parse_rate(expression: str) -> timedelta | None:
    """``rate(3 days)`` -> 3 days; None for other expressions."""
    m = _RATE.match(expression.strip())
    if not m:
        return None
    return timedelta(seconds=int(m.group(1)) * _UNITS[m.group(2).rstrip("s")])


def iso(value: datetime) -> str:
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def render_input(template: str | None, *, schedule_arn: str, scheduled_time: datetime,
                 execution_id: str | None = None, attempt: int = 1) -> Any:
    """The payload Scheduler sends: the target Input with context attributes filled in."""
    if not template:
        return {}
    values = {"<aws.scheduler.schedule-arn>": schedule_arn,
              "<aws.scheduler.scheduled-time>": iso(scheduled_time),
              "<aws.scheduler.execution-id>": execution_id or str(uuid.uuid4()),
              "<aws.scheduler.attempt-number>": str(attempt)}

    def fill(node: Any) -> Any:
        if isinstance(node, str):
            for key, value in values.items():
                node = node.replace(key, value)
            return node
        if isinstance(node, dict):
            return {k: fill(v) for k, v in node.items()}
        if isinstance(node, list):
            return [fill(v) for v in node]
        return node

    # Decode first: the template may spell < and > as \u003c / \u003e.
    return fill(json.loads(template))


@dataclass
class Firing:
    schedule: str
    scheduled_time: str
    target_arn: str
    payload: Any
    response: Any = None
    error: dict | None = None


class SchedulerRunner:
    def __init__(self, clients: Any, invoker: Callable[[str, Any], Any],
                 state_path: str | Path | None = None) -> None:
        self.clients = clients
        self.invoker = invoker
        self.state_path = Path(state_path) if state_path else None
        self._last: dict[str, str] = {}
        self._lock = threading.Lock()
        self._warned: set[str] = set()
        self.firings: list[Firing] = []
        if self.state_path and self.state_path.exists():
            try:
                self._last = json.loads(self.state_path.read_text())
            except ValueError:
                self._last = {}

    def schedules(self) -> list[dict[str, Any]]:
        client = self.clients.client("scheduler")
        out: list[dict[str, Any]] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = client.list_schedules(**kwargs)
            out.extend(client.get_schedule(Name=summary["Name"],
                                           GroupName=summary.get("GroupName") or "default")
                       for summary in page.get("Schedules", []))
            if not page.get("NextToken"):
                return out
            kwargs["NextToken"] = page["NextToken"]

    def fire(self, name: str, group: str = "default", scheduled_time: datetime | None = None,
             extra: dict[str, Any] | None = None) -> Firing:
        """Fire a schedule now (or as of ``scheduled_time``); ``extra`` keys are merged into a
        JSON-object payload (operator overrides)."""
        schedule = self.clients.client("scheduler").get_schedule(Name=name, GroupName=group)
        return self._fire(schedule, scheduled_time or datetime.now(UTC), extra, automatic=False)

    def _fire(self, schedule: dict[str, Any], when: datetime,
              extra: dict[str, Any] | None = None, automatic: bool = True) -> Firing:
        target = schedule["Target"]
        payload = render_input(target.get("Input"), schedule_arn=schedule["Arn"],
                               scheduled_time=when)
        if extra and isinstance(payload, dict):
            payload.update(extra)
        firing = Firing(schedule["Name"], iso(when), target["Arn"], payload)
        if target["Arn"].split(":")[2] != "lambda":
            firing.error = {"errorMessage": "only Lambda targets run locally"}
        else:
            result = self.invoker(target["Arn"], payload)
            firing.response, firing.error = result.payload, result.error
        log.info("schedule %s fired (%s) -> %s: %s", firing.schedule, firing.scheduled_time,
                 firing.target_arn, firing.error or firing.response)
        with self._lock:
            if automatic:
                self._last[f"{schedule.get('GroupName') or 'default'}/{schedule['Name']}"] = \
                    firing.scheduled_time
                self._save()
            self.firings.append(firing)
        return firing

    def run_due(self, now: datetime | None = None) -> list[Firing]:
        now = now or datetime.now(UTC)
        fired = []
        for schedule in self.schedules():
            if schedule.get("State", "ENABLED") != "ENABLED":
                continue
            key = f"{schedule.get('GroupName') or 'default'}/{schedule['Name']}"
            due = self.next_time(schedule, self._last.get(key))
            if due is None or due > now:
                continue
            rate = parse_rate(schedule.get("ScheduleExpression", ""))
            if rate is not None:  # no backfill: the latest missed time only
                while due + rate <= now:
                    due += rate
            fired.append(self._fire(schedule, due))
        return fired

    def next_time(self, schedule: dict[str, Any], last: str | None) -> datetime | None:
        expression = schedule.get("ScheduleExpression", "")
        rate = parse_rate(expression)
        at = _AT.match(expression.strip())
        if rate is not None:
            if last:
                return datetime.fromisoformat(last) + rate
            base = schedule.get("StartDate") or schedule.get("CreationDate")
            if isinstance(base, str):
                base = datetime.fromisoformat(base)
            base = base or datetime.now(UTC)
            return base.astimezone(UTC) + rate
        if at is not None:
            return None if last else datetime.fromisoformat(at.group(1)).replace(tzinfo=UTC)
        if expression not in self._warned:
            self._warned.add(expression)
            log.warning("schedule %s: %r is not evaluated locally (fire it with make retrain)",
                        schedule["Name"], expression)
        return None

    def _save(self) -> None:
        if self.state_path:
            self.state_path.parent.mkdir(parents=True, exist_ok=True)
            self.state_path.write_text(json.dumps(self._last, indent=1, sort_keys=True))
