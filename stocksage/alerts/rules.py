"""The rule types (``RULE_TYPES``) and a stored rule (:class:`Rule`).

A rule is an item of the DynamoDB table ``alert-rules`` (partition key ``symbol``, sort key
``rule_id``) whose ``rule`` attribute is a JSON document::

    {"type": "rsi_cross", "params": {"upper": 70, "lower": 30}, "severity": "warning",
     "cooldown_bars": 5}

docs/ALERTS.md ("Rules", "Definitions") gives every type's parameters and exact condition.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from functools import cached_property
from typing import Any

import stocksage.alerts.conditions as c
from stocksage.alerts.params import (
    DIRECTION,
    LEVEL,
    MAX_LOOKBACK_BARS,
    MODE,
    Param,
    RuleError,
    RuleType,
)
from stocksage.alerts.window import finite

SEVERITIES = ("info", "warning", "critical")
"""A rule's ``severity``, sent as an SNS message attribute."""

_RULE_ID = re.compile(r"^[A-Za-z0-9_.:-]{1,64}$")


def _check_rsi(params: dict[str, Any]) -> None:
    if not params["lower"] < params["upper"]:
        raise ValueError("params.lower must be below params.upper")


def _check_swings(params: dict[str, Any]) -> None:
    if 2 * params["k"] + 1 > params["bars"]:
        raise ValueError("params.bars must be at least 2 * k + 1 (room for one swing)")


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def _describe_pct(d: dict[str, Any]) -> str:
    return f"moved {_pct(d['change'])} over {d['bars']} bars (threshold {d['threshold'] * 100:g}%)"


def _describe_candle(d: dict[str, Any]) -> str:
    return f"{d['pattern'].replace('_', ' ')} candle (close {d['close']:.2f})"


_TYPES = (
    RuleType(
        "price_above", (LEVEL,), c.price_above,
        lambda d: f"close {d['close']:.2f} crossed above {d['level']:.2f}",
        "close crosses above level: C[t-1] <= level < C[t]",
    ),
    RuleType(
        "price_below", (LEVEL,), c.price_below,
        lambda d: f"close {d['close']:.2f} crossed below {d['level']:.2f}",
        "close crosses below level: C[t-1] >= level > C[t]",
    ),
    RuleType(
        "pct_move",
        (Param("bars", "int", None, 1, MAX_LOOKBACK_BARS, help="N, bars of the move"),
         Param("threshold", "number", None, 0, 10, low_open=True,
               help="fraction, 0.05 = 5%"),
         DIRECTION, MODE),
        c.pct_move, _describe_pct,
        "|C[t] / C[t-N] - 1| >= threshold (direction up/down/either; cross or level)",
        window_bars=lambda param: param("bars") + 2,  # cross mode reads C[t-1-N]
    ),
    RuleType(
        "rsi_cross",
        (Param("upper", "number", 70.0, 0, 100, True, True, help="overbought level"),
         Param("lower", "number", 30.0, 0, 100, True, True, help="oversold level"),
         DIRECTION),
        c.rsi_cross,
        lambda d: (f"RSI(14) {d['rsi']:.1f} entered {d['zone']} "
                   f"({'above' if d['zone'] == 'overbought' else 'below'} {d['level']:g})"),
        "RSI(14) crosses above upper (overbought) or below lower (oversold)",
        check=_check_rsi,
    ),
    RuleType(
        "macd_cross", (DIRECTION,), c.macd_cross,
        lambda d: (f"MACD crossed {'above' if d['signal'] == 'bullish' else 'below'} "
                   f"its signal line ({d['signal']})"),
        "macd_diff changes sign: bullish <= 0 < , bearish >= 0 >",
    ),
    RuleType(
        "bollinger_break", (DIRECTION,), c.bollinger_break,
        lambda d: (f"close {d['close']:.2f} broke {'above' if d['band'] == 'upper' else 'below'}"
                   f" the {d['band']} Bollinger band {d['level']:.2f}"),
        "close goes outside a Bollinger(20, 2) band (on the bar it leaves)",
    ),
    RuleType(
        "prob_up_above",
        (Param("threshold", "number", None, 0, 1, True, True, help="probability, 0..1"),
         MODE),
        c.prob_up_above,
        lambda d: f"P(up) {d['prob_up']:.2f} above {d['threshold']:g}",
        "prob_up rises above threshold (cross) or is above it (level)",
    ),
    RuleType(
        "range_above_forecast",
        (Param("k", "number", 2.0, 0, 100, low_open=True,
               help="multiple of the forecast range, e.g. 2"),),
        c.range_above_forecast,
        lambda d: (f"range {d['range'] * 100:.2f}% is {d['ratio']:.1f}x its forecast "
                   f"{d['range_forecast'] * 100:.2f}% (k = {d['k']:g})"),
        "ln(H[t]/L[t]) > k x range_forecast made at t-1 (needs a model with a range output)",
    ),
    RuleType(
        "support_resistance",
        (Param("bars", "int", 60, 5, MAX_LOOKBACK_BARS, help="L, look-back bars for swings"),
         Param("k", "int", 3, 1, 20, help="bars on each side of a swing"),
         DIRECTION),
        c.support_resistance,
        lambda d: (f"close {d['close']:.2f} broke "
                   f"{'above' if d['kind'] == 'resistance' else 'below'} {d['kind']} "
                   f"{d['level']:.2f}"),
        "close crosses the most recent confirmed swing high (resistance) or low (support)",
        window_bars=lambda param: param("bars") + 1, check=_check_swings,
    ),
    RuleType(
        "candlestick",
        (Param("pattern", "choice", None, choices=c.CANDLESTICK_PATTERNS, help="the pattern"),
         Param("trend_bars", "int", 5, 0, 60, help="m, prior trend over m bars (0 = none)")),
        c.candlestick, _describe_candle,
        "bullish/bearish engulfing, hammer, doji (Nison)",
        window_bars=lambda param: param("trend_bars") + 2,  # C[t-1-m] .. C[t]
    ),
)

