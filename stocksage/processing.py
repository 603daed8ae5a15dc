"""The processor's domain logic: one Kinesis batch of bars in, results, alerts and state out.

This module is plain Python: it never imports boto3. It talks to AWS only through the small
ports below, which ``stocksage.adapters`` implements with boto3 and the tests implement in
memory. The processor Lambda (``lambdas/processor.py``) wires the two together.

Per batch, in this order (each step is one call per batch, not per record):

1. ``StateStore.get_states`` -- one BatchGetItem for the window state of every symbol.
2. ``stocksage.indicators.advance`` per symbol -- accepted, duplicate and late bars; indicators
   and features of the accepted bars, computed with ``ta`` over window + new bars.
3. ``Predictor.predict`` -- one InvokeEndpoint for every accepted bar whose features are finite.
4. ``ResultStore.put_results`` -- BatchWriteItem of one item per accepted bar, keyed by
   (symbol, bar_time): a redelivered batch overwrites the same items.
5. ``stocksage.alerts.evaluate_rules`` per accepted bar (previous/current values and the OHLCV
   window up to that bar; per-rule cooldowns from the state) and ``AlertPublisher.publish`` --
   one SNS message per (rule, symbol, bar), idempotent.
6. ``StateStore.put_states`` -- the new window state, written last: if anything above fails the
   state is not advanced, the records are retried and every step repeats idempotently.

Duplicate bars (a bar_time already processed for the symbol, e.g. after Kinesis redelivery or a
producer retry) and late bars (older than the newest processed bar) are dropped and counted; they
change nothing. Their raw records still reach the S3 history through Firehose.
"""

from __future__ import annotations

import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import pandas as pd

from stocksage.alerts import (
    COOLDOWN_STATE_KEY,
    Alert,
    BarWindow,
    Rule,
    RuleError,
    evaluate_rules,
    prune_last_fired,
)
from stocksage.bars import Bar, bars_to_frame
from stocksage.config import STACK
from stocksage.indicators import WindowState, advance


@dataclass(frozen=True)
class StreamBar:
    """A decoded bar with its position in the stream.

    Attributes:
        bar: The validated bar.
        sequence_number: Kinesis sequence number of the record (decimal string, per shard).
    """

    bar: Bar
    sequence_number: str


@dataclass(frozen=True)
class Prediction:
    """Endpoint output for a list of feature rows.

    Attributes:
        probabilities: P(next bar closes higher), one per input row, each in [0, 1].
        model_version: Version label of the model that served the request.
    """

    probabilities: list[float]
    model_version: str


class StateStore(Protocol):
    """Window state per symbol (DynamoDB table ``window-state``)."""

    def get_states(self, symbols: Sequence[str]) -> dict[str, tuple[WindowState, dict[str, Any]]]:
        """Return ``{symbol: (state, last_values)}`` for the symbols that have state."""

    def put_states(self, states: Sequence[tuple[WindowState, dict[str, Any]]]) -> None:
        """Write the states (with the last bar's indicator values); raise on failure."""


class ResultStore(Protocol):
    """Per-bar results (DynamoDB table ``results``)."""

    def put_results(self, items: Sequence[dict[str, Any]]) -> None:
        """Write items keyed by (symbol, bar_time); overwrite; raise when not all were written."""


class Predictor(Protocol):
    """The SageMaker endpoint."""

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]) -> Prediction:
        """Return one probability per row; raise on endpoint or payload errors."""


class RuleSource(Protocol):
    """Alert rules per symbol (DynamoDB table ``alert-rules``)."""

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Return the rules of each symbol (and of ``*``) and the rules that could not be read."""


class AlertPublisher(Protocol):
    """SNS alerts topic, idempotent per alert id."""

    def publish(self, alert: Alert) -> bool:
        """Publish once per ``alert.alert_id``; return False when it was already published."""


@dataclass
class Ports:
    """The AWS-facing dependencies of :func:`process_batch`."""

    states: StateStore
    results: ResultStore
    predictor: Predictor
    rules: RuleSource
    alerts: AlertPublisher


@dataclass
class SymbolOutcome:
    """What happened to one symbol's bars in a batch (counts of bars)."""

    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    predicted: int = 0
    alerts_published: int = 0
    alerts_suppressed: int = 0


