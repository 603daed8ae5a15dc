"""A symbol's stored state (table ``window-state``), format 2, and the format-1 migration.

- ``symbol_state``: ``SymbolState``, the item (its layout is that module's docstring).
- ``migration``: reading a format-1 item into a format-2 ``SymbolState``.
- ``blobs``: the shared encodings (``RecentBars``, times, binaries) and ``StateFormatError``.

Everything public is importable from ``stocksage.state`` itself.
"""

from stocksage.state.blobs import RecentBars, StateFormatError
from stocksage.state.symbol_state import FORMAT, SymbolState, TradePathState

__all__ = ["FORMAT", "RecentBars", "StateFormatError", "SymbolState", "TradePathState"]
