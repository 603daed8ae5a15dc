"""``make demo`` (the default): real trades at accelerated real time through the local stack.

What it shows, on the stack ``make up`` started (:mod:`stocksage.local.live_replay` does the
work, this module prints it):

1. price-level rules (``price_above`` / ``price_below``) around the window's median price, for
   a symbol the stack has not seen (``ES``, then ``ES2`` ...);
2. an hour of the bundled E-mini S&P 500 trades before the window, unpaced (indicator warm-up);
3. the window (default 30 minutes of the 2013-09-03 cash-session open) at ``--speed`` times
   real time (default 60x: 30 event minutes in 30 s) through the collector's own code path:
   trades packed per symbol, watermark heartbeats, the sink's flush timer; one trade made
   invalid (price 0) to show it goes to the failure queue with its reason while the rest of
   its record is processed;
4. the processor builds 1-minute bars by event time, evaluates the rules on every trade of
   the forming bar (intrabar alerts) and at close, writes results and publishes to SNS;
5. the symbol's page (1-minute candles with indicators and alert markers, read back from
   DynamoDB and the inbox queue) in the dashboards folder, and the summary: trades, records,
   bars and alerts handled, and the measured delays: trade to its alert in the inbox queue
   (SQS ``SentTimestamp``) and bar close to its results item (``processed_at``), as
   p50 / p95 / p99 (:mod:`stocksage.local.latency`).

Command line: ``python -m stocksage.local.demo [--speed 60] [--minutes 30]`` (``--daily`` for
the daily-bar replay).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from rich.console import Console
from rich.table import Table

from stocksage.local.latency import percentiles
from stocksage.local.live_replay import Hooks, LiveResult, run_live
from stocksage.local.stack import require_running

__all__ = ["latency_table", "run_live_demo"]

console = Console()


def latency_table(result: LiveResult) -> Table:
    """The measured delays of a replay as a table (seconds: n, p50, p95, p99, max)."""
    table = Table(title=f"latency on the local stack ({result.symbol})")
    for column in ("path", "n", "p50 s", "p95 s", "p99 s", "max s"):
        table.add_column(column, justify="left" if column == "path" else "right")
    rows = (("trade -> intrabar alert in the inbox", result.trade_to_alert_s),
            ("bar close -> results item", [d.seconds for d in result.bar_close_s]))
    for label, values in rows:
        stats = percentiles(values)
        table.add_row(label, str(stats["n"]), *(f"{stats[k]:.3f}" if k in stats else "-"
                                                 for k in ("p50", "p95", "p99", "max")))
    return table


def run_live_demo(speed: float, minutes: float, warmup_minutes: float, timeout: float,
                  out_dir: Path) -> int:
    """The live demo; returns a process exit code (0 when every bar and alert arrived).

    Raises:
        StackError: the local stack does not run.
    """
    out = require_running()
    with console.status("starting") as status:
        acked = {"records": 0}

        def sent(counts: Mapping[str, int]) -> None:
            acked["records"] += sum(counts.values())
            status.update(f"records acknowledged by Kinesis: {acked['records']}")

        def phase(text: str) -> None:
            console.print(f"[bold]{text}[/bold]")
            status.update(text)

        def waiting(done: int, total: int) -> None:
            status.update(f"results written: {done}/{total} one-minute bars")

        result = run_live(out, speed=speed, minutes=minutes, warmup_minutes=warmup_minutes,
                          poison=True, timeout_s=timeout,
                          hooks=Hooks(phase=phase, sent=sent, waiting=waiting))
    summary = Table(title="live demo: trades -> 1m bars -> alerts")
    summary.add_column("what")
    summary.add_column("count", justify="right")
    for label, value in (
            ("warm-up trades (unpaced)", result.warmup_trades),
            (f"trades replayed at {speed:g}x", result.trades_sent),
            ("trades records / heartbeats", f"{result.records_sent} / {result.heartbeats_sent}"),
            ("1-minute bars written / expected", f"{result.bars_written} / "
                                                 f"{result.bars_expected}"),
            ("bars with a prediction", result.bars_predicted),
            ("alerts intrabar / at close", f"{result.alerts_intrabar} / {result.alerts_close}"),
            ("replay wall time", f"{result.replay_s:.1f} s")):
        summary.add_row(label, str(value))
    console.print(summary)
    console.print(latency_table(result))
    if result.bars_written:
        from stocksage.local.pages import write_dashboards

        index = write_dashboards("local", out_dir, [result.symbol], out["alerts_queue_url"])
        console.print(f"dashboards: [bold]{index}[/bold]  (open in a browser)")
    _explain(result)
    return 0 if result.complete and result.rejected is not None else 1


def _explain(result: LiveResult) -> None:
    if result.bars_predicted == 0 and result.bars_written:
        console.print("predictions: none on 1-minute bars; the endpoint's model is trained and "
                      "gated on daily bars and serves that interval only (docs/DESIGN.md)")
    rejected: dict[str, Any] | None = result.rejected
    if rejected is not None:
        reasons = {t.get("reason") for t in rejected.get("rejectedTrades", [])}
        console.print(f"failure queue: the invalid trade of {rejected.get('partitionKey')} "
                      f"({'; '.join(sorted(str(r) for r in reasons))}); the rest of its record "
                      "was processed")
    else:
        console.print("[red]failure queue: the invalid trade's report was not found[/red]")
    if result.unmatched_alerts or result.unmatched_bars or result.order_breaks:
        console.print(f"not measured: {result.unmatched_alerts} alerts, "
                      f"{result.unmatched_bars} bars (order breaks in the sink: "
                      f"{result.order_breaks})")
    if not result.complete:
        console.print("[red]not every bar or alert arrived before the deadline; see "
                      ".local/runtime.log[/red]")
    console.print("The stack keeps running: `stocksage bars "
                  f"{result.symbol} --format csv`, `stocksage alerts list`, `make demo` again "
                  "(a new symbol), `make down` to stop.")
