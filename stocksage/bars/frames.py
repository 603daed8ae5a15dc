"""Bars <-> pandas OHLCV frames (datasets, training, benchmarks).

numpy and pandas are imported when a function runs: the live-collector image ships without
them (Dockerfile) and imports ``stocksage.bars``.
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import TYPE_CHECKING

from stocksage.bars.model import OHLCV, Bar
from stocksage.bars.times import TIME_UNIT

if TYPE_CHECKING:
    import pandas as pd

__all__ = ["bars_to_frame", "frame_to_bars"]


def bars_to_frame(bars: Iterable[Bar]) -> pd.DataFrame:
    """OHLCV frame of bars, in the given order.

    Returns:
        DataFrame with index ``bar_time`` (DatetimeIndex, UTC, microsecond unit) and float64
        columns ``open high low close volume``. Symbol, interval and source are dropped.
    """
    import numpy as np
    import pandas as pd

    bars = list(bars)
    index = pd.DatetimeIndex(
        [bar.bar_time for bar in bars], name="bar_time", dtype=f"datetime64[{TIME_UNIT}, UTC]"
    )
    values = np.array(
        [(bar.open, bar.high, bar.low, bar.close, bar.volume) for bar in bars], dtype=np.float64
    ).reshape(len(bars), len(OHLCV))
    return pd.DataFrame(values, index=index, columns=list(OHLCV))


def frame_to_bars(
    symbol: str, frame: pd.DataFrame, interval: str = "1d", source: str = ""
) -> list[Bar]:
    """Bars from an OHLCV frame whose index is tz-aware bar times (e.g. ``load_bars``).

    Raises:
        ValueError: when the index is not a tz-aware DatetimeIndex or a column is missing.
        MalformedBarError: when a row is not a valid bar.
    """
    import numpy as np
    import pandas as pd

    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError("frame index must be a tz-aware DatetimeIndex of bar times")
    missing = [name for name in OHLCV if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s): {', '.join(missing)}")
    values = frame[list(OHLCV)].to_numpy(dtype=np.float64)
    times = frame.index.tz_convert("UTC").to_pydatetime()
    return [
        Bar(symbol, moment, float(o), float(h), float(lo), float(c), float(v),
            interval=interval, source=source)
        for moment, (o, h, lo, c, v) in zip(times, values, strict=True)
    ]
