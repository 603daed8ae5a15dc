"""Benchmark of the real-time path: trade ingestion rate and trade-to-alert latency.

1. **Ingestion** (``trades_per_s_per_core``): the processor Lambda's real handler
   (``lambdas.processor.lambda_handler``: Powertools batch, the boto3 adapters) on Kinesis
   events of real E-mini trades (mlfinpy's, ``make tick-data``) packed by the collector's own
   ``TradePacker`` (100 ms of event time or 2,000 trades per record), 100 records per event
   (the deployed ``esm_batch_size``). The network is stubbed by moto's in-process
   ``mock_aws`` (DynamoDB, SNS, SQS answered in process); the endpoint is the deterministic
   ``LogisticOfReturn`` stand-in. Warm: one pass first, then the timed pass; CPU time of
   this process (``time.process_time``), so the figure is per core. The CPU moto's backend
   spends answering (AWS's servers' work, not the Lambda's) is measured apart and taken out
   of ``trades_per_s_per_core``; the figure with it is reported too. Same run, previous
   design: the same trades as 1-minute bars (what the collector had to send before: bars
   built elsewhere) through the same handler, per bar.
2. **Latency on the local stack** (``--stack``; ``make up`` first): the measured live replay
   of ``make demo`` (``stocksage.local.live_replay.run_live``): an hour of real trades
   unpaced (warm-up), then ``--stack-minutes`` of the 2013-09-03 cash-session open at
   ``--speed`` x real time through the collector's code path (``TradeReplay`` -> ``collect``
   -> ``KinesisSink``), the local runtime's event source mapping, the processor Lambda,
   DynamoDB and SNS -> the inbox queue. ``trade_to_alert_p95_s``: from the Kinesis
   acknowledgement of the record holding an alert's crossing trade to the alert's SQS
   ``SentTimestamp``; ``bar_close_to_result_p95_s``: from the acknowledgement of the record
   that moved the watermark past the bar's end + grace to its results item's
   ``processed_at`` (both ends on this machine's clock, ``stocksage.local.latency``). At 1x
   a bar's result comes ``grace`` + that after the bar's end. Same run, previous design
   (alerts at bar close only): a crossing trade's alert waited for its bar to close, that is
   ``bar end + grace - trade time`` of event time at 1x, plus the same bar's measured close
   to result; ``previous_design_trade_to_alert_p95_s`` is that over the same alerts.

Usage: ``python scripts/bench_latency.py [--json] [--trades 100000] [--stack]``
"""

from __future__ import annotations

import argparse
import contextlib
import io
import json
import os
import platform
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from stocksage.bars.trades import Trade
from stocksage.collector.trade_packing import PackedRecord, TradePacker
from stocksage.collector.trade_replay import final_watermark_ns, load_trades

BUSY_START = 380_000
"""Row of the bundled file where the US cash session's busy trading begins."""
BATCH_RECORDS = 100


def packed_records(limit: int, start: int = BUSY_START) -> tuple[list[PackedRecord], int]:
    """The bundled trades ``start .. start + limit`` packed as the collector packs them, plus
    the final heartbeat; returns the records and the trade count."""
    table = load_trades(None)
    trades = table.trades(start, start + limit)
    packer = TradePacker(source="mlfinpy:tick_data.csv")
    records: list[PackedRecord] = []
    for trade in trades:
        records.extend(packer.add(trade))
    records.extend(packer.finish(final_watermark_ns))
    return records, len(trades)


def _events(payloads: list[bytes], first: int) -> list[dict[str, Any]]:
    from tests.helpers.events import kinesis_event

    return [kinesis_event(payloads[i:i + BATCH_RECORDS], first_sequence=first + i,
                          partition_key="ES")
            for i in range(0, len(payloads), BATCH_RECORDS)]


