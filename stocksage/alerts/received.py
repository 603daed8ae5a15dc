"""Alerts as subscribers receive them: the SQS/SNS message read back into an alert dict.

The inverse of ``stocksage.alerts.messages`` for readers (the dashboard, the demo, tests):
:func:`parse_alert_message` unwraps the SNS envelope of an SQS message, :func:`alert_symbol`
and :func:`alert_bar_time` find what an alert is about from its attributes, payload or alert
id (``stocksage.alerts.messages.parse_alert_id``). No AWS call here: the SQS reader is
``stocksage.adapters.results_reader.read_alerts``.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

import pandas as pd

from stocksage.alerts.messages import parse_alert_id

__all__ = ["alert_bar_time", "alert_symbol", "parse_alert_message"]


def parse_alert_message(
    body: str, sqs_attributes: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """SQS body -> alert dict.

    SNS envelope (``Type: Notification``) -> ``Subject``, ``Message``, ``MessageAttributes``
    (flattened to ``{name: value}``), ``Timestamp``, ``TopicArn``, ``MessageId``. A raw-delivery
    body is taken as the message itself, attributes from the SQS message attributes.
    ``Payload`` is ``Message`` parsed as JSON when it is a JSON object, else ``None``.
    """
    envelope: Any = None
    try:
        envelope = json.loads(body)
    except (TypeError, ValueError):
        envelope = None
    is_sns = isinstance(envelope, dict) and envelope.get("Type") == "Notification"
    if is_sns and "Message" in envelope:
        attributes = {
            name: (spec.get("Value") if isinstance(spec, Mapping) else spec)
            for name, spec in (envelope.get("MessageAttributes") or {}).items()
        }
        alert = {
            "Subject": envelope.get("Subject"),
            "Message": envelope["Message"],
            "MessageAttributes": attributes,
            "Timestamp": envelope.get("Timestamp"),
            "TopicArn": envelope.get("TopicArn"),
            "MessageId": envelope.get("MessageId"),
        }
    else:
        attributes = {
            name: (spec.get("StringValue") if isinstance(spec, Mapping) else spec)
            for name, spec in (sqs_attributes or {}).items()
        }
        alert = {"Subject": None, "Message": body, "MessageAttributes": attributes,
                 "Timestamp": None, "TopicArn": None, "MessageId": None}
    try:
        payload = json.loads(alert["Message"])
    except (TypeError, ValueError):
        payload = None
    alert["Payload"] = payload if isinstance(payload, dict) else None
    return alert


def alert_symbol(alert: Mapping[str, Any]) -> str | None:
    """The symbol an alert is about (message attribute ``symbol`` or payload ``symbol``)."""
    symbol = (alert.get("MessageAttributes") or {}).get("symbol")
    if symbol:
        return str(symbol)
    payload = alert.get("Payload") or {}
    value = payload.get("symbol") or (payload.get("bar") or {}).get("symbol")
    return str(value) if value else None


def alert_bar_time(alert: Mapping[str, Any]) -> pd.Timestamp | None:
    """The bar time an alert fired on (UTC), from the payload (``bar.bar_time``/``bar_time``),
    a ``bar_time`` attribute, or the ``{rule}#{symbol}#{bar_time}`` alert id."""
    payload = alert.get("Payload") or {}
    bar = payload.get("bar")
    candidates = [
        bar.get("bar_time") if isinstance(bar, Mapping) else None,
        payload.get("bar_time"),
        (alert.get("MessageAttributes") or {}).get("bar_time"),
    ]
    parsed = parse_alert_id(payload.get("alert_id"))
    if parsed is not None:
        candidates.append(parsed[2])
    for value in candidates:
        if not value:
            continue
        try:
            ts = pd.Timestamp(value)
        except (TypeError, ValueError):
            continue
        if ts is pd.NaT:
            continue
        return ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return None