RULE_TYPES: dict[str, RuleType] = {rule_type.name: rule_type for rule_type in _TYPES}
"""Every rule type by name."""


@dataclass(frozen=True)
class Rule:
    """An alert rule, validated at construction.

    Attributes:
        rule_id: Unique per symbol, ``[A-Za-z0-9_.:-]{1,64}``.
        symbol: Upper-case symbol, or ``*`` for every symbol.
        type: One of ``RULE_TYPES``.
        params: Type-specific parameters, e.g. ``{"level": 250.0}``; left-out ones take their
            defaults (docs/ALERTS.md, "Definitions").
        severity: One of :data:`SEVERITIES` (an SNS message attribute).
        cooldown_bars: After firing, do not fire again on the symbol's next N bars (0..240).

    Raises:
        RuleError: a malformed id, unknown type or severity, bad parameters or cooldown.
    """

    rule_id: str
    symbol: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)
    severity: str = "warning"
    cooldown_bars: int = 0

    def __post_init__(self) -> None:
        if not isinstance(self.rule_id, str) or not _RULE_ID.match(self.rule_id):
            raise RuleError(str(self.rule_id), self.symbol,
                            "rule_id must match [A-Za-z0-9_.:-]{1,64}")
        if self.type not in RULE_TYPES:
            raise RuleError(self.rule_id, self.symbol,
                            f"unknown type {self.type!r}; known: {', '.join(sorted(RULE_TYPES))}")
        if self.severity not in SEVERITIES:
            raise RuleError(self.rule_id, self.symbol, f"severity must be one of {SEVERITIES}")
        cooldown = finite(self.cooldown_bars)
        if cooldown is None or cooldown != int(cooldown) or not 0 <= cooldown <= MAX_LOOKBACK_BARS:
            raise RuleError(self.rule_id, self.symbol,
                            f"cooldown_bars must be an integer in [0, {MAX_LOOKBACK_BARS}], "
                            f"got {self.cooldown_bars!r}")
        object.__setattr__(self, "cooldown_bars", int(cooldown))
        try:
            RULE_TYPES[self.type].validate(self.params)
        except ValueError as err:
            raise RuleError(self.rule_id, self.symbol, str(err)) from None

    @property
    def rule_type(self) -> RuleType:
        """The rule's :class:`RuleType`."""
        return RULE_TYPES[self.type]

    @cached_property
    def resolved_params(self) -> dict[str, Any]:
        """Every parameter's value, defaults filled in (``RuleType.resolve``), computed once:
        the rule's conditions read it on every bar."""
        return self.rule_type.resolve(self.params)

    def param(self, name: str) -> Any:
        """A parameter's value, its default when not given (validated at construction).

        Raises:
            StopIteration: the rule's type has no parameter ``name``.
        """
        return self.rule_type.param(self.params, name)

    def window_bars(self) -> int:
        """OHLCV bars (the bar itself included) the rule reads from the window; 0 for a rule
        that compares the previous bar's values only."""
        window_bars = self.rule_type.window_bars
        return 0 if window_bars is None else window_bars(self.param)

    def to_document(self) -> str:
        """JSON document stored in the ``rule`` attribute (keys sorted; ``cooldown_bars`` only
        when not 0)."""
        document: dict[str, Any] = {"type": self.type, "params": self.params,
                                    "severity": self.severity}
        if self.cooldown_bars:
            document["cooldown_bars"] = self.cooldown_bars
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_document(cls, symbol: str, rule_id: str, document: str | Mapping[str, Any]) -> Rule:
        """Build a rule from its stored JSON document (text or already decoded); ``severity``
        defaults to ``warning``, ``cooldown_bars`` to 0.

        Raises:
            RuleError: malformed JSON, unknown type, bad parameters or cooldown.
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
                   params=params, severity=str(doc.get("severity", "warning")),
                   cooldown_bars=doc.get("cooldown_bars", 0))
