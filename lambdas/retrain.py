"""Retrain Lambda: one EventBridge Scheduler tick -> one SageMaker training job (idempotent).

Thin handler: typed settings, Powertools logger/metrics; the request is built by
``stocksage.lifecycle.schedule`` and sent through ``stocksage.adapters.sagemaker_platform``.

Event (the Scheduler target input, see services/lifecycle.tf)::

    {"source": "stocksage.scheduler", "schedule_arn": "<aws.scheduler.schedule-arn>",
     "scheduled_time": "<aws.scheduler.scheduled-time>"}

plus, for operator runs only (``make retrain OVERRIDES=...``), ``"overrides": {"c": "1.0"}``
limited to ``schedule.ALLOWED_OVERRIDES``. The job name derives from the scheduled time, so a
redelivered tick finds its job and returns it (``created: false``) instead of training twice.

Returns ``{"training_job_name", "created", "status", "window": [start, end], "champion"}``.

No endpoint yet (DescribeEndpoint: ``ValidationException`` "Could not find endpoint"): nothing
to compare against or promote to, so the tick is skipped with a warning log line
("retrain skipped: endpoint ... does not exist yet") and ``{"training_job_name": None,
"created": False, "status": "Skipped", "reason": "no endpoint"}`` is returned (not an error:
Terraform creates the schedule only with the endpoint, so this is a deploy in progress).
Other errors propagate (the asynchronous invocation is retried, then goes to the lifecycle
failure queue).
"""

from __future__ import annotations

import json
from functools import cache
from importlib import resources
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.typing import LambdaContext
from botocore.exceptions import ClientError

from stocksage.adapters.model_registry import DynamoModelRegistry
from stocksage.adapters.sagemaker_platform import SageMakerPlatform
from stocksage.lifecycle import versions as V
from stocksage.lifecycle.schedule import RetrainConfig, parse_tick, training_job_request
from stocksage.settings import RetrainSettings

logger = Logger(service="stocksage-retrain")
metrics = Metrics(namespace="stocksage", service="stocksage-retrain")


def metric_definitions() -> list[dict[str, str]]:
    """The training job's metric definitions (``stocksage/model/metric_definitions.json``)."""
    text = resources.files("stocksage.model").joinpath("metric_definitions.json").read_text()
    return json.loads(text)


@cache
def _clients() -> tuple[SageMakerPlatform, Any]:
    return (SageMakerPlatform(boto3.client("sagemaker"), boto3.client("s3")),
            boto3.resource("dynamodb"))


def is_missing_endpoint(err: Exception) -> bool:
    """True for SageMaker's answer to DescribeEndpoint on an endpoint that does not exist
    (``ValidationException`` with "Could not find endpoint"; boto3 ``ClientError``)."""
    if not isinstance(err, ClientError):
        return False
    error = err.response.get("Error", {})
    return (error.get("Code") in ("ValidationException", "ValidationError")
            and "could not find endpoint" in str(error.get("Message", "")).lower())


def config_from(settings: RetrainSettings, region: str) -> RetrainConfig:
    return RetrainConfig(
        bucket=settings.history_bucket, job_prefix=settings.job_prefix,
        role_arn=settings.training_role_arn, image=settings.training_image, region=region,
        history_prefix=settings.history_prefix, source_key=settings.source_key,
        output_prefix=settings.output_prefix, instance_type=settings.instance_type,
        volume_gb=settings.volume_gb, max_runtime_s=settings.max_runtime_s,
        kms_key_arn=settings.kms_key_arn, window_days=settings.window_days,
        hyperparameters={"model-type": settings.model_type, "c": str(settings.model_c)},
        metric_definitions=metric_definitions())


@logger.inject_lambda_context
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], _context: LambdaContext) -> dict[str, Any]:
    settings = RetrainSettings.from_env()
    platform, dynamodb = _clients()
    tick = parse_tick(event)
    region = boto3.session.Session().region_name or "us-east-1"
    try:
        serving = platform.serving_model(settings.endpoint_name)
    except ClientError as err:
        if not is_missing_endpoint(err):
            raise
        logger.warning("retrain skipped: endpoint %s does not exist yet (deploy it first: "
                       "README 'Deploy to AWS')", settings.endpoint_name,
                       extra={"endpoint": settings.endpoint_name,
                              "scheduled_time": V.now_iso(tick.scheduled_time)})
        metrics.add_metric(name="RetrainSkipped", unit=MetricUnit.Count, value=1)
        return {"training_job_name": None, "created": False, "status": "Skipped",
                "reason": "no endpoint"}
    request = training_job_request(config_from(settings, region), tick,
                                   champion_artifact=serving.model_data_url,
                                   champion_version=serving.model_version)
    name = request["TrainingJobName"]
    description, created = platform.create_training_job(request)
    hps = request["HyperParameters"]
    window = [json.loads(hps["start"]) or None, json.loads(hps["end"])]
    registry = DynamoModelRegistry(dynamodb, settings.versions_table)
    registry.create(V.ModelVersion(
        model_version=name, status=V.TRAINING, created_at=V.now_iso(),
        training_job_name=name, scheduled_time=V.now_iso(tick.scheduled_time),
        champion_version=serving.model_version,
        data_range={"window_start": window[0] or "", "window_end": window[1]},
        history=[{"at": V.now_iso(), "event": "training_job_created", "from": "",
                  "to": V.TRAINING, "detail": json.dumps(tick.overrides)}]))
    metrics.add_metric(name="TrainingJobsCreated", unit=MetricUnit.Count, value=int(created))
    logger.info("retrain tick", extra={"training_job_name": name, "job_created": created,
                                       "window": window, "champion": serving.model_version,
                                       "overrides": tick.overrides})
    return {"training_job_name": name, "created": created,
            "status": description.get("TrainingJobStatus"), "window": window,
            "champion": serving.model_version}
