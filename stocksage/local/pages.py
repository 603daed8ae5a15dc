"""The pages of a stack: results, alerts and failure reports read back from it, and the
dashboards rendered from them.

``write_dashboards`` is what ``make demo``, ``stocksage dashboards`` and the browser tests
use: one page per symbol and an index (``stocksage.dashboard``), from the results table
(DynamoDB) and the alerts inbox queue (peeked, never deleted).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

__all__ = ["failure_messages", "read_back", "write_dashboards"]


def read_back(env: str, symbols: list[str] | None = None,
              alerts_queue_url: str | None = None) -> tuple[dict[str, Any], list[dict[str, Any]]]:
    """Results per symbol from DynamoDB and the alerts in the inbox queue (peeked, not deleted).

    Returns:
        ``({symbol: results DataFrame}, [alert message, ...])``; every symbol present in the
        results table when ``symbols`` is None.
    """
    import boto3

    from stocksage.adapters.results_reader import list_symbols, read_alerts, read_results
    from stocksage.config import resource_name

    dynamodb = boto3.client("dynamodb")
    table = resource_name(env, "results_table")
    symbols = symbols or list_symbols(dynamodb, table)
    results = {symbol: read_results(dynamodb, table, symbol) for symbol in symbols}
    alerts = read_alerts(boto3.client("sqs"), alerts_queue_url, wait_seconds=0) \
        if alerts_queue_url else []
    return results, alerts


def write_dashboards(env: str, out_dir: Path, symbols: list[str] | None = None,
                     alerts_queue_url: str | None = None) -> Path:
    """Read results and alerts back from the stack and render the dashboards; returns index."""
    from stocksage.dashboard import render_dashboards

    return render_dashboards(*read_back(env, symbols, alerts_queue_url), out_dir)


def failure_messages(client: Any, queue_url: str) -> list[dict[str, Any]]:
    """Messages of the failure queue (peeked: left in the queue)."""
    from stocksage.adapters.results_reader import read_alerts

    messages = []
    for message in read_alerts(client, queue_url, wait_seconds=0):
        body = message.get("Body") or message.get("body") or message.get("Message")
        try:
            messages.append(json.loads(body) if isinstance(body, str) else message)
        except (TypeError, ValueError):
            messages.append(message)
    return messages
