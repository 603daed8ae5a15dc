"""Trading sessions from the ``exchange_calendars`` library: which daily bar a trade belongs to.

A daily bar built from trades covers one *session* of the symbol's exchange calendar (regular
hours, holidays and early closes as the library knows them: NYSE ``XNYS`` for US equities,
CME ``CMES`` for the equity-index futures, ``24/7`` for crypto), never a hand-written holiday
list. Its ``bar_time`` is the session date at 00:00 UTC, the convention of the daily bars the
datasets ship. A trade outside every session (pre- or post-market of an equity, a futures
maintenance break) belongs to no daily bar; intraday bars still count it.

Which calendar a symbol uses is ``stack.json`` ``sessions`` (``default_calendar`` and
``symbol_calendars``): one source of truth for the processor and the tests.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stocksage.config import STACK

__all__ = ["SessionTable", "calendar_for", "session_table", "years_of"]

_NS_PER_DAY = 86_400 * 1_000_000_000


def calendar_for(symbol: str) -> str:
    """The exchange calendar name of ``symbol`` (``stack.json`` ``sessions``): its own entry,
    else that of its root without trailing digits (``ES2``, a numbered replay of ``ES`` such
    as ``make demo``'s fresh symbols, trades on CME's calendar), else the default."""
    sessions = STACK.sessions
    calendars = sessions["symbol_calendars"]
    root = symbol.rstrip("0123456789")
    return str(calendars.get(symbol) or calendars.get(root) or sessions["default_calendar"])


@dataclass(frozen=True)
class SessionTable:
    """Sessions of one calendar over a span of years, as int64 epoch-nanosecond arrays.

    Attributes:
        calendar: The ``exchange_calendars`` name, e.g. ``"XNYS"``.
        labels_ns: (n,) session dates at 00:00 UTC (the daily bar's ``bar_time``).
        opens_ns: (n,) session opens (UTC).
        closes_ns: (n,) session closes (UTC), ``opens_ns < closes_ns``, increasing.
    """

    calendar: str
    labels_ns: np.ndarray
    opens_ns: np.ndarray
    closes_ns: np.ndarray

    def locate(self, times_ns: np.ndarray) -> np.ndarray:
        """Index of the session each time falls in (open <= t < close), -1 outside all.

        Args:
            times_ns: int64 (m,) epoch nanoseconds within the table's years.
        """
        index = np.searchsorted(self.opens_ns, times_ns, side="right") - 1
        inside = (index >= 0) & (times_ns < self.closes_ns[np.maximum(index, 0)])
        return np.where(inside, index, -1)


@functools.lru_cache(maxsize=32)
def session_table(calendar: str, first_year: int, last_year: int) -> SessionTable:
    """Sessions of ``calendar`` from Jan 1 of ``first_year`` to Dec 31 of ``last_year``
    (clipped to the range the library supports), cached.

    Raises:
        exchange_calendars.errors.InvalidCalendarName: unknown calendar name.
    """
    import exchange_calendars as xc

    cal = xc.get_calendar(calendar, start=f"{max(first_year, 1990)}-01-01",
                          end=f"{last_year}-12-31")
    labels = cal.sessions.tz_localize("UTC").as_unit("ns").asi8
    opens = pd.DatetimeIndex(cal.opens).tz_convert("UTC").as_unit("ns").asi8
    closes = pd.DatetimeIndex(cal.closes).tz_convert("UTC").as_unit("ns").asi8
    return SessionTable(calendar, labels.astype(np.int64), opens.astype(np.int64),
                        closes.astype(np.int64))


def years_of(times_ns: np.ndarray) -> tuple[int, int]:
    """(first, last) calendar year spanned by ``times_ns`` with a day of margin each side."""
    low = pd.Timestamp(int(times_ns.min()) - _NS_PER_DAY, unit="ns").year
    high = pd.Timestamp(int(times_ns.max()) + _NS_PER_DAY, unit="ns").year
    return low, high
