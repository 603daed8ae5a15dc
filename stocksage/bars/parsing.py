"""Stream records -> ``Bar``: size and UTF-8 checks, a strict JSON decoder, the closed schema
and the record-level checks (partition key, arrival time). Every failure is a
``MalformedBarError``; nothing else escapes ``parse_bar``."""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from typing import Any

from stocksage.bars.checks import check_time_text, clip, json_type
from stocksage.bars.model import Bar
from stocksage.bars.schema import (
    DEFAULT_MAX_FUTURE_SKEW,
    MAX_JSON_DEPTH,
    MAX_PAYLOAD_BYTES,
    OPTIONAL_FIELDS,
    REQUIRED_FIELDS,
    MalformedBarError,
)
from stocksage.bars.times import format_time

__all__ = ["JSON_DECODER", "TRADES_JSON_DECODER", "bar_from_mapping", "decode_text",
           "json_depth", "parse_bar", "too_deep"]


def _reject_constant(token: str) -> Any:
    raise MalformedBarError(f"JSON token {token} is not a finite number", "non_finite_literal")


def _reject_duplicate_keys(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
    result: dict[str, Any] = {}
    for key, value in pairs:
        if key in result:
            raise MalformedBarError(f"field {clip(key)!r} appears twice", "duplicate_field")
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

TRADES_JSON_DECODER = json.JSONDecoder(parse_constant=_reject_constant,
                                       object_pairs_hook=_reject_duplicate_keys)
"""``JSON_DECODER`` without the integer hook, for trades records (their integer columns are
checked by value: a huge integer is refused by its range, never converted)."""

_STRUCTURE_RE = re.compile(r'"(?:[^"\\]|\\.)*"|[\[\]{}]')


def too_deep(text: str, limit: int = MAX_JSON_DEPTH) -> bool:
    """Whether JSON ``text`` nests brackets deeper than ``limit`` (the pre-parse guard).

    A text with at most ``limit`` brackets in all (strings included) cannot nest deeper, so
    the usual record costs two ``str.count`` calls; others are scanned (``json_depth``).
    """
    if text.count("[") + text.count("{") <= limit:
        return False
    return json_depth(text) > limit


def json_depth(text: str) -> int:
    """Deepest bracket nesting of JSON ``text`` (strings skipped)."""
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
        raise MalformedBarError(f"bar must be a JSON object, got {json_type(obj)}", "not_an_object")
    missing = [name for name in REQUIRED_FIELDS if name not in obj]
    if missing:
        raise MalformedBarError(f"missing field(s): {', '.join(missing)}", "missing_field")
    if strict:
        unknown = sorted(set(obj) - set(REQUIRED_FIELDS) - set(OPTIONAL_FIELDS))
        if unknown:
            names = ", ".join(clip(str(name), 20) for name in unknown[:3])
            more = f" (+{len(unknown) - 3} more)" if len(unknown) > 3 else ""
            raise MalformedBarError(f"unknown field(s): {names}{more}", "unknown_field")
    return Bar(
        symbol=obj["symbol"],
        bar_time=check_time_text(obj["bar_time"]),
        open=obj["open"],
        high=obj["high"],
        low=obj["low"],
        close=obj["close"],
        volume=obj["volume"],
        interval=obj.get("interval", "1d"),
        source=obj.get("source", ""),
    )


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
    if too_deep(text):
        raise MalformedBarError("JSON is nested too deeply", "json_too_deep")
    try:
        obj = JSON_DECODER.decode(text)
    except MalformedBarError:
        raise
    except RecursionError:
        raise MalformedBarError("JSON is nested too deeply", "json_too_deep") from None
    except ValueError as err:  # JSONDecodeError and int conversion limits
        raise MalformedBarError(f"data is not valid JSON ({clip(str(err), 60)})",
                                "invalid_json") from None
    bar = bar_from_mapping(obj, strict=True)
    if partition_key is not None and partition_key != bar.symbol:
        raise MalformedBarError(
            f"partition key {clip(partition_key, 24)!r} is not the symbol {bar.symbol}",
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
