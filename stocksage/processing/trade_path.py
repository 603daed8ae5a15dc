"""Step 1b of ``process_batch``: trades and watermark records -> closed bars and intrabar alerts.

Per symbol, in stream order (ascending sequence number):

1. A record whose (shard id, sequence number) the symbol's state already applied
   (``TradePathState.applied``) is skipped (``duplicate_records``): a Kinesis redelivery, a
   bisected retry or an overlapping replay counts once, whatever the batching.
2. A trades record is folded into the symbol's ``BarBuilder`` (kept in the state item): late
   trades (after the grace) and repeated trade ids are counted, not folded.
3. **Intrabar price levels.** Each ``price_above``/``price_below`` rule is tested on every
   accepted trade against the trade before it (the crossing test ``prev <= level < price``,
   vectorised over the record); a crossing raises the rule's alert for the bar that holds the
   trade, at most once per (rule, bar): the alert id (``rule#symbol#bar_time``) is kept in
   ``TradePathState.intrabar_fired`` until the bar closes, and the close evaluation (step 6)
   skips an id that fired intrabar. The alert's ``details`` say ``phase: "intrabar"`` and give
   ``trade_price`` and ``trade_time_ns``; its ``bar`` is the forming bar as of the batch's
   run of trades records that held the crossing trade (consecutive trades records of a symbol
   are folded in one call). Cooldowns count bars as at close.
4. The watermark (the latest trade time, or a heartbeat's time) closes every bar whose end
   plus the grace it reached; the closed bars join the symbol's bars of the batch, each with
   the sequence number of the record that closed it, and take the bar path from step 2 on
   (indicators, prediction, results, close rules, state).

The bars are built at the symbol's stream interval (``SymbolState.interval``; a new symbol
takes ``interval``, default the first of ``stack.json`` ``bar_building.intervals``).

Atomicity: the builder, ``applied``, the last trade price and the intrabar ids live in the
symbol's state item and are written by step 7 in the same conditional write as the kernel.
When the symbol's results or state are not written, nothing of the trade path is either, the
records are retried, and the same bars and alert ids come out again (publishing is
idempotent per alert id).
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from datetime import UTC, datetime

import numpy as np

from stocksage.alerts import Rule, evaluate_rules
from stocksage.alerts.messages import alert_id
from stocksage.bars import Bar, format_time
from stocksage.bars.aggregation import DEFAULT_GRACE_NS, DEFAULT_INTERVALS, BarBuilder
from stocksage.bars.trade_parsing import TradeColumns
from stocksage.processing.outcome import BatchOutcome, SymbolOutcome
from stocksage.processing.ports import Ports, StreamBar, StreamTrades
from stocksage.state import SymbolState, TradePathState

__all__ = ["PRICE_LEVEL_TYPES", "build_bars", "group_trades", "iso_ns"]

PRICE_LEVEL_TYPES = frozenset({"price_above", "price_below"})
"""Rule types evaluated on every trade (intrabar) as well as at the bar's close."""


def iso_ns(time_ns: int) -> str:
    """``YYYY-MM-DDTHH:MM:SS.fffffffffZ`` of epoch nanoseconds (exact, no float)."""
    seconds, nanos = divmod(int(time_ns), 1_000_000_000)
    return datetime.fromtimestamp(seconds, UTC).strftime("%Y-%m-%dT%H:%M:%S") + f".{nanos:09d}Z"


def group_trades(records: Iterable[StreamTrades]) -> dict[str, list[StreamTrades]]:
    """Records by symbol, each group in stream order (sequence numbers compared as integers)."""
    groups: dict[str, list[StreamTrades]] = defaultdict(list)
    for record in records:
        groups[record.symbol].append(record)
    for items in groups.values():
        items.sort(key=lambda r: int(r.sequence_number))
    return dict(groups)


