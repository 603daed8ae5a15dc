"""A symbol's stored state (table ``window-state``): format 2, compact and versioned.

One item per symbol. It holds what the next bar needs and nothing that grows with history:

* ``symbol`` (S): partition key.
* ``format`` (N): 2 (format 1 = the old 600-bar window, read and migrated, see below).
* ``version`` (N): optimistic-lock counter: a write succeeds only if the stored version is
  the one read (``attribute_not_exists`` for a new or format-1 item), then +1.
* ``interval`` (S): the symbol's bar interval (``1d``...); bars of another interval are
  rejected.
* ``last_bar_time`` (S): newest accepted bar (ISO UTC).
* ``bars_seen`` (N): accepted bars since the stream began (= the next bar's 0-based index).
* ``core`` (B): ``stocksage.streaming.Kernel`` row + the last bar's outputs, ``prob_up`` and
  ``range_forecast`` (packed float64, ~0.6 KB; core layout 2; layout 1, without
  ``range_forecast``, is read too).
* ``recent`` / ``recent_count`` (B / N): the last K OHLCV bars, K = the largest look-back of
  the symbol's alert rules (zlib of int64 µs times + float64 columns); absent when K = 0.
* ``alerts_last_fired`` (M): ``{rule_id: bar index}`` of the last firing of each rule with a
  cooldown.
* ``outbox`` (L): alert messages not yet published (each the JSON text of
  ``Alert.message()``).
* ``pending_since`` (S): oldest bar whose results item still waits for a prediction (absent
  when none).

Size: ~0.9 KB for a symbol with price rules only; a 240-bar support/resistance rule adds
the 241 last bars (see docs/BENCHMARKS.md for measured sizes).

Format 1 (``bars`` = zlib of the last <= 600 bars, ``obv_offset``, ``last_values`` with
``alerts_last_fired`` as ``{rule_id: bar_time}``) is read by ``SymbolState.from_item``:
the kernel is seeded by running ``ta`` over the 600 bars (``streaming.seed_from_frame``),
cooldown times become bar indexes, and the next write stores format 2 (``version`` 1).
"""

from __future__ import annotations

import json
import struct
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from stocksage.alerts import COOLDOWN_STATE_KEY, RowValues, Values
from stocksage.bars import OHLCV, TIME_UNIT, epoch_micros, format_time
from stocksage.indicators import OUTPUT_COLUMNS
from stocksage.streaming import ATR_WARM_BARS, CLOSES_KEPT, SCALARS, Kernel, seed_from_frame

__all__ = ["FORMAT", "RecentBars", "StateFormatError", "SymbolState"]

FORMAT = 2
"""Current state item format."""

_HEADER = struct.Struct("<Bqh")  # core layout version, bars seen, closes kept
_CORE_LAYOUT = 2  # 1 = last values without range_forecast (read, padded with NaN)
_VALUE_NAMES = (*OUTPUT_COLUMNS, "prob_up", "range_forecast")
_LAST = len(_VALUE_NAMES)  # outputs + prob_up + range_forecast
_VALUE_INDEX = {name: i for i, name in enumerate(_VALUE_NAMES)}
_LAST_BY_LAYOUT = {1: _LAST - 1, 2: _LAST}


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
        times, ohlcv = _decode_bars(blob, count, "recent bars")
        return cls(times, ohlcv)


