"""Redrive and repair: use cases over the ports, for operators (``stocksage redrive|repair``).

``redrive`` reads the event source mapping's on-failure records from the failure queue (AWS's
record: ``requestContext`` + ``KinesisBatchInfo`` with ``shardId``, ``startSequenceNumber``,
``endSequenceNumber``, ``streamArn``), re-reads that sequence range from the stream (while it
is within the retention period) and runs it through the processor's own domain path
(``processing.process_batch`` with the processor's adapters). A message is deleted only when
every symbol of its range was stored; quarantine messages (malformed records, with a
``reason``) are left for people: retrying cannot fix them.

``repair`` rebuilds one symbol from its results items and its S3 history
(``stocksage.operations.recovery.rebuild``): late bars are repaired into the series.

The I/O sits behind two small protocols implemented in ``stocksage.adapters``
(``SqsFailureQueue``, ``KinesisRangeReader``) and the processor's ``Ports``, so the use
cases are tested without AWS.
"""

from __future__ import annotations

import base64
import json
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any, Protocol

from stocksage.alerts import lookback_bars
from stocksage.bars import Bar, MalformedBarError
from stocksage.bars.schema import DEFAULT_MAX_FUTURE_SKEW
from stocksage.operations.recovery import Rebuild, bars_from_results, rebuild
from stocksage.processing import Ports, StreamBar, StreamTrades, decode_record, process_batch

__all__ = [
    "FailureQueue",
    "RangeUnavailableError",
    "RedriveReport",
    "StreamRangeReader",
    "failure_record",
    "redrive",
    "repair",
]

@dataclass
class RedriveReport:
    """What ``redrive`` did.

    Attributes:
        batches: On-failure records redriven (their messages deleted).
        records: Stream records read again.
        bars: Bars accepted now (the rest were duplicates of what was stored meanwhile).
        kept: On-failure records left in the queue, with the reason.
        quarantined: Quarantine messages seen (malformed records; left for people).
        late_symbols: Symbols with late bars: run ``stocksage repair`` for them.
    """

    batches: int = 0
    records: int = 0
    bars: int = 0
    kept: list[str] = field(default_factory=list)
    quarantined: int = 0
    late_symbols: set[str] = field(default_factory=set)


class RangeUnavailableError(RuntimeError):
    """A stream range cannot be re-read (the message is the service's error code, e.g.
    ``InvalidArgumentException`` for a range past the stream's retention)."""


class FailureQueue(Protocol):
    """The on-failure destination: message bodies with their receipts, and deletion."""

    def receive(self) -> Iterable[list[tuple[str, str]]]:
        """Batches of ``(message body, receipt)``, read lazily until the queue is empty."""
        ...

    def delete(self, receipt: str) -> None:
        """Delete the message of ``receipt``."""
        ...


class StreamRangeReader(Protocol):
    """Re-reads a shard's sequence-number range (``stocksage.adapters.stream_reader``)."""

    def read_range(self, stream_arn: str, shard_id: str, start: str,
                   end: str) -> Iterable[dict[str, Any]]:
        """Records ``{"SequenceNumber", "PartitionKey", "Data"}`` from ``start`` to ``end``
        inclusive; raises ``RangeUnavailableError``."""
        ...


def redrive(failures: FailureQueue, stream: StreamRangeReader, ports: Ports, quarantine: Any,
            max_messages: int = 100,
            max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW) -> RedriveReport:
    """Reprocess the batches the event source mapping gave up on (module docstring).

    Args:
        failures: The failure queue (``stocksage.adapters.failure_queue.SqsFailureQueue``).
        stream: Reader of the stream's ranges (``stocksage.adapters.stream_reader``).
        ports: The processor's ports (``stocksage.adapters.wiring.Dependencies.ports``).
        quarantine: Where malformed records go (``SqsQuarantine``: ``send(record, reason)``).
        max_messages: At most this many messages are looked at in one call.
        max_future_skew: The live path's tolerance for a bar time after the record's arrival
            (the processor's ``MAX_FUTURE_SKEW_SECONDS``): redrive validates exactly like it,
            and quarantines a rejected record whole (data, shard, sequence number, kind).
    """
    report = RedriveReport()
    seen = 0
    for messages in failures.receive():
        for raw_body, receipt in messages:
            seen += 1
            body = json.loads(raw_body)
            info = body.get("KinesisBatchInfo") if isinstance(body, dict) else None
            if info is None:
                report.quarantined += 1
                continue
            reason = _redrive_one(info, stream, ports, quarantine, report, max_future_skew)
            if reason:
                report.kept.append(f"{info['shardId']} {info['startSequenceNumber']}.."
                                   f"{info['endSequenceNumber']}: {reason}")
                continue
            failures.delete(receipt)
            report.batches += 1
        if seen >= max_messages:
            break
    return report