def _handler_env() -> Any:
    """moto in process + the tables, topic and queue the handler needs; returns the module."""
    for key, value in {"AWS_DEFAULT_REGION": "us-east-1", "AWS_ACCESS_KEY_ID": "test",
                       "AWS_SECRET_ACCESS_KEY": "test", "POWERTOOLS_TRACE_DISABLED": "true",
                       "POWERTOOLS_METRICS_NAMESPACE": "bench"}.items():
        os.environ[key] = value
    os.environ.pop("AWS_ENDPOINT_URL", None)
    import boto3

    ddb = boto3.client("dynamodb")
    for name, keys in (("results", ["symbol", "bar_time"]), ("state", ["symbol"]),
                       ("rules", ["symbol", "rule_id"]), ("idem", ["id"])):
        schema = [{"AttributeName": keys[0], "KeyType": "HASH"}]
        if len(keys) > 1:
            schema.append({"AttributeName": keys[1], "KeyType": "RANGE"})
        ddb.create_table(TableName=name, KeySchema=schema, BillingMode="PAY_PER_REQUEST",
                         AttributeDefinitions=[{"AttributeName": k, "AttributeType": "S"}
                                               for k in keys])
    os.environ.update(RESULTS_TABLE="results", STATE_TABLE="state", RULES_TABLE="rules",
                      IDEMPOTENCY_TABLE="idem", ENDPOINT_NAME="predictor",
                      ALERTS_TOPIC_ARN=boto3.client("sns").create_topic(Name="a")["TopicArn"],
                      FAILURE_QUEUE_URL=boto3.client("sqs").create_queue(
                          QueueName="f")["QueueUrl"])
    from lambdas import processor
    from tests.helpers.predictors import LogisticOfReturn

    processor.dependencies.cache_clear()
    processor.dependencies().ports.predictor = LogisticOfReturn()
    return processor


class _EmulatorClock:
    """CPU seconds spent inside moto's in-process backend (the stand-in for AWS's servers,
    not the Lambda's own work): wraps ``BotocoreStubber.__call__``."""

    def __init__(self) -> None:
        from moto.core.botocore_stubber import BotocoreStubber

        self.seconds = 0.0
        self.calls = 0
        original = BotocoreStubber.__call__
        clock = self

        def timed(stubber: Any, event_name: str, request: Any, **kwargs: Any) -> Any:
            started = time.process_time()
            try:
                return original(stubber, event_name, request, **kwargs)
            finally:
                clock.seconds += time.process_time() - started
                clock.calls += 1

        BotocoreStubber.__call__ = timed  # type: ignore[method-assign]


EMULATOR = _EmulatorClock()


def _timed(processor: Any, events: list[dict[str, Any]]) -> tuple[float, float, int]:
    """(CPU s of the handler calls, of which CPU s inside moto, AWS calls made)."""
    from tests.helpers.lambda_context import LambdaContext

    context = LambdaContext()
    before, calls = EMULATOR.seconds, EMULATOR.calls
    started = time.process_time()
    with contextlib.redirect_stdout(io.StringIO()):  # EMF metrics lines: printed, not shown
        for event in events:
            response = processor.lambda_handler(event, context)
            if response["batchItemFailures"]:
                raise RuntimeError(f"batch item failures: {response}")
    return (time.process_time() - started, EMULATOR.seconds - before,
            EMULATOR.calls - calls)


