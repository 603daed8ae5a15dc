"""Alert rules and their evaluation: which bars raise which price alerts.

A rule belongs to one symbol (or to ``*``, every symbol) and has a type and parameters. Rules
are stored in the DynamoDB table ``alert-rules`` (partition key ``symbol``, sort key
``rule_id``) as a JSON document in the ``rule`` attribute; see :meth:`Rule.from_document`.

Rule types (``previous`` is the symbol's bar before ``current``; crossings need both):

``price_above``
    ``previous.close <= level < current.close``: the close crosses above ``level``.
``price_below``
    ``previous.close >= level > current.close``: the close crosses below ``level``.

Each alert is identified by ``{rule_id}#{symbol}#{bar_time}``: the publisher sends at most one
message per id, so a redelivered batch publishes nothing new.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from stocksage.bars import Bar

SEVERITIES = ("info", "warning", "critical")
_RULE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")

Values = Mapping[str, Any]
"""Indicator, feature and OHLCV values of one bar by column name (None when not defined)."""


class RuleError(ValueError):
    """A rule that cannot be read or evaluated; reported and skipped, never fatal to a batch.

    Attributes:
        rule_id: The rule's id ("" when unknown).
        symbol: The rule's symbol ("" when unknown).
        reason: What is wrong, in one sentence.
    """

    def __init__(self, rule_id: str, symbol: str, reason: str) -> None:
        super().__init__(f"rule {rule_id or '?'} for {symbol or '?'}: {reason}")
        self.rule_id = rule_id
        self.symbol = symbol
        self.reason = reason


@dataclass(frozen=True)
class Rule:
    """An alert rule.

    Attributes:
        rule_id: Unique per symbol, ``[A-Za-z0-9_.:-]{1,64}``.
        symbol: Upper-case symbol, or ``*`` for every symbol.
        type: One of ``RULE_TYPES``.
        params: Type-specific parameters, e.g. ``{"level": 250.0}`` (price units).
        severity: ``info``, ``warning`` or ``critical`` (an SNS message attribute).
    """

    rule_id: str
    symbol: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"

    def __post_init__(self) -> None:
        if not _RULE_ID.match(self.rule_id):
            raise RuleError(self.rule_id, self.symbol, "rule_id must match [A-Za-z0-9_.:-]{1,64}")
        if self.type not in RULE_TYPES:
            raise RuleError(self.rule_id, self.symbol,
                            f"unknown type {self.type!r}; known: {', '.join(sorted(RULE_TYPES))}")
        if self.severity not in SEVERITIES:
            raise RuleError(self.rule_id, self.symbol, f"severity must be one of {SEVERITIES}")
        RULE_TYPES[self.type].validate(self)

    def to_document(self) -> str:
        """JSON document stored in the ``rule`` attribute."""
        return json.dumps({"type": self.type, "params": self.params, "severity": self.severity},
                          sort_keys=True)

    @classmethod
    def from_document(cls, symbol: str, rule_id: str, document: str | Mapping[str, Any]) -> Rule:
        """Build a rule from its stored JSON document.

        Raises:
            RuleError: malformed JSON, unknown type, bad parameters.
        """
        try:
            doc = json.loads(document) if isinstance(document, str) else dict(document)
        except (TypeError, ValueError) as exc:
            raise RuleError(rule_id, symbol, f"rule document is not JSON ({exc})") from None
        if not isinstance(doc, dict):
            raise RuleError(rule_id, symbol, "rule document must be a JSON object")
        params = doc.get("params", {})
        if not isinstance(params, dict):
            raise RuleError(rule_id, symbol, "params must be a JSON object")
        return cls(rule_id=rule_id, symbol=symbol, type=str(doc.get("type", "")),
                   params=params, severity=str(doc.get("severity", "warning")))


@dataclass(frozen=True)
class Alert:
    """One alert: a rule fired on a bar.

    Attributes:
        alert_id: ``{rule_id}#{symbol}#{bar_time}``, the idempotency key.
        rule: The rule that fired.
        bar: The bar it fired on.
        subject: Readable SNS subject (<= 100 ASCII characters).
        body: Readable text.
        details: Machine-readable facts (level, close, previous close...).
    """

    alert_id: str
    rule: Rule
    bar: Bar
    subject: str
    body: str
    details: dict[str, Any]

    def payload(self) -> dict[str, Any]:
        """JSON payload of the SNS message."""
        return {
            "alert_id": self.alert_id,
            "symbol": self.bar.symbol,
            "rule_id": self.rule.rule_id,
            "rule_type": self.rule.type,
            "severity": self.rule.severity,
            "bar": self.bar.to_dict(),
            "details": self.details,
            "text": self.body,
        }

    def message_attributes(self) -> dict[str, str]:
        """SNS message attributes that subscription filter policies match on."""
        return {"symbol": self.bar.symbol, "rule_type": self.rule.type,
                "severity": self.rule.severity}


def _number(value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def _require_level(rule: Rule) -> None:
    level = _number(rule.params.get("level"))
    if level is None or level <= 0:
        raise RuleError(rule.rule_id, rule.symbol, "params.level must be a positive number")


@dataclass(frozen=True)
class RuleType:
    """A rule type: parameter validation and the firing condition.

    ``fires(rule, previous, current)`` returns the alert's details when the rule fires on
    ``current`` and None otherwise.
    """

    validate: Callable[[Rule], None]
    fires: Callable[[Rule, Values | None, Values], dict[str, Any] | None]
    describe: Callable[[Rule, dict[str, Any]], str]


def _crosses_above(rule: Rule, previous: Values | None, current: Values) -> dict[str, Any] | None:
    level = float(rule.params["level"])
    before, now = _number((previous or {}).get("close")), _number(current.get("close"))
    if before is None or now is None or not (before <= level < now):
        return None
    return {"level": level, "previous_close": before, "close": now}


def _crosses_below(rule: Rule, previous: Values | None, current: Values) -> dict[str, Any] | None:
    level = float(rule.params["level"])
    before, now = _number((previous or {}).get("close")), _number(current.get("close"))
    if before is None or now is None or not (before >= level > now):
        return None
    return {"level": level, "previous_close": before, "close": now}


RULE_TYPES: dict[str, RuleType] = {
    "price_above": RuleType(
        _require_level, _crosses_above,
        lambda r, d: f"close {d['close']:.2f} crossed above {d['level']:.2f}",
    ),
    "price_below": RuleType(
        _require_level, _crosses_below,
        lambda r, d: f"close {d['close']:.2f} crossed below {d['level']:.2f}",
    ),
}


def evaluate_rules(rules: Sequence[Rule], bar: Bar, previous: Values | None,
                   current: Values) -> tuple[list[Alert], list[RuleError]]:
    """Evaluate every rule of a symbol on one bar.

    Args:
        rules: The symbol's rules (including ``*`` rules).
        bar: The bar being evaluated.
        previous: Values of the symbol's previous bar, None for the first bar ever seen.
        current: Values of ``bar`` (OHLCV, indicators, features, prob_up).

    Returns:
        ``(alerts, errors)``: the alerts that fire, and the rules that raised while evaluating
        (reported, not fatal).
    """
    alerts: list[Alert] = []
    errors: list[RuleError] = []
    bar_time = bar.to_dict()["bar_time"]
    for rule in rules:
        try:
            rule_type = RULE_TYPES[rule.type]
            details = rule_type.fires(rule, previous, current)
        except Exception as exc:  # a broken rule must not stop the batch
            errors.append(RuleError(rule.rule_id, bar.symbol, f"evaluation failed: {exc}"))
            continue
        if details is None:
            continue
        text = rule_type.describe(rule, details)
        subject = f"[stocksage] {bar.symbol} {text}"[:100]
        body = (f"{bar.symbol} {text} on the {bar.interval} bar of {bar_time} "
                f"(rule {rule.rule_id}, {rule.type}, severity {rule.severity}).")
        alerts.append(Alert(alert_id=f"{rule.rule_id}#{bar.symbol}#{bar_time}", rule=rule,
                            bar=bar, subject=subject, body=body, details=details))
    return alerts, errors
