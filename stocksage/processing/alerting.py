"""Step 6 of ``process_batch``: evaluate the alert rules on every accepted bar, queue the
alerts in the symbol's outbox, then publish the outboxes (``stocksage.processing.outbox``).

Every alert raised here says ``details.phase = "close"``; alerts raised on a trade (step 1b,
``stocksage.processing.trade_path``) say ``"intrabar"``, and a rule that fired intrabar on a
bar does not fire again at its close.

Besides alerts, this step advances the parts of the state the rules read: the ``recent``
bars (as many as the longest rule looks back), ``last_values`` (the last bar's indicators and
prediction) and the cooldowns (``last_fired``).
"""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence

import numpy as np

from stocksage.alerts import (
    MAX_LOOKBACK_BARS,
    BarWindow,
    RowValues,
    Rule,
    Values,
    evaluate_rules,
    lookback_bars,
)
from stocksage.alerts.messages import parse_alert_id
from stocksage.bars import epoch_micros, format_time
from stocksage.indicators.definition import OUTPUT_COLUMNS
from stocksage.processing.outbox import publish_outboxes
from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import Ports
from stocksage.processing.trade_path import PRICE_LEVEL_TYPES
from stocksage.processing.work import SymbolWork

__all__ = ["OUTBOX_LIMIT", "raise_alerts"]

logger = logging.getLogger(__name__)

_COLUMN_INDEX = {name: i for i, name in enumerate(OUTPUT_COLUMNS)}

OUTBOX_LIMIT = 200
"""Alerts kept per symbol while SNS is unavailable (~1 KB each, well under DynamoDB's 400 KB
item limit); beyond it the oldest are dropped and counted (``alerts_dropped``)."""


