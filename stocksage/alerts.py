"""Alert rules and their evaluation: which bars raise which alerts.

A rule belongs to one symbol (or to ``*``, every symbol) and has a type, parameters, a severity
and an optional cooldown. Rules are stored in the DynamoDB table ``alert-rules`` (partition key
``symbol``, sort key ``rule_id``) as a JSON document in the ``rule`` attribute::

    {"type": "rsi_cross", "params": {"upper": 70, "lower": 30}, "severity": "warning",
     "cooldown_bars": 5}

(see :meth:`Rule.from_document`; ``cooldown_bars`` may be left out, it defaults to 0).
docs/ALERTS.md has the same definitions with examples.

Notation: bar ``t`` is the bar being evaluated, ``t-1`` the symbol's previous bar, ``O H L C``
its open, high, low and close. ``previous`` and ``current`` are the values of bars ``t-1`` and
``t``: OHLCV, the indicators of ``stocksage.indicators`` (``ta`` 0.11: RSI(14) Wilder,
MACD(12, 26, 9), Bollinger(20, 2)) and ``prob_up``. Rules that look further back read the
symbol's OHLCV *window*: the last accepted bars up to and including ``t``, as many as the
symbol's rules look back (``lookback_bars``; the state keeps exactly that many, so a rule
whose look-back grows sees a full window once that many new bars have arrived).
A value that does not exist yet (indicator warm-up, no previous bar, too little history) never
fires. "Crosses above ``x``" always means ``value_{t-1} <= x < value_t``; "crosses below ``x``"
means ``value_{t-1} >= x > value_t``. Every condition uses bars ``<= t`` only: no look-ahead.

Rule types and parameters (``direction`` is ``up``, ``down`` or ``either``, default ``either``):

``price_above`` (``level`` > 0)
    The close crosses above ``level``: ``C_{t-1} <= level < C_t``.
``price_below`` (``level`` > 0)
    The close crosses below ``level``: ``C_{t-1} >= level > C_t``.
``pct_move`` (``bars`` N in 1..240, ``threshold`` in (0, 10] as a fraction, 0.05 = 5 %,
``direction``, ``mode`` ``cross`` | ``level``, default ``cross``)
    Move over N bars: ``r_t = C_t / C_{t-N} - 1``. Condition ``up``: ``r_t >= threshold``;
    ``down``: ``r_t <= -threshold``; ``either``: one of the two. ``mode=level`` fires on every
    bar where the condition holds; ``mode=cross`` (default) only on the bar where it becomes
    true, i.e. it holds at ``t`` and did not hold at ``t-1`` (each side separately for
    ``either``; needs ``C_{t-1-N}``).
``rsi_cross`` (``upper`` default 70, ``lower`` default 30, ``0 < lower < upper < 100``;
``direction``)
    RSI(14) (Wilder, ``ta.momentum.RSIIndicator``) *enters overbought* when it crosses above
    ``upper``: ``RSI_{t-1} <= upper < RSI_t`` (direction ``up``); it *enters oversold* when it
    crosses below ``lower``: ``RSI_{t-1} >= lower > RSI_t`` (direction ``down``). The levels are
    Wilder's, "New Concepts in Technical Trading Systems" (1978).
``macd_cross`` (``direction``: ``up`` = bullish, ``down`` = bearish)
    The MACD line (EMA12 - EMA26 of close) crosses its signal line (EMA9 of MACD), i.e.
    ``macd_diff = macd - macd_signal`` changes sign: bullish ``diff_{t-1} <= 0 < diff_t``,
    bearish ``diff_{t-1} >= 0 > diff_t`` (Appel, "Technical Analysis: Power Tools for Active
    Investors", 2005; ``ta.trend.MACD``).
``bollinger_break`` (``direction``: ``up`` = above the upper band, ``down`` = below the lower)
    Fires on the bar the close goes outside a Bollinger band (20 bars, 2 standard deviations;
    Bollinger, "Bollinger on Bollinger Bands", 2001; ``ta.volatility.BollingerBands``), not on
    the bars it stays outside: up ``C_{t-1} <= BBhigh_{t-1} and C_t > BBhigh_t``; down
    ``C_{t-1} >= BBlow_{t-1} and C_t < BBlow_t``.
``prob_up_above`` (``threshold`` in (0, 1), ``mode`` ``cross`` | ``level``, default ``cross``)
    ``prob_up`` is the model's probability that the next bar closes higher. ``mode=cross``:
    ``p_{t-1} <= threshold < p_t`` (fires when it rises above the threshold); ``mode=level``:
    ``p_t > threshold`` on every bar (use a cooldown).
``support_resistance`` (``bars`` L in 5..240, default 60; ``k`` in 1..20, default 3, with
``2k + 1 <= L``; ``direction``: ``up`` = resistance break, ``down`` = support break)
    Swing points (Edwards & Magee, "Technical Analysis of Stock Trends"; the fractal form of
    Williams, "Trading Chaos", 1995, has k = 2): bar ``j`` is a *swing high* when
    ``H_j = max(H_{j-k} .. H_{j+k})`` and a *swing low* when ``L_j = min(L_{j-k} .. L_{j+k})``.
    A swing is known only once its k right-hand bars exist (confirmed at ``j + k``). For bar
    ``t`` the levels come from the L bars *before* it, ``s = max(0, t-L) .. t-1``: candidates
    ``j`` with ``j - k >= s`` and ``j + k <= t - 1``. Resistance ``R_t`` = high of the most
    recent (largest ``j``) swing high, support ``S_t`` = low of the most recent swing low.
    Resistance break: ``C_{t-1} <= R_t < C_t``; support break: ``C_{t-1} >= S_t > C_t``.
``candlestick`` (``pattern``; ``trend_bars`` m in 0..60, default 5)
    Patterns after Nison, "Japanese Candlestick Charting Techniques" (2nd ed., 2001). With
    ``body = |C - O|``, ``range = H - L``, ``upper = H - max(O, C)``, ``lower = min(O, C) - L``;
    prior downtrend ``C_{t-1} < C_{t-1-m}``, prior uptrend ``C_{t-1} > C_{t-1-m}`` (both
    always true when ``m = 0``; Nison requires a prior trend for reversal patterns):

    - ``doji``: ``range > 0`` and ``body <= 0.10 * range`` (open and close "the same or very
      nearly the same"; no trend needed; a bar with ``range = 0`` is not reported).
    - ``hammer``: ``range > 0``, ``body > 0``, ``lower >= 2 * body``, ``upper <= 0.10 *
      range`` (small body at the top of the range, lower shadow at least twice the body,
      little or no upper shadow), after a downtrend.
    - ``bullish_engulfing``: bar ``t-1`` black (``C < O``), bar ``t`` white (``C > O``), the
      white body engulfs the black one: ``O_t <= C_{t-1}``, ``C_t >= O_{t-1}`` and
      ``body_t > body_{t-1}``; after a downtrend.
    - ``bearish_engulfing``: bar ``t-1`` white, bar ``t`` black, ``O_t >= C_{t-1}``,
      ``C_t <= O_{t-1}``, ``body_t > body_{t-1}``; after an uptrend.

Cooldown (``cooldown_bars`` N in 0..240, any type): after a rule fires on bar ``f`` of a
symbol it does not fire on that symbol's next N bars (``f+1 .. f+N``); it may fire again from
``f+N+1``. Bars are counted in the window; a suppressed firing does not restart the cooldown.
The last firing bar per rule is kept in the symbol's state (``COOLDOWN_STATE_KEY``, as the
bar's index in the series), which is written last, conditionally, and only advanced with
accepted bars: a redelivered or retried batch recomputes the same decisions.

Each alert is identified by ``{rule_id}#{symbol}#{bar_time}``: the publisher sends at most one
message per id, so a redelivered batch publishes nothing new. A rule id should therefore not be
used both by a symbol's own rule and by a ``*`` rule.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Callable, Mapping, MutableMapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stocksage.bars import Bar, epoch_micros, format_time
from stocksage.config import STACK

SEVERITIES = ("info", "warning", "critical")
DIRECTIONS = ("up", "down", "either")
MODES = ("cross", "level")
CANDLESTICK_PATTERNS = ("bullish_engulfing", "bearish_engulfing", "hammer", "doji")
MAX_LOOKBACK_BARS = 240
"""Largest look-back (``bars``) and cooldown: below the smallest window ``advance`` allows
(249 bars), so the window always holds what a rule needs."""

DOJI_MAX_BODY_RATIO = 0.10
"""Doji: body <= 10 % of the range."""
HAMMER_MIN_LOWER_TO_BODY = 2.0
"""Hammer: lower shadow >= 2 x body."""
HAMMER_MAX_UPPER_RATIO = 0.10
"""Hammer: upper shadow <= 10 % of the range."""

COOLDOWN_STATE_KEY = "alerts_last_fired"
"""Attribute of the ``window-state`` item holding ``{rule_id: bar index}``, the last firing
bar per rule with a cooldown (``stocksage.state``)."""

RSI = f"rsi_{STACK.indicators['rsi_window']}"
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


# ----------------------------------------------------------------------------- the window
def _parse_micros(text: str) -> int | None:
    try:
        moment = datetime.fromisoformat(str(text))  # 3.11+ reads a trailing "Z"
    except ValueError:
        return None
    return None if moment.tzinfo is None else epoch_micros(moment)


@dataclass(frozen=True)
class BarWindow:
    """A symbol's OHLCV bars up to and including the bar being evaluated (the last row).

    Attributes:
        times: Bar times, int64 microseconds since the epoch (UTC), ascending.
        open, high, low, close, volume: float64 arrays of the same length.
    """

    times: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_frame(cls, frame: Any) -> BarWindow:
        """From an OHLCV frame indexed by UTC ``bar_time`` (``WindowState.bars``)."""
        times = np.asarray(frame.index.as_unit("us").asi8, dtype=np.int64)
        columns = {name: np.asarray(frame[name], dtype=np.float64)
                   for name in ("open", "high", "low", "close", "volume")}
        return cls(times=times, **columns)

    def __len__(self) -> int:
        return len(self.close)

    def upto(self, end: int, max_bars: int | None = None) -> BarWindow:
        """Rows ``[end - max_bars, end)`` (views, no copy): the window of row ``end - 1``."""
        start = 0 if max_bars is None else max(0, end - max_bars)
        return BarWindow(*(array[start:end] for array in
                           (self.times, self.open, self.high, self.low, self.close, self.volume)))

    def bars_since(self, micros: int) -> int | None:
        """Bars after time ``micros`` up to the last one; None when it is before the window."""
        if len(self.times) == 0 or micros < self.times[0]:
            return None
        return int(len(self.times) - np.searchsorted(self.times, micros, side="right"))


def _as_window(window: Any) -> BarWindow | None:
    if window is None or isinstance(window, BarWindow):
        return window
    return BarWindow.from_frame(window)


@dataclass(frozen=True)
class Context:
    """What a rule sees for one bar: previous and current values, and the window."""

    previous: Values | None
    current: Values
    window: BarWindow | None


# ----------------------------------------------------------------------------- parameters
def _number(value: Any) -> float | None:
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


@dataclass(frozen=True)
class Param:
    """One rule parameter: its kind, bounds and default (None = required)."""

    name: str
    kind: str  # "number", "int" or "choice"
    default: Any = None
    low: float | None = None
    high: float | None = None
    low_open: bool = False
    high_open: bool = False
    choices: tuple[str, ...] = ()
    help: str = ""

    def bounds(self) -> str:
        if self.kind == "choice":
            return "one of " + ", ".join(self.choices)
        lo = "(" if self.low_open else "["
        hi = ")" if self.high_open else "]"
        word = "an integer" if self.kind == "int" else "a number"
        if self.low == 0 and self.low_open and self.high == _INF:
            return f"a positive {word.split()[-1]}"
        return f"{word} in {lo}{self.low:g}, {self.high:g}{hi}"

    def check(self, value: Any) -> Any:
        """The validated value; raises ValueError with a reason."""
        if self.kind == "choice":
            if not isinstance(value, str) or value not in self.choices:
                raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
            return value
        number = _number(value)
        if number is None or (self.kind == "int" and number != int(number)):
            raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
        too_low = self.low is not None and (number <= self.low if self.low_open
                                            else number < self.low)
        too_high = self.high is not None and (number >= self.high if self.high_open
                                              else number > self.high)
        if too_low or too_high:
            raise ValueError(f"params.{self.name} must be {self.bounds()}, got {value!r}")
        return int(number) if self.kind == "int" else number


_INF = float("inf")
_LEVEL = Param("level", "number", low=0, high=_INF, low_open=True, high_open=True,
               help="price level (price units)")
_DIRECTION = Param("direction", "choice", "either", choices=DIRECTIONS,
                   help="up, down or either")
_MODE = Param("mode", "choice", "cross", choices=MODES,
              help="cross: on the bar the condition becomes true; level: every bar it holds")


@dataclass(frozen=True)
class RuleType:
    """A rule type: parameters, the firing condition and its description.

    ``fires(rule, context)`` returns the alert's details when the rule fires on the current
    bar and None otherwise. ``check(params)`` is an extra cross-parameter validation.
    """

    params: tuple[Param, ...]
    fires: Callable[[Rule, Context], dict[str, Any] | None]
    describe: Callable[[Rule, dict[str, Any]], str]
    summary: str
    needs_window: bool = False
    check: Callable[[dict[str, Any]], None] | None = None

    def validate(self, rule: Rule) -> None:
        known = {p.name: p for p in self.params}
        unknown = sorted(set(rule.params) - set(known))
        if unknown:
            takes = ", ".join(known) or "no parameters"
            raise RuleError(rule.rule_id, rule.symbol,
                            f"{rule.type} does not take {', '.join(unknown)} (takes: {takes})")
        resolved = {}
        for param in self.params:
            value = rule.params.get(param.name)
            if value is None:
                if param.default is None:
                    raise RuleError(rule.rule_id, rule.symbol,
                                    f"{rule.type} needs params.{param.name} "
                                    f"({param.bounds()}: {param.help})")
                value = param.default
            try:
                resolved[param.name] = param.check(value)
            except ValueError as err:
                raise RuleError(rule.rule_id, rule.symbol, str(err)) from None
        if self.check is not None:
            try:
                self.check(resolved)
            except ValueError as err:
                raise RuleError(rule.rule_id, rule.symbol, str(err)) from None


@dataclass(frozen=True)
class Rule:
    """An alert rule.

    Attributes:
        rule_id: Unique per symbol, ``[A-Za-z0-9_.:-]{1,64}``.
        symbol: Upper-case symbol, or ``*`` for every symbol.
        type: One of ``RULE_TYPES``.
        params: Type-specific parameters, e.g. ``{"level": 250.0}`` (see the module docstring).
        severity: ``info``, ``warning`` or ``critical`` (an SNS message attribute).
        cooldown_bars: After firing, do not fire again on the symbol's next N bars (0..240).
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
        cooldown = _number(self.cooldown_bars)
        if cooldown is None or cooldown != int(cooldown) or not 0 <= cooldown <= MAX_LOOKBACK_BARS:
            raise RuleError(self.rule_id, self.symbol,
                            f"cooldown_bars must be an integer in [0, {MAX_LOOKBACK_BARS}], "
                            f"got {self.cooldown_bars!r}")
        object.__setattr__(self, "cooldown_bars", int(cooldown))
        RULE_TYPES[self.type].validate(self)

    def param(self, name: str) -> Any:
        """A parameter's value, its default when not given (validated at construction)."""
        spec = next(p for p in RULE_TYPES[self.type].params if p.name == name)
        value = self.params.get(name)
        return spec.check(spec.default if value is None else value)

    def to_document(self) -> str:
        """JSON document stored in the ``rule`` attribute."""
        document: dict[str, Any] = {"type": self.type, "params": self.params,
                                    "severity": self.severity}
        if self.cooldown_bars:
            document["cooldown_bars"] = self.cooldown_bars
        return json.dumps(document, sort_keys=True)

    @classmethod
    def from_document(cls, symbol: str, rule_id: str, document: str | Mapping[str, Any]) -> Rule:
        """Build a rule from its stored JSON document.

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


@dataclass(frozen=True)
class Alert:
    """One alert: a rule fired on a bar.

    Attributes:
        alert_id: ``{rule_id}#{symbol}#{bar_time}``, the idempotency key.
        rule: The rule that fired.
        bar: The bar it fired on.
        subject: Readable SNS subject (<= 100 ASCII characters, no line breaks).
        body: Readable text (several lines: what happened, the bar, the rule).
        details: Machine-readable facts (level, close, previous close...).
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
        """Short text for SMS subscribers (<= 140 characters)."""
        return f"stocksage {self.rule.severity.upper()}: {self.headline} " \
               f"({self.bar.to_dict()['bar_time'][:16]})"[:140]

    def payload(self) -> dict[str, Any]:
        """JSON payload of the SNS message."""
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
        """SNS message attributes that subscription filter policies match on."""
        return {"symbol": self.bar.symbol, "rule_type": self.rule.type,
                "severity": self.rule.severity}

    def message(self) -> dict[str, Any]:
        """Everything the publisher sends, as plain JSON values (kept in the state's outbox
        until published): ``alert_id``, ``subject``, ``payload``, ``email``, ``sms``,
        ``attributes``."""
        return {"alert_id": self.alert_id, "subject": self.subject, "payload": self.payload(),
                "email": self.body, "sms": self.sms_text(),
                "attributes": self.message_attributes()}


