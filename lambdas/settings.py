"""Typed settings read from the environment Terraform gives each function."""

from __future__ import annotations

import os
from dataclasses import dataclass

from stocksage.config import STACK


class SettingsError(RuntimeError):
    """A required environment variable is missing or malformed (a deployment error)."""


def _require(name: str) -> str:
    value = os.environ.get(name, "").strip()
    if not value:
        raise SettingsError(f"environment variable {name} is not set")
    return value


def _int(name: str, default: int, minimum: int = 0) -> int:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = int(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not an integer") from None
    if value < minimum:
        raise SettingsError(f"environment variable {name}={value} is below {minimum}")
    return value


@dataclass(frozen=True)
class ProcessorSettings:
    """Settings of the processor function.

    Attributes:
        results_table: DynamoDB results table (``RESULTS_TABLE``).
        state_table: DynamoDB window-state table (``STATE_TABLE``).
        rules_table: DynamoDB alert-rules table (``RULES_TABLE``).
        idempotency_table: DynamoDB table of Powertools idempotency records (``IDEMPOTENCY_TABLE``).
        alerts_topic_arn: SNS topic for alerts (``ALERTS_TOPIC_ARN``).
        failure_queue_url: SQS queue for malformed records (``FAILURE_QUEUE_URL``).
        endpoint_name: SageMaker endpoint (``ENDPOINT_NAME``).
        window_bars: Bars of history kept per symbol (``WINDOW_BARS``, from stack.json).
        result_ttl_days: Days results are kept; 0 = forever (``RESULT_TTL_DAYS``).
        rules_max_age: Seconds alert rules are cached (``RULES_MAX_AGE``, default 60).
    """

    results_table: str
    state_table: str
    rules_table: str
    idempotency_table: str
    alerts_topic_arn: str
    failure_queue_url: str
    endpoint_name: str
    window_bars: int
    result_ttl_days: int
    rules_max_age: int

    @classmethod
    def from_env(cls) -> ProcessorSettings:
        """Read and validate; raises :class:`SettingsError` naming the variable at fault."""
        return cls(
            results_table=_require("RESULTS_TABLE"),
            state_table=_require("STATE_TABLE"),
            rules_table=_require("RULES_TABLE"),
            idempotency_table=_require("IDEMPOTENCY_TABLE"),
            alerts_topic_arn=_require("ALERTS_TOPIC_ARN"),
            failure_queue_url=_require("FAILURE_QUEUE_URL"),
            endpoint_name=_require("ENDPOINT_NAME"),
            window_bars=_int("WINDOW_BARS", STACK.window_bars, minimum=30),
            result_ttl_days=_int("RESULT_TTL_DAYS", 0),
            rules_max_age=_int("RULES_MAX_AGE", 60),
        )
