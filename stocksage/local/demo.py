"""``make demo``: stocksage end to end on the embedded AWS stack, after ``make up``.

By default the live demo: real trades at 60x real time, 1-minute bars, intrabar alerts and
the measured trade-to-alert latency (:mod:`stocksage.local.live_demo`). With ``--daily`` the
daily-bar replay of this module (``run``):

1. alert rules: for each symbol, "close crosses 5 % above / below the last close before the
   replay" (``price_above`` / ``price_below``), stored in the rules table like the CLI does;
2. the collector replays the last ``--limit`` real daily bars of each symbol into Kinesis
   (partition key = symbol, PutRecords), plus one deliberately malformed record, to show that
   it is quarantined with its reason while its batch goes on;
3. the local runtime's event source mapping feeds the processor Lambda in batches; the demo
   follows the runtime's counters (records handled, Lambda batches since the replay began)
   until every record is handled (without runtime stats: the results table filling up);
4. dashboards (plotly HTML, one page per symbol + index) are written from DynamoDB and the
   alerts inbox (the SQS queue subscribed to the SNS topic), and a summary is printed.

Command line: ``python -m stocksage.local.demo [--speed 60] [--minutes 30]`` (live) or
``python -m stocksage.local.demo --daily [--symbols TSLA,AAPL] [--limit 300]``.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from stocksage.config import STACK
from stocksage.local.stack import (
    DEMO_REPLAY_BARS,
    REPO_ROOT,
    StackError,
    outputs,
    use_local_environ,
)

DEFAULT_OUT = REPO_ROOT / "out" / "dashboards"
STATS_FILE = REPO_ROOT / ".local" / "runtime-stats.json"
POISON_RECORD = b'{"symbol": "TSLA", "bar_time": "2022-03-24T00:00:00Z", "open": 10, "high": 9,' \
                b' "low": 8, "close": 11, "volume": 100}'
"""A malformed bar (high below open and close): the processor must quarantine it."""

console = Console()


def seed_rules(resource: Any, table: str, symbols: list[str], limit: int) -> dict[str, float]:
    """Price rules at +/- 5 % of each symbol's last close before the replay; returns the closes."""
    from stocksage.adapters.dynamodb.rule_source import put_rule
    from stocksage.alerts import Rule
    from stocksage.datasets import load_bars

    reference = {}
    for symbol in symbols:
        frame = load_bars(symbol)
        close = float(frame["close"].iloc[-limit - 1]) if len(frame) > limit else float(
            frame["close"].iloc[0])
        reference[symbol] = close
        put_rule(resource, table, Rule("demo-up-5pct", symbol, "price_above",
                                       {"level": round(close * 1.05, 2)}, "info"))
        put_rule(resource, table, Rule("demo-down-5pct", symbol, "price_below",
                                       {"level": round(close * 0.95, 2)}, "warning"))
    return reference


def count_results(client: Any, table: str, symbol: str) -> int:
    """Items of one symbol in the results table (Query with Select=COUNT, paginated)."""
    key = STACK.keys["results"]["partition"]
    paginator = client.get_paginator("query")
    total = 0
    for page in paginator.paginate(TableName=table, Select="COUNT",
                                   KeyConditionExpression="#s = :s",
                                   ExpressionAttributeNames={"#s": key},
                                   ExpressionAttributeValues={":s": {"S": symbol}}):
        total += page["Count"]
    return total


@dataclass(frozen=True)
class RuntimeProgress:
    """The local runtime's counters, summed over its event source mappings.

    Attributes:
        handled: Records the mappings are done with: succeeded + sent to the on-failure
            destination + expired/discarded.
        batches: Lambda invocations (one per batch and attempt).
        caught_up: Every mapping has read its shards to the end.
        started_at: When that runtime started (epoch seconds): its counters count from there.
    """

    handled: int
    batches: int
    caught_up: bool
    started_at: float


def runtime_progress(stats_file: Path = STATS_FILE) -> RuntimeProgress | None:
    """The counters in the stats the runtime writes every few seconds
    (``.local/runtime-stats.json``); None without stats."""
    try:
        stats = json.loads(stats_file.read_text())
        mappings, started_at = stats["mappings"].values(), float(stats["started_at"] or 0)
        handled = sum(m["records_succeeded"] + m["records_to_destination"]
                      + m["records_expired"] + m["records_discarded"] for m in mappings)
        batches = sum(m["invocations"] for m in mappings)
        caught_up = all(m["caught_up"] for m in mappings)
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return None
    return RuntimeProgress(handled, batches, caught_up, started_at)


