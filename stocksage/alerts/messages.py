"""An alert (:class:`Alert`) and its texts: SNS subject, e-mail body, SMS line, JSON payload.

docs/ALERTS.md ("Message format") shows each field as subscribers receive it;
``stocksage.adapters.sns_alerts`` publishes :meth:`Alert.message`.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from typing import Any

from stocksage.alerts.rules import Rule
from stocksage.bars import Bar

SUBJECT_MAX_CHARS = 99
"""SNS limit of a ``Subject``: ASCII, no line breaks, *less than* 100 characters (Publish API
reference), so at most 99."""
SMS_MAX_CHARS = 140
"""Length of the SMS line (one SMS segment)."""


def alert_id(rule_id: str, symbol: str, bar_time: str) -> str:
    """``{rule_id}#{symbol}#{bar_time}``: the idempotency key, one message per id."""
    return f"{rule_id}#{symbol}#{bar_time}"


def parse_alert_id(value: Any) -> tuple[str, str, str] | None:
    """``(rule_id, symbol, bar_time)`` of an :func:`alert_id`; None when ``value`` is not one.

    The bar time is the text after the last ``#`` and the symbol the text before it (symbols
    and times hold no ``#``); the rule id is the rest, so it may itself contain ``#``.
    """
    if not isinstance(value, str) or value.count("#") < 2:
        return None
    head, bar_time = value.rsplit("#", 1)
    rule_id, symbol = head.rsplit("#", 1)
    return rule_id, symbol, bar_time


@dataclass(frozen=True)
class Alert:
    """One alert: a rule fired on a bar.

    Attributes:
        alert_id: ``{rule_id}#{symbol}#{bar_time}`` (:func:`alert_id`), the idempotency key.
        rule: The rule that fired.
        bar: The bar it fired on.
        subject: Readable SNS subject (at most ``SUBJECT_MAX_CHARS`` = 99 ASCII characters, no
            line breaks).
        body: Readable text (several lines: what happened, the bar, the rule).
        details: Machine-readable facts (level, close, previous close...; JSON values).
    """

    alert_id: str
    rule: Rule
    bar: Bar
    subject: str
    body: str
    details: dict[str, Any]

    @property
    def headline(self) -> str:
        """One line: symbol and what happened (without the ``[stocksage]`` prefix)."""
        return self.body.splitlines()[0]

    def sms_text(self) -> str:
        """Short text for SMS subscribers (<= 140 characters), e.g. ``stocksage CRITICAL: MSFT
        ... (2013-02-28T00:00)``."""
        return f"stocksage {self.rule.severity.upper()}: {self.headline} " \
               f"({self.bar.to_dict()['bar_time'][:16]})"[:SMS_MAX_CHARS]

    def payload(self) -> dict[str, Any]:
        """JSON payload of the SNS message (the ``default`` message: SQS, Lambda, HTTP)."""
        return {
            "alert_id": self.alert_id,
            "symbol": self.bar.symbol,
            "rule_id": self.rule.rule_id,
            "rule_type": self.rule.type,
            "rule_params": self.rule.params,
            "cooldown_bars": self.rule.cooldown_bars,
            "severity": self.rule.severity,
            "bar": self.bar.to_dict(),
            "details": self.details,
            "subject": self.subject,
            "text": self.body,
        }

    def message_attributes(self) -> dict[str, str]:
        """SNS message attributes that subscription filter policies match on: ``symbol``,
        ``rule_type``, ``severity`` (do not rename them)."""
        return {"symbol": self.bar.symbol, "rule_type": self.rule.type,
                "severity": self.rule.severity}

    def message(self) -> dict[str, Any]:
        """Everything the publisher sends, as plain JSON values (kept in the state's outbox
        until published): ``alert_id``, ``subject``, ``payload``, ``email``, ``sms``,
        ``attributes``."""
        return {"alert_id": self.alert_id, "subject": self.subject, "payload": self.payload(),
                "email": self.body, "sms": self.sms_text(),
                "attributes": self.message_attributes()}


def _ascii(text: str) -> str:
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text)
    return re.sub(r"\s+", " ", cleaned).strip()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def subject_and_body(rule: Rule, bar: Bar, bar_time: str, text: str,
                     details: dict[str, Any]) -> tuple[str, str]:
    """The SNS subject and the readable body of an alert.

    Args:
        rule: The rule that fired.
        bar: The bar it fired on.
        bar_time: ``bar.bar_time`` as ISO text (``stocksage.bars.format_time``).
        text: What happened (``RuleType.describe`` of ``details``).
        details: The condition's details; None values are left out of the body.

    Returns:
        ``(subject, body)``: ``[stocksage] {symbol} {text}`` cut to 99 ASCII characters, and
        lines with what happened, the bar, the rule, its parameters, the details and the id.
    """
    subject = _ascii(f"[stocksage] {bar.symbol} {text}")
    if len(subject) > SUBJECT_MAX_CHARS:
        subject = subject[:SUBJECT_MAX_CHARS - 3] + "..."
    facts = ", ".join(f"{name} {_fmt(value)}" for name, value in details.items()
                      if value is not None)
    cooldown = f", cooldown {rule.cooldown_bars} bars" if rule.cooldown_bars else ""
    body = "\n".join([
        f"{bar.symbol} {text}",
        "",
        f"Bar:      {bar.interval} bar of {bar_time}",
        (f"          open {bar.open:.6g}  high {bar.high:.6g}  low {bar.low:.6g}  "
         f"close {bar.close:.6g}  volume {bar.volume:.6g}"),
        f"Rule:     {rule.rule_id} ({rule.type}, severity {rule.severity}{cooldown})",
        f"Params:   {json.dumps(rule.params, sort_keys=True)}",
        f"Details:  {facts}",
        f"Alert id: {alert_id(rule.rule_id, bar.symbol, bar_time)}",
    ])
    return subject, body


def make_alert(rule: Rule, bar: Bar, bar_time: str, text: str,
               details: dict[str, Any]) -> Alert:
    """The alert of ``rule`` firing on ``bar``: its id and texts (arguments as in
    :func:`subject_and_body`)."""
    subject, body = subject_and_body(rule, bar, bar_time, text, details)
    return Alert(alert_id=alert_id(rule.rule_id, bar.symbol, bar_time), rule=rule, bar=bar,
                 subject=subject, body=body, details=details)
