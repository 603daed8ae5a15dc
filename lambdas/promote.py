"""Promote Lambda: a finished training job -> version record, quality gate, endpoint update.

Triggered by the EventBridge rule on ``aws.sagemaker`` / "SageMaker Training Job State Change"
(status Completed, Failed or Stopped; job name prefix = ours). The work is
``stocksage.lifecycle.promotion.handle_training_job_event`` (idempotent per job: EventBridge
delivers at least once) over the DynamoDB registry and the SageMaker platform adapters.

Returns ``{"action": ignored|duplicate|failed|rejected|promoted, "model_version", "detail"}``.
"""

from __future__ import annotations

from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksage.adapters.model_registry import DynamoModelRegistry
from stocksage.adapters.sagemaker_platform import SageMakerPlatform
from stocksage.lifecycle.gate import GatePolicy
from stocksage.lifecycle.promotion import handle_training_job_event
from stocksage.settings import PromoteSettings

logger = Logger(service="stocksage-promote")
metrics = Metrics(namespace="stocksage", service="stocksage-promote")


@cache
def _clients() -> tuple[SageMakerPlatform, Any]:
    return (SageMakerPlatform(boto3.client("sagemaker"), boto3.client("s3")),
            boto3.resource("dynamodb"))


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    settings = PromoteSettings.from_env()
    platform, dynamodb = _clients()
    outcome = handle_training_job_event(
        event,
        registry=DynamoModelRegistry(dynamodb, settings.versions_table),
        platform=platform,
        endpoint_name=settings.endpoint_name,
        job_prefix=settings.job_prefix,
        policy=GatePolicy(settings.min_margin, settings.min_holdout_rows,
                          settings.min_champion_rows),
    )
    metric = {"promoted": "ModelsPromoted", "rejected": "ModelsRejected",
              "failed": "TrainingJobsFailed"}.get(outcome.action)
    if metric:
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=1)
    logger.info("training job handled", extra={"action": outcome.action,
                                               "model_version": outcome.model_version,
                                               "detail": outcome.detail})
    return {"action": outcome.action, "model_version": outcome.model_version,
            "detail": outcome.detail, "endpoint_config_name": outcome.endpoint_config_name}
