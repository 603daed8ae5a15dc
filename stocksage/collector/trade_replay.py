"""Replay of real trades: a trades file (or the bundled E-mini S&P 500 ticks) -> packed
Kinesis records (:mod:`stocksage.collector.trade_packing`), paced in event time.

Input files
-----------
CSV (``.csv``, ``.csv.gz``, ...) or Parquet (``.parquet``, ``.pq``; needs ``pyarrow``), one
trade per row, a header naming the columns (case-insensitive; extra columns are ignored):

=============  ==========================================  ===================================
column         aliases                                     values
=============  ==========================================  ===================================
``time``       ``datetime``, ``timestamp``                 ISO 8601 with an offset
                                                           (``2013-09-01T17:00:00.083-05:00``,
                                                           ``...Z``), or naive ISO 8601 in the
                                                           exchange's local time (needs a
                                                           zone), or integer epoch
                                                           **nanoseconds** (UTC); Parquet may
                                                           also hold a timestamp column
``price``                                                  > 0, <= ``MAX_PRICE``
``size``       ``volume``, ``quantity``, ``qty``           0 .. ``MAX_VOLUME`` (units traded)
``symbol``     ``ticker``                                  optional: the trade's ticker
``trade_id``   ``id``                                      optional: provider's trade id
                                                           (printable, <= 64 characters;
                                                           empty = none)
=============  ==========================================  ===================================

The bundled file (``mlfinpy`` 0.1.2's ``tick_data.csv``, header ``DateTime,Price,Volume``:
500,000 trades of the E-mini S&P 500 future, 2013-09-01 17:00 to 2013-09-03 13:51 Central,
millisecond times in US/Central) replays as symbol ``ES`` in zone ``America/Chicago``.
``make tick-data`` fetches it (``bundled_trades_path``).

Rules: naive times are localised with ``tz`` (an IANA zone); ambiguous times of a DST fall-back
are resolved from the file's order (the repeated hour must appear twice, in order), and
nonexistent ones (the spring-forward gap) are errors. Integer times below 10^17 (before 1973)
are taken for seconds or milliseconds and refused. A row that breaks a rule is an error naming
its line (CSV: the file's line number, header = line 1; Parquet: the row number from 1): no
row is dropped silently. Identical rows are all kept (separate fills: in the bundled file
305,809 of the 500,000 rows repeat an earlier row exactly). Trades are replayed in time order
(a stable sort: equal times keep the file's order).

Loading is vectorised in pandas (the bundled 500,000 rows in well under a second); the
``Trade`` objects are built one pack at a time while replaying.
"""

from __future__ import annotations

import importlib.util
import logging
import os
import threading
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from stocksage.bars.aggregation import INTRADAY_NS
from stocksage.bars.checks import check_symbol
from stocksage.bars.schema import (
    MAX_PRICE,
    MAX_SOURCE_CHARS,
    MAX_VOLUME,
    MIN_MAGNITUDE,
    MalformedBarError,
)
from stocksage.bars.sessions import calendar_for, session_table, years_of
from stocksage.bars.trades import MAX_TIME_NS, MAX_TRADES_PER_RECORD, MIN_TIME_NS, Trade
from stocksage.collector.trade_packing import (
    DEFAULT_HEARTBEAT_NS,
    DEFAULT_WINDOW_NS,
    PackedRecord,
    TradePacker,
)
from stocksage.config import STACK

__all__ = [
    "BUNDLED",
    "BUNDLED_SOURCE",
    "BUNDLED_SYMBOL",
    "BUNDLED_TZ",
    "FETCH_TARGET",
    "TradeFileError",
    "TradeReplay",
    "TradeTable",
    "bundled_trades_path",
    "describe_table",
    "final_watermark_ns",
    "load_trades",
]

log = logging.getLogger(__name__)

BUNDLED = "bundled"
"""The PATH that names the bundled file."""
BUNDLED_SYMBOL = "ES"
BUNDLED_TZ = "America/Chicago"
BUNDLED_SOURCE = "mlfinpy:tick_data.csv"
BUNDLED_FILE = Path(".local/data/mlfinpy_tick_data.csv")
"""Where ``make tick-data`` puts the bundled file, relative to the repository."""
FETCH_TARGET = "make tick-data"
TICK_DATA_ENV = "STOCKSAGE_TICK_DATA"
"""Environment variable naming the bundled file's path explicitly (checked first)."""

