"""Alert rules and their evaluation: which bars raise which alerts.

The rule types, their exact definitions and sources, cooldowns, the message format and the
routing are documented in docs/ALERTS.md; the code's docstrings refer to it rather than
repeat it. The modules, each importing only the ones above it:

- ``window``: what a rule reads for one bar (``Context``: values of bars ``t-1`` and ``t``,
  and the OHLCV ``BarWindow``).
- ``params``: the schema of a rule type (``Param``, ``RuleType``) and ``RuleError``.
- ``conditions``: the firing condition of each rule type, pure functions.
- ``rules``: the catalogue ``RULE_TYPES`` and a stored ``Rule`` (its JSON document).
- ``messages``: an ``Alert`` and its SNS subject, e-mail body, SMS line and payload.
- ``evaluate``: ``evaluate_rules`` on one bar with cooldowns, ``lookback_bars``.

Everything public is importable from ``stocksage.alerts`` itself.
"""

from stocksage.alerts.conditions import (
    CANDLESTICK_PATTERNS,
    DOJI_MAX_BODY_RATIO,
    HAMMER_MAX_UPPER_RATIO,
    HAMMER_MIN_LOWER_TO_BODY,
    RSI,
    swing_levels,
)
from stocksage.alerts.firing import (
    COOLDOWN_STATE_KEY,
    evaluate_rules,
    lookback_bars,
    prune_last_fired,
)
from stocksage.alerts.messages import Alert
from stocksage.alerts.params import (
    DIRECTIONS,
    MAX_LOOKBACK_BARS,
    MODES,
    Param,
    RuleError,
    RuleType,
)
from stocksage.alerts.rules import RULE_TYPES, SEVERITIES, Rule
from stocksage.alerts.window import BarWindow, Context, RowValues, Values

__all__ = [
    "CANDLESTICK_PATTERNS",
    "COOLDOWN_STATE_KEY",
    "DIRECTIONS",
    "DOJI_MAX_BODY_RATIO",
    "HAMMER_MAX_UPPER_RATIO",
    "HAMMER_MIN_LOWER_TO_BODY",
    "MAX_LOOKBACK_BARS",
    "MODES",
    "RSI",
    "RULE_TYPES",
    "SEVERITIES",
    "Alert",
    "BarWindow",
    "Context",
    "Param",
    "RowValues",
    "Rule",
    "RuleError",
    "RuleType",
    "Values",
    "evaluate_rules",
    "lookback_bars",
    "prune_last_fired",
    "swing_levels",
]
