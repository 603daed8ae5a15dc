"""Live websocket providers of the collector: one adapter per market-data provider.

* :mod:`stocksage.collector.providers.base` - the ``StreamProvider`` hooks, events (``Trade``,
  ``Bar``), errors, ``ReconnectingStream`` (backoff, resubscribe, REST backfill, dedup, the
  synchronous ``iter_events`` wrapper) and exact RFC-3339 nanosecond times;
* :mod:`stocksage.collector.providers.alpaca_stream` - ``AlpacaStream``: Alpaca Market Data
  Stream v2 (stocks: trades and minute bars), and how to wire it into the collector;
* :mod:`stocksage.collector.providers.fake_alpaca` - a local fake of that stream and of its
  REST trades endpoint (tests, credential-free demo); not re-exported here.

A second provider is one more module: a ``ReconnectingStream`` subclass with the six hooks.
"""

from stocksage.collector.providers.alpaca_stream import AlpacaStream
from stocksage.collector.providers.base import (
    Backoff,
    BarEvent,
    ConnectionLostError,
    FatalStreamError,
    ReconnectingStream,
    StreamAuthError,
    StreamEvent,
    StreamProvider,
    StreamStats,
    TradeDedup,
    TradeEvent,
)

__all__ = [
    "AlpacaStream",
    "Backoff",
    "BarEvent",
    "ConnectionLostError",
    "FatalStreamError",
    "ReconnectingStream",
    "StreamAuthError",
    "StreamEvent",
    "StreamProvider",
    "StreamStats",
    "TradeDedup",
    "TradeEvent",
]