def build_bars(groups: Mapping[str, list[StreamTrades]], states: Mapping[str, SymbolState],
               ports: Ports, outcome: BatchOutcome, *, interval: str = DEFAULT_INTERVALS[0],
               grace_ns: int = DEFAULT_GRACE_NS,
               forming: dict[str, Bar] | None = None) -> dict[str, list[StreamBar]]:
    """Step 1b (module docstring): fold each symbol's records into its builder.

    Args:
        groups: ``group_trades`` of the batch's trades and watermark records.
        states: The symbols' states (step 1); symbols absent here failed to load and are
            left alone (their records are retried).
        ports: For the rules (one ``RuleSource.rules_for`` call for the symbols that have
            trades; its errors are reported by step 6, which reads the same rules).
        outcome: Counts per symbol; a symbol whose stored builder cannot be read goes to
            ``failed``.
        interval: Interval of the bars of a symbol that has none yet.
        grace_ns: How long after its end (event time) a bar waits for trades.
        forming: When given, filled with each symbol's newest open bar (the forming bar
            that step 6 evaluates the indicator rules on).

    Returns:
        ``{symbol: closed bars as StreamBar}``, oldest first; a symbol whose trade path
        changed is in it (possibly with no bar).
    """
    symbols = [s for s in groups if s in states]
    if not symbols:
        return {}
    rules, _errors = ports.rules.rules_for(symbols)
    built: dict[str, list[StreamBar]] = {}
    for symbol in symbols:
        state = states[symbol]
        counts = outcome.symbols.setdefault(symbol, SymbolOutcome())
        path = state.trades or TradePathState()
        bar_interval = state.interval or interval
        try:
            builder = (BarBuilder.from_state(symbol, path.builder, (bar_interval,), grace_ns)
                       if path.builder else BarBuilder(symbol, (bar_interval,), grace_ns))
        except (ValueError, KeyError, TypeError) as err:
            outcome.failed[symbol] = f"bar builder state unusable: {err}"
            continue
        level_rules = [r for r in rules.get(symbol, []) if r.type in PRICE_LEVEL_TYPES]
        bars = _apply(groups[symbol], builder, path, state, level_rules, counts, bar_interval)
        path.builder = builder.to_state()
        state.trades = path
        built[symbol] = bars
        newest = builder.forming().get(bar_interval)
        if forming is not None and newest is not None:
            forming[symbol] = newest
    return built


def _apply(records: Sequence[StreamTrades], builder: BarBuilder, path: TradePathState,
           state: SymbolState, level_rules: Sequence[Rule], counts: SymbolOutcome,
           interval: str) -> list[StreamBar]:
    """Fold the records in order. Consecutive trades records are folded in one
    ``BarBuilder.add`` call (the late, duplicate and crossing tests run over arrival order
    inside the call, so the bars are the same as record by record; the batching tests check
    it); a watermark record ends such a run."""
    bars: list[StreamBar] = []
    fired = set(path.intrabar_fired)
    run: list[StreamTrades] = []

    def fold_run() -> None:
        if not run:
            return
        columns = run[0].trades if len(run) == 1 else TradeColumns.concat(
            [record.trades for record in run])
        added = builder.add(columns)
        counts.trades_accepted += added.accepted
        counts.late_trades += len(added.late)
        counts.duplicate_trades += added.duplicates
        if added.kept:
            prices = columns.prices[added.kept]
            times = columns.times_ns[added.kept]
            if level_rules:
                _intrabar(level_rules, builder, path, state, prices, times, fired, counts,
                          interval, state.bars_seen + len(bars))
            path.last_price = float(prices[-1])
        bars.extend(StreamBar(bar, run[-1].sequence_number) for bar in builder.advance())
        run.clear()

    for record in records:
        if path.already_applied(record.shard_id, record.sequence_number):
            counts.duplicate_records += 1
            continue
        path.mark_applied(record.shard_id, record.sequence_number)
        if record.watermark_ns is None:
            if len(record.trades):
                run.append(record)
            continue
        fold_run()
        bars.extend(StreamBar(bar, record.sequence_number)
                    for bar in builder.advance(record.watermark_ns))
    fold_run()
    counts.bars_built += len(bars)
    path.intrabar_fired = sorted(fired)
    return bars


def _intrabar(rules: Sequence[Rule], builder: BarBuilder, path: TradePathState,
              state: SymbolState, prices: np.ndarray, times: np.ndarray, fired: set[str],
              counts: SymbolOutcome, interval: str, bar_index: int) -> None:
    """Price-level rules on each trade of one record (module docstring, point 3)."""
    before = np.empty_like(prices)
    before[0] = np.nan if path.last_price is None else path.last_price
    before[1:] = prices[:-1]
    for rule in rules:
        level = float(rule.param("level"))
        if rule.type == "price_above":
            hits = np.flatnonzero((before <= level) & (level < prices))
        else:
            hits = np.flatnonzero((before >= level) & (level > prices))
        for k in hits.tolist():
            bar = builder.open_bar(interval, int(times[k]))
            if bar is None:
                continue
            key = alert_id(rule.rule_id, state.symbol, format_time(bar.bar_time))
            if key in fired:
                continue
            alerts, _errors = evaluate_rules([rule], bar, {"close": float(before[k])},
                                             {"close": float(prices[k])}, None,
                                             state.last_fired, bar_index=bar_index)
            for alert in alerts:
                alert.details.update(phase="intrabar", trade_price=float(prices[k]),
                                     trade_time_ns=int(times[k]),
                                     trade_time=iso_ns(int(times[k])))
                state.outbox.append(alert.message())
                counts.intrabar_alerts += 1
            fired.add(key)  # at most once per (rule, bar), also when a cooldown held it
