"""EventBridge delivery for the local stack: rules are stored by the emulator, never fired.

``EventRouter.deliver(event)`` does what EventBridge does with an event on a bus:

1. list the bus's rules (``list_rules``) and ask the emulator which ones match
   (``TestEventPattern``, answered by moto's own matcher through the emulator patch
   ``events_test_event_pattern``);
2. for every ENABLED matching rule, list its targets (``list_targets_by_rule``) and invoke each
   Lambda target in process (``invoker(function_arn, payload)``), with the target's ``Input``
   (constant JSON) or ``InputPath`` (``$`` or ``$.a.b``) applied; other target types are logged
   and skipped.

Differences from AWS: delivery is synchronous and each failed invocation is retried up to the
target's ``RetryPolicy.MaximumRetryAttempts`` (default 2 here) right away, without backoff.

``training_job_state_change(description, ...)`` builds the "SageMaker Training Job State
Change" event SageMaker emits (``detail`` = the DescribeTrainingJob fields, times in epoch ms).
"""

from __future__ import annotations

import json
import logging
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

log = logging.getLogger("stocksage.local.events")

TRAINING_DETAIL_TYPE = "SageMaker Training Job State Change"
Invoker = Callable[[str, Any], Any]


def _jsonable(value: Any) -> Any:
    if isinstance(value, datetime):
        return int(value.timestamp() * 1000)
    if isinstance(value, dict):
        return {k: _jsonable(v) for k, v in value.items() if k != "ResponseMetadata"}
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return value


def training_job_state_change(description: dict[str, Any], *, region: str,
                              account: str | None = None) -> dict[str, Any]:
    """The EventBridge event SageMaker sends when a training job changes state."""
    arn = description.get("TrainingJobArn", "")
    account = account or (arn.split(":")[4] if arn.count(":") >= 5 else "000000000000")
    return {
        "version": "0",
        "id": str(uuid.uuid4()),
        "detail-type": TRAINING_DETAIL_TYPE,
        "source": "aws.sagemaker",
        "account": account,
        "time": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "region": region,
        "resources": [arn] if arn else [],
        "detail": _jsonable(description),
    }


@dataclass
class Delivery:
    rule: str
    target_id: str
    target_arn: str
    ok: bool
    payload: Any = None
    error: str | None = None


def _input_path(event: Any, path: str) -> Any:
    if path in ("", "$"):
        return event
    if not path.startswith("$."):
        raise ValueError(f"unsupported InputPath {path!r}")
    value = event
    for part in path[2:].split("."):
        value = value.get(part) if isinstance(value, dict) else None
    return value


class EventRouter:
    def __init__(self, clients: Any, invoker: Invoker) -> None:
        """``clients.client(service)`` gives boto3 clients on the emulator."""
        self.clients = clients
        self.invoker = invoker
        self.deliveries: list[Delivery] = []

    def matching_rules(self, event: dict[str, Any], bus: str = "default") -> list[dict]:
        events = self.clients.client("events")
        rules, kwargs = [], {"EventBusName": bus}
        while True:
            page = events.list_rules(**kwargs)
            rules += page.get("Rules", [])
            if not page.get("NextToken"):
                break
            kwargs["NextToken"] = page["NextToken"]
        text = json.dumps(event)
        matched = []
        for rule in rules:
            if rule.get("State", "ENABLED") != "ENABLED" or not rule.get("EventPattern"):
                continue
            if events.test_event_pattern(EventPattern=rule["EventPattern"], Event=text)["Result"]:
                matched.append(rule)
        return matched

    def deliver(self, event: dict[str, Any], bus: str = "default") -> list[Delivery]:
        out: list[Delivery] = []
        events = self.clients.client("events")
        for rule in self.matching_rules(event, bus):
            targets = events.list_targets_by_rule(Rule=rule["Name"], EventBusName=bus).get(
                "Targets", [])
            out.extend(self._deliver_one(rule["Name"], target, event) for target in targets)
        self.deliveries += out
        return out

    def _deliver_one(self, rule: str, target: dict[str, Any], event: dict[str, Any]
                     ) -> Delivery:
        arn = target["Arn"]
        if arn.split(":")[2] != "lambda":
            log.warning("rule %s: target %s is not a Lambda function; skipped locally", rule, arn)
            return Delivery(rule, target.get("Id", ""), arn, False, error="unsupported target")
        if target.get("Input"):
            payload = json.loads(target["Input"])
        else:
            payload = _input_path(event, target.get("InputPath") or "$")
        attempts = 1 + int((target.get("RetryPolicy") or {}).get("MaximumRetryAttempts", 2))
        error = None
        for attempt in range(attempts):
            result = self.invoker(arn, payload)
            if result.error is None:
                log.info("rule %s -> %s: %s", rule, arn, result.payload)
                return Delivery(rule, target.get("Id", ""), arn, True, result.payload)
            error = f"{result.error.get('errorType')}: {result.error.get('errorMessage')}"
            log.warning("rule %s -> %s failed (attempt %d/%d): %s", rule, arn, attempt + 1,
                        attempts, error)
        return Delivery(rule, target.get("Id", ""), arn, False, error=error)
