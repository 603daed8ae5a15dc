"""Processor Lambda: Kinesis batch of OHLCV bars -> indicators, prediction, results, alerts.

Thin handler: decode records, read typed settings, observability (Powertools Logger, Metrics,
Tracer) and partial batch responses (Powertools ``BatchProcessor``, public API only). The work
is done by ``stocksage.processing.process_batch`` through the adapters in
``stocksage.adapters``; every boto3 client has bounded timeouts and retries
(``stocksage.adapters.aws.client_config``).

Failure semantics (the event source mapping has ReportBatchItemFailures, bisect on error,
bounded retries and an SQS on-failure destination):

- A malformed record, or a bar its symbol's state refuses (another interval), goes to the
  failure queue with its reason and raw data and counts as handled: retrying cannot fix it.
- The endpoint or SNS failing does not fail anything: bars get ``prediction_status =
  pending`` and alerts wait in the symbol's outbox; both are completed by later batches.
- Only the records of symbols whose results or state could not be stored (throttling,
  conflicting concurrent write, unreadable state) become batch item failures. Kinesis
  retries from the lowest one; every write is idempotent, so the retry converges.
"""

from __future__ import annotations

from datetime import timedelta
from functools import cache
from typing import Any

import boto3
from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamEvent,
    KinesisStreamRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.settings import ProcessorSettings
from stocksage.adapters.aws import client_config
from stocksage.adapters.dynamodb import DynamoResultStore, DynamoRuleSource, DynamoStateStore
from stocksage.adapters.endpoint import SageMakerPredictor
from stocksage.adapters.quarantine import SqsQuarantine
from stocksage.adapters.sns_alerts import SnsAlertPublisher
from stocksage.bars import MalformedBarError, parse_bar
from stocksage.processing import BatchOutcome, Ports, StreamBar, process_batch

logger = Logger(service="stocksage-processor")
metrics = Metrics(namespace="stocksage", service="stocksage-processor")
tracer = Tracer(service="stocksage-processor")


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


@cache
def dependencies() -> Dependencies:
    """Cold-start construction, reused by warm invocations."""
    return Dependencies(ProcessorSettings.from_env())


class RetryRecord(RuntimeError):
    """Raised by the record handler for a record Kinesis must re-send (its symbol failed)."""


def decode(record: KinesisStreamRecord) -> StreamBar:
    """One record -> ``StreamBar``; raises ``MalformedBarError`` for an invalid bar.

    The record's partition key must be the bar's symbol (the stream's contract: ordering and
    the state are per symbol).
    """
    kinesis = record.kinesis
    bar = parse_bar(kinesis.data_as_bytes(), partition_key=kinesis.partition_key,
                    arrived_at=kinesis.approximate_arrival_timestamp,
                    max_future_skew=timedelta(seconds=dependencies().settings.max_future_skew_s))
    return StreamBar(bar=bar, sequence_number=kinesis.sequence_number)


def _quarantine(record: KinesisStreamRecord, reason: str, kind: str) -> None:
    logger.warning("record quarantined", extra={
        "reason": reason, "kind": kind, "sequence_number": record.kinesis.sequence_number,
        "partition_key": record.kinesis.partition_key})
    dependencies().quarantine.send(record.raw_event, reason, kind=kind)
    metrics.add_metric(name="MalformedRecords", unit=MetricUnit.Count, value=1)


def _record_outcome(outcome: BatchOutcome) -> None:
    for name, metric in (("accepted", "BarsAccepted"), ("duplicates", "DuplicateBars"),
                         ("late", "LateBars"), ("predicted", "BarsPredicted"),
                         ("pending_predictions", "PendingPredictions"),
                         ("filled_predictions", "FilledPredictions"),
                         ("alerts_published", "AlertsPublished"),
                         ("alerts_pending", "PendingAlerts"),
                         ("alerts_dropped", "AlertsDropped")):
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=outcome.total(name))
    metrics.add_metric(name="RuleErrors", unit=MetricUnit.Count, value=len(outcome.rule_errors))
    metrics.add_metric(name="FailedSymbols", unit=MetricUnit.Count, value=len(outcome.failed))
    for error in outcome.rule_errors:
        logger.error("broken alert rule skipped", extra={"rule_id": error.rule_id,
                                                         "symbol": error.symbol,
                                                         "reason": error.reason})
    if outcome.endpoint_error:
        logger.warning("endpoint unavailable: predictions left pending",
                       extra={"error": outcome.endpoint_error,
                              "pending": outcome.total("pending_predictions")})
    if outcome.alert_error:
        logger.warning("alert publishing failed: alerts kept in the outbox",
                       extra={"error": outcome.alert_error,
                              "pending": outcome.total("alerts_pending")})
    for symbol, reason in outcome.failed.items():
        logger.error("symbol not stored; its records will be retried",
                     extra={"symbol": symbol, "reason": reason})
    for late in outcome.late:
        logger.warning("late bar not processed (stocksage repair recomputes the symbol)",
                        extra={"symbol": late.bar.symbol,
                               "bar_time": late.bar.to_dict()["bar_time"],
                               "sequence_number": late.sequence_number})
    logger.info("batch processed", extra={
        "symbols": len(outcome.symbols), "results_written": outcome.results_written,
        "duplicates": outcome.total("duplicates"), "late": outcome.total("late"),
        "alerts_published": outcome.total("alerts_published"),
        "failed_symbols": len(outcome.failed), "model_version": outcome.model_version})


def handle_batch(event: dict[str, Any]
                 ) -> tuple[BatchOutcome | None, dict[str, tuple[str, str]]]:
    """Decode every record, run ``process_batch`` once; return the outcome and
    ``{sequence_number: (reason, kind)}`` of the records to quarantine (malformed, rejected)."""
    deps = dependencies()
    bars: list[StreamBar] = []
    quarantined: dict[str, tuple[str, str]] = {}
    for record in KinesisStreamEvent(event).records:
        try:
            bars.append(decode(record))
        except MalformedBarError as err:
            quarantined[record.kinesis.sequence_number] = (err.reason, err.kind)
    if not bars:
        return None, quarantined
    outcome = process_batch(bars, deps.ports)
    for stream_bar, reason in outcome.rejected:
        quarantined[stream_bar.sequence_number] = (reason, "interval_mismatch")
    return outcome, quarantined


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Kinesis event -> ``{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}``."""
    deps = dependencies()
    deps.publisher.register_lambda_context(context)
    outcome, quarantined = handle_batch(event)
    failed = outcome.failed if outcome is not None else {}

    def record_handler(record: KinesisStreamRecord) -> None:
        sequence = record.kinesis.sequence_number
        if sequence in quarantined:
            _quarantine(record, *quarantined[sequence])
            return
        symbol = record.kinesis.partition_key
        if symbol in failed:
            raise RetryRecord(f"{symbol}: {failed[symbol]}")

    response = process_partial_response(
        event=event, record_handler=record_handler,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams), context=context)
    if outcome is not None:
        _record_outcome(outcome)
    return response