def raise_alerts(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 6: evaluate rules on each accepted bar, queue alerts in the outbox, publish it.

    Only symbols not failed yet take part (their state will not be written anyway). One
    ``RuleSource.rules_for`` call for all of them; broken rules land in
    ``outcome.rule_errors`` and are skipped.
    """
    symbols = [s for s, item in work.items() if s not in outcome.failed]
    if not symbols:
        return
    rules, rule_errors = ports.rules.rules_for(symbols)
    outcome.rule_errors.extend(rule_errors)
    for symbol in symbols:
        _evaluate(work[symbol], rules.get(symbol, []), outcome)
        _evaluate_forming(work[symbol], rules.get(symbol, []), outcome)
    publish_outboxes([work[s] for s in symbols], ports.alerts, outcome)


def _evaluate(item: SymbolWork, rules: Sequence[Rule], outcome: BatchOutcome) -> None:
    """Rules on each accepted bar, in order; alerts into the outbox; the state's ``recent``
    bars, ``last_values`` and cooldowns advanced; the outbox capped at ``OUTBOX_LIMIT``."""
    state = item.state
    if not item.accepted:
        return
    keep = lookback_bars(rules)
    window = None
    offset = 0
    if keep or state.recent:
        times = np.array([epoch_micros(b.bar_time) for b in item.accepted], dtype=np.int64)
        ohlcv = np.array([(b.open, b.high, b.low, b.close, b.volume) for b in item.accepted])
        combined = state.recent.extended(times, ohlcv, keep + len(item.accepted))
        state.recent = combined.tail(keep)
        if keep:
            window = BarWindow(combined.times, *(combined.ohlcv[:, j] for j in range(5)))
            offset = len(combined) - len(item.accepted)
    if rules:
        _evaluate_bars(item, rules, window, offset, keep, outcome)
    if state.trades is not None and state.trades.intrabar_fired:
        newest = format_time(item.accepted[-1].bar_time)
        state.trades.intrabar_fired = [
            key for key in state.trades.intrabar_fired
            if (parsed := parse_alert_id(key)) is not None and parsed[2] > newest]
    last_prob, last_range = item.prob_up[-1], item.range_forecast[-1]
    state.last_values = np.array([*item.values[-1], np.nan if last_prob is None else last_prob,
                                  np.nan if last_range is None else last_range])
    oldest = state.bars_seen - 1 - MAX_LOOKBACK_BARS
    state.last_fired = {k: v for k, v in state.last_fired.items() if v >= oldest}
    if len(state.outbox) > OUTBOX_LIMIT:
        dropped = len(state.outbox) - OUTBOX_LIMIT
        outcome.symbols[state.symbol].alerts_dropped += dropped
        logger.error("outbox of %s over %d alerts: %d oldest dropped", state.symbol,
                     OUTBOX_LIMIT, dropped)
        state.outbox = state.outbox[dropped:]


def _evaluate_forming(item: SymbolWork, rules: Sequence[Rule], outcome: BatchOutcome) -> None:
    """The rules other than price levels (those run on every trade, step 1b) on the forming
    bar, once per batch, without committing it: its indicators come from a copy of the
    symbol's kernel advanced by the forming bar (so they equal ``ta`` on the closed bars plus
    the forming bar as it stands), the window is the recent bars plus the forming one. A rule
    fires at most once per (rule, bar): the alert id joins ``intrabar_fired`` and the close
    skips it; ``details.phase`` is ``"intrabar"``. The state's kernel, recent bars and last
    values are not changed (cooldowns are, as for any firing)."""
    state, bar = item.state, item.forming
    if bar is None or state.trades is None:
        return
    if state.last_bar_time is not None and bar.bar_time <= state.last_bar_time:
        return
    others = [rule for rule in rules if rule.type not in PRICE_LEVEL_TYPES]
    if not others:
        return
    ohlcv = np.array([[bar.open, bar.high, bar.low, bar.close, bar.volume]])
    values = state.kernel.row(0).step(np.array([0]), ohlcv)[0].tolist()
    current = RowValues(_COLUMN_INDEX, values, {
        "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
        "volume": bar.volume, "prob_up": None, "range_forecast": None})
    keep = lookback_bars(others)
    window = None
    if keep:
        combined = state.recent.extended(np.array([epoch_micros(bar.bar_time)]), ohlcv,
                                         keep + 1)
        window = BarWindow(combined.times, *(combined.ohlcv[:, j] for j in range(5)))
    previous = state.previous_values() if state.bars_seen else None
    alerts, errors = evaluate_rules(others, bar, previous, current, window, state.last_fired,
                                    bar_index=state.bars_seen)
    outcome.rule_errors.extend(errors)
    fired = set(state.trades.intrabar_fired)
    for alert in alerts:
        if alert.alert_id in fired:
            continue
        alert.details["phase"] = "intrabar"
        state.outbox.append(alert.message())
        fired.add(alert.alert_id)
        outcome.symbols[state.symbol].intrabar_alerts += 1
    state.trades.intrabar_fired = sorted(fired)


def _evaluate_bars(item: SymbolWork, rules: Sequence[Rule], window: BarWindow | None,
                   offset: int, keep: int, outcome: BatchOutcome) -> None:
    """``evaluate_rules`` on each accepted bar with the values of the bar before it.

    ``window`` holds the state's recent bars followed by the accepted ones (accepted bar
    ``i`` is row ``offset + i``); each bar sees the last ``keep`` rows up to its own.
    """
    state = item.state
    fired_intrabar = set(state.trades.intrabar_fired) if state.trades is not None else set()
    first_index = state.bars_seen - len(item.accepted)
    previous: Values | None = None
    if first_index:
        previous = state.previous_values(close=item.previous_close)
    for index, bar in enumerate(item.accepted):
        current = RowValues(_COLUMN_INDEX, item.values[index], {
            "open": bar.open, "high": bar.high, "low": bar.low, "close": bar.close,
            "volume": bar.volume, "prob_up": item.prob_up[index],
            "range_forecast": item.range_forecast[index]})
        bar_window = window.upto(offset + index + 1, keep) if window is not None else None
        alerts, errors = evaluate_rules(rules, bar, previous, current, bar_window,
                                        state.last_fired, bar_index=first_index + index)
        outcome.rule_errors.extend(errors)
        for alert in alerts:
            if alert.alert_id in fired_intrabar:
                continue  # fired on a trade of this bar already: once per (rule, bar)
            alert.details["phase"] = "close"
            state.outbox.append(alert.message())
        previous = current