class ReplayCounter:
    """Records handled and Lambda batches run since the replay began, from the runtime's stats.

    The runtime counts from its own start, so the replay's work is the difference to a snapshot
    of the same runtime taken before the replay (``baseline``). A runtime there is no snapshot
    of counts from zero: one that had not written its first stats yet (it does after its
    discovery interval, 3 s, and ``make up`` starts the runtime right before the demo) or one
    that (re)started since (what the previous one counted during the replay is kept). Such a
    runtime had nothing to process before the replay: its checkpoints are at the end of the
    stream. Without stats the count is unknown (None), never 0.
    """

    def __init__(self, baseline: RuntimeProgress | None) -> None:
        self.baseline = baseline
        self.carried = (0, 0)  # (handled, batches) of runtimes that stopped during the replay
        self.last: RuntimeProgress | None = None  # the last count of the current runtime

    def count(self, current: RuntimeProgress | None) -> RuntimeProgress | None:
        """The replay's counts up to ``current`` (a snapshot of the stats); None without stats."""
        if current is None:
            return None
        base = self.baseline
        if base is None or base.started_at != current.started_at:
            if self.last is not None:  # a runtime restarted during the replay
                self.carried = (self.last.handled, self.last.batches)
            base = self.baseline = RuntimeProgress(0, 0, False, current.started_at)
        self.last = RuntimeProgress(
            self.carried[0] + current.handled - base.handled,
            self.carried[1] + current.batches - base.batches,
            current.caught_up, current.started_at)
        return self.last


def wait_processed(counter: ReplayCounter, records: int, count_results: Callable[[], int],
                   results: int, timeout: float,
                   on_progress: Callable[[int, int | None], None] = lambda *_: None,
                   progress: Callable[[], RuntimeProgress | None] = runtime_progress,
                   poll: float = 1.0) -> tuple[bool, int | None]:
    """Wait until the runtime has handled ``records`` records and caught up; returns
    ``(done, Lambda batches of the replay)``.

    While the runtime writes no stats, progress is what reached the results table
    (``count_results()`` of ``results`` expected) and the batches are unknown (None).
    ``on_progress(records or results done, batches)`` after every poll.
    """
    deadline = time.monotonic() + timeout
    done, batches = False, None
    while time.monotonic() < deadline and not done:
        time.sleep(poll)
        counted = counter.count(progress())
        if counted is not None:
            batches = counted.batches
            done = counted.handled >= records and counted.caught_up
            on_progress(min(counted.handled, records), batches)
        else:
            present = count_results()
            done = present >= results
            on_progress(present, None)
    return done, batches


def batches_text(batches: int | None) -> str:
    """How the summary reports the replay's Lambda batches."""
    if batches is None:
        return f"Lambda batches not known (no {STATS_FILE.relative_to(REPO_ROOT)})"
    return f"processed in {batches} Lambda batch{'' if batches == 1 else 'es'}"


