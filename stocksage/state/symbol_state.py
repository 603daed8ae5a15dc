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
* ``core`` (B): ``stocksage.indicators.incremental.Kernel`` row + the last bar's outputs,
  ``prob_up`` and ``range_forecast`` (packed float64, ~0.6 KB; core layout 2; layout 1, without
  ``range_forecast``, is read too).
* ``recent`` / ``recent_count`` (B / N): the last K OHLCV bars, K = the largest look-back of
  the symbol's alert rules (zlib of int64 µs times + float64 columns); absent when K = 0.
* ``alerts_last_fired`` (M): ``{rule_id: bar index}`` of the last firing of each rule with a
  cooldown.
* ``outbox`` (L): alert messages not yet published (each the JSON text of
  ``Alert.message()``).
* ``pending_since`` (S): oldest bar whose results item still waits for a prediction (absent
  when none).
* ``trades`` (S): JSON of the trade path's state (``TradePathState``), absent for a symbol
  that never received a trade: the bar builder (open bars, watermark, trade ids of open
  bars), ``applied`` (``{shard id: last sequence number applied}``: a redelivered trades or
  watermark record is skipped), the last trade price (for crossings) and the alert ids that
  fired intrabar on bars still open.

Size: ~0.9 KB for a symbol with price rules only; a 240-bar support/resistance rule adds
the 241 last bars (see docs/BENCHMARKS.md for measured sizes).

Format 1 is read and migrated by ``stocksage.state.migration``.
"""

from __future__ import annotations

import json
import struct
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import numpy as np

from stocksage.alerts.firing import COOLDOWN_STATE_KEY
from stocksage.alerts.window import RowValues, Values
from stocksage.bars import format_time
from stocksage.indicators.definition import OUTPUT_COLUMNS
from stocksage.indicators.incremental import (
    ATR_WARM_BARS,
    CLOSES_KEPT,
    SCALARS,
    Kernel,
)
from stocksage.state.blobs import RecentBars, StateFormatError, as_bytes, padded, parse_time
from stocksage.state.migration import migrate_v1

__all__ = ["FORMAT", "SymbolState", "TradePathState"]

FORMAT = 2
"""Current state item format."""

_HEADER = struct.Struct("<Bqh")  # core layout version, bars seen, closes kept
_CORE_LAYOUT = 2  # 1 = last values without range_forecast (read, padded with NaN)
_VALUE_NAMES = (*OUTPUT_COLUMNS, "prob_up", "range_forecast")
_LAST = len(_VALUE_NAMES)  # outputs + prob_up + range_forecast
_VALUE_INDEX = {name: i for i, name in enumerate(_VALUE_NAMES)}
_LAST_BY_LAYOUT = {1: _LAST - 1, 2: _LAST}


@dataclass
class TradePathState:
    """What the processor's trade path keeps per symbol (``trades`` attribute, JSON).

    Attributes:
        builder: ``stocksage.bars.aggregation.BarBuilder.to_state()``, or None before the
            first trade.
        applied: ``{shard id: sequence number}`` (decimal strings) of the last trades or
            watermark record applied per shard; at most ``APPLIED_SHARDS`` shards kept.
        last_price: Price of the last accepted trade (arrival order), None before the first.
        intrabar_fired: Alert ids fired intrabar on bars not closed yet (a rule fires at most
            once per bar: the close evaluation skips these ids).
    """

    builder: dict[str, Any] | None = None
    applied: dict[str, str] = field(default_factory=dict)
    last_price: float | None = None
    intrabar_fired: list[str] = field(default_factory=list)

    APPLIED_SHARDS = 64

    def already_applied(self, shard_id: str, sequence_number: str) -> bool:
        """Whether the record at ``sequence_number`` of ``shard_id`` was applied before."""
        last = self.applied.get(shard_id)
        return last is not None and int(sequence_number) <= int(last)

    def mark_applied(self, shard_id: str, sequence_number: str) -> None:
        """Record ``sequence_number`` as the last applied of ``shard_id`` (never lowers it)."""
        if not self.already_applied(shard_id, sequence_number):
            self.applied.pop(shard_id, None)
            self.applied[shard_id] = sequence_number
            while len(self.applied) > self.APPLIED_SHARDS:  # oldest shards (resharded away)
                self.applied.pop(next(iter(self.applied)))

    def encode(self) -> str:
        """Compact JSON text."""
        return json.dumps({"builder": self.builder, "applied": self.applied,
                           "last_price": self.last_price,
                           "intrabar_fired": self.intrabar_fired},
                          separators=(",", ":"), allow_nan=False)

    @classmethod
    def decode(cls, text: str) -> TradePathState:
        """Read ``encode``'s text.

        Raises:
            StateFormatError: not the JSON ``encode`` writes.
        """
        try:
            obj = json.loads(text)
            price = obj.get("last_price")
            return cls(builder=obj.get("builder"),
                       applied={str(k): str(v) for k, v in obj.get("applied", {}).items()},
                       last_price=None if price is None else float(price),
                       intrabar_fired=[str(a) for a in obj.get("intrabar_fired", [])])
        except (ValueError, TypeError, AttributeError) as err:
            raise StateFormatError(f"trades state is corrupt ({err})") from None


@dataclass
class SymbolState:
    """Everything stored for one symbol between batches (see the module docstring).

    Attributes:
        symbol: Ticker (partition key).
        kernel: One-row ``stocksage.indicators.incremental.Kernel`` (its ``n`` is ``bars_seen``).
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
        trades: The trade path's state, None for a symbol that never received a trade.
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
    trades: TradePathState | None = None

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
        if self.trades is not None:
            item["trades"] = self.trades.encode()
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
                return cls(**migrate_v1(item, _VALUE_NAMES), migrated_from=1)
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
        blob = as_bytes(item["core"])
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
        closes = padded(floats[at: at + kept], CLOSES_KEPT, np.nan)
        volumes = padded(floats[at + kept: at + 2 * kept], CLOSES_KEPT, np.nan)
        at += 2 * kept
        kernel = Kernel(n=np.array([n], dtype=np.int64),
                        scalars=floats[: len(SCALARS)].reshape(1, -1),
                        closes=closes.reshape(1, -1), volumes=volumes.reshape(1, -1),
                        warm_tr=padded(floats[at: at + warm], ATR_WARM_BARS, 0.0, left=False)
                        .reshape(1, -1))
        last = padded(floats[at + warm:], _LAST, np.nan, left=False)
        recent = RecentBars()
        if "recent" in item:
            recent = RecentBars.decode(as_bytes(item["recent"]), int(item["recent_count"]))
        return cls(
            symbol=str(item["symbol"]), kernel=kernel, last_values=last,
            version=int(item["version"]), interval=str(item.get("interval", "")),
            last_bar_time=parse_time(item.get("last_bar_time")), recent=recent,
            last_fired={str(k): int(v) for k, v in (item.get(COOLDOWN_STATE_KEY) or {}).items()},
            outbox=[json.loads(m) for m in item.get("outbox") or []],
            pending_since=item.get("pending_since") or None,
            trades=TradePathState.decode(str(item["trades"])) if item.get("trades") else None,
        )

