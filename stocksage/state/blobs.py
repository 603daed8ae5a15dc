"""Shared pieces of the state item's encoding: the recent-bars blob, times, binaries.

Used by ``stocksage.state.symbol_state`` (format 2) and ``stocksage.state.migration``
(format 1), which both store bars as zlib of int64 µs times then float64 OHLCV columns.
"""

from __future__ import annotations

import zlib
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np

from stocksage.bars import OHLCV

__all__ = ["RecentBars", "StateFormatError", "as_bytes", "decode_bars", "padded", "parse_time"]


class StateFormatError(ValueError):
    """A state item that cannot be read (unknown format, missing key, corrupt blob)."""


@dataclass
class RecentBars:
    """The last K OHLCV bars of a symbol, oldest first.

    Attributes:
        times: int64 (K,) bar times, microseconds since the epoch (UTC).
        ohlcv: float64 (K, 5) open, high, low, close, volume.
    """

    times: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))
    ohlcv: np.ndarray = field(default_factory=lambda: np.zeros((0, 5)))

    def __len__(self) -> int:
        return len(self.times)

    def extended(self, times: np.ndarray, ohlcv: np.ndarray, keep: int) -> RecentBars:
        """These bars followed by new ones, cut to the last ``keep``."""
        all_times = np.concatenate([self.times, times.astype(np.int64)])
        all_ohlcv = np.concatenate([self.ohlcv, ohlcv])
        start = max(len(all_times) - keep, 0)
        return RecentBars(all_times[start:].copy(), all_ohlcv[start:].copy())

    def tail(self, keep: int) -> RecentBars:
        """The last ``keep`` bars (none for 0)."""
        start = max(len(self.times) - keep, 0) if keep > 0 else len(self.times)
        return RecentBars(self.times[start:].copy(), self.ohlcv[start:].copy())

    def encode(self) -> bytes:
        payload = self.times.astype("<i8").tobytes() + np.ascontiguousarray(
            self.ohlcv.T, dtype="<f8").tobytes()
        return zlib.compress(payload, 6)

    @classmethod
    def decode(cls, blob: bytes, count: int) -> RecentBars:
        times, ohlcv = decode_bars(blob, count, "recent bars")
        return cls(times, ohlcv)


def padded(values: np.ndarray, size: int, fill: float, left: bool = True) -> np.ndarray:
    """``values`` (length <= ``size``) filled up to ``size`` with ``fill`` on the left
    (the oldest positions) or on the right; ``values`` itself when it is already full."""
    if len(values) == size:
        return values
    out = np.full(size, fill)
    if left:
        out[size - len(values):] = values
    else:
        out[: len(values)] = values
    return out


def as_bytes(blob: Any) -> bytes:
    """``bytes`` of a blob read as bytes or as boto3 ``Binary``."""
    return bytes(getattr(blob, "value", blob))


def parse_time(text: Any) -> datetime | None:
    """Stored ISO time -> aware UTC datetime; None for absent/empty; raises
    ``StateFormatError`` for a time without offset."""
    if text is None or text == "":
        return None
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise StateFormatError(f"state time {text!r} has no offset")
    return moment.astimezone(UTC)


def decode_bars(blob: bytes, count: int, what: str) -> tuple[np.ndarray, np.ndarray]:
    """zlib of ``count`` int64 µs times then the float64 open, high, low, close, volume
    columns (little-endian; the layout of ``recent`` and of format 1's ``bars``) ->
    ``(times (count,), ohlcv (count, 5))``.

    Raises:
        StateFormatError: corrupt or truncated blob.
    """
    width = 8 * (1 + len(OHLCV))
    try:
        payload = zlib.decompress(blob)
    except zlib.error as err:
        raise StateFormatError(f"{what} are corrupt ({err})") from None
    if len(payload) != count * width:
        raise StateFormatError(f"{what} hold {len(payload)} bytes, expected {count * width}")
    times = np.frombuffer(payload, dtype="<i8", count=count).astype(np.int64)
    matrix = np.frombuffer(payload, dtype="<f8", offset=8 * count).reshape(len(OHLCV), count)
    return times, matrix.T.astype(np.float64)
