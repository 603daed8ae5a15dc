"""Redrive and repair I/O: the on-failure destination, the stream, the history, the tables.

``redrive`` reads the event source mapping's on-failure records from the failure queue (AWS's
record: ``requestContext`` + ``KinesisBatchInfo`` with ``shardId``, ``startSequenceNumber``,
``endSequenceNumber``, ``streamArn``), re-reads that sequence range from the stream (while it
is within the retention period) and runs it through the processor's own domain path
(``processing.process_batch`` with the processor's adapters). A message is deleted only when
every symbol of its range was stored; quarantine messages (malformed records, with a
``reason``) are left for people: retrying cannot fix them.

``repair`` rebuilds one symbol from its results items and its S3 history
(``stocksage.recovery.rebuild``): late bars are repaired into the series.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from botocore.exceptions import ClientError

from stocksage.adapters.s3_history import iter_history
from stocksage.alerts import lookback_bars
from stocksage.bars import MalformedBarError, parse_bar
from stocksage.processing import Ports, StreamBar, process_batch
from stocksage.recovery import Rebuild, bars_from_results, rebuild

__all__ = ["RedriveReport", "read_range", "redrive", "repair"]

_GET_RECORDS_LIMIT = 10_000


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


def read_range(kinesis: Any, stream_arn: str, shard_id: str, start: str,
               end: str) -> Iterator[dict[str, Any]]:
    """Records of one shard from sequence number ``start`` to ``end`` (inclusive).

    Raises:
        botocore ClientError: ``ResourceNotFoundException`` / ``InvalidArgumentException``
            (the range is past the stream's retention) and any other read failure.
    """
    iterator = kinesis.get_shard_iterator(
        StreamARN=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
        StartingSequenceNumber=start)["ShardIterator"]
    last = int(end)
    while iterator:
        response = kinesis.get_records(ShardIterator=iterator, Limit=_GET_RECORDS_LIMIT,
                                       StreamARN=stream_arn)
        for record in response["Records"]:
            if int(record["SequenceNumber"]) > last:
                return
            yield record
        if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
            return
        iterator = response.get("NextShardIterator")


def redrive(sqs: Any, queue_url: str, kinesis: Any, ports: Ports, quarantine: Any,
            max_messages: int = 100) -> RedriveReport:
    """Reprocess the batches the event source mapping gave up on (module docstring)."""
    report = RedriveReport()
    seen = 0
    while seen < max_messages:
        response = sqs.receive_message(QueueUrl=queue_url, MaxNumberOfMessages=10,
                                       WaitTimeSeconds=0, VisibilityTimeout=60)
        messages = response.get("Messages", [])
        if not messages:
            break
        for message in messages:
            seen += 1
            body = json.loads(message["Body"])
            info = body.get("KinesisBatchInfo") if isinstance(body, dict) else None
            if info is None:
                report.quarantined += 1
                continue
            reason = _redrive_one(info, kinesis, ports, quarantine, report)
            if reason:
                report.kept.append(f"{info['shardId']} {info['startSequenceNumber']}.."
                                   f"{info['endSequenceNumber']}: {reason}")
                continue
            sqs.delete_message(QueueUrl=queue_url, ReceiptHandle=message["ReceiptHandle"])
            report.batches += 1
    return report


def _redrive_one(info: dict[str, Any], kinesis: Any, ports: Ports, quarantine: Any,
                 report: RedriveReport) -> str:
    try:
        records = list(read_range(kinesis, info["streamArn"], info["shardId"],
                                  info["startSequenceNumber"], info["endSequenceNumber"]))
    except ClientError as exc:
        return (f"cannot re-read the range ({exc.response['Error']['Code']}); past the "
                f"retention, use `stocksage repair` on the affected symbols")
    report.records += len(records)
    bars = []
    for record in records:
        try:
            bar = parse_bar(record["Data"])
            if record["PartitionKey"] != bar.symbol:
                raise MalformedBarError(f"partition key {record['PartitionKey']!r} is not "
                                        f"the bar's symbol {bar.symbol!r}")
            bars.append(StreamBar(bar, record["SequenceNumber"]))
        except MalformedBarError as err:
            quarantine.send({"kinesis": {"sequenceNumber": record["SequenceNumber"],
                                         "partitionKey": record["PartitionKey"]},
                             "eventSourceARN": info["streamArn"]}, err.reason)
    outcome = process_batch(bars, ports)
    report.bars += outcome.total("accepted")
    report.late_symbols |= {late.bar.symbol for late in outcome.late}
    if outcome.failed:
        return "symbols not stored: " + ", ".join(f"{s} ({r})" for s, r in
                                                   sorted(outcome.failed.items()))
    return ""


def repair(symbol: str, ports: Ports, results_items: list[dict[str, Any]], s3: Any,
           bucket: str) -> tuple[Rebuild | None, dict[str, str]]:
    """Rebuild ``symbol`` from its results items and S3 history and store it.

    Returns:
        The rebuild and ``{symbol: reason}`` when a write failed (a state conflict means the
        stream advanced the symbol meanwhile: run the repair again). When the stored state
        could not be read nothing is rebuilt: ``(None, {symbol: reason})``.
    """
    states, failed = ports.states.get_states([symbol])
    if failed:
        return None, failed
    history = list(iter_history(s3, bucket, prefix=f"bars/symbol={symbol}/"))
    rules, _ = ports.rules.rules_for([symbol])
    existing = {str(item["bar_time"]): item for item in results_items}
    result = rebuild(symbol, bars_from_results(results_items), history, states.get(symbol),
                     existing, keep=lookback_bars(rules.get(symbol, [])),
                     predictor=ports.predictor, now=datetime.now(UTC))
    problems = ports.results.put_results(result.items) if result.items else {}
    if not problems:
        problems = ports.states.put_states([result.state])
    return result, problems
