"""``stocksage`` operator command line: alert rules, redrive and repair, dashboards.

Install: ``pip install 'stocksage[cli]'`` (typer, rich); ``dashboards`` also needs the
``local`` extra (plotly).

Examples::

    stocksage alerts add TSLA price_above --level 250 --severity critical
    stocksage alerts add MSFT pct_move --bars 5 --threshold 0.05 --direction down --cooldown-bars 5
    stocksage alerts add '*' candlestick --pattern bullish_engulfing --severity info
    stocksage alerts add NVDA rsi_cross --params '{"upper": 80, "lower": 20}'
    stocksage alerts list TSLA
    stocksage alerts remove TSLA price_above-250
    stocksage redrive --env dev --repair-late
    stocksage repair TSLA IBM --env dev --bucket <history bucket>
    stocksage dashboards --out out/dashboards

The AWS endpoint and credentials come from the usual boto3 environment (``AWS_ENDPOINT_URL``
for the embedded emulator, which ``make up`` starts on http://127.0.0.1:4566). Table names come
from ``stack.json`` for ``--env`` (default ``local``).
"""

from __future__ import annotations

import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Annotated, Any, NoReturn

import typer
from rich.console import Console
from rich.table import Table

from stocksage.alerts import CANDLESTICK_PATTERNS, RULE_TYPES, Rule, RuleError
from stocksage.config import STACK, resource_name

app = typer.Typer(help="stocksage: streaming stock analytics on AWS", no_args_is_help=True)
alerts_app = typer.Typer(help="Manage alert rules (DynamoDB table alert-rules)",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
console = Console()
err_console = Console(stderr=True)
_SYMBOL = re.compile(r"^[A-Z0-9][A-Z0-9.\-=^]{0,19}$")

EnvOption = Annotated[str, typer.Option("--env", help="Environment: local, dev or prod")]


def _dynamodb():
    import boto3

    return boto3.resource("dynamodb")


def _derived_rule_id(rule_type: str, params: dict[str, Any]) -> str:
    """``type`` followed by the parameter values in name order, e.g. ``pct_move-5-0.05``."""
    parts = [rule_type]
    for name in sorted(params):
        value = params[name]
        parts.append(f"{value:g}" if isinstance(value, float) else str(value))
    text = re.sub(r"[^A-Za-z0-9_.:-]", "_", "-".join(parts))
    return text[:64]


def _fail(message: str) -> NoReturn:
    err_console.print(f"[red]error:[/red] {message}")
    raise typer.Exit(2)


@alerts_app.command("add")
def alerts_add(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. TSLA, or * for every symbol")],
    rule_type: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(RULE_TYPES))}")],
    level: Annotated[float | None, typer.Option(
        help="Price level (price_above, price_below)")] = None,
    threshold: Annotated[float | None, typer.Option(
        help="pct_move: fraction (0.05 = 5%); prob_up_above: probability 0..1")] = None,
    bars: Annotated[int | None, typer.Option(
        help="pct_move: N bars of the move; support_resistance: look-back L")] = None,
    pattern: Annotated[str | None, typer.Option(
        help=f"candlestick: {', '.join(CANDLESTICK_PATTERNS)}")] = None,
    direction: Annotated[str | None, typer.Option(
        help="up, down or either (pct_move, rsi_cross, macd_cross, bollinger_break, "
             "support_resistance)")] = None,
    cooldown_bars: Annotated[int, typer.Option(
        help="After firing, stay quiet for this many bars of the symbol (0..240)")] = 0,
    params: Annotated[str, typer.Option(
        help='Other parameters as a JSON object, e.g. \'{"upper": 80, "lower": 20}\'')] = "{}",
    severity: Annotated[str, typer.Option(help="info, warning or critical")] = "warning",
    rule_id: Annotated[str | None, typer.Option(help="Rule id (default: derived)")] = None,
    env: EnvOption = "local",
) -> None:
    """Add or replace a rule (definitions: docs/ALERTS.md)."""
    from stocksage.adapters.dynamodb.rule_source import put_rule

    try:
        extra = json.loads(params)
    except ValueError as err:
        _fail(f"--params is not JSON ({err})")
    if not isinstance(extra, dict):
        _fail("--params must be a JSON object")
    options = {"level": level, "threshold": threshold, "bars": bars, "pattern": pattern,
               "direction": direction}
    for name, value in options.items():
        if value is None:
            continue
        if name in extra and extra[name] != value:
            _fail(f"--{name} and --params give different values for {name}")
        extra[name] = value
    symbol = symbol.strip().upper()
    if symbol != "*" and not _SYMBOL.match(symbol):
        _fail(f"symbol {symbol!r} is not a valid symbol (or * for every symbol)")
    try:
        rule = Rule(rule_id or _derived_rule_id(rule_type, extra), symbol, rule_type, extra,
                    severity, cooldown_bars)
    except RuleError as err:
        _fail(err.reason)
    put_rule(_dynamodb(), resource_name(env, "rules_table"), rule)
    console.print(f"added {rule.rule_id} for {rule.symbol}: {rule.to_document()}")


