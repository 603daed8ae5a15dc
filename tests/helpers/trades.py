"""Real trades for tests: the E-mini S&P 500 futures trades bundled in mlfinpy 0.1.2.

``make`` fetches the file (``.local/data/mlfinpy_tick_data.csv``, see ../shared/FACTS.md):
DateTime (US/Central, milliseconds), Price, Volume. Rows that repeat an earlier row exactly are
separate fills and all count.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

import numpy as np
import pandas as pd

from stocksage.bars.trades import Trade, encode_trades
from stocksage.processing import StreamTrades, decode_record

BUNDLED = Path(__file__).resolve().parents[2] / ".local" / "data" / "mlfinpy_tick_data.csv"
SHARD = "shardId-000000000000"


@cache
def _all() -> pd.DataFrame:
    if not BUNDLED.exists():
        raise FileNotFoundError(f"{BUNDLED} is missing: `make .venv` fetches the mlfinpy trades")
    frame = pd.read_csv(BUNDLED)
    times = pd.to_datetime(frame["DateTime"]).dt.tz_localize("America/Chicago")
    return pd.DataFrame({"time_ns": times.dt.tz_convert("UTC").dt.as_unit("ns").astype("int64")
                         .to_numpy(),
                         "price": frame["Price"].to_numpy(np.float64),
                         "size": frame["Volume"].to_numpy(np.float64)})


def es_trades(limit: int, start: int = 0) -> pd.DataFrame:
    """``limit`` bundled trades from row ``start``: columns time_ns (int64 epoch ns, UTC),
    price, size, in file order (event-time order)."""
    return _all().iloc[start:start + limit].reset_index(drop=True)


def payloads(trades: pd.DataFrame, symbol: str = "ES", per_record: int = 200,
             ids: bool = False) -> list[bytes]:
    """Trades records of ``per_record`` trades each (``encode_trades``); ``ids`` gives each
    trade the id ``"<row>"`` (its position in ``trades``)."""
    rows = list(trades.itertuples(index=True))
    out = []
    for first in range(0, len(rows), per_record):
        chunk = [Trade(symbol, int(r.time_ns), float(r.price), float(r.size),
                       str(r.Index) if ids else None) for r in rows[first:first + per_record]]
        out.append(encode_trades(symbol, chunk, source="mlfinpy:tick_data.csv"))
    return out


def stream(payload_list: list[bytes], symbol: str = "ES", first_seq: int = 1,
           shard: str = SHARD) -> list[StreamTrades]:
    """The records as the processor decodes them (sequence numbers from ``first_seq``)."""
    items = []
    for k, data in enumerate(payload_list):
        decoded = decode_record(data, partition_key=symbol, sequence_number=str(first_seq + k),
                                shard_id=shard)
        assert not decoded.rejected
        assert isinstance(decoded.item, StreamTrades)
        items.append(decoded.item)
    return items


def resample(trades: pd.DataFrame, rule: str = "1min") -> pd.DataFrame:
    """OHLCV bars of ``trades`` by pandas (the reference): index = bar start (UTC), minutes
    without a trade dropped."""
    index = pd.to_datetime(trades["time_ns"], utc=True)
    frame = trades.set_index(index)
    bars = frame.resample(rule).agg({"price": ["first", "max", "min", "last"], "size": "sum"})
    bars.columns = ["open", "high", "low", "close", "volume"]
    bars = bars[frame["price"].resample(rule).count() > 0]
    bars.index.name = "bar_time"
    return bars