MIN_EPOCH_NS = 10**17
"""Smallest integer time accepted (1973-03-03): below, the numbers are seconds or ms."""

_ALIASES: dict[str, tuple[str, ...]] = {
    "time": ("time", "datetime", "timestamp"),
    "price": ("price",),
    "size": ("size", "volume", "quantity", "qty"),
    "symbol": ("symbol", "ticker"),
    "trade_id": ("trade_id", "id"),
}
_REQUIRED = ("time", "price", "size")
_OFFSET_RE = r"(?:[zZ]|[+-]\d{2}(?::?\d{2})?)$"
_INTEGER_RE = r"^[+-]?\d+$"
_REPO = Path(__file__).resolve().parents[2]


class TradeFileError(ValueError):
    """A trades file that cannot be replayed (missing, unreadable, a bad row, bad options).

    Attributes:
        path: The file (or "" when the problem is not a file's).
        line: The line (CSV) or row (Parquet) of the bad row, or None.
    """

    def __init__(self, message: str, path: str = "", line: int | None = None,
                 unit: str = "line") -> None:
        where = f"{path}: " if path else ""
        where += f"{unit} {line}: " if line is not None else ""
        super().__init__(where + message)
        self.path = path
        self.line = line


def bundled_trades_path() -> Path:
    """The bundled E-mini S&P 500 trades file (``mlfinpy`` 0.1.2's ``tick_data.csv``).

    Looked up in order: ``$STOCKSAGE_TICK_DATA``; ``.local/data/mlfinpy_tick_data.csv`` of the
    current directory and of the repository holding this package (``make tick-data`` writes
    it there); an installed ``mlfinpy`` package's data file (found without importing it).

    Raises:
        TradeFileError: none of them exists (the message names ``make tick-data``).
    """
    candidates: list[Path] = []
    if os.environ.get(TICK_DATA_ENV):
        candidates.append(Path(os.environ[TICK_DATA_ENV]))
    candidates += [Path.cwd() / BUNDLED_FILE, _REPO / BUNDLED_FILE]
    spec = importlib.util.find_spec("mlfinpy")  # a top-level package: not imported
    if spec is not None and spec.submodule_search_locations:
        candidates += [Path(location) / "dataset" / "data" / "tick_data.csv"
                       for location in spec.submodule_search_locations]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    raise TradeFileError(
        f"the bundled trades file is missing (looked for {', '.join(map(str, candidates))}); "
        f"`{FETCH_TARGET}` fetches it (mlfinpy 0.1.2's tick_data.csv)")


@dataclass(frozen=True)
class TradeTable:
    """Trades of one file, columnar, in time order (stable: ties keep the file's order).

    Attributes:
        symbols: The distinct symbols, in order of first trade.
        codes: int32 (n,) index into ``symbols`` of each trade.
        times_ns: int64 (n,) event times, epoch nanoseconds UTC, non-decreasing.
        prices: float64 (n,) prices.
        sizes: float64 (n,) sizes.
        trade_ids: object (n,) trade id (str) or None per trade, or None for no ids at all.
        source: ``source`` of the records (e.g. ``"mlfinpy:tick_data.csv"``).
    """

    symbols: tuple[str, ...]
    codes: np.ndarray
    times_ns: np.ndarray
    prices: np.ndarray
    sizes: np.ndarray
    trade_ids: np.ndarray | None
    source: str

    def __len__(self) -> int:
        return len(self.times_ns)

    def head(self, n: int) -> TradeTable:
        """The first ``n`` trades (in time order); symbols without a trade left are dropped."""
        ids = None if self.trade_ids is None else self.trade_ids[:n]
        table = replace(self, codes=self.codes[:n], times_ns=self.times_ns[:n],
                        prices=self.prices[:n], sizes=self.sizes[:n], trade_ids=ids)
        return table._compact()

    def _compact(self) -> TradeTable:
        """Symbols renumbered to those present, in order of first trade."""
        present, first = np.unique(self.codes, return_index=True)
        order = present[np.argsort(first, kind="stable")]
        remap = np.full(len(self.symbols), -1, dtype=np.int32)
        remap[order] = np.arange(len(order), dtype=np.int32)
        return replace(self, symbols=tuple(self.symbols[i] for i in order),
                       codes=remap[self.codes])

    def trades(self, start: int = 0, stop: int | None = None) -> list[Trade]:
        """``Trade`` objects of rows ``start`` .. ``stop`` (validated at load: they build)."""
        end = len(self) if stop is None else stop
        times = self.times_ns[start:end].tolist()
        prices = self.prices[start:end].tolist()
        sizes = self.sizes[start:end].tolist()
        codes = self.codes[start:end].tolist()
        ids = [None] * len(times) if self.trade_ids is None else \
            self.trade_ids[start:end].tolist()
        symbols = self.symbols
        return [Trade(symbols[c], t, p, s, i)
                for c, t, p, s, i in zip(codes, times, prices, sizes, ids, strict=True)]

    def volume(self) -> float:
        """Sum of the sizes."""
        return float(self.sizes.sum())


