"""Wiring: the processor's boto3 clients and adapters, built from its settings.

``Dependencies(settings)`` is what the processor Lambda builds once per execution environment
(``lambdas.processor.dependencies``) and what the operator CLI builds to redrive or repair with
the processor's own adapters (``stocksage redrive``)::

    deps = Dependencies(ProcessorSettings.from_env())
    outcome = process_batch(bars, deps.ports)

Every client has bounded timeouts and retries (``stocksage.adapters.aws.client_config``).
"""

from __future__ import annotations

import boto3

from stocksage.adapters.aws import client_config
from stocksage.adapters.dynamodb.result_store import DynamoResultStore
from stocksage.adapters.dynamodb.rule_source import DynamoRuleSource
from stocksage.adapters.dynamodb.state_store import DynamoStateStore
from stocksage.adapters.endpoint import SageMakerPredictor
from stocksage.adapters.quarantine import SqsQuarantine
from stocksage.adapters.sns_alerts import SnsAlertPublisher
from stocksage.processing import Ports
from stocksage.settings import ProcessorSettings

__all__ = ["Dependencies"]


class Dependencies:
    """Clients and adapters built once per execution environment (cold start)."""

    def __init__(self, settings: ProcessorSettings) -> None:
        dynamodb = boto3.client("dynamodb", config=client_config("dynamodb"))
        self.settings = settings
        self.quarantine = SqsQuarantine(
            boto3.client("sqs", config=client_config("sqs")), settings.failure_queue_url,
            s3_client=boto3.client("s3", config=client_config("s3")) if
            settings.quarantine_bucket else None, bucket=settings.quarantine_bucket)
        self.publisher = SnsAlertPublisher(boto3.client("sns", config=client_config("sns")),
                                           settings.alerts_topic_arn, settings.idempotency_table,
                                           dynamodb_client=dynamodb)
        self.ports = Ports(
            states=DynamoStateStore(dynamodb, settings.state_table),
            results=DynamoResultStore(dynamodb, settings.results_table, settings.result_ttl_days),
            predictor=SageMakerPredictor(
                boto3.client("sagemaker-runtime", config=client_config("sagemaker-runtime")),
                settings.endpoint_name),
            rules=DynamoRuleSource(settings.rules_table, settings.rules_max_age, dynamodb),
            alerts=self.publisher,
        )
