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

    A bar older than the newest accepted one is a duplicate when the symbol's state holds
    it, else late (``_classify_stale``). A bar of another interval than the symbol's stream
    is rejected (``BatchOutcome.rejected``).
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
        _classify_stale(stale, states, results, outcome)
    for symbol, item in work.items():
        outcome.symbols[symbol].accepted = len(item.accepted)
    return work


def _classify_stale(stale: list[tuple[str, StreamBar]], states: Mapping[str, SymbolState],
                    results: ResultStore, outcome: BatchOutcome) -> None:
    """Bars older than their symbol's newest: duplicate when the state holds them, else late.

    The state holds a bar when its results item is on the chain of ``prev_bar_time`` links
    back from the state's ``last_bar_time`` (``stocksage.processing.results``). A results
    item written by an invocation whose state write failed is off the chain: when the event
    source mapping gave up on that batch and later bars advanced the symbol, its bars are
    reported late (``stocksage repair`` puts them into the series) instead of being taken
    for duplicates and lost. Items from before the chain (no ``prev_bar_time``) count as held,
    as before. One ``ResultStore.chain`` Query per symbol with stale bars; a symbol whose
    chain cannot be read fails (retried).
    """
    by_symbol: dict[str, list[StreamBar]] = {}
    for symbol, stream_bar in stale:
        by_symbol.setdefault(symbol, []).append(stream_bar)
    for symbol, bars in by_symbol.items():
        since = format_time(min(b.bar.bar_time for b in bars))
        chain = results.chain(symbol, since)
        if chain is None:
            outcome.failed[symbol] = "results chain not readable (stale bars not classified)"
            continue
        last = states[symbol].last_bar_time
        held = _held(chain, format_time(last) if last is not None else None, since)
        counts = outcome.symbols[symbol]
        for stream_bar in bars:
            if format_time(stream_bar.bar.bar_time) in held:
                counts.duplicates += 1
            else:
                counts.late += 1
                outcome.late.append(stream_bar)


def _held(chain: Mapping[str, str | None], head: str | None, since: str) -> set[str]:
    """Bar times from ``head`` back to ``since`` along the ``prev_bar_time`` links."""
    held: set[str] = set()
    at = head
    while at is not None and at >= since and at in chain:
        held.add(at)
        prev = chain[at]
        if prev is None:  # an item from before the chain: everything earlier counts as held
            held.update(t for t in chain if t <= at)
            break
        at = prev or None  # FIRST_BAR ("") ends the chain
    return held
