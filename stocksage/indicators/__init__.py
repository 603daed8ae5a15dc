"""Indicators: ``ta`` over a whole series, the model features, and the O(1) incremental core.

The modules, each importing only the ones above it:

- ``definition``: the indicator columns as ``ta`` computes them on a full OHLCV series
  (``compute_indicators``), their windows and warm-up rows (``WARMUP_ROWS``): the reference.
- ``features``: the model's features derived from those columns (``enrich``, ``FEATURES``).
- ``incremental``: ``Kernel``, the per-symbol state that updates every column in O(1) per bar
  and equals ``definition`` on the full series (tests/unit/indicators).

The stored form of a symbol's kernel is ``stocksage.state``.
"""
