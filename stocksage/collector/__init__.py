"""Collector: pushes trades and OHLCV bars into the Kinesis stream (partition key = symbol).

* :mod:`stocksage.collector.sources` - the ``Source`` protocol and ``ReplaySource`` (bundled real
  data, interleaved by bar time, optional time compression).
* :mod:`stocksage.collector.trade_replay` - trades files and the bundled E-mini S&P 500 ticks
  (``load_trades``, ``TradeReplay``: paced in event time), packed by
  :mod:`stocksage.collector.trade_packing` (``TradePacker``: records of one symbol cut by count
  and event-time window, watermark heartbeats).
* :mod:`stocksage.collector.sink.kinesis_sink` - ``KinesisSink``: buffered PutRecords, per-key
  order kept under partial failures, bounded retries with backoff and jitter, a flush timer
  (no record waits more than ``max_delay_s`` in the buffer).
* :mod:`stocksage.collector.run` - ``collect``: source -> sink until done or stopped, spill.
* :mod:`stocksage.collector.process_control` - structured logs, stop signals with a flush deadline,
  the Kinesis client.
* :mod:`stocksage.collector.app` - the typer CLI (``python -m stocksage.collector replay``,
  ``replay-trades``, ``live``, ``health``), progress display.

Only the sink is imported eagerly; ``sources`` needs ``stocksage.datasets`` / ``stocksage.bars``.
"""

from stocksage.collector.sink.kinesis_sink import (
    KinesisPutError,
    KinesisSink,
    ProgressCallback,
    SinkStats,
)

__all__ = ["KinesisPutError", "KinesisSink", "ProgressCallback", "SinkStats"]
