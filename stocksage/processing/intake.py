"""Steps 1 and 2 of ``process_batch``: read the symbols' states, then sort each symbol's bars
into accepted, duplicate, late and rejected."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime

from stocksage.bars import format_time
from stocksage.processing.outcome import BatchOutcome, SymbolOutcome
from stocksage.processing.ports import ResultStore, StateStore, StreamBar
from stocksage.processing.work import SymbolWork
from stocksage.state import SymbolState

__all__ = ["classify", "load_states"]


def load_states(store: StateStore, symbols: Sequence[str],
                outcome: BatchOutcome) -> dict[str, SymbolState]:
    """Step 1: the state of each symbol (a fresh one for a new symbol); unreadable -> failed."""
    stored, failed = store.get_states(symbols)
    outcome.failed.update(failed)
    return {s: stored.get(s) or SymbolState(symbol=s) for s in symbols if s not in failed}


def classify(groups: Mapping[str, list[StreamBar]], states: Mapping[str, SymbolState],
             results: ResultStore, outcome: BatchOutcome) -> dict[str, SymbolWork]:
    """Step 2: split each symbol's bars (arrival order) into accepted / duplicate / late /
    rejected. Bars are accepted only when strictly newer than every bar accepted before.

    A bar older than the newest accepted one is a duplicate when its results item exists
    (one ``ResultStore.existing`` call for all such bars of the batch), else late. A bar of
    another interval than the symbol's stream is rejected (``BatchOutcome.rejected``).
    """
    work: dict[str, SymbolWork] = {}
    stale: list[tuple[str, StreamBar]] = []
    for symbol, state in states.items():
        counts = outcome.symbols.setdefault(symbol, SymbolOutcome())
        item = work[symbol] = SymbolWork(state=state, outbox_before=len(state.outbox),
                                         pending_before=state.pending_since)
        latest = state.last_bar_time
        interval = state.interval
        seen: set[datetime] = set()
        for stream_bar in groups.get(symbol, []):
            bar = stream_bar.bar
            if interval and bar.interval != interval:
                reason = (f"interval {bar.interval} differs from the interval of {symbol}'s "
                          f"stream ({interval})")
                outcome.rejected.append((stream_bar, reason))
                counts.rejected += 1
            elif bar.bar_time in seen or bar.bar_time == latest:
                counts.duplicates += 1
            elif latest is not None and bar.bar_time < latest:
                stale.append((symbol, stream_bar))
            else:
                item.accepted.append(bar)
                latest, interval = bar.bar_time, bar.interval
            seen.add(bar.bar_time)
    if stale:
        keys = [(s, format_time(b.bar.bar_time)) for s, b in stale]
        existing = results.existing(sorted(set(keys)))
        for key, (symbol, stream_bar) in zip(keys, stale, strict=True):
            if key in existing:
                outcome.symbols[symbol].duplicates += 1
            else:
                outcome.symbols[symbol].late += 1
                outcome.late.append(stream_bar)
    for symbol, item in work.items():
        outcome.symbols[symbol].accepted = len(item.accepted)
    return work
