"""What a rule reads for one bar: the values of bars ``t-1`` and ``t``, and the OHLCV window.

``Context`` is the whole input of a condition (``stocksage.alerts.conditions``): the previous
and current :data:`Values` (OHLCV, indicators, ``prob_up``, ``range_forecast``) and a
:class:`BarWindow` of the symbol's last bars up to and including ``t``. See docs/ALERTS.md
("Definitions") for what each rule type reads.
"""

from __future__ import annotations

import math
from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stocksage.bars import epoch_micros

Values = Mapping[str, Any]
"""Indicator, feature and OHLCV values of one bar by column name (None when not defined)."""

OHLCV_ARRAYS = ("open", "high", "low", "close", "volume")


class RowValues(Mapping[str, Any]):
    """:data:`Values` of one bar read from a row of numbers on demand, NaN read as None.

    The streaming path has every bar's values as a row of floats (``OUTPUT_COLUMNS`` order)
    and rules read two to four of them; a dict of all ~35 per bar was most of the cost of
    evaluating price rules. ``extra`` (OHLCV, ``prob_up``, ``range_forecast``) is looked up
    first, then the row through ``index`` (``{column: position}``, shared by all rows).

    Raises:
        KeyError: ``values[name]`` for a name in neither ``extra`` nor ``index``.
    """

    __slots__ = ("_extra", "_index", "_row")

    def __init__(self, index: Mapping[str, int], row: Sequence[float],
                 extra: Mapping[str, Any]) -> None:
        self._index, self._row, self._extra = index, row, extra

    def __getitem__(self, name: str) -> Any:
        if name in self._extra:
            return self._extra[name]
        value = self._row[self._index[name]]
        return value if value == value else None  # NaN: not defined yet

    def get(self, name: str, default: Any = None) -> Any:
        """``values[name]``, ``default`` for an unknown name."""
        try:
            return self[name]
        except KeyError:
            return default

    def __iter__(self) -> Iterator[str]:
        yield from self._extra
        yield from (name for name in self._index if name not in self._extra)

    def __len__(self) -> int:
        return len(self._extra) + sum(1 for name in self._index if name not in self._extra)


def finite(value: Any) -> float | None:
    """``value`` as a finite float; None for None, booleans, NaN, infinities and non-numbers."""
    if value is None or isinstance(value, bool):
        return None
    try:
        number = float(value)
    except (TypeError, ValueError):
        return None
    return number if math.isfinite(number) else None


def value_of(values: Values | None, name: str) -> float | None:
    """The finite value of column ``name`` in ``values``; None when absent or not finite."""
    return None if values is None else finite(values.get(name))


@dataclass(frozen=True)
class BarWindow:
    """A symbol's OHLCV bars up to and including the bar being evaluated (the last row).

    Attributes:
        times: Bar times, int64 microseconds since the epoch (UTC), ascending.
        open, high, low, close, volume: float64 arrays of the same length (price units;
            volume in shares).
    """

    times: np.ndarray
    open: np.ndarray
    high: np.ndarray
    low: np.ndarray
    close: np.ndarray
    volume: np.ndarray

    @classmethod
    def from_frame(cls, frame: Any) -> BarWindow:
        """From an OHLCV frame indexed by UTC ``bar_time`` (the shape of
        ``stocksage.bars.bars_to_frame``).

        Raises:
            AttributeError, KeyError: ``frame`` has no datetime index or lacks an OHLCV column.
        """
        times = np.asarray(frame.index.as_unit("us").asi8, dtype=np.int64)
        columns = {name: np.asarray(frame[name], dtype=np.float64) for name in OHLCV_ARRAYS}
        return cls(times=times, **columns)

    def __len__(self) -> int:
        return len(self.close)

    def upto(self, end: int, max_bars: int | None = None) -> BarWindow:
        """Rows ``[end - max_bars, end)`` (views, no copy): the window of row ``end - 1``."""
        start = 0 if max_bars is None else max(0, end - max_bars)
        return BarWindow(*(array[start:end] for array in
                           (self.times, self.open, self.high, self.low, self.close, self.volume)))

    def bars_since(self, micros: int) -> int | None:
        """Bars after time ``micros`` (epoch microseconds) up to the last one; None when
        ``micros`` is before the window's first bar (or the window is empty)."""
        if len(self.times) == 0 or micros < self.times[0]:
            return None
        return int(len(self.times) - np.searchsorted(self.times, micros, side="right"))


def as_window(window: Any) -> BarWindow | None:
    """``window`` as a :class:`BarWindow`: None and windows pass through, a frame is converted
    (:meth:`BarWindow.from_frame`, whose errors it raises)."""
    if window is None or isinstance(window, BarWindow):
        return window
    return BarWindow.from_frame(window)


@dataclass(frozen=True)
class Context:
    """What a rule sees for one bar ``t``.

    Attributes:
        previous: Values of bar ``t-1``; None for the symbol's first bar.
        current: Values of bar ``t``.
        window: OHLCV bars up to and including ``t`` (as many as the rules look back), or None.
    """

    previous: Values | None
    current: Values
    window: BarWindow | None


def parse_micros(text: str) -> int | None:
    """Epoch microseconds of an ISO-8601 time with a zone (``...Z`` or ``+00:00``); None for
    text that is not such a time (naive times included)."""
    try:
        moment = datetime.fromisoformat(str(text))  # 3.11+ reads a trailing "Z"
    except ValueError:
        return None
    return None if moment.tzinfo is None else epoch_micros(moment)


def iso_seconds(micros: Any) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ`` (UTC, whole seconds) of epoch microseconds."""
    moment = datetime.fromtimestamp(int(micros) / 1_000_000, tz=UTC)
    return moment.strftime("%Y-%m-%dT%H:%M:%SZ")