# ---------------------------------------------------------------------------------- loading
def load_trades(path: str | Path | None = BUNDLED, *, symbol: str | None = None,
                tz: str | None = None) -> TradeTable:
    """Read and validate a trades file (module docstring) into a time-ordered ``TradeTable``.

    Args:
        path: CSV or Parquet file, or ``"bundled"``/None for the bundled ES trades.
        symbol: Without a symbol column: the symbol of every trade (required, except for the
            bundled file: ``ES``). With one: keep only this symbol's trades.
        tz: IANA zone of naive times (default for the bundled file: ``America/Chicago``).

    Raises:
        TradeFileError: missing or unreadable file, missing column, a bad row (with its line),
            naive times without ``tz``, an unknown zone, no trade left.
    """
    bundled = path is None or str(path) == BUNDLED
    file = bundled_trades_path() if path is None or str(path) == BUNDLED else Path(path)
    if bundled:
        symbol = symbol or BUNDLED_SYMBOL
        tz = tz or BUNDLED_TZ
    name = str(file)
    if not file.is_file():
        raise TradeFileError("no such file", name)
    frame, parquet = _read(file)
    columns = _map_columns(frame, name)
    line_offset = 1 if parquet else 2  # Parquet: row numbers from 1; CSV: header = line 1
    rows = _Rows(name, line_offset, "row" if parquet else "line")
    if len(frame) == 0:
        raise TradeFileError("no trades in the file", name)
    times = _parse_times(frame[columns["time"]], tz, rows)
    prices = _numbers(frame[columns["price"]], "price", rows)
    sizes = _numbers(frame[columns["size"]], "size", rows)
    _check_values(prices, sizes, rows)
    symbols, codes = _symbols(frame, columns.get("symbol"), symbol, rows)
    ids = _trade_ids(frame[columns["trade_id"]], rows) if "trade_id" in columns else None
    order = np.argsort(times, kind="stable")
    source = BUNDLED_SOURCE if bundled else _source_of(file)
    table = TradeTable(symbols, codes[order], times[order], prices[order], sizes[order],
                       None if ids is None else ids[order], source)
    if "symbol" in columns and symbol:
        wanted = check_symbol(symbol)
        if wanted not in symbols:
            raise TradeFileError(f"no trades of {wanted} (symbols: {', '.join(symbols)})", name)
        keep = table.codes == symbols.index(wanted)
        table = replace(table, codes=table.codes[keep], times_ns=table.times_ns[keep],
                        prices=table.prices[keep], sizes=table.sizes[keep],
                        trade_ids=None if table.trade_ids is None else table.trade_ids[keep])
    return table._compact()


@dataclass(frozen=True)
class _Rows:
    """Names rows in errors: CSV line numbers or Parquet row numbers."""

    path: str
    offset: int
    word: str

    def error(self, index: int, message: str) -> TradeFileError:
        """The error of the row at 0-based ``index`` of the frame."""
        return TradeFileError(message, self.path, int(index) + self.offset, self.word)