def run(symbols: list[str], limit: int, out_dir: Path, timeout: float) -> int:
    """The demo; returns a process exit code (0 when every bar was processed)."""
    import boto3

    from stocksage.collector.app import collect
    from stocksage.collector.sink.kinesis_sink import KinesisSink
    from stocksage.collector.sources import ReplaySource

    use_local_environ()
    out = outputs()
    started = time.monotonic()
    dynamodb = boto3.client("dynamodb")
    sqs = boto3.client("sqs")
    reference = seed_rules(boto3.resource("dynamodb"), out["rules_table"], symbols, limit)
    console.print(f"[bold]alert rules[/bold]: +/-5 % around the last close before the replay "
                  f"for {', '.join(symbols)}")

    source = ReplaySource(symbols, limit=limit, speed=0, interleave="round-robin")
    expected = dict(source.expected_counts())
    kinesis = boto3.client("kinesis")
    progress = Progress(TextColumn("{task.description:<28}"), BarColumn(), MofNCompleteColumn(),
                        TimeElapsedColumn(), console=console)
    total = sum(expected.values())
    counter = ReplayCounter(runtime_progress())
    with progress:
        sent_task = progress.add_task("bars sent to Kinesis", total=total + 1)
        done_task = progress.add_task("records processed", total=total + 1)

        def on_sent(acked: Mapping[str, int]) -> None:
            progress.advance(sent_task, sum(acked.values()))

        result = collect(source, KinesisSink(kinesis, out["stream_name"], on_sent=on_sent))
        kinesis.put_record(StreamName=out["stream_name"], Data=POISON_RECORD, PartitionKey="TSLA")
        progress.advance(sent_task, 1)

        def results_present() -> int:
            return sum(min(count_results(dynamodb, out["results_table"], s), expected[s])
                       for s in symbols)

        def show(completed: int, batches: int | None) -> None:
            progress.update(done_task, completed=completed, description="records processed"
                            + (f" ({batches} batches)" if batches is not None else ""))

        done, batches = wait_processed(counter, total + 1, results_present, total, timeout,
                                       on_progress=show)
    if not done:
        console.print(f"[red]not every record was processed within {timeout:.0f} s; "
                      "see .local/runtime.log[/red]")
        return 1

    from stocksage.local.pages import failure_messages

    quarantined = [m for m in failure_messages(sqs, out["failure_queue_url"])
                   if m.get("kind") == "MalformedRecord"]
    from stocksage.alerts.received import alert_symbol
    from stocksage.dashboard import render_dashboards
    from stocksage.local.pages import read_back

    results, alerts = read_back("local", symbols, out["alerts_queue_url"])
    index = render_dashboards(results, alerts, out_dir)
    summary = Table(title="stocksage demo: results read back from DynamoDB")
    for column in ("symbol", "bars", "with prediction", "last close", "P(up) next bar",
                   "model", "alerts"):
        summary.add_column(column, justify="right" if column != "symbol" else "left")
    for symbol in symbols:
        frame = results[symbol]
        predicted = frame["prob_up"].notna().sum() if "prob_up" in frame else 0
        last = frame.iloc[-1]
        n_alerts = sum(1 for a in alerts if alert_symbol(a) == symbol)
        summary.add_row(symbol, str(len(frame)), str(predicted), f"{last['close']:.2f}",
                        f"{last.get('prob_up', float('nan')):.3f}",
                        str(last.get("model_version", "")).removeprefix("stocksage-"),
                        str(n_alerts))
    console.print(summary)
    console.print(f"bars sent: {result.bars_read} in {result.seconds:.1f} s, "
                  f"{batches_text(batches)}; malformed records in the failure queue: "
                  f"{len(quarantined)}"
                  + (f" (reason: {quarantined[-1].get('reason')})" if quarantined else ""))
    console.print(f"alerts published to SNS and delivered to the inbox queue: {len(alerts)}; "
                  f"reference closes: "
                  + ", ".join(f"{s} {c:.2f}" for s, c in reference.items()))
    console.print(f"dashboards: [bold]{index}[/bold]  (open in a browser)")
    console.print(f"done in {time.monotonic() - started:.0f} s. The stack keeps running: "
                  "`make status`, `stocksage alerts list`, `make demo` again (duplicates are "
                  "dropped), `make down` to stop.")
    return 0


def main(argv: list[str] | None = None) -> int:
    from stocksage.datasets import DEMO_SYMBOLS

    parser = argparse.ArgumentParser(prog="python -m stocksage.local.demo",
                                     description=__doc__.split("\n\n")[0])
    parser.add_argument("--daily", action="store_true",
                        help="replay daily bars of --symbols instead of live trades")
    parser.add_argument("--speed", type=float, default=60.0,
                        help="live: event seconds per wall second (default: %(default)s)")
    parser.add_argument("--minutes", type=float, default=30.0,
                        help="live: minutes of trades replayed at --speed (default: %(default)s)")
    parser.add_argument("--warmup-minutes", type=float, default=60.0,
                        help="live: minutes of trades before them, unpaced, to warm the "
                             "indicators up (default: %(default)s)")
    parser.add_argument("--symbols", default=",".join(DEMO_SYMBOLS),
                        help="daily: comma-separated symbols (default: %(default)s)")
    parser.add_argument("--limit", type=int, default=DEMO_REPLAY_BARS,
                        help="daily: last N bars per symbol to stream (default: %(default)s)")
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="dashboards folder")
    parser.add_argument("--timeout", type=float, default=180.0,
                        help="seconds to wait for processing (default: %(default)s)")
    args = parser.parse_args(argv)
    symbols = [s.strip().upper() for s in args.symbols.split(",") if s.strip()]
    try:
        if not args.daily:
            from stocksage.local.live_demo import run_live_demo

            return run_live_demo(args.speed, args.minutes, args.warmup_minutes,
                                 max(args.timeout, 300.0), args.out)
        return run(symbols, args.limit, args.out, args.timeout)
    except StackError as err:
        console.print(f"[red]error:[/red] {err}")
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
