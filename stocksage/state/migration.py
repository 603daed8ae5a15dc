"""Format 1 of the state item, read and migrated to format 2.

Format 1 (``bars`` = zlib of the last <= 600 bars, ``obv_offset``, ``last_values`` with
``alerts_last_fired`` as ``{rule_id: bar_time}``) is read by ``SymbolState.from_item``
through :func:`migrate_v1`: the kernel is seeded by running ``ta`` over the 600 bars
(``stocksage.indicators.incremental.seed_from_frame``), cooldown times become bar indexes, and
the next write stores format 2 (``version`` 1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from stocksage.alerts.firing import COOLDOWN_STATE_KEY
from stocksage.bars import OHLCV, TIME_UNIT, epoch_micros
from stocksage.indicators.incremental import seed_from_frame
from stocksage.state.blobs import RecentBars, as_bytes, decode_bars, parse_time

__all__ = ["decode_v1_bars", "migrate_v1"]


def migrate_v1(item: Mapping[str, Any], value_names: Sequence[str]) -> dict[str, Any]:
    """A format-1 item -> the keyword arguments of a format-2 ``SymbolState``.

    Args:
        item: The stored item (``format`` 1).
        value_names: Names of ``SymbolState.last_values`` in order.

    Raises:
        KeyError: a required attribute is missing; ``StateFormatError``: corrupt blob.
    """
    count = int(item["bar_count"])
    frame = decode_v1_bars(as_bytes(item["bars"]), count)
    bars_seen = int(item["bars_seen"])
    last_values = dict(item.get("last_values") or {})
    fired_times = dict(last_values.pop(COOLDOWN_STATE_KEY, None) or {})
    kernel = seed_from_frame(frame, bars_seen, float(item["obv_offset"]))
    last = np.full(len(value_names), np.nan)
    for index, name in enumerate(value_names):
        value = last_values.get(name)
        if value is not None:
            last[index] = float(value)
    times = frame.index.as_unit(TIME_UNIT).asi8
    last_fired: dict[str, int] = {}
    for rule_id, fired_at in fired_times.items():
        moment = parse_time(fired_at)
        if moment is None:
            continue
        position = int(np.searchsorted(times, epoch_micros(moment), side="right"))
        bars_after = len(times) - position
        last_fired[str(rule_id)] = bars_seen - 1 - bars_after
    return dict(
        symbol=str(item["symbol"]), kernel=kernel, last_values=last, version=0,
        interval=str(item.get("interval", "")), last_bar_time=parse_time(item.get("last_bar_time")),
        recent=RecentBars(times.astype(np.int64), frame[list(OHLCV)].to_numpy(np.float64)),
        last_fired=last_fired,
    )


def decode_v1_bars(blob: bytes, count: int) -> pd.DataFrame:
    """Format-1 ``bars`` as an OHLCV frame indexed by UTC ``bar_time``."""
    times, ohlcv = decode_bars(blob, count, "format-1 bars")
    index = pd.DatetimeIndex(pd.to_datetime(times, unit=TIME_UNIT, utc=True), name="bar_time")
    return pd.DataFrame(ohlcv, index=index.as_unit(TIME_UNIT), columns=list(OHLCV))
