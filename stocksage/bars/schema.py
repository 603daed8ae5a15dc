"""The limits a bar must respect, the error for input that breaks them, and every rejection
code (``REJECTION_KINDS``) with the reason it exists."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta

__all__ = [
    "DEFAULT_MAX_FUTURE_SKEW",
    "INTERVALS",
    "MAX_JSON_DEPTH",
    "MAX_PAYLOAD_BYTES",
    "MAX_PRICE",
    "MAX_SOURCE_CHARS",
    "MAX_TIME",
    "MAX_TIME_CHARS",
    "MAX_VOLUME",
    "MIN_MAGNITUDE",
    "MIN_TIME",
    "OPTIONAL_FIELDS",
    "REJECTION_KINDS",
    "REQUIRED_FIELDS",
    "SYMBOL_RE",
    "MalformedBarError",
]

MAX_PAYLOAD_BYTES = 64 * 1024
"""Largest accepted record payload (bytes of UTF-8)."""

MAX_PRICE = 1e9
"""Largest accepted price (currency units); the dearest share trades below 1e6."""

MAX_VOLUME = 1e15
"""Largest accepted volume (shares/units per bar); whole markets trade below 1e13 a day."""

MIN_MAGNITUDE = 1e-130
"""Smallest non-zero magnitude DynamoDB stores (its numbers span 1E-130 .. 9.99E+125 with 38
significant digits; a float has at most 17, and the caps below keep numbers under 1e126)."""

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
    "time_not_aligned": "bar_time is not the start of an interval in UTC (daily and weekly "
                        "bars: 00:00 UTC of the session date): one bar under two spellings "
                        "would enter twice",
    "time_in_future": "bar_time after arrival time + skew: a bar cannot precede its interval",
    "number_is_boolean": "true/false where a number belongs (Python would read it as 1/0)",
    "not_a_number": "a price or volume that is not a JSON number (string, null, array...)",
    "number_not_finite": "a number that overflows to infinity",
    "value_negative": "a negative price or volume",
    "number_too_small": f"a non-zero number below {MIN_MAGNITUDE:g}: DynamoDB cannot store it and "
                        "would reject the whole write request",
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
