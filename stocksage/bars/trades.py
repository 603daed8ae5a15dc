"""Trades (ticks): the record type beside the bar, packed per symbol on the stream.

No numpy here: the live collector's image builds and encodes trades without it.

A trade is one fill: symbol, exchange event time (UTC, epoch **nanoseconds**), price, size and,
when the provider gives them, a trade id and condition codes. The collector packs the trades
of one symbol into one Kinesis record (partition key = symbol), columnar so that a record of
a thousand trades costs one ``json.loads`` and a few numpy comparisons to validate::

    {"type":"trades","symbol":"ES","source":"mlfinpy:tick_data.csv",
     "t":[1378072800083000000,1378072800083000000],"p":[1640.25,1640.25],"s":[3,1],
     "i":["a1",null],"c":[["@"],null]}

``t``, ``p`` and ``s`` are required and of equal length (1 .. ``MAX_TRADES_PER_RECORD``);
``i`` (trade ids, string or null) and ``c`` (condition codes, list of short strings or null)
are optional and, when present, of the same length. A watermark heartbeat says that no trade
of the symbol at or before ``t`` will follow (late ones aside), so the processor may close its
bars without waiting for the symbol's next trade::

    {"type":"watermark","symbol":"ES","t":1378072860000000000}

``stocksage.bars.trade_parsing.parse_trade_record`` treats the record as hostile like
``parse_bar``: a record that cannot
be read at all (not JSON, wrong schema, bad symbol, unequal columns) raises
``MalformedBarError``; a record whose structure is sound but some trades are invalid returns
the valid trades and one ``RejectedTrade`` per invalid one (its index, reason, kind and the
raw values), so a single bad tick goes to the failure destination alone and loses nothing else.

Per-trade rules: time an integer within 1970 .. 2200 and not after arrival + skew; price a
finite number, > 0, <= ``MAX_PRICE``; size finite, 0 .. ``MAX_VOLUME``; non-zero numbers not
below ``MIN_MAGNITUDE`` (DynamoDB cannot store them); trade id printable text of at most 64
characters; at most 8 condition codes of at most 8 printable characters each.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stocksage.bars.checks import check_symbol, clip, json_type
from stocksage.bars.schema import (
    MAX_PRICE,
    MAX_TIME,
    MAX_VOLUME,
    MIN_MAGNITUDE,
    MIN_TIME,
    MalformedBarError,
)

__all__ = [
    "MAX_TIME_NS",
    "MAX_TRADES_PER_RECORD",
    "MAX_TRADE_ID_CHARS",
    "MIN_MAGNITUDE",
    "MIN_TIME_NS",
    "TRADE_REJECTION_KINDS",
    "Trade",
    "encode_trades",
    "encode_watermark",
    "time_ns",
    "trade_problem",
]

MAX_TRADES_PER_RECORD = 2_000
"""Most trades one record may pack (~100 KB of JSON at most, well under Kinesis' 1 MB)."""

TRADE_REJECTION_KINDS: dict[str, str] = {
    "record_type_unknown": "type is neither 'trades' nor 'watermark'",
    "columns_invalid": "t, p, s, i, c not arrays of one length in 1 .. MAX_TRADES_PER_RECORD",
    "time_not_integer": "a trade time that is not integer epoch nanoseconds",
    "trade_id_invalid": "a trade id that is not printable text of 1 .. 64 characters",
    "conditions_invalid": "condition codes that are not a short list of short codes",
}
"""Rejection codes of trades beyond the bar's ``REJECTION_KINDS`` (which trades share:
``time_before_epoch``, ``price_zero``, ``time_in_future``, ...)."""

MAX_TRADE_ID_CHARS = 64
MAX_CONDITIONS = 8
MAX_CONDITION_CHARS = 8
MIN_TIME_NS = int(MIN_TIME.timestamp()) * 1_000_000_000
"""Earliest trade time accepted (epoch ns: 1970-01-01)."""
MAX_TIME_NS = int(MAX_TIME.timestamp()) * 1_000_000_000
"""Trade times must be before this (epoch ns: 2200-01-01)."""
_TRADE_KEYS = frozenset({"type", "symbol", "source", "t", "p", "s", "i", "c"})
_WATERMARK_KEYS = frozenset({"type", "symbol", "t"})


def time_ns(moment: datetime) -> int:
    """Epoch nanoseconds of a tz-aware time (exact; datetimes hold microseconds).

    Raises:
        ValueError: for a naive datetime.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    delta = moment.astimezone(UTC) - datetime(1970, 1, 1, tzinfo=UTC)
    return ((delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds) * 1_000


@dataclass(frozen=True, slots=True)
class Trade:
    """One trade (fill) of one instrument.

    Attributes:
        symbol: Upper-case ticker (the bar's symbol rules).
        time_ns: Exchange event time, nanoseconds since 1970-01-01 UTC.
        price: Fill price in the instrument's currency units (> 0, <= ``MAX_PRICE``).
        size: Filled quantity (0 .. ``MAX_VOLUME``).
        trade_id: Provider's trade id when it has one (deduplicates redelivered fills); None
            otherwise: trades without an id are never deduplicated by content (identical fills
            in the same millisecond are separate trades whose volume counts).
        conditions: Provider condition codes (e.g. Alpaca's ``["@", "I"]``).

    Raises:
        MalformedBarError: when a field breaks the rules (module docstring).
    """

    symbol: str
    time_ns: int
    price: float
    size: float
    trade_id: str | None = None
    conditions: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        object.__setattr__(self, "symbol", check_symbol(self.symbol))
        reason = trade_problem(self.time_ns, self.price, self.size, self.trade_id,
                                list(self.conditions) or None)
        if reason is not None:
            raise MalformedBarError(*reason)
        object.__setattr__(self, "price", float(self.price))
        object.__setattr__(self, "size", float(self.size))

    @property
    def time(self) -> datetime:
        """Event time as a UTC datetime (microsecond resolution: nanoseconds truncated)."""
        return datetime.fromtimestamp(self.time_ns // 1_000 / 1e6, UTC).replace(
            microsecond=(self.time_ns // 1_000) % 1_000_000)


def encode_trades(symbol: str, trades: Sequence[Trade], source: str = "") -> bytes:
    """The compact record of ``trades`` (all of ``symbol``, 1 .. ``MAX_TRADES_PER_RECORD``).

    Raises:
        ValueError: no trade, too many, or a trade of another symbol.
    """
    if not 0 < len(trades) <= MAX_TRADES_PER_RECORD:
        raise ValueError(f"a record packs 1 .. {MAX_TRADES_PER_RECORD} trades, "
                         f"got {len(trades)}")
    if any(t.symbol != symbol for t in trades):
        raise ValueError(f"every trade of the record must be of {symbol}")
    body: dict[str, Any] = {"type": "trades", "symbol": symbol}
    if source:
        body["source"] = source
    body["t"] = [t.time_ns for t in trades]
    body["p"] = [t.price for t in trades]
    body["s"] = [int(t.size) if t.size.is_integer() and t.size < 2**53 else t.size
                 for t in trades]
    if any(t.trade_id is not None for t in trades):
        body["i"] = [t.trade_id for t in trades]
    if any(t.conditions for t in trades):
        body["c"] = [list(t.conditions) or None for t in trades]
    return json.dumps(body, separators=(",", ":"), allow_nan=False).encode()


def encode_watermark(symbol: str, watermark_ns: int) -> bytes:
    """The heartbeat record: no trade of ``symbol`` at or before ``watermark_ns`` follows."""
    return json.dumps({"type": "watermark", "symbol": check_symbol(symbol),
                       "t": int(watermark_ns)}, separators=(",", ":")).encode()


def _number_problem(name: str, value: Any, *, price: bool) -> tuple[str, str] | None:
    if isinstance(value, bool):
        return f"{name} must be a number, got boolean", "number_is_boolean"
    if not isinstance(value, (int, float)):
        return f"{name} must be a number, got {json_type(value)}", "not_a_number"
    try:
        number = float(value)
    except OverflowError:
        return f"{name} is too large", "number_not_finite"
    if not math.isfinite(number):
        return f"{name} {number} is not finite", "number_not_finite"
    if number < 0:
        return f"{name} {number} is negative", "value_negative"
    if price and number == 0:
        return f"{name} is zero", "price_zero"
    if number != 0 and number < MIN_MAGNITUDE:
        return (f"{name} {number:g} is below DynamoDB's smallest number {MIN_MAGNITUDE:g}",
                "number_too_small")
    if price and number > MAX_PRICE:
        return f"{name} {number:g} is implausibly large (> {MAX_PRICE:g})", "price_implausible"
    if not price and number > MAX_VOLUME:
        return f"{name} {number:g} is implausibly large (> {MAX_VOLUME:g})", "volume_implausible"
    return None


def _text_ok(value: str, limit: int) -> bool:
    return 0 < len(value) <= limit and value.isprintable()


def trade_problem(t: Any, p: Any, s: Any, i: Any, c: Any) -> tuple[str, str] | None:
    """(reason, kind) of the first rule one trade's raw values break, or None."""
    if isinstance(t, bool) or not isinstance(t, int):
        return f"time must be integer epoch nanoseconds, got {json_type(t)}", "time_not_integer"
    if t < MIN_TIME_NS:
        return f"time {t} is before 1970", "time_before_epoch"
    if t >= MAX_TIME_NS:
        return f"time {t} is not before 2200", "time_out_of_range"
    problem = _number_problem("price", p, price=True) or _number_problem("size", s, price=False)
    if problem:
        return problem
    if i is not None and not (isinstance(i, str) and _text_ok(i, MAX_TRADE_ID_CHARS)):
        return (f"trade id {clip(str(i))!r} is not printable text of 1 .. {MAX_TRADE_ID_CHARS} "
                "characters", "trade_id_invalid")
    if c is not None and not (isinstance(c, list) and len(c) <= MAX_CONDITIONS and all(
            isinstance(code, str) and _text_ok(code, MAX_CONDITION_CHARS) for code in c)):
        return (f"conditions must be a list of at most {MAX_CONDITIONS} short codes",
                "conditions_invalid")
    return None