def _read(file: Path) -> tuple[pd.DataFrame, bool]:
    """(frame, is_parquet); CSV cells as text (no NA guessing, blank lines kept as rows)."""
    name = file.name.lower()
    if name.endswith((".parquet", ".pq")):
        try:
            return pd.read_parquet(file), True
        except ImportError as exc:
            raise TradeFileError(f"Parquet input needs pyarrow ({exc})", str(file)) from exc
        except (OSError, ValueError) as exc:
            raise TradeFileError(f"not a readable Parquet file ({exc})", str(file)) from exc
    try:
        frame = pd.read_csv(file, dtype=str, keep_default_na=False, skip_blank_lines=False)
    except (pd.errors.ParserError, pd.errors.EmptyDataError, UnicodeDecodeError,
            OSError) as exc:
        raise TradeFileError(f"not a readable CSV file ({str(exc).strip()})", str(file)) from exc
    return frame, False


def _map_columns(frame: pd.DataFrame, name: str) -> dict[str, str]:
    """{role: column name} by the aliases (case-insensitive)."""
    found: dict[str, str] = {}
    for column in frame.columns:
        key = str(column).strip().lower()
        for role, aliases in _ALIASES.items():
            if key in aliases:
                if role in found:
                    raise TradeFileError(f"columns {found[role]!r} and {column!r} are both "
                                         f"the {role}", name)
                found[role] = str(column)
    missing = [role for role in _REQUIRED if role not in found]
    if missing:
        raise TradeFileError(
            f"missing column(s) {', '.join(missing)} (found {', '.join(map(str, frame.columns))};"
            " expected time, price, size and optional symbol, trade_id)", name)
    return found


def _parse_times(column: pd.Series, tz: str | None, rows: _Rows) -> np.ndarray:
    """int64 epoch ns UTC of every row."""
    if pd.api.types.is_datetime64_any_dtype(column.dtype):
        return _from_datetimes(column, tz, rows)
    if pd.api.types.is_integer_dtype(column.dtype):
        return _from_integers(column.to_numpy(dtype=np.int64), rows)
    text = column.astype(str).str.strip()
    integer = text.str.fullmatch(_INTEGER_RE).to_numpy(dtype=bool)
    if integer.all():
        try:
            values = np.array([int(v) for v in text], dtype=np.int64)
        except OverflowError:
            big = next(i for i, v in enumerate(text) if abs(int(v)) >= 2**63)
            raise rows.error(big, f"time {text.iloc[big]} is out of range") from None
        return _from_integers(values, rows)
    if integer.any():
        first = int(np.flatnonzero(integer)[0])
        raise rows.error(first, f"time {text.iloc[first]!r} is an integer but others are not "
                                "(one file uses one time format)")
    aware = text.str.contains(_OFFSET_RE, regex=True).to_numpy(dtype=bool)
    if aware.all():
        parsed = pd.to_datetime(text, format="ISO8601", utc=True, errors="coerce")
    elif aware.any():
        first = int(np.flatnonzero(~aware)[0] if aware[0] else np.flatnonzero(aware)[0])
        raise rows.error(first, f"time {text.iloc[first]!r} mixes times with and without a "
                                "UTC offset")
    else:
        parsed = pd.to_datetime(text, format="ISO8601", errors="coerce")
    bad = parsed.isna().to_numpy()
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise rows.error(first, f"time {text.iloc[first]!r} is not ISO 8601 or epoch ns")
    return _from_datetimes(parsed, tz, rows)


def _from_integers(values: np.ndarray, rows: _Rows) -> np.ndarray:
    small = values < MIN_EPOCH_NS
    if small.any():
        first = int(np.flatnonzero(small)[0])
        raise rows.error(first, f"time {values[first]} is not epoch nanoseconds after 1973 "
                                "(seconds or milliseconds?)")
    return _in_range(values, rows)


def _from_datetimes(column: pd.Series, tz: str | None, rows: _Rows) -> np.ndarray:
    index = pd.DatetimeIndex(column)
    if index.tz is None:
        if not tz:
            raise TradeFileError("times have no UTC offset: give their zone with --tz "
                                 "(e.g. America/Chicago, America/New_York)", rows.path)
        index = _localize(index, tz, rows)
    values = index.tz_convert("UTC").as_unit("ns").asi8.astype(np.int64)
    return _in_range(values, rows)