@dataclass
class BatchOutcome:
    """Result of :func:`process_batch`.

    Attributes:
        symbols: Per-symbol counts.
        results_written: Result items written (one per accepted bar).
        model_version: Model version that served the predictions ("" if none were needed).
        rule_errors: Broken rules, reported and skipped (never fatal to the batch).
    """

    symbols: dict[str, SymbolOutcome] = field(default_factory=dict)
    results_written: int = 0
    model_version: str = ""
    rule_errors: list[RuleError] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of one ``SymbolOutcome`` counter over all symbols."""
        return sum(getattr(outcome, name) for outcome in self.symbols.values())


def group_by_symbol(bars: Iterable[StreamBar]) -> dict[str, list[StreamBar]]:
    """Group bars by symbol, each group in stream order (ascending sequence number).

    Sequence numbers are compared as integers: they are decimal strings of different lengths.
    A batch comes from one shard, where sequence numbers are ordered.
    """
    groups: dict[str, list[StreamBar]] = defaultdict(list)
    for item in bars:
        groups[item.bar.symbol].append(item)
    for items in groups.values():
        items.sort(key=lambda item: int(item.sequence_number))
    return dict(groups)


def _finite_row(row: Mapping[str, Any], names: Sequence[str]) -> list[float] | None:
    values = [row.get(name) for name in names]
    if any(v is None or not math.isfinite(float(v)) for v in values):
        return None
    return [float(v) for v in values]


def _row_values(frame: pd.DataFrame) -> list[dict[str, float | None]]:
    """Indicator and feature values of each row as plain floats (NaN -> None), in row order."""
    names = (*STACK.indicator_columns, *STACK.features)
    matrix = frame.reindex(columns=list(names)).to_numpy(dtype=float)
    return [{name: (None if math.isnan(v) else float(v)) for name, v in zip(names, row, strict=True)}
            for row in matrix]


def result_item(bar: Bar, values: Mapping[str, float | None], prob_up: float | None,
                model_version: str, processed_at: datetime) -> dict[str, Any]:
    """One results-table item: keys, OHLCV, indicators, features, prediction.

    Values are plain floats; ``None`` marks a value that does not exist yet (indicator warm-up,
    no prediction) and is left out of the stored item.
    """
    item: dict[str, Any] = {
        STACK.keys["results"]["partition"]: bar.symbol,
        STACK.keys["results"]["sort"]: bar.to_dict()["bar_time"],
        "interval": bar.interval,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "processed_at": processed_at.strftime("%Y-%m-%dT%H:%M:%SZ"),
    }
    item.update(values)
    if prob_up is not None:
        item["prob_up"] = prob_up
        item["model_version"] = model_version
    return item


def process_batch(bars: Sequence[StreamBar], ports: Ports, *, window_bars: int = STACK.window_bars,
                  now: datetime | None = None) -> BatchOutcome:
    """Process one batch of decoded bars (see the module docstring for the steps).

    Args:
        bars: Decoded bars of one Kinesis batch, any symbols, in any order.
        ports: AWS-facing dependencies.
        window_bars: Bars of history kept per symbol.
        now: Processing time stamp for the items (UTC); defaults to the current time.

    Returns:
        The batch outcome (counts per symbol, broken rules).

    Raises:
        Exception: whatever a port raises (state read, endpoint, results or state write, SNS).
            Nothing has been advanced then: the caller reports the records as batch item
            failures and Kinesis redelivers them; every step is idempotent.
    """
    now = now or datetime.now(UTC)
    outcome = BatchOutcome()
    groups = group_by_symbol(bars)
    if not groups:
        return outcome

    symbols = sorted(groups)
    stored = ports.states.get_states(symbols)

    # Step 2: indicators per symbol.
    updates = {}
    before = {}
    for symbol in symbols:
        state, last_values = stored.get(symbol, (None, {}))
        update = advance(state, [item.bar for item in groups[symbol]], window_bars)
        updates[symbol] = (update, last_values)
        before[symbol] = state
        outcome.symbols[symbol] = SymbolOutcome(
            accepted=len(update.accepted), duplicates=len(update.duplicates), late=len(update.late)
        )

    # Step 3: one prediction call for every accepted bar with finite features.
    rows: list[tuple[str, int, list[float]]] = []
    per_bar_values: dict[str, list[dict[str, float | None]]] = {}
    for symbol, (update, _) in updates.items():
        values = _row_values(update.indicators)
        per_bar_values[symbol] = values
        for index, row_values in enumerate(values):
            finite = _finite_row(row_values, STACK.features)
            if finite is not None:
                rows.append((symbol, index, finite))
    probabilities: dict[tuple[str, int], float] = {}
    if rows:
        prediction = ports.predictor.predict(STACK.features, [r[2] for r in rows])
        if len(prediction.probabilities) != len(rows):
            raise ValueError(
                f"endpoint returned {len(prediction.probabilities)} predictions for {len(rows)} rows"
            )
        outcome.model_version = prediction.model_version
        for (symbol, index, _), p in zip(rows, prediction.probabilities, strict=True):
            probabilities[(symbol, index)] = float(p)
            outcome.symbols[symbol].predicted += 1

    # Step 4: results.
    items = []
    for symbol, (update, _) in updates.items():
        for index, bar in enumerate(update.accepted):
            prob = probabilities.get((symbol, index))
            items.append(result_item(bar, per_bar_values[symbol][index], prob,
                                     outcome.model_version, now))
    if items:
        ports.results.put_results(items)
    outcome.results_written = len(items)

    # Step 5: alerts (broken rules are reported, not fatal). Each accepted bar is evaluated
    # with the previous bar's values and the window up to and including it (old state bars +
    # accepted bars, last `window_bars`). Cooldowns read and advance the last firing bar per
    # rule kept in the state's last values: the state is written last, so a retried batch
    # starts from the same map and takes the same decisions.
    rules, rule_errors = ports.rules.rules_for(symbols)
    outcome.rule_errors.extend(rule_errors)
    new_states = []
    for symbol, (update, last_values) in updates.items():
        stored_values = dict(last_values) if last_values else {}
        last_fired = dict(stored_values.pop(COOLDOWN_STATE_KEY, None) or {})
        previous: dict[str, Any] | None = stored_values or None
        symbol_rules = rules.get(symbol, [])
        window = offset = None
        if symbol_rules and update.accepted:
            old_state = before[symbol]
            fresh = bars_to_frame(update.accepted)
            frame = pd.concat([old_state.bars, fresh]) if old_state is not None and len(
                old_state.bars) else fresh
            window, offset = BarWindow.from_frame(frame), len(frame) - len(update.accepted)
        for index, bar in enumerate(update.accepted):
            current = dict(per_bar_values[symbol][index])
            current.update(close=bar.close, open=bar.open, high=bar.high, low=bar.low,
                           volume=bar.volume, prob_up=probabilities.get((symbol, index)))
            if symbol_rules:
                bar_window = window.upto(offset + index + 1, window_bars)
                alerts, errors = evaluate_rules(symbol_rules, bar, previous, current,
                                                bar_window, last_fired)
                outcome.rule_errors.extend(errors)
                for alert in alerts:
                    if ports.alerts.publish(alert):
                        outcome.symbols[symbol].alerts_published += 1
                    else:
                        outcome.symbols[symbol].alerts_suppressed += 1
            previous = current
        if update.accepted:
            values = dict(previous or {})
            kept = prune_last_fired(last_fired, update.state.bars)
            if kept:
                values[COOLDOWN_STATE_KEY] = kept
            new_states.append((update.state, values))

    # Step 6: state last.
    if new_states:
        ports.states.put_states(new_states)
    return outcome