@alerts_app.command("list")
def alerts_list(symbol: Annotated[str | None, typer.Argument(help="Only this symbol")] = None,
                env: EnvOption = "local") -> None:
    """List rules (all symbols, or one): type, parameters, severity, cooldown."""
    from boto3.dynamodb.conditions import Key

    table = _dynamodb().Table(resource_name(env, "rules_table"))
    keys = STACK.keys["rules"]
    items: list[dict[str, Any]] = []
    request: dict[str, Any] = {}
    if symbol:
        request["KeyConditionExpression"] = Key(keys["partition"]).eq(symbol.strip().upper())
    while True:  # every page
        page = table.query(**request) if symbol else table.scan(**request)
        items.extend(page.get("Items", []))
        if "LastEvaluatedKey" not in page:
            break
        request["ExclusiveStartKey"] = page["LastEvaluatedKey"]
    out = Table("symbol", "rule_id", "type", "params", "severity", "cooldown")
    for item in sorted(items, key=lambda i: (i[keys["partition"]], i[keys["sort"]])):
        try:
            rule = Rule.from_document(item[keys["partition"]], item[keys["sort"]],
                                      item.get("rule", ""))
            out.add_row(rule.symbol, rule.rule_id, rule.type,
                        json.dumps(rule.params, sort_keys=True), rule.severity,
                        f"{rule.cooldown_bars} bars" if rule.cooldown_bars else "-")
        except RuleError as err:
            out.add_row(item[keys["partition"]], item[keys["sort"]], "[red]broken[/red]",
                        err.reason, "", "")
    console.print(out)
    console.print(f"{len(items)} rule(s)")


@alerts_app.command("remove")
def alerts_remove(symbol: str, rule_id: str, env: EnvOption = "local") -> None:
    """Remove a rule (exit code 1 when it does not exist)."""
    keys = STACK.keys["rules"]
    response = _dynamodb().Table(resource_name(env, "rules_table")).delete_item(
        Key={keys["partition"]: symbol.strip().upper(), keys["sort"]: rule_id},
        ReturnValues="ALL_OLD")
    if "Attributes" not in response:
        err_console.print(f"no rule {rule_id} for {symbol.strip().upper()}")
        raise typer.Exit(1)
    console.print(f"removed {rule_id} for {symbol.strip().upper()}")


@app.command("dashboards")
def dashboards(out: Annotated[Path, typer.Option(help="Output folder")] = Path("out/dashboards"),
               env: EnvOption = "local") -> None:
    """Write the plotly dashboards (one page per symbol + index) from DynamoDB results."""
    try:
        from stocksage.local.pages import write_dashboards
    except ImportError as err:  # plotly and the emulator client are the `local` extra
        _fail(f"stocksage dashboards needs the local extra ({err.name} is missing): "
              "pip install 'stocksage[local]'")

    index = write_dashboards(env, out)
    console.print(f"dashboards written: {index}")


@app.command("bars")
def bars_command(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. TSLA")],
    interval: Annotated[str, typer.Option(help="Bar interval (1m, 5m, 1h, 1d, ...)")] = "1d",
    start: Annotated[str | None, typer.Option(help="First bar time, ISO 8601 (UTC if naive)")]
    = None,
    end: Annotated[str | None, typer.Option(help="Last bar time, ISO 8601 (UTC if naive)")]
    = None,
    fmt: Annotated[str, typer.Option("--format", help="csv or json (one array of objects)")]
    = "csv",
    env: EnvOption = "local",
) -> None:
    """Print stored bars with their indicators and predictions (results table) to stdout.

    Columns: ``bar_time`` (ISO UTC), OHLCV, every indicator and feature column, and the
    prediction fields (``prediction_status``, ``prob_up``, ``model_version``...); empty (CSV)
    or null (JSON) where a value is undefined (warm-up, pending prediction).
    """
    import sys

    import boto3

    from stocksage.adapters.results_reader import read_results
    from stocksage.bars import format_time

    if fmt not in {"csv", "json"}:
        _fail(f"--format must be csv or json, got {fmt!r}")
    bounds: list[str | None] = []
    for name, value in (("start", start), ("end", end)):
        if value is None:
            bounds.append(None)
            continue
        try:
            import pandas as pd

            moment = pd.Timestamp(value)
            moment = moment.tz_localize("UTC") if moment.tzinfo is None else moment
            bounds.append(format_time(moment.tz_convert("UTC").to_pydatetime()))
        except (ValueError, TypeError) as err:
            _fail(f"--{name} {value!r} is not an ISO 8601 time ({err})")
    if env == "local":
        from stocksage.local.stack import use_local_environ

        use_local_environ()
    frame = read_results(boto3.client("dynamodb"), resource_name(env, "results_table"),
                         symbol.strip().upper(), bounds[0], bounds[1])
    if "interval" in frame:
        frame = frame[frame["interval"] == interval]
    elif interval != "1d":  # items written before intervals existed are daily
        frame = frame.iloc[0:0]
    out = frame.reset_index()
    if not out.empty:
        out["bar_time"] = [format_time(t.to_pydatetime()) for t in out["bar_time"]]
    if fmt == "csv":
        out.to_csv(sys.stdout, index=False)
    else:
        sys.stdout.write(out.to_json(orient="records", double_precision=15) + "\n")


