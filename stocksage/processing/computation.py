"""Step 3 of ``process_batch``: indicators and features of the accepted bars."""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np

from stocksage.bars import OHLCV
from stocksage.indicators.definition import OUTPUT_COLUMNS
from stocksage.indicators.incremental import Kernel
from stocksage.processing.work import SymbolWork

__all__ = ["compute"]


def compute(work: Mapping[str, SymbolWork]) -> None:
    """Step 3: advance every symbol's kernel through its accepted bars, one step per bar
    position (all symbols with a k-th bar in step k); fills ``SymbolWork.values``.

    ``streaming.Kernel`` is O(1) per bar and vectorised across symbols, so a batch costs
    one kernel step per bar position, whatever the number of symbols.
    """
    active = [item for item in work.values() if item.accepted]
    if not active:
        return
    kernel = Kernel.stack([item.state.kernel for item in active])
    counts = np.array([len(item.accepted) for item in active])
    depth = int(counts.max())
    ohlcv = np.full((len(active), depth, len(OHLCV)), np.nan)
    for row, item in enumerate(active):
        ohlcv[row, : len(item.accepted)] = [(b.open, b.high, b.low, b.close, b.volume)
                                            for b in item.accepted]
    outputs = np.empty((len(active), depth, len(OUTPUT_COLUMNS)))
    every = np.arange(len(active))
    for k in range(depth):
        rows = every if k == 0 or counts.min() > k else np.flatnonzero(counts > k)
        outputs[rows, k] = kernel.step(rows, ohlcv[rows, k])
    for row, item in enumerate(active):
        item.previous_close = float(item.state.kernel.closes[0, -1])
        item.state.kernel = kernel.row(row)
        item.values = outputs[row, : len(item.accepted)].tolist()
