"""``parse_trade_record``: a hostile trades or watermark record -> columnar valid trades.

The record format and the per-trade rules are in ``stocksage.bars.trades``. The record's
structure is checked once; each trade is then checked alone, so one invalid tick is returned
as a ``RejectedTrade`` (for the failure destination) and the others are kept.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np

from stocksage.bars.checks import check_source, check_symbol, clip, json_type
from stocksage.bars.parsing import TRADES_JSON_DECODER, decode_text, too_deep
from stocksage.bars.schema import (
    DEFAULT_MAX_FUTURE_SKEW,
    MAX_PRICE,
    MAX_VOLUME,
    MIN_MAGNITUDE,
    MalformedBarError,
)
from stocksage.bars.trades import (
    MAX_TIME_NS,
    MAX_TRADE_ID_CHARS,
    MAX_TRADES_PER_RECORD,
    MIN_TIME_NS,
    Trade,
    time_ns,
    trade_problem,
)

__all__ = ["ParsedTrades", "RejectedTrade", "TradeColumns", "parse_trade_record"]

_TRADE_KEYS = frozenset({"type", "symbol", "source", "t", "p", "s", "i", "c"})
_WATERMARK_KEYS = frozenset({"type", "symbol", "t"})


@dataclass(frozen=True)
class TradeColumns:
    """Trades of one symbol, columnar, in record order (not necessarily time order).

    Attributes:
        times_ns: int64 (n,) epoch nanoseconds.
        prices: float64 (n,).
        sizes: float64 (n,).
        trade_ids: n trade ids or None.
    """

    times_ns: np.ndarray
    prices: np.ndarray
    sizes: np.ndarray
    trade_ids: tuple[str | None, ...]

    def __len__(self) -> int:
        return len(self.times_ns)

    @classmethod
    def concat(cls, parts: Sequence[TradeColumns]) -> TradeColumns:
        """The trades of ``parts`` one after the other (arrival order kept)."""
        return cls(np.concatenate([c.times_ns for c in parts]),
                   np.concatenate([c.prices for c in parts]),
                   np.concatenate([c.sizes for c in parts]),
                   tuple(i for c in parts for i in c.trade_ids))

    @classmethod
    def of(cls, trades: Sequence[Trade]) -> TradeColumns:
        """Columns of ``trades`` (one symbol's; the symbol is not kept)."""
        return cls(np.array([t.time_ns for t in trades], dtype=np.int64),
                   np.array([t.price for t in trades], dtype=np.float64),
                   np.array([t.size for t in trades], dtype=np.float64),
                   tuple(t.trade_id for t in trades))


@dataclass(frozen=True)
class RejectedTrade:
    """One trade of a record that broke a rule.

    Attributes:
        index: Position in the record's columns.
        reason: One short sentence (e.g. ``"trade 3: price 0.0 is not positive"``).
        kind: A ``REJECTION_KINDS`` code.
        raw: The trade's raw values ``{"t", "p", "s", "i", "c"}`` as the record held them.
    """

    index: int
    reason: str
    kind: str
    raw: dict[str, Any]


@dataclass(frozen=True)
class ParsedTrades:
    """A trades or watermark record after ``parse_trade_record``.

    Attributes:
        symbol: The record's symbol (= its partition key).
        trades: The valid trades (empty for a watermark record).
        rejected: One entry per invalid trade.
        watermark_ns: For a watermark record, its time; else None.
        source: The record's source text ("" when absent).
        conditions: Condition codes of each valid trade (empty tuples when none).
    """

    symbol: str
    trades: TradeColumns
    rejected: tuple[RejectedTrade, ...] = ()
    watermark_ns: int | None = None
    source: str = ""
    conditions: tuple[tuple[str, ...], ...] = ()


def _decode_object(data: bytes | str) -> Mapping[str, Any]:
    text = decode_text(data)
    if too_deep(text):
        raise MalformedBarError("JSON is nested too deeply", "json_too_deep")
    try:
        obj = TRADES_JSON_DECODER.decode(text)
    except MalformedBarError:
        raise
    except (RecursionError, ValueError) as err:
        raise MalformedBarError(f"data is not valid JSON ({clip(str(err), 60)})",
                                "invalid_json") from None
    if not isinstance(obj, Mapping):
        raise MalformedBarError(f"record must be a JSON object, got {json_type(obj)}",
                                "not_an_object")
    return obj


def _columns(obj: Mapping[str, Any]) -> tuple[list[Any], ...]:
    missing = [k for k in ("t", "p", "s") if k not in obj]
    if missing:
        raise MalformedBarError(f"missing field(s): {', '.join(missing)}", "missing_field")
    columns = [obj["t"], obj["p"], obj["s"]]
    columns += [obj.get("i", [None] * len(obj["t"]) if isinstance(obj["t"], list) else None),
                obj.get("c", [None] * len(obj["t"]) if isinstance(obj["t"], list) else None)]
    if not all(isinstance(column, list) for column in columns):
        raise MalformedBarError("t, p, s, i and c must be JSON arrays", "columns_invalid")
    count = len(columns[0])
    if not 0 < count <= MAX_TRADES_PER_RECORD or any(len(c) != count for c in columns):
        raise MalformedBarError(f"columns must hold 1 .. {MAX_TRADES_PER_RECORD} trades each, "
                                f"equally many (got {[len(c) for c in columns]})",
                                "columns_invalid")
    return tuple(columns)


def _arrival_limit(arrived_at: datetime | float | None, skew: timedelta) -> int | None:
    if arrived_at is None:
        return None
    try:
        arrival = (arrived_at.astimezone(UTC) if isinstance(arrived_at, datetime)
                   else datetime.fromtimestamp(float(arrived_at), UTC))
    except (TypeError, ValueError, OverflowError, OSError):
        return None  # a broken arrival time is the caller's, not the record's, fault
    return time_ns(arrival + skew)


_NUMBER_TYPES = (int, float)


def _all_valid(t: list[Any], p: list[Any], s: list[Any], i: list[Any], c: list[Any],
               limit: int | None) -> TradeColumns | None:
    """The columns when every trade of the record is valid; None when some trade may be
    invalid (the caller then checks trade by trade with ``trade_problem``, which names each
    one). The same rules as ``trade_problem`` as one pass of comparisons per column (JSON
    numbers are never NaN or infinite: the decoder refuses those tokens; a huge integer fails
    its range comparison without conversion)."""
    high = MAX_TIME_NS if limit is None else min(MAX_TIME_NS, limit + 1)
    if not (all(type(v) is int and MIN_TIME_NS <= v < high for v in t)
            and all(type(v) in _NUMBER_TYPES and MIN_MAGNITUDE <= v <= MAX_PRICE for v in p)
            and all(type(v) in _NUMBER_TYPES and (v == 0 or MIN_MAGNITUDE <= v <= MAX_VOLUME)
                    for v in s)):
        return None
    if any(v is not None for v in i) and not all(
            v is None or (type(v) is str and 0 < len(v) <= MAX_TRADE_ID_CHARS and v.isprintable())
            for v in i):
        return None
    if any(v is not None for v in c) and any(trade_problem(0, 1.0, 0, None, v) for v in c):
        return None
    return TradeColumns(np.array(t, dtype=np.int64), np.array(p, dtype=np.float64),
                        np.array(s, dtype=np.float64), tuple(i))


def parse_trade_record(
    data: bytes | str,
    *,
    partition_key: str | None = None,
    arrived_at: datetime | float | None = None,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> ParsedTrades:
    """Parse one trades or watermark record (module docstring).

    Args:
        data: UTF-8 JSON bytes as read from Kinesis, or the decoded text.
        partition_key: When given, must equal the record's symbol (``partition_key_mismatch``).
        arrived_at: The record's arrival time (tz-aware datetime or epoch seconds); trades
            and watermarks later than it plus ``max_future_skew`` are ``time_in_future``.
        max_future_skew: Clock-skew tolerance (default 5 minutes).

    Returns:
        The valid trades, one ``RejectedTrade`` per invalid trade, or the watermark.

    Raises:
        MalformedBarError: when the record as a whole is unreadable (never another type).
    """
    obj = _decode_object(data)
    kind = obj.get("type")
    keys = _TRADE_KEYS if kind == "trades" else _WATERMARK_KEYS if kind == "watermark" else None
    if keys is None:
        raise MalformedBarError(f"type must be 'trades' or 'watermark', got "
                                f"{clip(str(kind))!r}", "record_type_unknown")
    unknown = sorted(set(obj) - keys)
    if unknown:
        raise MalformedBarError(f"unknown field(s): {', '.join(clip(k, 20) for k in unknown[:3])}",
                                "unknown_field")
    if "symbol" not in obj:
        raise MalformedBarError("missing field(s): symbol", "missing_field")
    symbol = check_symbol(obj["symbol"])
    if partition_key is not None and partition_key != symbol:
        raise MalformedBarError(f"partition key {clip(partition_key, 24)!r} is not the symbol "
                                f"{symbol}", "partition_key_mismatch")
    limit = _arrival_limit(arrived_at, max_future_skew)
    if kind == "watermark":
        if "t" not in obj:
            raise MalformedBarError("missing field(s): t", "missing_field")
        problem = trade_problem(obj["t"], 1.0, 0, None, None)
        if problem:
            raise MalformedBarError(f"watermark {problem[0]}", problem[1])
        if limit is not None and obj["t"] > limit:
            raise MalformedBarError(f"watermark {obj['t']} is after arrival + "
                                    f"{max_future_skew}", "time_in_future")
        return ParsedTrades(symbol, TradeColumns.of([]), watermark_ns=int(obj["t"]))
    source = check_source(obj.get("source", ""))
    t, p, s, i, c = _columns(obj)
    fast = _all_valid(t, p, s, i, c, limit)
    if fast is not None:
        return ParsedTrades(symbol, fast, source=source,
                            conditions=tuple(tuple(codes or ()) for codes in c))
    good: list[int] = []
    rejected: list[RejectedTrade] = []
    for index, values in enumerate(zip(t, p, s, i, c, strict=True)):
        problem = trade_problem(*values)
        if problem is None and limit is not None and values[0] > limit:
            problem = (f"time {values[0]} is after arrival + {max_future_skew}",
                       "time_in_future")
        if problem is None:
            good.append(index)
        else:
            rejected.append(RejectedTrade(index, f"trade {index}: {problem[0]}", problem[1],
                                          dict(zip("tpsic", values, strict=True))))
    columns = TradeColumns(np.array([t[k] for k in good], dtype=np.int64),
                           np.array([p[k] for k in good], dtype=np.float64),
                           np.array([s[k] for k in good], dtype=np.float64),
                           tuple(i[k] for k in good))
    return ParsedTrades(symbol, columns, tuple(rejected), source=source,
                        conditions=tuple(tuple(c[k] or ()) for k in good))