def _processor_ports(env: str) -> Any:
    """The processor's own adapters, configured from the deployed function's environment."""
    import os

    import boto3

    if env == "local":
        from stocksage.local.stack import use_local_environ

        use_local_environ()  # the embedded emulator, as `make up` started it
    name = resource_name(env, "processor_function")
    try:
        variables = boto3.client("lambda").get_function_configuration(
            FunctionName=name)["Environment"]["Variables"]
    except Exception as exc:  # noqa: BLE001 -- any reason: say which function and why
        _fail(f"cannot read the configuration of {name}: {exc}")
    os.environ.update(variables)
    from stocksage.adapters.wiring import Dependencies
    from stocksage.settings import ProcessorSettings

    return Dependencies(ProcessorSettings.from_env())


def _history_bucket(env: str) -> str:
    """The history bucket: Terraform's output for the local stack, ``--bucket`` elsewhere."""
    if env == "local":
        from stocksage.local.stack import outputs

        return str(outputs()["history_bucket"])
    _fail("give --bucket (terraform output history_bucket of the services root)")


@app.command("redrive")
def redrive_command(
    env: EnvOption = "local",
    max_messages: Annotated[int, typer.Option(help="On-failure records to read at most")] = 100,
    repair_late: Annotated[bool, typer.Option(help="Also repair symbols with late bars")] = False,
    bucket: Annotated[str | None, typer.Option(help="History bucket (default: from stack.json)")]
    = None,
) -> None:
    """Reprocess the batches the event source mapping gave up on (docs/OPERATIONS runbook).

    Reads the processor's failure queue: each on-failure record names a shard and a sequence
    range; the range is read again from the stream and processed like the Lambda does. A
    message is deleted once every symbol of its range is stored.
    """
    import boto3

    from stocksage.adapters.failure_queue import SqsFailureQueue
    from stocksage.adapters.stream_reader import KinesisRangeReader
    from stocksage.operations.redrive import redrive

    deps = _processor_ports(env)
    report = redrive(SqsFailureQueue(boto3.client("sqs"), deps.settings.failure_queue_url),
                     KinesisRangeReader(boto3.client("kinesis")), deps.ports, deps.quarantine,
                     max_messages,
                     timedelta(seconds=deps.settings.max_future_skew_s))
    console.print(f"redriven batches: {report.batches}, records read: {report.records}, "
                  f"bars stored now: {report.bars}, quarantine messages left: "
                  f"{report.quarantined}")
    for line in report.kept:
        err_console.print(f"[yellow]kept:[/yellow] {line}")
    if report.late_symbols:
        console.print("late bars for: " + ", ".join(sorted(report.late_symbols)))
        if repair_late:
            repair_command(sorted(report.late_symbols), env=env, bucket=bucket)
    if report.kept:
        raise typer.Exit(1)


@app.command("repair")
def repair_command(
    symbols: Annotated[list[str], typer.Argument(help="Symbols to rebuild")],
    env: EnvOption = "local",
    bucket: Annotated[str | None, typer.Option(help="History bucket (default: from stack.json)")]
    = None,
) -> None:
    """Rebuild symbols from their results and S3 history: late bars are repaired in.

    Every later bar's indicators are recomputed (equal to ``ta`` on the repaired series), the
    changed results items are rewritten with fresh predictions (pending if the endpoint is
    down) and the state is replaced conditionally (run again if the stream moved meanwhile).
    """
    from functools import partial

    import boto3

    from stocksage.adapters.s3_history import iter_history
    from stocksage.operations.redrive import repair

    deps = _processor_ports(env)
    s3 = boto3.client("s3")
    history_bucket = bucket or _history_bucket(env)
    failures = 0
    for symbol in symbols:
        items = deps.ports.results.items_for(symbol)
        try:
            result, problems = repair(symbol, deps.ports, items,
                                      partial(iter_history, s3, history_bucket))
        except ValueError as err:
            err_console.print(f"[red]{symbol}:[/red] {err}")
            failures += 1
            continue
        if problems or result is None:  # None: the state could not be read (in problems)
            err_console.print(f"[red]{symbol}:[/red] not stored: {problems}")
            failures += 1
            continue
        console.print(f"{symbol}: {result.bars} bars, {result.inserted} repaired in, "
                      f"{len(result.items)} results rewritten, {result.predicted} predicted"
                      + (f" (endpoint: {result.endpoint_error})" if result.endpoint_error
                         else ""))
    if failures:
        raise typer.Exit(1)


if __name__ == "__main__":  # pragma: no cover
    app()
