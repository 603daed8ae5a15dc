"""Typed settings of the Lambda functions, read from the environment Terraform gives each one.

Shared by the handlers (``lambdas/``) and the operator CLI (``stocksage redrive`` builds the
processor's adapters from the deployed function's variables).
"""

from __future__ import annotations

import os
from dataclasses import dataclass


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
        result_ttl_days: Days results are kept; 0 = forever (``RESULT_TTL_DAYS``).
        rules_max_age: Seconds alert rules are cached (``RULES_MAX_AGE``, default 60).
        max_future_skew_s: Seconds a bar's ``bar_time`` may lie after the record's arrival
            on the stream before it is rejected (``MAX_FUTURE_SKEW_SECONDS``, default 300).
        quarantine_bucket: Bucket for quarantined payloads too large for the failure queue
            (``QUARANTINE_BUCKET``, optional: the history bucket; prefix ``quarantine/``).
    """

    results_table: str
    state_table: str
    rules_table: str
    idempotency_table: str
    alerts_topic_arn: str
    failure_queue_url: str
    endpoint_name: str
    result_ttl_days: int
    rules_max_age: int
    max_future_skew_s: int = 300
    quarantine_bucket: str | None = None

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
            result_ttl_days=_int("RESULT_TTL_DAYS", 0),
            rules_max_age=_int("RULES_MAX_AGE", 60),
            max_future_skew_s=_int("MAX_FUTURE_SKEW_SECONDS", 300),
            quarantine_bucket=os.environ.get("QUARANTINE_BUCKET", "").strip() or None,
        )


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        return float(raw)
    except ValueError:
        raise SettingsError(f"environment variable {name}={raw!r} is not a number") from None


@dataclass(frozen=True)
class RetrainSettings:
    """Settings of the retrain function (``lambdas/retrain.py``).

    Attributes:
        history_bucket: Bucket of bars/, code/ and model artifacts (``HISTORY_BUCKET``).
        history_prefix: Training channel prefix (``HISTORY_PREFIX``, default ``bars/``).
        source_key: Key of sourcedir.tar.gz (``SOURCE_KEY``).
        output_prefix: Prefix of training-job outputs (``OUTPUT_PREFIX``).
        job_prefix: Training job name prefix (``JOB_PREFIX``).
        training_role_arn: SageMaker execution role of the job (``TRAINING_ROLE_ARN``).
        training_image: Pinned framework image URI (``TRAINING_IMAGE``).
        instance_type: Training instance (``TRAINING_INSTANCE_TYPE``).
        volume_gb: Training volume size (``TRAINING_VOLUME_GB``).
        max_runtime_s: Stopping condition (``TRAINING_MAX_RUNTIME_SECONDS``).
        kms_key_arn: Output and volume encryption key (``KMS_KEY_ARN``).
        window_days: Training window before the tick; 0 = all history (``TRAINING_WINDOW_DAYS``).
        model_type: ``logreg`` or ``hgb`` (``MODEL_TYPE``).
        model_c: Inverse regularisation of logreg (``MODEL_C``).
        endpoint_name: Endpoint whose model is the champion (``ENDPOINT_NAME``).
        versions_table: DynamoDB model-versions table (``VERSIONS_TABLE``).
    """

    history_bucket: str
    history_prefix: str
    source_key: str
    output_prefix: str
    job_prefix: str
    training_role_arn: str
    training_image: str
    instance_type: str
    volume_gb: int
    max_runtime_s: int
    kms_key_arn: str | None
    window_days: int
    model_type: str
    model_c: float
    endpoint_name: str
    versions_table: str

    @classmethod
    def from_env(cls) -> RetrainSettings:
        return cls(
            history_bucket=_require("HISTORY_BUCKET"),
            history_prefix=os.environ.get("HISTORY_PREFIX", "").strip() or "bars/",
            source_key=os.environ.get("SOURCE_KEY", "").strip() or "code/sourcedir.tar.gz",
            output_prefix=os.environ.get("OUTPUT_PREFIX", "").strip()
            or "model-artifacts/training-jobs",
            job_prefix=_require("JOB_PREFIX"),
            training_role_arn=_require("TRAINING_ROLE_ARN"),
            training_image=_require("TRAINING_IMAGE"),
            instance_type=os.environ.get("TRAINING_INSTANCE_TYPE", "").strip() or "ml.m5.large",
            volume_gb=_int("TRAINING_VOLUME_GB", 5, minimum=1),
            max_runtime_s=_int("TRAINING_MAX_RUNTIME_SECONDS", 3600, minimum=60),
            kms_key_arn=os.environ.get("KMS_KEY_ARN", "").strip() or None,
            window_days=_int("TRAINING_WINDOW_DAYS", 0),
            model_type=os.environ.get("MODEL_TYPE", "").strip() or "logreg",
            model_c=_float("MODEL_C", 0.001),
            endpoint_name=_require("ENDPOINT_NAME"),
            versions_table=_require("VERSIONS_TABLE"),
        )


@dataclass(frozen=True)
class PromoteSettings:
    """Settings of the promote function (``lambdas/promote.py``).

    Attributes:
        endpoint_name: Endpoint to update (``ENDPOINT_NAME``).
        versions_table: DynamoDB model-versions table (``VERSIONS_TABLE``).
        job_prefix: Only training jobs with this name prefix are handled (``JOB_PREFIX``).
        min_margin: Gate: CI lower bounds must exceed this, nats/row (``GATE_MIN_MARGIN``).
        min_holdout_rows: Gate: walk-forward holdout rows needed (``GATE_MIN_HOLDOUT_ROWS``).
        min_champion_rows: Gate: rows to compare with the serving model
            (``GATE_MIN_CHAMPION_ROWS``).
    """

    endpoint_name: str
    versions_table: str
    job_prefix: str
    min_margin: float
    min_holdout_rows: int
    min_champion_rows: int

    @classmethod
    def from_env(cls) -> PromoteSettings:
        return cls(
            endpoint_name=_require("ENDPOINT_NAME"),
            versions_table=_require("VERSIONS_TABLE"),
            job_prefix=_require("JOB_PREFIX"),
            min_margin=_float("GATE_MIN_MARGIN", 0.0),
            min_holdout_rows=_int("GATE_MIN_HOLDOUT_ROWS", 200, minimum=1),
            min_champion_rows=_int("GATE_MIN_CHAMPION_ROWS", 100, minimum=1),
        )
