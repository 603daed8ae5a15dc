"""Bar times: their text form on the stream and in the tables, and their integer form."""

from __future__ import annotations

import functools
from datetime import UTC, datetime, timedelta

__all__ = ["TIME_UNIT", "epoch_micros", "format_time", "session_date_start"]

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


def session_date_start(moment: datetime) -> datetime:
    """00:00 UTC of a daily bar's session date, from a daily bar time stamped elsewhere in its
    day: the UTC date nearest to ``moment``.

    A daily bar starts at 00:00 UTC of its session date (``Bar``'s alignment check); Alpaca
    stamps one at midnight New York time (``05:00Z``, ``04:00Z`` in summer), which this maps
    to its date without a time-zone database (the live-collector image is slim):
    ``2024-01-02T05:00:00Z`` -> ``2024-01-02T00:00:00Z``.
    """
    nearest = (moment.astimezone(UTC) + timedelta(hours=12)).date()
    return datetime(nearest.year, nearest.month, nearest.day, tzinfo=UTC)