# ----------------------------------------------------------------------------- conditions
def _value(values: Values | None, name: str) -> float | None:
    return None if values is None else _number(values.get(name))


def _crosses_up(before: float | None, now: float | None, level: float | None) -> bool:
    return None not in (before, now, level) and before <= level < now  # type: ignore[operator]


def _crosses_down(before: float | None, now: float | None, level: float | None) -> bool:
    return None not in (before, now, level) and before >= level > now  # type: ignore[operator]


def _wanted(rule: Rule) -> tuple[bool, bool]:
    direction = rule.param("direction")
    return direction in ("up", "either"), direction in ("down", "either")


def _price_above(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    level = rule.param("level")
    before, now = _value(ctx.previous, "close"), _value(ctx.current, "close")
    if not _crosses_up(before, now, level):
        return None
    return {"level": level, "previous_close": before, "close": now}


def _price_below(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    level = rule.param("level")
    before, now = _value(ctx.previous, "close"), _value(ctx.current, "close")
    if not _crosses_down(before, now, level):
        return None
    return {"level": level, "previous_close": before, "close": now}


def _pct_move(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    window = ctx.window
    n, threshold, mode = rule.param("bars"), rule.param("threshold"), rule.param("mode")
    want_up, want_down = _wanted(rule)
    if window is None:
        return None
    close, t = window.close, len(window) - 1
    if t - n < 0 or close[t - n] <= 0:
        return None
    change = float(close[t] / close[t - n] - 1)
    up, down = want_up and change >= threshold, want_down and change <= -threshold
    if mode == "cross" and (up or down):
        if t - 1 - n < 0 or close[t - 1 - n] <= 0:
            return None
        before = float(close[t - 1] / close[t - 1 - n] - 1)
        up = up and not before >= threshold
        down = down and not before <= -threshold
    if not (up or down):
        return None
    return {"bars": n, "threshold": threshold, "change": change, "direction": "up" if up else "down",
            "close": float(close[t]), "base_close": float(close[t - n]),
            "base_bar_time": _iso(window.times[t - n]), "mode": mode}


def _rsi_cross(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    upper, lower = rule.param("upper"), rule.param("lower")
    want_up, want_down = _wanted(rule)
    before, now = _value(ctx.previous, RSI), _value(ctx.current, RSI)
    if want_up and _crosses_up(before, now, upper):
        return {"rsi": now, "previous_rsi": before, "level": upper, "zone": "overbought"}
    if want_down and _crosses_down(before, now, lower):
        return {"rsi": now, "previous_rsi": before, "level": lower, "zone": "oversold"}
    return None


def _macd_cross(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    want_up, want_down = _wanted(rule)
    before, now = _value(ctx.previous, "macd_diff"), _value(ctx.current, "macd_diff")
    signal = None
    if want_up and _crosses_up(before, now, 0.0):
        signal = "bullish"
    elif want_down and _crosses_down(before, now, 0.0):
        signal = "bearish"
    if signal is None:
        return None
    return {"signal": signal, "macd": _value(ctx.current, "macd"),
            "macd_signal": _value(ctx.current, "macd_signal"), "macd_diff": now,
            "previous_macd_diff": before}


def _bollinger_break(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    want_up, want_down = _wanted(rule)
    prev_close, close = _value(ctx.previous, "close"), _value(ctx.current, "close")
    if prev_close is None or close is None:
        return None
    prev_high, high = _value(ctx.previous, "bb_high"), _value(ctx.current, "bb_high")
    prev_low, low = _value(ctx.previous, "bb_low"), _value(ctx.current, "bb_low")
    band = None
    if want_up and None not in (prev_high, high) and prev_close <= prev_high and close > high:
        band, level = "upper", high
    elif want_down and None not in (prev_low, low) and prev_close >= prev_low and close < low:
        band, level = "lower", low
    if band is None:
        return None
    return {"band": band, "level": level, "close": close, "previous_close": prev_close,
            "bb_high": high, "bb_low": low, "bb_mavg": _value(ctx.current, "bb_mavg")}


def _prob_up_above(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    threshold, mode = rule.param("threshold"), rule.param("mode")
    before, now = _value(ctx.previous, "prob_up"), _value(ctx.current, "prob_up")
    if now is None:
        return None
    fired = now > threshold if mode == "level" else _crosses_up(before, now, threshold)
    if not fired:
        return None
    return {"prob_up": now, "previous_prob_up": before, "threshold": threshold, "mode": mode}


def _range_above_forecast(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    """Bar ``t``'s range ``ln(high/low)`` above ``k`` x the range forecast made for it at bar
    ``t-1`` (``previous["range_forecast"]``, from the endpoint's range model)."""
    forecast = _value(ctx.previous, "range_forecast")
    high, low = _value(ctx.current, "high"), _value(ctx.current, "low")
    if forecast is None or forecast <= 0 or high is None or low is None or low <= 0:
        return None
    realised = math.log(high / low)
    k = rule.param("k")
    if realised <= k * forecast:
        return None
    return {"range": realised, "range_forecast": forecast, "k": k,
            "ratio": realised / forecast, "high": high, "low": low}


def swing_levels(high: np.ndarray, low: np.ndarray, t: int, lookback: int,
                 k: int) -> tuple[int | None, int | None]:
    """Indexes of the most recent confirmed swing high and swing low for bar ``t``.

    Only bars ``max(0, t - lookback) .. t - 1`` are used (see ``support_resistance``).
    """
    start = max(0, t - lookback)
    swing_high = swing_low = None
    for j in range(t - 1 - k, start + k - 1, -1):
        if swing_high is None and high[j] == high[j - k:j + k + 1].max():
            swing_high = j
        if swing_low is None and low[j] == low[j - k:j + k + 1].min():
            swing_low = j
        if swing_high is not None and swing_low is not None:
            break
    return swing_high, swing_low


def _support_resistance(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    window = ctx.window
    lookback, k = rule.param("bars"), rule.param("k")
    want_up, want_down = _wanted(rule)
    if window is None or len(window) < 2:
        return None
    t = len(window) - 1
    close = window.close
    swing_high, swing_low = swing_levels(window.high, window.low, t, lookback, k)
    if want_up and swing_high is not None:
        level = float(window.high[swing_high])
        if _crosses_up(float(close[t - 1]), float(close[t]), level):
            return {"kind": "resistance", "level": level, "swing_bar_time":
                    _iso(window.times[swing_high]), "previous_close": float(close[t - 1]),
                    "close": float(close[t]), "bars": lookback, "k": k}
    if want_down and swing_low is not None:
        level = float(window.low[swing_low])
        if _crosses_down(float(close[t - 1]), float(close[t]), level):
            return {"kind": "support", "level": level, "swing_bar_time":
                    _iso(window.times[swing_low]), "previous_close": float(close[t - 1]),
                    "close": float(close[t]), "bars": lookback, "k": k}
    return None


def _trend(close: np.ndarray, t: int, m: int) -> float | None:
    """``C_{t-1} - C_{t-1-m}`` (the prior trend); 0.0 when ``m = 0``; None without the bars."""
    if m == 0:
        return 0.0
    if t - 1 - m < 0:
        return None
    return float(close[t - 1] - close[t - 1 - m])


def _candlestick(rule: Rule, ctx: Context) -> dict[str, Any] | None:
    window = ctx.window
    pattern, m = rule.param("pattern"), rule.param("trend_bars")
    if window is None or len(window) < 1:
        return None
    t = len(window) - 1
    o, h, lo, c = (float(a[t]) for a in (window.open, window.high, window.low, window.close))
    body, rng = abs(c - o), h - lo
    upper, lower = h - max(o, c), min(o, c) - lo
    trend = None
    if pattern == "doji":
        fired = rng > 0 and body <= DOJI_MAX_BODY_RATIO * rng
    elif pattern == "hammer":
        trend = _trend(window.close, t, m)
        fired = (rng > 0 and body > 0 and lower >= HAMMER_MIN_LOWER_TO_BODY * body
                 and upper <= HAMMER_MAX_UPPER_RATIO * rng
                 and trend is not None and (m == 0 or trend < 0))
    else:
        if t < 1:
            return None
        o1, c1 = float(window.open[t - 1]), float(window.close[t - 1])
        trend = _trend(window.close, t, m)
        if trend is None:
            return None
        if pattern == "bullish_engulfing":
            fired = (c1 < o1 and c > o and o <= c1 and c >= o1 and body > o1 - c1
                     and (m == 0 or trend < 0))
        else:
            fired = (c1 > o1 and c < o and o >= c1 and c <= o1 and body > c1 - o1
                     and (m == 0 or trend > 0))
    if not fired:
        return None
    details = {"pattern": pattern, "open": o, "high": h, "low": lo, "close": c, "body": body,
               "range": rng, "upper_shadow": upper, "lower_shadow": lower}
    if pattern != "doji":
        details.update(trend_bars=m, prior_trend_change=trend)
    return details


def _check_rsi(params: dict[str, Any]) -> None:
    if not params["lower"] < params["upper"]:
        raise ValueError("params.lower must be below params.upper")


def _check_swings(params: dict[str, Any]) -> None:
    if 2 * params["k"] + 1 > params["bars"]:
        raise ValueError("params.bars must be at least 2 * k + 1 (room for one swing)")


def _pct(value: float) -> str:
    return f"{value * 100:+.2f}%"


def _describe_pct(rule: Rule, d: dict[str, Any]) -> str:
    return f"moved {_pct(d['change'])} over {d['bars']} bars (threshold {d['threshold'] * 100:g}%)"


def _describe_candle(rule: Rule, d: dict[str, Any]) -> str:
    return f"{d['pattern'].replace('_', ' ')} candle (close {d['close']:.2f})"


RULE_TYPES: dict[str, RuleType] = {
    "price_above": RuleType(
        (_LEVEL,), _price_above,
        lambda r, d: f"close {d['close']:.2f} crossed above {d['level']:.2f}",
        "close crosses above level: C[t-1] <= level < C[t]",
    ),
    "price_below": RuleType(
        (_LEVEL,), _price_below,
        lambda r, d: f"close {d['close']:.2f} crossed below {d['level']:.2f}",
        "close crosses below level: C[t-1] >= level > C[t]",
    ),
    "pct_move": RuleType(
        (Param("bars", "int", None, 1, MAX_LOOKBACK_BARS, help="N, bars of the move"),
         Param("threshold", "number", None, 0, 10, low_open=True,
               help="fraction, 0.05 = 5%"),
         _DIRECTION, _MODE),
        _pct_move, _describe_pct,
        "|C[t] / C[t-N] - 1| >= threshold (direction up/down/either; cross or level)",
        needs_window=True,
    ),
    "rsi_cross": RuleType(
        (Param("upper", "number", 70.0, 0, 100, True, True, help="overbought level"),
         Param("lower", "number", 30.0, 0, 100, True, True, help="oversold level"),
         _DIRECTION),
        _rsi_cross,
        lambda r, d: (f"RSI(14) {d['rsi']:.1f} entered {d['zone']} "
                      f"({'above' if d['zone'] == 'overbought' else 'below'} {d['level']:g})"),
        "RSI(14) crosses above upper (overbought) or below lower (oversold)",
        check=_check_rsi,
    ),
    "macd_cross": RuleType(
        (_DIRECTION,), _macd_cross,
        lambda r, d: (f"MACD crossed {'above' if d['signal'] == 'bullish' else 'below'} "
                      f"its signal line ({d['signal']})"),
        "macd_diff changes sign: bullish <= 0 < , bearish >= 0 >",
    ),
    "bollinger_break": RuleType(
        (_DIRECTION,), _bollinger_break,
        lambda r, d: (f"close {d['close']:.2f} broke {'above' if d['band'] == 'upper' else 'below'}"
                      f" the {d['band']} Bollinger band {d['level']:.2f}"),
        "close goes outside a Bollinger(20, 2) band (on the bar it leaves)",
    ),
    "prob_up_above": RuleType(
        (Param("threshold", "number", None, 0, 1, True, True, help="probability, 0..1"),
         _MODE),
        _prob_up_above,
        lambda r, d: f"P(up) {d['prob_up']:.2f} above {d['threshold']:g}",
        "prob_up rises above threshold (cross) or is above it (level)",
    ),
    "range_above_forecast": RuleType(
        (Param("k", "number", 2.0, 0, 100, low_open=True,
               help="multiple of the forecast range, e.g. 2"),),
        _range_above_forecast,
        lambda r, d: (f"range {d['range'] * 100:.2f}% is {d['ratio']:.1f}x its forecast "
                      f"{d['range_forecast'] * 100:.2f}% (k = {d['k']:g})"),
        "ln(H[t]/L[t]) > k x range_forecast made at t-1 (needs a model with a range output)",
    ),
    "support_resistance": RuleType(
        (Param("bars", "int", 60, 5, MAX_LOOKBACK_BARS, help="L, look-back bars for swings"),
         Param("k", "int", 3, 1, 20, help="bars on each side of a swing"),
         _DIRECTION),
        _support_resistance,
        lambda r, d: (f"close {d['close']:.2f} broke {'above' if d['kind'] == 'resistance' else 'below'}"
                      f" {d['kind']} {d['level']:.2f}"),
        "close crosses the most recent confirmed swing high (resistance) or low (support)",
        needs_window=True, check=_check_swings,
    ),
    "candlestick": RuleType(
        (Param("pattern", "choice", None, choices=CANDLESTICK_PATTERNS, help="the pattern"),
         Param("trend_bars", "int", 5, 0, 60, help="m, prior trend over m bars (0 = none)")),
        _candlestick, _describe_candle,
        "bullish/bearish engulfing, hammer, doji (Nison)",
        needs_window=True,
    ),
}


def _iso(micros: Any) -> str:
    moment = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")


def _ascii(text: str) -> str:
    cleaned = "".join(ch if 32 <= ord(ch) < 127 else " " for ch in text)
    return re.sub(r"\s+", " ", cleaned).strip()


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.6g}"
    return str(value)


def _message(rule: Rule, bar: Bar, bar_time: str, text: str,
             details: dict[str, Any]) -> tuple[str, str]:
    subject = _ascii(f"[stocksage] {bar.symbol} {text}")
    if len(subject) > 100:
        subject = subject[:97] + "..."
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
        f"Alert id: {rule.rule_id}#{bar.symbol}#{bar_time}",
    ])
    return subject, body


def evaluate_rules(rules: Sequence[Rule], bar: Bar, previous: Values | None, current: Values,
                   window: Any = None, last_fired: MutableMapping[str, Any] | None = None,
                   bar_index: int | None = None) -> tuple[list[Alert], list[RuleError]]:
    """Evaluate every rule of a symbol on one bar.

    Args:
        rules: The symbol's rules (including ``*`` rules).
        bar: The bar being evaluated.
        previous: Values of the symbol's previous bar, None for the first bar ever seen.
        current: Values of ``bar`` (OHLCV, indicators, features, prob_up).
        window: The symbol's OHLCV bars up to and including ``bar`` (last row), as a
            :class:`BarWindow` or a frame like ``WindowState.bars``. Rules that need it
            (``pct_move``, ``support_resistance``, ``candlestick``) do not fire without it;
            cooldowns count bars in it.
        last_fired: ``{rule_id: bar_time}`` of the last firing of each rule with a cooldown;
            updated in place when such a rule fires. None: cooldowns are not applied.
            With ``bar_index`` the values are bar indexes instead (``{rule_id: int}``) and a
            cooldown counts ``bar_index - fired_index`` bars, without needing the window.
        bar_index: 0-based index of ``bar`` in the symbol's series (the streaming path).

    Returns:
        ``(alerts, errors)``: the alerts that fire, and the rules that raised while evaluating
        (reported, not fatal).
    """
    alerts: list[Alert] = []
    errors: list[RuleError] = []
    bar_time = format_time(bar.bar_time)
    try:
        bar_window = _as_window(window)
    except Exception as exc:  # noqa: BLE001 -- a malformed window must not stop the batch
        bar_window = None
        errors.append(RuleError("", bar.symbol, f"window unusable: {exc}"))
    context = Context(previous, current, bar_window)
    for rule in rules:
        try:
            rule_type = RULE_TYPES[rule.type]
            details = rule_type.fires(rule, context)
            if details is None:
                continue
            text = rule_type.describe(rule, details)
            if rule.cooldown_bars and last_fired is not None:
                fired_at = last_fired.get(rule.rule_id)
                if bar_index is not None:
                    if isinstance(fired_at, int) and 0 <= bar_index - fired_at <= \
                            rule.cooldown_bars:
                        continue
                    last_fired[rule.rule_id] = bar_index
                else:
                    if _in_cooldown(rule, fired_at, bar_time, bar_window):
                        continue
                    last_fired[rule.rule_id] = bar_time
        except Exception as exc:  # noqa: BLE001 -- a broken rule must not stop the batch
            errors.append(RuleError(rule.rule_id, bar.symbol, f"evaluation failed: {exc}"))
            continue
        subject, body = _message(rule, bar, bar_time, text, details)
        alerts.append(Alert(alert_id=f"{rule.rule_id}#{bar.symbol}#{bar_time}", rule=rule,
                            bar=bar, subject=subject, body=body, details=details))
    return alerts, errors


def _in_cooldown(rule: Rule, fired_at: str | None, bar_time: str,
                 window: BarWindow | None) -> bool:
    if fired_at is None:
        return False
    fired = _parse_micros(fired_at)
    if fired is None:
        return False
    if window is None or len(window) == 0:
        return fired_at == bar_time
    since = window.bars_since(fired)
    return since is not None and since <= rule.cooldown_bars


def lookback_bars(rules: Sequence[Rule]) -> int:
    """Bars of OHLCV history (the bar itself included) the rules' windows need.

    ``pct_move`` N bars: N + 2 (the cross mode compares with ``C[t-1-N]``);
    ``support_resistance`` L: L + 1; ``candlestick`` m: m + 2; the others need no window
    (they compare the previous bar's values, kept in the state). 0 for no such rule.
    """
    needed = 0
    for rule in rules:
        if rule.type == "pct_move":
            needed = max(needed, rule.param("bars") + 2)
        elif rule.type == "support_resistance":
            needed = max(needed, rule.param("bars") + 1)
        elif rule.type == "candlestick":
            needed = max(needed, rule.param("trend_bars") + 2)
    return needed


def prune_last_fired(last_fired: Mapping[str, str], window: Any) -> dict[str, str]:
    """Entries whose bar is still inside ``window`` (older ones can no longer cool anything
    down: a cooldown is at most ``MAX_LOOKBACK_BARS`` bars, shorter than any window)."""
    bar_window = _as_window(window)
    if bar_window is None or len(bar_window) == 0:
        return {}
    first = int(bar_window.times[0])
    kept = {}
    for rule_id, fired_at in last_fired.items():
        micros = _parse_micros(fired_at)
        if micros is not None and micros >= first:
            kept[str(rule_id)] = str(fired_at)
    return kept