def _localize(index: pd.DatetimeIndex, tz: str, rows: _Rows) -> pd.DatetimeIndex:
    """Naive local times -> aware; the repeated hour of a fall-back inferred from the order
    (consecutive equal times, which are separate fills, counted once for the inference)."""
    values = index.as_unit("ns").asi8
    new = np.ones(len(values), dtype=bool)
    new[1:] = values[1:] != values[:-1]
    distinct = index[new]
    try:
        localized = distinct.tz_localize(tz, ambiguous="infer", nonexistent="raise")
    except ValueError as exc:
        found = _first_dst_problem(distinct, tz)
        if found is None:
            raise TradeFileError(f"cannot localise times to {tz!r}: {exc}", rows.path) from exc
        position, message = found
        row = int(np.flatnonzero(new)[position])
        raise rows.error(row, message) from exc
    except Exception as exc:  # unknown zone: zoneinfo and pytz raise their own types
        if type(exc).__name__ in ("ZoneInfoNotFoundError", "UnknownTimeZoneError"):
            raise TradeFileError(f"unknown time zone {tz!r}", rows.path) from exc
        raise
    return localized[np.cumsum(new) - 1]


def _first_dst_problem(distinct: pd.DatetimeIndex, tz: str) -> tuple[int, str] | None:
    """(position, message) of the first time that is nonexistent or cannot be inferred."""
    nonexistent = distinct.tz_localize(tz, ambiguous="NaT", nonexistent="NaT").isna()
    as_dst = distinct.tz_localize(tz, ambiguous=np.ones(len(distinct), dtype=bool),
                                  nonexistent="NaT")
    as_std = distinct.tz_localize(tz, ambiguous=np.zeros(len(distinct), dtype=bool),
                                  nonexistent="NaT")
    ambiguous = (as_dst != as_std) & ~as_dst.isna()
    gap = np.flatnonzero(np.asarray(nonexistent) & ~np.asarray(ambiguous))
    doubt = np.flatnonzero(np.asarray(ambiguous))
    if len(gap) and (not len(doubt) or gap[0] < doubt[0]):
        at = int(gap[0])
        return at, f"time {distinct[at]} does not exist in {tz} (skipped by a DST change)"
    if len(doubt):
        at = int(doubt[0])
        return at, (f"time {distinct[at]} is ambiguous in {tz} (DST ends) and the file's order "
                    "does not tell which; give times with a UTC offset")
    return None


def _in_range(values: np.ndarray, rows: _Rows) -> np.ndarray:
    bad = (values < MIN_TIME_NS) | (values >= MAX_TIME_NS)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise rows.error(first, f"time {pd.Timestamp(int(values[first]), unit='ns')} is not "
                                "within 1970 .. 2200")
    return values


def _numbers(column: pd.Series, name: str, rows: _Rows) -> np.ndarray:
    """float64 of a numeric column; text that is not a finite number is an error."""
    if pd.api.types.is_bool_dtype(column.dtype):
        raise rows.error(0, f"{name} column holds booleans, not numbers")
    values = pd.to_numeric(column, errors="coerce").to_numpy(dtype=np.float64,
                                                           na_value=np.nan)
    bad = ~np.isfinite(values)
    if bad.any():
        first = int(np.flatnonzero(bad)[0])
        raise rows.error(first, f"{name} {column.iloc[first]!r} is not a finite number")
    return values


def _check_values(prices: np.ndarray, sizes: np.ndarray, rows: _Rows) -> None:
    """The trade rules of ``stocksage.bars.trades`` on prices and sizes, vectorised."""
    checks = (
        (prices <= 0, "price {} is not positive"),
        (prices > MAX_PRICE, f"price {{}} is implausibly large (> {MAX_PRICE:g})"),
        (prices < MIN_MAGNITUDE, "price {} is below DynamoDB's smallest number"),
        (sizes < 0, "size {} is negative"),
        (sizes > MAX_VOLUME, f"size {{}} is implausibly large (> {MAX_VOLUME:g})"),
        ((sizes != 0) & (sizes < MIN_MAGNITUDE), "size {} is below DynamoDB's smallest number"),
    )
    first: tuple[int, str] | None = None
    for mask, template in checks:
        hits = np.flatnonzero(mask)
        if len(hits) and (first is None or hits[0] < first[0]):
            value = prices[hits[0]] if template.startswith("price") else sizes[hits[0]]
            first = (int(hits[0]), template.format(value))
    if first is not None:
        raise rows.error(*first)


