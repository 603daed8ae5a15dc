"""Bar times: their text form on the stream and in the tables, and their integer form."""

from __future__ import annotations

import functools
from datetime import UTC, datetime

__all__ = ["TIME_UNIT", "epoch_micros", "format_time"]

TIME_UNIT = "us"
"""Resolution of every ``bar_time`` DatetimeIndex built by stocksage (microseconds, UTC)."""

_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)


def epoch_micros(moment: datetime) -> int:
    """Microseconds since 1970-01-01 UTC of a tz-aware time, in exact integer arithmetic
    (``timestamp() * 1e6`` rounds through a float). The unit of stored bar times
    (``TIME_UNIT``)."""
    delta = moment - _EPOCH
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


@functools.lru_cache(maxsize=4096)
def format_time(moment: datetime) -> str:
    """ISO-8601 UTC text of a tz-aware time: ``YYYY-MM-DDTHH:MM:SSZ``.

    Fractional seconds are written (``.ffffffZ``) only when non-zero. Cached (the last 4,096
    times): a live feed formats the same bar time for every symbol, three times per bar
    (results key, alert, state); equal aware times are the same instant, so the same text.

    Raises:
        ValueError: for a naive datetime.
    """
    if moment.tzinfo is None or moment.utcoffset() is None:
        raise ValueError("time must be timezone-aware")
    utc = moment.astimezone(UTC)
    if utc.microsecond:
        return utc.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    return utc.strftime("%Y-%m-%dT%H:%M:%SZ")
