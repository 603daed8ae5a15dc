"""Processor Lambda: Kinesis batch of trades and bars -> bars, indicators, predictions, alerts.

Thin handler: decode records, read typed settings, observability (Powertools Logger, Metrics,
Tracer) and partial batch responses (Powertools ``BatchProcessor``, public API only). The work
is done by ``stocksage.processing.process_batch`` through the adapters in
``stocksage.adapters``; every boto3 client has bounded timeouts and retries
(``stocksage.adapters.aws.client_config``).

Failure semantics (the event source mapping has ReportBatchItemFailures, bisect on error,
bounded retries and an SQS on-failure destination):

- A malformed record, or a bar its symbol's state refuses (another interval), goes to the
  failure queue with its reason and raw data and counts as handled: retrying cannot fix it.
  A trades record with some invalid trades is processed with its valid ones; one failure
  message names the invalid ones (index, reason, kind, raw values) and carries the record.
- The endpoint or SNS failing does not fail anything: bars get ``prediction_status =
  pending`` and alerts wait in the symbol's outbox; both are completed by later batches.
- Only the records of symbols whose results or state could not be stored (throttling,
  conflicting concurrent write, unreadable state) become batch item failures. Kinesis
  retries from the lowest one; every write is idempotent, so the retry converges.
"""

from __future__ import annotations

import base64
import binascii
from dataclasses import dataclass, field
from datetime import timedelta
from functools import cache
from typing import Any

from aws_lambda_powertools import Logger, Metrics, Tracer
from aws_lambda_powertools.metrics import MetricUnit
from aws_lambda_powertools.utilities.batch import (
    BatchProcessor,
    EventType,
    process_partial_response,
)
from aws_lambda_powertools.utilities.batch.types import PartialItemFailureResponse
from aws_lambda_powertools.utilities.data_classes.kinesis_stream_event import (
    KinesisStreamEvent,
    KinesisStreamRecord,
)
from aws_lambda_powertools.utilities.typing import LambdaContext

from stocksage.adapters.wiring import Dependencies
from stocksage.bars import MalformedBarError
from stocksage.bars.trade_parsing import RejectedTrade
from stocksage.processing import (
    BatchOutcome,
    DecodedRecord,
    Ports,
    StreamBar,
    StreamTrades,
    decode_record,
    process_batch,
)
from stocksage.settings import ProcessorSettings

logger = Logger(service="stocksage-processor")
metrics = Metrics(namespace="stocksage", service="stocksage-processor")
tracer = Tracer(service="stocksage-processor")


@cache
def dependencies() -> Dependencies:
    """Cold-start construction, reused by warm invocations."""
    return Dependencies(ProcessorSettings.from_env())


class RetryRecord(RuntimeError):
    """Raised by the record handler for a record Kinesis must re-send (its symbol failed)."""


@dataclass(frozen=True)
class Quarantined:
    """Why a record goes to the failure queue instead of being processed.

    Attributes:
        reason: One short sentence, e.g. ``"high 10.0 is below close 11.0"``.
        kind: A ``stocksage.bars.REJECTION_KINDS`` code, ``"interval_mismatch"`` for a bar
            its symbol's state refused, or ``"invalid_base64"`` for event data that is not
            base64 (Kinesis never sends that; a hand-made or replayed event may).
    """

    reason: str
    kind: str


def decode(record: KinesisStreamRecord, max_future_skew: timedelta | None = None
           ) -> DecodedRecord:
    """One record -> bar or trades (``stocksage.processing.decode_record``); raises
    ``MalformedBarError`` for a record invalid as a whole.

    The record's partition key must be its symbol (the stream's contract: ordering and the
    state are per symbol); its shard is the ``eventID`` before the ``:``. Reads the raw
    event record (``record.raw_event``): the per-record cost of the data-class properties
    is a fifth of a small trades record's decoding.
    """
    raw = record.raw_event
    kinesis = raw["kinesis"]
    event_id = raw.get("eventID") or ""
    if max_future_skew is None:
        max_future_skew = timedelta(seconds=dependencies().settings.max_future_skew_s)
    try:
        data = base64.b64decode(kinesis["data"], validate=True)
    except (binascii.Error, ValueError, TypeError):
        raise MalformedBarError("record data is not base64", "invalid_base64") from None
    return decode_record(data, partition_key=kinesis["partitionKey"],
                         sequence_number=kinesis["sequenceNumber"],
                         shard_id=event_id.rsplit(":", 1)[0] if ":" in event_id else "",
                         arrived_at=kinesis.get("approximateArrivalTimestamp"),
                         max_future_skew=max_future_skew)