def _symbols(frame: pd.DataFrame, column: str | None, symbol: str | None,
             rows: _Rows) -> tuple[tuple[str, ...], np.ndarray]:
    """(distinct symbols, int32 code per row)."""
    if column is None:
        if not symbol:
            raise TradeFileError("the file has no symbol column: name the symbol with --symbol",
                                 rows.path)
        try:
            return (check_symbol(symbol),), np.zeros(len(frame), dtype=np.int32)
        except MalformedBarError as exc:
            raise TradeFileError(f"--symbol: {exc}", rows.path) from exc
    codes, uniques = pd.factorize(frame[column].astype(str).str.strip(), sort=False)
    symbols = []
    for position, raw in enumerate(uniques):
        try:
            symbols.append(check_symbol(raw))
        except MalformedBarError as exc:
            raise rows.error(int(np.flatnonzero(codes == position)[0]), str(exc)) from exc
    if len(set(symbols)) != len(symbols):  # "es" and "ES": one symbol
        merged = sorted(set(symbols), key=symbols.index)
        codes = np.array([merged.index(s) for s in symbols], dtype=np.int32)[codes]
        symbols = merged
    return tuple(symbols), codes.astype(np.int32)


def _trade_ids(column: pd.Series, rows: _Rows) -> np.ndarray | None:
    """object (n,) of str or None ("" and missing = None); None when no row has an id."""
    ids = np.array([None if v is None or (isinstance(v, float) and np.isnan(v))
                    or str(v).strip() == "" else str(v).strip() for v in column], dtype=object)
    for index, value in enumerate(ids):
        if value is not None and not (len(value) <= 64 and value.isprintable()):
            raise rows.error(index, f"trade id {value[:40]!r} is not printable text of 1 .. 64 "
                                    "characters")
    return ids if any(v is not None for v in ids) else None


def _source_of(file: Path) -> str:
    text = "".join(ch if ch.isprintable() else "?" for ch in f"file:{file.name}")
    return text[:MAX_SOURCE_CHARS]


# ---------------------------------------------------------------------------------- replay
def final_watermark_ns(symbol: str, last_ns: int, *,
                       intervals: Sequence[str] | None = None,
                       grace_ms: int | None = None) -> int:
    """The end-of-replay heartbeat of ``symbol`` whose last trade is at ``last_ns``: late
    enough for every bar holding that trade to close.

    ``max(last + 1 minute, end of each configured interval's bar holding the last trade) +
    grace``: intraday bars end at UTC multiples of their width, a daily bar at its session's
    close (the symbol's ``exchange_calendars`` calendar; a trade outside every session is in
    no daily bar). Defaults: ``stack.json`` ``bar_building`` (``intervals``, ``grace_ms``).

    Returns:
        Epoch nanoseconds UTC.
    """
    names = tuple(STACK.bar_building["intervals"]) if intervals is None else tuple(intervals)
    grace_ns = int(STACK.bar_building["grace_ms"] if grace_ms is None else grace_ms) * 1_000_000
    end = last_ns + 60 * 1_000_000_000
    for interval in names:
        if interval in INTRADAY_NS:
            width = INTRADAY_NS[interval]
            end = max(end, last_ns - last_ns % width + width)
        elif interval == "1d":
            times = np.array([last_ns], dtype=np.int64)
            table = session_table(calendar_for(symbol), *years_of(times))
            where = int(table.locate(times)[0])
            if where >= 0:
                end = max(end, int(table.closes_ns[where]))
    return end + grace_ns


