"""Field checks of a bar: each takes an untrusted value and returns the clean one, or raises
``MalformedBarError`` with a one-sentence reason and its ``REJECTION_KINDS`` code.

They run in ``Bar.__post_init__`` (so a ``Bar`` is always valid) and hence on every parsed
record. Works without numpy (the live-collector image has none); with it, numpy scalars are
numbers too.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stocksage.bars.schema import (
    INTERVALS,
    MAX_PRICE,
    MAX_SOURCE_CHARS,
    MAX_TIME,
    MAX_TIME_CHARS,
    MAX_VOLUME,
    MIN_MAGNITUDE,
    MIN_TIME,
    SYMBOL_RE,
    MalformedBarError,
)
from stocksage.bars.times import format_time

try:
    import numpy as np
except ImportError:  # the live-collector image ships without numpy/pandas (Dockerfile)
    np = None  # type: ignore[assignment]

__all__ = [
    "check_aligned",
    "check_interval",
    "check_number",
    "check_ohlc",
    "check_source",
    "check_symbol",
    "check_time",
    "check_time_text",
    "clip",
    "json_type",
]

_CALENDAR_DATE_RE = re.compile(r"^\d{4}-\d{2}-\d{2}([T ]|$)")

_NUMBER_TYPES: tuple[type, ...] = (
    (int, float) if np is None else (int, float, np.integer, np.floating)
)


def check_symbol(value: Any) -> str:
    """An ASCII ticker, upper-cased (``symbol_not_string``, ``symbol_not_ascii``,
    ``symbol_invalid``). ASCII is checked before case folding: ``"ß".upper() == "SS"``."""
    if not isinstance(value, str):
        raise MalformedBarError(f"symbol must be a string, got {json_type(value)}",
                                "symbol_not_string")
    if not value.isascii():
        raise MalformedBarError(f"symbol {clip(value)!r} is not ASCII", "symbol_not_ascii")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise MalformedBarError(f"symbol {clip(value)!r} is not a valid ticker",
                                "symbol_invalid")
    return symbol


def check_time(value: Any) -> datetime:
    """A tz-aware datetime or ISO-8601 text with an offset -> UTC datetime in 1970 .. 2200."""
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value) > MAX_TIME_CHARS:
            raise MalformedBarError(f"bar_time {clip(value)!r} is too long", "time_too_long")
        try:
            if not _CALENDAR_DATE_RE.match(value):  # ISO week/ordinal dates: other spellings
                raise ValueError(value)
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedBarError(f"bar_time {clip(value)!r} is not an ISO-8601 time",
                                    "time_unparseable") from None
    else:
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {json_type(value)}",
                                "time_not_string")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MalformedBarError(f"bar_time {clip(str(value))!r} has no UTC offset",
                                "time_no_offset")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise MalformedBarError(f"bar_time {clip(str(value))!r} is out of range",
                                "time_out_of_range") from None
    if moment < MIN_TIME:
        raise MalformedBarError(f"bar_time {format_time(moment)} is before 1970",
                                "time_before_epoch")
    if moment >= MAX_TIME:
        raise MalformedBarError(f"bar_time {format_time(moment)} is not before 2200",
                                "time_out_of_range")
    return moment


def check_time_text(value: Any) -> datetime:
    """``check_time`` for decoded JSON: only a string is accepted (``time_not_string``)."""
    if not isinstance(value, str):
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {json_type(value)}",
                                "time_not_string")
    return check_time(value)


def check_number(name: str, value: Any) -> float:
    """A price (``name`` open/high/low/close: > 0, <= ``MAX_PRICE``) or the volume (>= 0,
    <= ``MAX_VOLUME``) as a finite float; booleans and non-numbers are refused."""
    if isinstance(value, bool):
        raise MalformedBarError(f"{name} must be a number, got boolean", "number_is_boolean")
    if not isinstance(value, _NUMBER_TYPES):
        raise MalformedBarError(f"{name} must be a number, got {json_type(value)}",
                                "not_a_number")
    try:
        number = float(value)  # type: ignore[arg-type]  # an int/float/Decimal, checked above
    except OverflowError:
        raise MalformedBarError(f"{name} is too large", "number_not_finite") from None
    if not math.isfinite(number):
        kind = "number_not_finite" if math.isinf(number) else "non_finite_literal"
        raise MalformedBarError(f"{name} {number} is not finite", kind)
    if number < 0:
        raise MalformedBarError(f"{name} {number} is negative", "value_negative")
    if 0 < number < MIN_MAGNITUDE:
        raise MalformedBarError(f"{name} {number:g} is below DynamoDB's smallest number "
                                f"{MIN_MAGNITUDE:g}", "number_too_small")
    if name == "volume":
        if number > MAX_VOLUME:
            raise MalformedBarError(f"volume {number:g} is implausibly large (> {MAX_VOLUME:g})",
                                    "volume_implausible")
        return number
    if number == 0:
        raise MalformedBarError(f"{name} is zero", "price_zero")
    if number > MAX_PRICE:
        raise MalformedBarError(f"{name} {number:g} is implausibly large (> {MAX_PRICE:g})",
                                "price_implausible")
    return number


def check_interval(value: Any) -> str:
    """One of ``INTERVALS`` (``interval_not_string``, ``interval_unknown``)."""
    if not isinstance(value, str):
        raise MalformedBarError(f"interval must be a string, got {json_type(value)}",
                                "interval_not_string")
    if value not in INTERVALS:
        raise MalformedBarError(f"interval {clip(value)!r} is not valid (known: "
                                f"{', '.join(sorted(INTERVALS))})"[:110], "interval_unknown")
    return value


_UNIT_SECONDS = {"m": 60, "h": 3600}


def check_aligned(moment: datetime, interval: str) -> datetime:
    """``moment`` (UTC) is the start of a bar of ``interval`` (``time_not_aligned``).

    Intraday intervals (``1m`` .. ``4h``) start at UTC multiples of their width (epoch
    seconds, no fraction); daily and weekly bars at 00:00 UTC of their session date, so
    ``2024-01-02T00:00:00-05:00`` (05:00Z) is not the same day's bar spelled differently.
    """
    unit = _UNIT_SECONDS.get(interval[-1])
    if unit is None:  # 1d, 1w: the session date at midnight UTC
        aligned = (moment.hour, moment.minute, moment.second, moment.microsecond) == (0, 0, 0, 0)
        where = "00:00 UTC (the session date)"
    else:
        width = int(interval[:-1]) * unit
        aligned = moment.microsecond == 0 and int(moment.timestamp()) % width == 0
        where = f"a {interval} boundary in UTC"
    if not aligned:
        raise MalformedBarError(f"bar_time {format_time(moment)} of a {interval} bar is not at "
                                f"{where}", "time_not_aligned")
    return moment


def check_source(value: Any) -> str:
    """Printable text of at most ``MAX_SOURCE_CHARS`` characters (``source_invalid``)."""
    if not isinstance(value, str):
        raise MalformedBarError(f"source must be a string, got {json_type(value)}",
                                "source_invalid")
    if len(value) > MAX_SOURCE_CHARS or not value.isprintable():
        raise MalformedBarError(f"source {clip(value)!r} is not valid", "source_invalid")
    return value


def check_ohlc(open_: float, high: float, low: float, close: float) -> None:
    """``high >= max(open, close, low)`` and ``low <= min(open, close)`` (``ohlc_inconsistent``)."""
    for name, value in (("open", open_), ("close", close), ("low", low)):
        if high < value:
            raise MalformedBarError(f"high {high} is below {name} {value}", "ohlc_inconsistent")
    for name, value in (("open", open_), ("close", close)):
        if low > value:
            raise MalformedBarError(f"low {low} is above {name} {value}", "ohlc_inconsistent")


def json_type(value: Any) -> str:
    """The JSON name of a decoded value's type (``null``, ``boolean``, ``array``...), for
    error messages."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, str):
        return "string"
    if isinstance(value, (list, tuple)):
        return "array"
    if isinstance(value, Mapping):
        return "object"
    return type(value).__name__


def clip(text: str, limit: int = 40) -> str:
    """``text`` cut to ``limit`` characters (``...`` appended): hostile input stays short in
    reasons and logs."""
    return text if len(text) <= limit else text[:limit] + "..."