def ingestion(limit: int) -> dict[str, Any]:
    """Part 1 (module docstring)."""
    import logging

    from moto import mock_aws

    from stocksage.bars.aggregation import BarBuilder
    from stocksage.bars.trade_parsing import TradeColumns

    logging.disable(logging.WARNING)
    records, count = packed_records(limit)
    payloads = [r.data for r in records]
    with mock_aws():
        processor = _handler_env()
        _timed(processor, _events(payloads, 1))  # warm: cold start, caches, first states
        processor.dependencies.cache_clear()
    quarter = len(payloads) // 4
    with mock_aws():
        processor = _handler_env()
        _timed(processor, _events(payloads[:quarter], 1))  # warm this process
        events = _events(payloads[quarter:], 1 + quarter)
        seconds, emulator, calls = _timed(processor, events)
        timed_trades = sum(r.trades for r in records[quarter:])
    # previous design, same run: the same trades as 1m bars, one bar per record
    table = load_trades(None).trades(BUSY_START, BUSY_START + limit)
    builder = BarBuilder("ES", ("1m",))
    builder.add(TradeColumns.of([Trade("ES", t.time_ns, t.price, t.size) for t in table]))
    bars = builder.advance(table[-1].time_ns + 10 * 60 * 1_000_000_000)
    with mock_aws():
        processor = _handler_env()
        bar_seconds, bar_emulator, _ = _timed(processor, _events([b.to_json() for b in bars], 1))
    own = seconds - emulator
    return {"trades": count, "records": len(records), "events": len(events),
            "timed_trades": timed_trades, "handler_cpu_s": round(seconds, 3),
            "emulator_cpu_s": round(emulator, 3), "aws_calls": calls,
            "trades_per_record": round(count / max(1, sum(r.kind == "trades" for r in records)),
                                       1),
            "trades_per_s_per_core": round(timed_trades / own),
            "trades_per_s_per_core_with_emulator": round(timed_trades / seconds),
            "previous_design_bars": len(bars),
            "previous_design_bars_per_s_per_core": round(len(bars) / (bar_seconds
                                                                      - bar_emulator), 1)}


def stack_latency(minutes: float, speed: float) -> dict[str, Any]:
    """Part 2 (module docstring) on the running local stack."""
    from stocksage.local.latency import percentiles
    from stocksage.local.live_replay import GRACE_NS, MINUTE_NS, run_live
    from stocksage.local.stack import require_running

    result = run_live(require_running(), speed=speed, minutes=minutes, warmup_minutes=60.0,
                      timeout_s=600.0)
    alerts = percentiles(result.trade_to_alert_s)
    closes = percentiles([d.seconds for d in result.bar_close_s])
    close_by_bar = {d.bar_start_ns: d.seconds for d in result.bar_close_s}
    typical = float(closes.get("p50", 0.0))
    previous = [(t // MINUTE_NS * MINUTE_NS + MINUTE_NS + GRACE_NS - t) / 1e9
                + close_by_bar.get(t // MINUTE_NS * MINUTE_NS, typical)
                for t in result.alert_trade_ns]
    return {"symbol": result.symbol, "complete": result.complete, "speed": speed,
            "warmup_trades": result.warmup_trades, "trades": result.trades_sent,
            "records": result.records_sent, "heartbeats": result.heartbeats_sent,
            "bars": result.bars_written, "bars_expected": result.bars_expected,
            "alerts_intrabar": result.alerts_intrabar, "alerts_close": result.alerts_close,
            "unmatched_alerts": result.unmatched_alerts, "unmatched_bars": result.unmatched_bars,
            "order_breaks": result.order_breaks, "trade_to_alert_s": alerts,
            "bar_close_to_result_s": closes,
            "previous_design_trade_to_alert_s": percentiles(previous),
            "grace_s": GRACE_NS / 1e9}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trades", type=int, default=100_000)
    parser.add_argument("--json", action="store_true")
    parser.add_argument("--stack", action="store_true",
                        help="also measure latency on the running local stack (make up)")
    parser.add_argument("--stack-minutes", type=float, default=30.0)
    parser.add_argument("--speed", type=float, default=60.0)
    args = parser.parse_args()
    report: dict[str, Any] = {"machine": platform.platform(), "cpus": os.cpu_count(),
                              "python": platform.python_version()}
    report["ingestion"] = ingestion(args.trades)
    report["trades_per_s_per_core"] = report["ingestion"]["trades_per_s_per_core"]
    if args.stack:
        stack = report["stack"] = stack_latency(args.stack_minutes, args.speed)
        report["trade_to_alert_p95_s"] = stack["trade_to_alert_s"].get("p95")
        report["bar_close_to_result_p95_s"] = stack["bar_close_to_result_s"].get("p95")
        report["previous_design_trade_to_alert_p95_s"] = \
            stack["previous_design_trade_to_alert_s"].get("p95")
    print(json.dumps(report, indent=2) if args.json else report)
    return 0


if __name__ == "__main__":
    sys.exit(main())
