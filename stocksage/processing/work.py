"""The per-symbol working set of one batch, which the steps of ``process_batch`` fill in turn."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable
from dataclasses import dataclass, field

from stocksage.bars import Bar
from stocksage.processing.ports import PredictionFill, StreamBar
from stocksage.state import SymbolState

__all__ = ["SymbolWork", "group_by_symbol"]


@dataclass
class SymbolWork:
    """One symbol's share of the batch, filled in step by step.

    Attributes:
        state: The symbol's state, advanced in place (kernel, outbox, cooldowns, times).
        accepted: Bars to process, oldest first (step 2).
        values: ``OUTPUT_COLUMNS`` values per accepted bar (step 3; NaN = not defined yet).
        prob_up: P(up) per accepted bar, None while pending (step 4).
        range_forecast: Next-bar ``ln(high/low)`` per accepted bar, or None (step 4).
        fills: Predictions for results items left pending by earlier batches (step 4).
        pending_read: The stored pending items were read (step 4).
        pending_filled: ... and every one of them got a prediction stored (steps 4-5).
        still_pending: More pending items than one batch fills: the bar time to resume at.
        outbox_before: Outbox length when the state was read (to tell whether it changed).
        pending_before: ``state.pending_since`` when the state was read.
        previous_close: The symbol's last close before the batch (step 3).
        trades_changed: The trade path changed the state (step 1b): write it.
        forming: The symbol's forming bar built from trades (step 1b), evaluated by the
            indicator rules intrabar in step 6; None without trades.
    """

    state: SymbolState
    accepted: list[Bar] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)
    prob_up: list[float | None] = field(default_factory=list)
    range_forecast: list[float | None] = field(default_factory=list)
    fills: list[PredictionFill] = field(default_factory=list)
    pending_read: bool = False
    pending_filled: bool = False
    still_pending: str | None = None
    outbox_before: int = 0
    pending_before: str | None = None
    previous_close: float = float("nan")
    trades_changed: bool = False
    forming: Bar | None = None


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