def failure_record(record: dict[str, Any], info: dict[str, Any]) -> dict[str, Any]:
    """A re-read stream record in the shape of a Lambda Kinesis event record, for the
    quarantine report: base64 data, partition key, sequence number, arrival time, and the
    ``eventID`` ``<shard id>:<sequence number>`` that names its shard."""
    data = record["Data"]
    arrival = record.get("ApproximateArrivalTimestamp")
    return {"kinesis": {"data": base64.b64encode(data if isinstance(data, bytes)
                                                  else str(data).encode()).decode(),
                        "partitionKey": record["PartitionKey"],
                        "sequenceNumber": record["SequenceNumber"],
                        "approximateArrivalTimestamp": arrival.timestamp() if
                        isinstance(arrival, datetime) else arrival},
            "eventID": f"{info['shardId']}:{record['SequenceNumber']}",
            "eventSourceARN": info["streamArn"]}


def _redrive_one(info: dict[str, Any], stream: StreamRangeReader, ports: Ports,
                 quarantine: Any, report: RedriveReport, max_future_skew: timedelta) -> str:
    try:
        records = list(stream.read_range(info["streamArn"], info["shardId"],
                                         info["startSequenceNumber"],
                                         info["endSequenceNumber"]))
    except RangeUnavailableError as exc:
        return (f"cannot re-read the range ({exc}); past the "
                f"retention, use `stocksage repair` on the affected symbols")
    report.records += len(records)
    bars: list[StreamBar] = []
    trades: list[StreamTrades] = []
    for record in records:
        try:
            decoded = decode_record(record["Data"], partition_key=record["PartitionKey"],
                                    sequence_number=record["SequenceNumber"],
                                    shard_id=info["shardId"],
                                    arrived_at=record.get("ApproximateArrivalTimestamp"),
                                    max_future_skew=max_future_skew)
        except MalformedBarError as err:
            quarantine.send(failure_record(record, info), err.reason, kind=err.kind)
            continue
        if isinstance(decoded.item, StreamBar):
            bars.append(decoded.item)
        else:
            trades.append(decoded.item)
        if decoded.rejected:
            quarantine.send_trades(failure_record(record, info), decoded.rejected)
    outcome = process_batch(bars, ports, trades=trades)
    report.bars += outcome.total("accepted")
    report.late_symbols |= {late.bar.symbol for late in outcome.late}
    if outcome.failed:
        return "symbols not stored: " + ", ".join(f"{s} ({r})" for s, r in
                                                   sorted(outcome.failed.items()))
    return ""


def repair(symbol: str, ports: Ports, results_items: list[dict[str, Any]],
           history: Callable[[str], Iterable[Bar]]) -> tuple[Rebuild | None, dict[str, str]]:
    """Rebuild ``symbol`` from its results items and S3 history and store it.

    Args:
        history: ``history(prefix)`` -> the bars stored under that S3 prefix
            (``stocksage.adapters.s3_history.iter_history`` bound to a client and bucket);
            called with ``bars/symbol=<symbol>/``.

    Returns:
        The rebuild and ``{symbol: reason}`` when a write failed (a state conflict means the
        stream advanced the symbol meanwhile: run the repair again). When the stored state
        could not be read nothing is rebuilt: ``(None, {symbol: reason})``.
    """
    states, failed = ports.states.get_states([symbol])
    if failed:
        return None, failed
    bars_stored = list(history(f"bars/symbol={symbol}/"))
    rules, _ = ports.rules.rules_for([symbol])
    existing = {str(item["bar_time"]): item for item in results_items}
    result = rebuild(symbol, bars_from_results(results_items), bars_stored, states.get(symbol),
                     existing, keep=lookback_bars(rules.get(symbol, [])),
                     predictor=ports.predictor, now=datetime.now(UTC))
    problems = ports.results.put_results(result.items) if result.items else {}
    if not problems:
        problems = ports.states.put_states([result.state])
    return result, problems
