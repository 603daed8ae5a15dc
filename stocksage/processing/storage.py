"""Steps 5 and 7 of ``process_batch``: write the results items (and the fills of pending
predictions), then the symbols' states. A symbol not stored goes to ``BatchOutcome.failed``."""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime

from stocksage.bars import format_time
from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import Ports
from stocksage.processing.results import features_defined, result_item, served_by_model
from stocksage.processing.work import SymbolWork
from stocksage.state import FORMAT

__all__ = ["write_results", "write_states"]


def write_results(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome,
                  now: datetime) -> None:
    """Step 5: results items and filled predictions; symbols not stored -> ``failed``.

    Each item names the bar before it in the symbol's series (``prev_bar_time``): the chain
    that lets step 2 tell a bar the state holds from one an invocation wrote but could not
    commit (its state write failed).

    ``now`` (UTC) becomes every item's ``processed_at`` (ISO, milliseconds). A fill that is
    not written leaves the symbol's earlier items pending (retried by a later batch); it does
    not fail the symbol.
    """
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    items = []
    for item in work.values():
        last = item.state.last_bar_time  # still the state read: step 7 advances it
        prev = format_time(last) if last is not None else None
        for bar, values, prob, forecast in zip(item.accepted, item.values, item.prob_up,
                                               item.range_forecast, strict=True):
            items.append(result_item(bar, values, prob, outcome.model_version, stamp,
                                     forecast, prev))
            prev = format_time(bar.bar_time)
    if items:
        outcome.failed.update(ports.results.put_results(items))
    outcome.results_written = sum(len(item.accepted) for s, item in work.items()
                                  if s not in outcome.failed)
    fills = [fill for item in work.values() for fill in item.fills]
    if fills:
        not_filled = ports.results.fill_predictions(fills)
        for symbol in not_filled:
            work[symbol].pending_filled = False  # they stay pending
            outcome.symbols[symbol].filled_predictions = 0


def write_states(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 7: conditional state writes of the symbols not failed yet whose state changed."""
    states = []
    for symbol, item in work.items():
        if symbol in outcome.failed:
            continue
        state = item.state
        if item.accepted:
            state.last_bar_time = item.accepted[-1].bar_time
            state.interval = item.accepted[-1].interval
        state.pending_since = _pending_since(item)
        changed = (item.accepted or item.trades_changed
                   or state.pending_since != item.pending_before
                   or len(state.outbox) != item.outbox_before or state.migrated_from != FORMAT)
        if changed:
            states.append(state)
    if states:
        outcome.failed.update(ports.states.put_states(states))


def _pending_since(item: SymbolWork) -> str | None:
    """Oldest bar still waiting for a prediction: the earlier pending bars unless they were
    all filled now, else the first new bar left pending in this batch."""
    if item.still_pending:
        return item.still_pending
    old = None if item.pending_filled else item.pending_before
    new = next((format_time(bar.bar_time) for bar, prob, values in
                zip(item.accepted, item.prob_up, item.values, strict=True)
                if prob is None and features_defined(values) and served_by_model(bar)), None)
    return old or new
