"""The schema of a rule type: its parameters (:class:`Param`), condition and description
(:class:`RuleType`), and :class:`RuleError`, raised for anything wrong with a rule.

The parameters of each type, with their bounds and defaults, are listed in docs/ALERTS.md
("Definitions"); ``stocksage.alerts.rules.RULE_TYPES`` declares them with the classes below.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any

from stocksage.alerts.window import Context, finite

DIRECTIONS = ("up", "down", "either")
"""``direction`` values: ``up``, ``down`` or both sides (``either``, the default)."""
MODES = ("cross", "level")
"""``mode`` values: fire on the bar a condition becomes true (``cross``, the default) or on
every bar it holds (``level``)."""
MAX_LOOKBACK_BARS = 240
"""Largest look-back (``bars``) and cooldown (``cooldown_bars``), in bars. It bounds what a
symbol's state keeps: at most 242 OHLCV bars (``lookback_bars``) and cooldown entries no older
than this many bars (``stocksage.processing`` drops older ones, they can no longer suppress)."""

_INF = float("inf")


class RuleError(ValueError):
    """A rule that cannot be read or evaluated; reported and skipped, never fatal to a batch.

    The message is ``rule {rule_id} for {symbol}: {reason}``.

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
class Param:
    """One rule parameter: its kind, bounds and default.

    Attributes:
        name: Key in the rule's ``params``.
        kind: ``number`` (float), ``int`` or ``choice`` (one of ``choices``).
        default: Value when the rule leaves the parameter out; None = required.
        low, high: Bounds of a number or int (None = unbounded).
        low_open, high_open: Whether ``low`` / ``high`` themselves are excluded.
        choices: The allowed values of a ``choice``.
        help: What the value means, with its unit (shown in error messages).
    """

    name: str
    kind: str
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    def bounds(self) -> str:
        """The allowed values in words, e.g. ``an integer in [1, 240]`` or ``one of up, down``."""
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        word = "an integer" if self.kind == "int" else "a number"
        if self.low == 0 and self.low_open and self.high == _INF:
            return f"a positive {word.split()[-1]}"
        return f"{word} in {lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, value: Any) -> Any:
        """The validated value: a float, an int or one of ``choices``.

        Raises:
            ValueError: ``params.{name} must be {bounds}, got {value!r}``.
        """
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
            return value
        number = finite(value)
        if number is None or (self.kind == "int" and number != int(number)):
            raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
        too_low = self.low is not None and (number <= self.low if self.low_open
                                            else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open
                                              else number > self.high)
        if too_low or too_high:
            raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
        return int(number) if self.kind == "int" else number


LEVEL = Param("level", "number", low=0, high=_INF, low_open=True, high_open=True,
              help="price level (price units)")
DIRECTION = Param("direction", "choice", "either", choices=DIRECTIONS,
                  help="up, down or either")
MODE = Param("mode", "choice", "cross", choices=MODES,
             help="cross: on the bar the condition becomes true; level: every bar it holds")

Params = Mapping[str, Any]
"""A rule's parameters by name, validated, defaults filled in (:meth:`RuleType.resolve`)."""
Condition = Callable[[Params, Context], dict[str, Any] | None]
"""``condition(params, context)``: the alert's details (JSON values) when the rule fires on the
current bar, None when it does not."""


@dataclass(frozen=True)
class RuleType:
    """A rule type: its parameters, firing condition and description.

    Attributes:
        name: The type's name (a rule's ``type``).
        params: The parameters it takes.
        fires: Its :data:`Condition`.
        describe: ``describe(details)``: what happened in a few words, e.g. ``close 251.20
            crossed above 250.00`` (the alert's subject and first line).
        summary: The condition in one line (the full definition is in docs/ALERTS.md).
        window_bars: ``window_bars(param)``: OHLCV bars (the bar itself included) the
            condition reads from the window, given ``param(name)`` (a parameter's value);
            None for a type that reads no window.
        check: Extra cross-parameter validation; raises ValueError with a reason.
    """

    name: str
    params: tuple[Param, ...]
    fires: Condition
    describe: Callable[[dict[str, Any]], str]
    summary: str
    window_bars: Callable[[Callable[[str], Any]], int] | None = None
    check: Callable[[dict[str, Any]], None] | None = None

    def param(self, params: Params, name: str) -> Any:
        """The value of parameter ``name`` in ``params`` (its default when absent), validated.

        Raises:
            StopIteration: the type has no parameter ``name``.
            ValueError: the value is out of bounds.
        """
        spec = next(p for p in self.params if p.name == name)
        value = params.get(name)
        return spec.check(spec.default if value is None else value)

    def resolve(self, params: Params) -> dict[str, Any]:
        """Every parameter's value (defaults filled in), validated one by one.

        Raises:
            ValueError: a value is out of bounds (the first in declaration order).
        """
        return {param.name: self.param(params, param.name) for param in self.params}

    def validate(self, params: Params) -> dict[str, Any]:
        """:meth:`resolve` plus the checks of a new rule: no unknown parameter, every required
        one given, ``check`` passed.

        Raises:
            ValueError: the reason, e.g. ``pct_move needs params.bars (an integer in [1, 240]:
                N, bars of the move)``.
        """
        known = {p.name: p for p in self.params}
        unknown = sorted(set(params) - set(known))
        if unknown:
            takes = ", ".join(known) or "no parameters"
            raise ValueError(f"{self.name} does not take {', '.join(unknown)} (takes: {takes})")
        resolved = {}
        for param in self.params:
            value = params.get(param.name)
            if value is None:
                if param.default is None:
                    raise ValueError(f"{self.name} needs params.{param.name} "
                                     f"({param.bounds()}: {param.help})")
                value = param.default
            resolved[param.name] = param.check(value)
        if self.check is not None:
            self.check(resolved)
        return resolved