@dataclass
class ProcessedBatch:
    """A Kinesis batch after decoding and one ``process_batch`` call, and each record's fate.

    Attributes:
        outcome: What ``process_batch`` reported; None when no record decoded.
        quarantined: ``{sequence number: Quarantined}``: malformed records and bars their
            symbol's state rejected.
        rejected_trades: ``{sequence number: invalid trades}`` of trades records whose
            valid trades were processed.
    """

    outcome: BatchOutcome | None = None
    quarantined: dict[str, Quarantined] = field(default_factory=dict)
    rejected_trades: dict[str, tuple[RejectedTrade, ...]] = field(default_factory=dict)

    @classmethod
    def run(cls, event: dict[str, Any], ports: Ports) -> ProcessedBatch:
        """Decode every record of ``event``, then run ``process_batch`` once on the bars."""
        batch = cls()
        bars: list[StreamBar] = []
        trades: list[StreamTrades] = []
        skew = timedelta(seconds=dependencies().settings.max_future_skew_s)
        for record in KinesisStreamEvent(event).records:
            sequence = record.raw_event["kinesis"]["sequenceNumber"]
            try:
                decoded = decode(record, skew)
            except MalformedBarError as err:
                batch.quarantined[sequence] = Quarantined(err.reason, err.kind)
                continue
            if isinstance(decoded.item, StreamBar):
                bars.append(decoded.item)
            else:
                trades.append(decoded.item)
            if decoded.rejected:
                batch.rejected_trades[sequence] = decoded.rejected
        if not bars and not trades:
            return batch
        batch.outcome = process_batch(bars, ports, trades=trades)
        for stream_bar, reason in batch.outcome.rejected:
            sequence = stream_bar.sequence_number
            batch.quarantined[sequence] = Quarantined(reason, "interval_mismatch")
        return batch

    def settle(self, record: KinesisStreamRecord) -> None:
        """Powertools record handler: the record's fate in the partial batch response.

        A quarantined record is sent to the failure queue and succeeds (retrying cannot fix
        it); a record of a symbol that was not stored raises ``RetryRecord`` (a batch item
        failure: Kinesis re-sends it); every other record succeeds.
        """
        quarantined = self.quarantined.get(record.kinesis.sequence_number)
        if quarantined is not None:
            _quarantine(record, quarantined)
            return
        symbol = record.kinesis.partition_key
        failed = self.outcome.failed if self.outcome is not None else {}
        if symbol in failed:
            raise RetryRecord(f"{symbol}: {failed[symbol]}")
        rejected = self.rejected_trades.get(record.kinesis.sequence_number)
        if rejected:
            _quarantine_trades(record, rejected)


def _quarantine(record: KinesisStreamRecord, quarantined: Quarantined) -> None:
    logger.warning("record quarantined", extra={
        "reason": quarantined.reason, "kind": quarantined.kind,
        "sequence_number": record.kinesis.sequence_number,
        "partition_key": record.kinesis.partition_key})
    dependencies().quarantine.send(record.raw_event, quarantined.reason, kind=quarantined.kind)
    metrics.add_metric(name="MalformedRecords", unit=MetricUnit.Count, value=1)


def _quarantine_trades(record: KinesisStreamRecord, rejected: tuple[RejectedTrade, ...]) -> None:
    logger.warning("invalid trades quarantined", extra={
        "count": len(rejected), "reason": rejected[0].reason, "kind": rejected[0].kind,
        "sequence_number": record.kinesis.sequence_number,
        "partition_key": record.kinesis.partition_key})
    dependencies().quarantine.send_trades(record.raw_event, rejected)
    metrics.add_metric(name="MalformedTrades", unit=MetricUnit.Count, value=len(rejected))


def _record_outcome(outcome: BatchOutcome) -> None:
    for name, metric in (("accepted", "BarsAccepted"), ("duplicates", "DuplicateBars"),
                         ("late", "LateBars"), ("predicted", "BarsPredicted"),
                         ("pending_predictions", "PendingPredictions"),
                         ("filled_predictions", "FilledPredictions"),
                         ("alerts_published", "AlertsPublished"),
                         ("alerts_pending", "PendingAlerts"),
                         ("alerts_dropped", "AlertsDropped"),
                         ("trades_accepted", "TradesAccepted"), ("late_trades", "LateTrades"),
                         ("duplicate_trades", "DuplicateTrades"),
                         ("duplicate_records", "DuplicateRecords"),
                         ("bars_built", "BarsBuilt"), ("intrabar_alerts", "IntrabarAlerts")):
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
    for symbol, counts in outcome.symbols.items():
        if counts.late_trades:
            logger.warning("late trades in no bar (kept in the S3 history; stocksage repair "
                           "rebuilds the symbol with them)",
                           extra={"symbol": symbol, "late_trades": counts.late_trades})
    logger.info("batch processed", extra={
        "symbols": len(outcome.symbols), "results_written": outcome.results_written,
        "duplicates": outcome.total("duplicates"), "late": outcome.total("late"),
        "alerts_published": outcome.total("alerts_published"),
        "trades": outcome.total("trades_accepted"), "late_trades": outcome.total("late_trades"),
        "bars_built": outcome.total("bars_built"),
        "failed_symbols": len(outcome.failed), "model_version": outcome.model_version})


@logger.inject_lambda_context
@tracer.capture_lambda_handler
@metrics.log_metrics
def lambda_handler(event: dict[str, Any], context: LambdaContext) -> PartialItemFailureResponse:
    """Kinesis event -> ``{"batchItemFailures": [{"itemIdentifier": <sequence number>}, ...]}``.

    The whole batch is processed first (``ProcessedBatch.run``); Powertools' ``BatchProcessor``
    then settles each record (``ProcessedBatch.settle``) and builds the response. When every
    record failed it raises ``BatchProcessingError`` instead, and the event source mapping
    retries (bisecting) the whole batch.
    """
    deps = dependencies()
    deps.publisher.register_lambda_context(context)
    batch = ProcessedBatch.run(event, deps.ports)
    response = process_partial_response(
        event=event, record_handler=batch.settle,
        processor=BatchProcessor(event_type=EventType.KinesisDataStreams), context=context)
    if batch.outcome is not None:
        _record_outcome(batch.outcome)
    return response