class TradeReplay:
    """Packed trades records and heartbeats of a ``TradeTable``, paced in event time.

    Iterating yields ``PackedRecord`` objects (``KinesisSink.put`` takes them) in stream
    order. With ``speed`` the wall time between two records is their event-time distance
    divided by ``speed`` (an absolute schedule from the first trade, so processing time does
    not accumulate; a pack leaves as soon as its window ended, a heartbeat as the clock passes
    its second); without it the records come as fast as the consumer takes them. At the end
    every symbol gets one heartbeat (``final_watermark_ns``). A set ``stop`` ends the
    iteration at the next trade or pause, without the final heartbeats.

    Args:
        table: The trades.
        speed: Event seconds per wall second (> 0), or None for as fast as possible.
        window_ns: Longest event-time span of a record.
        max_trades: Trades per record.
        heartbeat_ns: Heartbeat period in event time (None: no periodic heartbeats).
        final_watermark: ``(symbol, last trade ns) -> watermark ns`` of the last heartbeat.
        stop: Ends the replay when set.
        sleep: Wall-clock wait in seconds (the CLI passes ``stop.wait``).
        clock: Monotonic wall clock in seconds.

    Attributes (counts of records the consumer has taken):
        trades_sent: Trades in trades records. records_sent: Trades records.
        heartbeats_sent: Watermark records. volume_sent: Sum of the trades' sizes.

    Raises:
        ValueError: ``speed`` not > 0.
    """

    def __init__(self, table: TradeTable, *, speed: float | None = None,
                 window_ns: int = DEFAULT_WINDOW_NS, max_trades: int = MAX_TRADES_PER_RECORD,
                 heartbeat_ns: int | None = DEFAULT_HEARTBEAT_NS,
                 final_watermark: Callable[[str, int], int] = final_watermark_ns,
                 stop: threading.Event | None = None,
                 sleep: Callable[[float], object] = time.sleep,
                 clock: Callable[[], float] = time.monotonic) -> None:
        if speed is not None and not speed > 0:
            raise ValueError(f"speed must be > 0 (or max), got {speed}")
        self.table = table
        self.speed = speed
        self.window_ns = window_ns
        self.max_trades = max_trades
        self.heartbeat_ns = heartbeat_ns
        self.final_watermark = final_watermark
        self.stop = stop
        self._sleep = sleep
        self._clock = clock
        self.trades_sent = 0
        self.records_sent = 0
        self.heartbeats_sent = 0
        self.volume_sent = 0.0

    @property
    def symbols(self) -> tuple[str, ...]:
        """The symbols replayed."""
        return self.table.symbols

    def expected_counts(self) -> None:
        """Records per symbol are known only after packing: no totals."""
        return None

    def __iter__(self) -> Iterator[PackedRecord]:
        packer = TradePacker(max_trades=self.max_trades, window_ns=self.window_ns,
                             heartbeat_ns=self.heartbeat_ns, source=self.table.source)
        times = self.table.times_ns
        if len(times) == 0:
            return
        start_wall = self._clock()
        start_event = int(times[0])
        chunk = 10_000  # Trade objects are built a chunk at a time
        for begin in range(0, len(times), chunk):
            for trade in self.table.trades(begin, begin + chunk):
                if self._stopped():
                    return
                if self.speed is not None and trade.time_ns - 1 > packer.clock_ns >= 0:
                    for record in self._pause(packer, trade.time_ns - 1, start_wall,
                                              start_event):
                        yield record
                        self._count(record)
                    if self._stopped():
                        return
                for record in packer.add(trade):
                    yield record
                    self._count(record)
        if self._stopped():
            return
        for record in packer.finish(self.final_watermark):
            yield record
            self._count(record)
        log.info("trade replay finished",
                 extra={"trades": self.trades_sent, "records": self.records_sent,
                        "heartbeats": self.heartbeats_sent})

    def _pause(self, packer: TradePacker, until_ns: int, start_wall: float,
               start_event: int) -> Iterator[PackedRecord]:
        """Move the packer's clock to ``until_ns`` in wall time, stopping at each pack's end
        and heartbeat boundary on the way (their records leave then)."""
        assert self.speed is not None
        while packer.clock_ns < until_ns and not self._stopped():
            change = packer.next_change_ns()
            step = until_ns if change is None else min(change, until_ns)
            wait = start_wall + (step - start_event) / 1e9 / self.speed - self._clock()
            if wait > 0:
                self._sleep(wait)
                if self._stopped():
                    return
            yield from packer.advance(step)

    def _stopped(self) -> bool:
        return self.stop is not None and self.stop.is_set()

    def _count(self, record: PackedRecord) -> None:
        if record.kind == "trades":
            self.records_sent += 1
            self.trades_sent += record.trades
            self.volume_sent += record.volume
        else:
            self.heartbeats_sent += 1


def describe_table(table: TradeTable) -> dict[str, Any]:
    """Log fields of a loaded table: trades, symbols, first/last time (ISO, UTC)."""
    first = pd.Timestamp(int(table.times_ns[0]), unit="ns", tz="UTC").isoformat()
    last = pd.Timestamp(int(table.times_ns[-1]), unit="ns", tz="UTC").isoformat()
    return {"trades": len(table), "symbols": list(table.symbols), "first": first, "last": last,
            "source": table.source}