@dataclass
class SymbolState:
    """Everything stored for one symbol between batches (see the module docstring).

    Attributes:
        symbol: Ticker (partition key).
        kernel: One-row ``streaming.Kernel`` (its ``n`` is ``bars_seen``).
        last_values: float64 (len(OUTPUT_COLUMNS) + 2,): the last accepted bar's outputs,
            ``prob_up`` and ``range_forecast`` (NaN = undefined), the "previous" values of
            crossing rules and of ``range_above_forecast`` (the forecast made for the next bar).
        version: Version read (0 = no item, or a format-1 item).
        interval: Bar interval of the symbol's stream ("" before the first bar).
        last_bar_time: Newest accepted bar time (None before the first bar).
        recent: The last K bars (K = largest rule look-back).
        last_fired: ``{rule_id: bar index}`` of the last firing per rule with a cooldown.
        outbox: Alert messages (``Alert.message()`` dicts) waiting to be published.
        pending_since: ISO time of the oldest bar whose prediction is pending, or None.
        migrated_from: Format the item was read from (2, or 1 for a migrated item).
    """

    symbol: str
    kernel: Kernel = field(default_factory=lambda: Kernel.empty(1))
    last_values: np.ndarray = field(default_factory=lambda: np.full(_LAST, np.nan))
    version: int = 0
    interval: str = ""
    last_bar_time: datetime | None = None
    recent: RecentBars = field(default_factory=RecentBars)
    last_fired: dict[str, int] = field(default_factory=dict)
    outbox: list[dict[str, Any]] = field(default_factory=list)
    pending_since: str | None = None
    migrated_from: int = FORMAT

    @property
    def bars_seen(self) -> int:
        """Accepted bars since the stream began (the next bar's 0-based index)."""
        return int(self.kernel.n[0])

    def previous_values(self, close: float | None = None) -> Values:
        """The last bar's values by column name (``close``, ``prob_up``, ``range_forecast``;
        None where not defined), read on demand (:class:`stocksage.alerts.RowValues`).

        ``close`` overrides the kernel's last close (the caller advanced the kernel already).
        """
        if self.bars_seen == 0:
            return {}
        last = float(self.kernel.closes[0, -1]) if close is None else close
        return RowValues(_VALUE_INDEX, self.last_values.tolist(), {"close": last})

    # ----------------------------------------------------------------------- encoding
    def _core(self) -> bytes:
        k = self.kernel
        n = int(k.n[0])
        kept = min(n, CLOSES_KEPT)
        parts = [_HEADER.pack(_CORE_LAYOUT, n, kept), k.scalars[0].astype("<f8").tobytes()]
        if kept:
            parts += [k.closes[0, -kept:].astype("<f8").tobytes(),
                      k.volumes[0, -kept:].astype("<f8").tobytes()]
        if n < ATR_WARM_BARS:
            parts.append(k.warm_tr[0, :n].astype("<f8").tobytes())
        parts.append(self.last_values.astype("<f8").tobytes())
        return b"".join(parts)

    def to_item(self) -> dict[str, Any]:
        """Plain-typed item (str, int, bytes, dict, list); the caller adds nothing but keys.

        ``version`` is the version to write (read version + 1).
        """
        item: dict[str, Any] = {
            "symbol": self.symbol,
            "format": FORMAT,
            "version": self.version + 1,
            "bars_seen": self.bars_seen,
            "core": self._core(),
        }
        if self.interval:
            item["interval"] = self.interval
        if self.last_bar_time is not None:
            item["last_bar_time"] = format_time(self.last_bar_time)
        if len(self.recent):
            item["recent"] = self.recent.encode()
            item["recent_count"] = len(self.recent)
        if self.last_fired:
            item[COOLDOWN_STATE_KEY] = {k: int(v) for k, v in self.last_fired.items()}
        if self.outbox:
            item["outbox"] = [json.dumps(m, sort_keys=True) for m in self.outbox]
        if self.pending_since:
            item["pending_since"] = self.pending_since
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> SymbolState:
        """Read a stored item of format 2 or 1 (migrated).

        Numbers may be int/float/Decimal and binaries bytes or boto3 ``Binary``.

        Raises:
            StateFormatError: unknown format, missing attribute or corrupt blob.
        """
        try:
            form = int(item["format"])
            if form == FORMAT:
                return cls._from_v2(item)
            if form == 1:
                return cls._from_v1(item)
        except KeyError as err:
            raise StateFormatError(f"state item of {item.get('symbol')!r} lacks {err}") from None
        except (struct.error, ValueError, TypeError) as err:
            if isinstance(err, StateFormatError):
                raise
            raise StateFormatError(f"state item of {item.get('symbol')!r} is corrupt "
                                   f"({err})") from None
        raise StateFormatError(f"unknown state format {item['format']!r}")

    @classmethod
    def _from_v2(cls, item: Mapping[str, Any]) -> SymbolState:
        blob = _bytes(item["core"])
        layout, n, kept = _HEADER.unpack_from(blob)
        if layout not in _LAST_BY_LAYOUT:
            raise StateFormatError(f"unknown core layout {layout}")
        stored_last = _LAST_BY_LAYOUT[layout]
        floats = np.frombuffer(blob, dtype="<f8", offset=_HEADER.size).astype(np.float64)
        warm = n if n < ATR_WARM_BARS else 0
        expected = len(SCALARS) + 2 * kept + warm + stored_last
        if len(floats) != expected or kept != min(n, CLOSES_KEPT):
            raise StateFormatError(f"core holds {len(floats)} numbers, expected {expected}")
        # Rows are views into ``floats`` (a private copy) where the blob holds them whole.
        at = len(SCALARS)
        closes = _padded(floats[at: at + kept], CLOSES_KEPT, np.nan)
        volumes = _padded(floats[at + kept: at + 2 * kept], CLOSES_KEPT, np.nan)
        at += 2 * kept
        kernel = Kernel(n=np.array([n], dtype=np.int64),
                        scalars=floats[: len(SCALARS)].reshape(1, -1),
                        closes=closes.reshape(1, -1), volumes=volumes.reshape(1, -1),
                        warm_tr=_padded(floats[at: at + warm], ATR_WARM_BARS, 0.0, left=False)
                        .reshape(1, -1))
        last = _padded(floats[at + warm:], _LAST, np.nan, left=False)
        recent = RecentBars()
        if "recent" in item:
            recent = RecentBars.decode(_bytes(item["recent"]), int(item["recent_count"]))
        return cls(
            symbol=str(item["symbol"]), kernel=kernel, last_values=last,
            version=int(item["version"]), interval=str(item.get("interval", "")),
            last_bar_time=_time(item.get("last_bar_time")), recent=recent,
            last_fired={str(k): int(v) for k, v in (item.get(COOLDOWN_STATE_KEY) or {}).items()},
            outbox=[json.loads(m) for m in item.get("outbox") or []],
            pending_since=item.get("pending_since") or None,
        )

    @classmethod
    def _from_v1(cls, item: Mapping[str, Any]) -> SymbolState:
        count = int(item["bar_count"])
        frame = _decode_v1_bars(_bytes(item["bars"]), count)
        bars_seen = int(item["bars_seen"])
        last_values = dict(item.get("last_values") or {})
        fired_times = dict(last_values.pop(COOLDOWN_STATE_KEY, None) or {})
        kernel = seed_from_frame(frame, bars_seen, float(item["obv_offset"]))
        last = np.full(_LAST, np.nan)
        for index, name in enumerate(_VALUE_NAMES):
            value = last_values.get(name)
            if value is not None:
                last[index] = float(value)
        times = frame.index.as_unit(TIME_UNIT).asi8
        last_fired = {}
        for rule_id, fired_at in fired_times.items():
            moment = _time(fired_at)
            if moment is None:
                continue
            position = int(np.searchsorted(times, epoch_micros(moment), side="right"))
            bars_after = len(times) - position
            last_fired[str(rule_id)] = bars_seen - 1 - bars_after
        return cls(
            symbol=str(item["symbol"]), kernel=kernel, last_values=last, version=0,
            interval=str(item.get("interval", "")), last_bar_time=_time(item.get("last_bar_time")),
            recent=RecentBars(times.astype(np.int64), frame[list(OHLCV)].to_numpy(np.float64)),
            last_fired=last_fired, migrated_from=1,
        )


def _padded(values: np.ndarray, size: int, fill: float, left: bool = True) -> np.ndarray:
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


def _bytes(blob: Any) -> bytes:
    return bytes(getattr(blob, "value", blob))


def _time(text: Any) -> datetime | None:
    if text is None or text == "":
        return None
    moment = datetime.fromisoformat(str(text))
    if moment.tzinfo is None:
        raise StateFormatError(f"state time {text!r} has no offset")
    return moment.astimezone(UTC)


def _decode_bars(blob: bytes, count: int, what: str) -> tuple[np.ndarray, np.ndarray]:
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


def _decode_v1_bars(blob: bytes, count: int) -> pd.DataFrame:
    """Format-1 ``bars`` as an OHLCV frame indexed by UTC ``bar_time``."""
    times, ohlcv = _decode_bars(blob, count, "format-1 bars")
    index = pd.DatetimeIndex(pd.to_datetime(times, unit=TIME_UNIT, utc=True), name="bar_time")
    return pd.DataFrame(ohlcv, index=index.as_unit(TIME_UNIT), columns=list(OHLCV))
