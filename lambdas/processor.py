"""Processor Lambda: Kinesis batch of OHLCV bars -> indicators, prediction, results, alerts.

Thin handler: decode records, read typed settings, observability (Powertools Logger, Metrics,
Tracer) and partial batch responses (Powertools ``BatchProcessor``). The work is done by
``stocksage.processing.process_batch`` through the adapters in ``stocksage.adapters``.

Failure semantics (the event source mapping has ReportBatchItemFailures, bisect on error,
bounded retries and an SQS on-failure destination):

- A malformed record (not a valid bar) is sent to the failure queue with its reason and raw
  data and counts as handled: retrying cannot fix it. The rest of the batch is processed.
- Any other failure (DynamoDB, endpoint, SNS) marks every bar record of the batch as a batch
  item failure. Kinesis retries from the lowest one; every write is idempotent, so the retry
  recomputes and overwrites the same items and publishes no alert twice. When the retries are
  exhausted, the event source mapping sends the batch's metadata to the on-failure destination.
"""

from __future__ import annotations

import sys
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
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import KinesisStreamRecord
from aws_lambda_powertools.utilities.typing import LambdaContext

from lambdas.settings import ProcessorSettings
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
        dynamodb = boto3.resource("dynamodb")
        self.settings = settings
        self.quarantine = SqsQuarantine(boto3.client("sqs"), settings.failure_queue_url)
        self.publisher = SnsAlertPublisher(boto3.client("sns"), settings.alerts_topic_arn,
                                           settings.idempotency_table,
                                           dynamodb_client=boto3.client("dynamodb"))
        self.ports = Ports(
            states=DynamoStateStore(dynamodb, settings.state_table),
            results=DynamoResultStore(dynamodb, settings.results_table, settings.result_ttl_days),
            predictor=SageMakerPredictor(boto3.client("sagemaker-runtime"),
                                         settings.endpoint_name),
            rules=DynamoRuleSource(settings.rules_table, settings.rules_max_age, dynamodb),
            alerts=self.publisher,
        )


@cache
def dependencies() -> Dependencies:
    """Cold-start construction, reused by warm invocations."""
    return Dependencies(ProcessorSettings.from_env())


class BarBatchProcessor(BatchProcessor):
    """Kinesis ``BatchProcessor`` with a per-batch step after the per-record decoding.

    The record handler only decodes (returning a ``StreamBar``, or None for a quarantined
    record). ``process`` then hands all decoded bars to ``process_batch`` in one call; if that
    raises, the decoded records become batch item failures.
    """

    def __init__(self, deps: Dependencies) -> None:
        super().__init__(event_type=EventType.KinesisDataStreams)
        self._deps = deps
        self.outcome: BatchOutcome | None = None

    def process(self) -> list[tuple]:
        entries = super().process()
        decoded = [(entry[2], entry[1]) for entry in entries
                   if entry[0] == "success" and entry[1] is not None]
        if not decoded:
            return entries
        try:
            self.outcome = process_batch([bar for _, bar in decoded], self._deps.ports,
                                         window_bars=self._deps.settings.window_bars)
        except Exception:
            exc_info = sys.exc_info()
            logger.exception("batch step failed; reporting its bars as batch item failures",
                             extra={"bars": len(decoded)})
            failed = {id(record) for record, _ in decoded}
            self.success_messages = [m for m in self.success_messages if id(m) not in failed]
            entries = [
                self.failure_handler(self._to_batch_type(entry[2], self.event_type, self.model),
                                     exc_info) if id(entry[2]) in failed else entry
                for entry in entries
            ]
        return entries


def decode_record(record: KinesisStreamRecord) -> StreamBar | None:
    """Decode one record; quarantine it (and return None) when it is not a valid bar.

    The record must be a bar whose symbol is its partition key and whose ``bar_time`` is not
    more than ``MAX_FUTURE_SKEW_SECONDS`` after its ``approximateArrivalTimestamp``.
    """
    deps = dependencies()
    kinesis = record.kinesis
    try:
        bar = parse_bar(kinesis.data_as_bytes(), partition_key=kinesis.partition_key,
                        arrived_at=kinesis.approximate_arrival_timestamp,
                        max_future_skew=timedelta(seconds=deps.settings.max_future_skew_s))
    except MalformedBarError as err:
        logger.warning("malformed record quarantined", extra={
            "reason": err.reason, "kind": err.kind, "sequence_number": kinesis.sequence_number,
            "partition_key": kinesis.partition_key})
        deps.quarantine.send(record.raw_event, err.reason, kind=err.kind)
        metrics.add_metric(name="MalformedRecords", unit=MetricUnit.Count, value=1)
        return None
    return StreamBar(bar=bar, sequence_number=kinesis.sequence_number)


def _record_outcome(outcome: BatchOutcome) -> None:
    for name, metric in (("accepted", "BarsAccepted"), ("duplicates", "DuplicateBars"),
                         ("late", "LateBars"), ("predicted", "BarsPredicted"),
                         ("alerts_published", "AlertsPublished")):
        metrics.add_metric(name=metric, unit=MetricUnit.Count, value=outcome.total(name))
    metrics.add_metric(name="RuleErrors", unit=MetricUnit.Count, value=len(outcome.rule_errors))
    for error in outcome.rule_errors:
        logger.error("broken alert rule skipped", extra={"rule_id": error.rule_id,
                                                         "symbol": error.symbol,
                                                         "reason": error.reason})
    logger.info("batch processed", extra={
        "symbols": len(outcome.symbols), "results_written": outcome.results_written,
        "duplicates": outcome.total("duplicates"), "late": outcome.total("late"),
        "alerts_published": outcome.total("alerts_published"),
        "model_version": outcome.model_version})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> dict[str, Any]:
    """Kinesis event -> ``{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}``."""
    deps = dependencies()
    deps.publisher.register_lambda_context(context)
    processor = BarBatchProcessor(deps)
    response = process_partial_response(event=event, record_handler=decode_record,
                                        processor=processor, context=context)
    if processor.outcome is not None:
        _record_outcome(processor.outcome)
    return response
