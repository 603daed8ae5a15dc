"""Evaluation: which alerts a symbol's rules raise on one bar, with cooldowns, and how many
bars of history the rules need.

The processor (``stocksage.processing``, step 6) calls :func:`evaluate_rules` on every accepted
bar in order, with the window of the last :func:`lookback_bars` bars and the cooldown map kept
in the symbol's state (:data:`COOLDOWN_STATE_KEY`). docs/ALERTS.md ("Exactly once, and
cooldowns") explains why a retried or re-split batch gives the same alerts.
"""

from __future__ import annotations

from collections.abc import Mapping, MutableMapping, Sequence
from typing import Any

from stocksage.alerts.messages import Alert, make_alert
from stocksage.alerts.params import RuleError
from stocksage.alerts.rules import Rule
from stocksage.alerts.window import BarWindow, Context, Values, as_window, parse_micros
from stocksage.bars import Bar, format_time

COOLDOWN_STATE_KEY = "alerts_last_fired"
"""Attribute of the ``window-state`` item holding ``{rule_id: bar index}``, the last firing
bar per rule with a cooldown (``stocksage.state``)."""


def evaluate_rules(rules: Sequence[Rule], bar: Bar, previous: Values | None, current: Values,
                   window: Any = None, last_fired: MutableMapping[str, Any] | None = None,
                   bar_index: int | None = None) -> tuple[list[Alert], list[RuleError]]:
    """Evaluate every rule of a symbol on one bar.

    Args:
        rules: The symbol's rules (including ``*`` rules).
        bar: The bar being evaluated.
        previous: Values of the symbol's previous bar, None for the first bar ever seen.
        current: Values of ``bar`` (OHLCV, indicators, features, prob_up, range_forecast).
        window: The symbol's OHLCV bars up to and including ``bar`` (last row), as a
            :class:`BarWindow` or a frame like ``stocksage.bars.bars_to_frame`` gives. Rules
            that need it (``pct_move``, ``support_resistance``, ``candlestick``) do not fire
            without it; cooldowns without ``bar_index`` count bars in it.
        last_fired: ``{rule_id: bar_time}`` of the last firing of each rule with a cooldown;
            updated in place when such a rule fires. None: cooldowns are not applied.
            With ``bar_index`` the values are bar indexes instead (``{rule_id: int}``) and a
            cooldown counts ``bar_index - fired_index`` bars, without needing the window.
        bar_index: 0-based index of ``bar`` in the symbol's series (the streaming path).

    Returns:
        ``(alerts, errors)``: the alerts that fire, in the order of ``rules``, and a
        :class:`RuleError` for each rule that raised while evaluating and for an unusable
        ``window`` (reported, never raised: one broken rule does not stop the others).
    """
    alerts: list[Alert] = []
    errors: list[RuleError] = []
    bar_time = format_time(bar.bar_time)
    try:
        bar_window = as_window(window)
    except Exception as exc:  # noqa: BLE001 -- a malformed window must not stop the batch
        bar_window = None
        errors.append(RuleError("", bar.symbol, f"window unusable: {exc}"))
    context = Context(previous, current, bar_window)
    for rule in rules:
        try:
            rule_type = rule.rule_type
            details = rule_type.fires(rule.resolved_params, context)
            if details is None:
                continue
            text = rule_type.describe(details)
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
        alerts.append(make_alert(rule, bar, bar_time, text, details))
    return alerts, errors


def _in_cooldown(rule: Rule, fired_at: str | None, bar_time: str,
                 window: BarWindow | None) -> bool:
    """Whether a firing at ``bar_time`` falls within ``rule.cooldown_bars`` bars after the
    last one (``fired_at``, ISO time), counting bars in ``window``; without a window only the
    same bar counts."""
    if fired_at is None:
        return False
    fired = parse_micros(fired_at)
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
    (they compare the previous bar's values, kept in the state). 0 for no such rule; at most
    ``MAX_LOOKBACK_BARS + 2``.
    """
    return max((rule.window_bars() for rule in rules), default=0)


def prune_last_fired(last_fired: Mapping[str, str], window: Any) -> dict[str, str]:
    """Entries of a ``{rule_id: bar_time}`` map whose bar is still inside ``window`` (older
    ones can no longer cool anything down: a cooldown is at most ``MAX_LOOKBACK_BARS`` bars).
    Entries whose time cannot be read are dropped; {} for an empty or missing window."""
    bar_window = as_window(window)
    if bar_window is None or len(bar_window) == 0:
        return {}
    first = int(bar_window.times[0])
    kept = {}
    for rule_id, fired_at in last_fired.items():
        micros = parse_micros(fired_at)
        if micros is not None and micros >= first:
            kept[str(rule_id)] = str(fired_at)
    return kept
