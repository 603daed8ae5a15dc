"""``stocksage`` command line: alert rules, dashboards and the local stack.

Examples::

    stocksage alerts add TSLA price_above --level 250 --severity critical
    stocksage alerts list TSLA
    stocksage alerts remove TSLA price_above-250
    stocksage dashboards --out out/dashboards

The AWS endpoint and credentials come from the usual boto3 environment (``AWS_ENDPOINT_URL``
for the embedded emulator, which ``make up`` starts on http://127.0.0.1:4566). Table names come
from ``stack.json`` for ``--env`` (default ``local``).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console
from rich.table import Table

from stocksage.alerts import RULE_TYPES, Rule, RuleError
from stocksage.config import STACK, resource_name

app = typer.Typer(help="stocksage: streaming stock analytics on AWS", no_args_is_help=True)
alerts_app = typer.Typer(help="Manage alert rules (DynamoDB table alert-rules)",
                         no_args_is_help=True)
app.add_typer(alerts_app, name="alerts")
console = Console()

EnvOption = Annotated[str, typer.Option("--env", help="Environment: local, dev or prod")]


def _dynamodb():
    import boto3

    return boto3.resource("dynamodb")


@alerts_app.command("add")
def alerts_add(
    symbol: Annotated[str, typer.Argument(help="Symbol, e.g. TSLA, or * for every symbol")],
    rule_type: Annotated[str, typer.Argument(help=f"One of: {', '.join(sorted(RULE_TYPES))}")],
    level: Annotated[float | None, typer.Option(help="Price level (price_above/price_below)")]
    = None,
    params: Annotated[str, typer.Option(help="Extra parameters as a JSON object")] = "{}",
    severity: Annotated[str, typer.Option(help="info, warning or critical")] = "warning",
    rule_id: Annotated[str | None, typer.Option(help="Rule id (default: derived)")] = None,
    env: EnvOption = "local",
) -> None:
    """Add or replace a rule."""
    from stocksage.adapters.dynamodb import put_rule

    try:
        extra = json.loads(params)
        if not isinstance(extra, dict):
            raise ValueError("--params must be a JSON object")
        if level is not None:
            extra["level"] = level
        symbol = symbol.upper()
        derived = rule_type + ("-" + f"{level:g}" if level is not None else "")
        rule = Rule(rule_id or derived, symbol, rule_type, extra, severity)
    except (ValueError, RuleError) as err:
        console.print(f"[red]error:[/red] {err}")
        raise typer.Exit(2) from None
    put_rule(_dynamodb(), resource_name(env, "rules_table"), rule)
    console.print(f"added {rule.rule_id} for {rule.symbol}: {rule.to_document()}")


@alerts_app.command("list")
def alerts_list(symbol: Annotated[str | None, typer.Argument(help="Only this symbol")] = None,
                env: EnvOption = "local") -> None:
    """List rules (all symbols, or one)."""
    from boto3.dynamodb.conditions import Key

    table = _dynamodb().Table(resource_name(env, "rules_table"))
    keys = STACK.keys["rules"]
    if symbol:
        pages = [table.query(KeyConditionExpression=Key(keys["partition"]).eq(symbol.upper()))]
    else:
        pages = [table.scan()]
    out = Table("symbol", "rule_id", "type", "params", "severity")
    for page in pages:
        for item in page.get("Items", []):
            try:
                rule = Rule.from_document(item[keys["partition"]], item[keys["sort"]],
                                          item.get("rule", ""))
                out.add_row(rule.symbol, rule.rule_id, rule.type, json.dumps(rule.params),
                            rule.severity)
            except RuleError as err:
                out.add_row(item[keys["partition"]], item[keys["sort"]], "[red]broken[/red]",
                            err.reason, "")
    console.print(out)


@alerts_app.command("remove")
def alerts_remove(symbol: str, rule_id: str, env: EnvOption = "local") -> None:
    """Remove a rule."""
    keys = STACK.keys["rules"]
    _dynamodb().Table(resource_name(env, "rules_table")).delete_item(
        Key={keys["partition"]: symbol.upper(), keys["sort"]: rule_id})
    console.print(f"removed {rule_id} for {symbol.upper()}")


@app.command("dashboards")
def dashboards(out: Annotated[Path, typer.Option(help="Output folder")] = Path("out/dashboards"),
               env: EnvOption = "local") -> None:
    """Write the plotly dashboards (one page per symbol + index) from DynamoDB results."""
    from stocksage.local.demo import write_dashboards

    index = write_dashboards(env, out)
    console.print(f"dashboards written: {index}")


if __name__ == "__main__":  # pragma: no cover
    app()
