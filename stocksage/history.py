"""S3 layout of the raw bar history (shared by Firehose, the local runtime and backfill).

Objects: ``bars/symbol={SYMBOL}/year={YYYY}/month={MM}/{name}.json.gz``, each a gzip
NDJSON body with one ``Bar.to_json()`` per line (``\\n``-terminated). Year and month are those
of ``bar_time`` in UTC. The Hive-style ``key=value`` folders let Athena/Glue partition by
symbol, year and month.

Firehose note: Firehose concatenates record data as is; the delivery stream needs the
``AppendDelimiterToRecord`` processor (or producers must end records with ``\\n``).
``decode_object`` also accepts objects glued back-to-back on one line (``}{``) so history
written without the delimiter is still readable.
"""

from __future__ import annotations

import gzip
import hashlib
import logging
import re
import zlib
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

from stocksage.bars import JSON_DECODER, SYMBOL_RE, Bar, MalformedBarError, bar_from_mapping
from stocksage.bars.checks import check_time_text
from stocksage.bars.times import format_time, session_date_start

log = logging.getLogger("stocksage.history")

__all__ = ["PREFIX", "SkippedLines", "decode_object", "encode_objects", "history_key"]

PREFIX = "bars"
"""Top folder of the history in the bucket."""

_NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._=\-]{0,200}$")
_GZIP_MAGIC = b"\x1f\x8b"
MAX_OBJECT_BYTES = 512 * 1024 * 1024
"""Largest decompressed object ``decode_object`` accepts (guards against gzip bombs)."""


def history_key(symbol: str, bar_time: datetime, name: str) -> str:
    """S3 key of a history object.

    Args:
        symbol: Ticker (upper-cased; must match the bar symbol rule).
        bar_time: Any tz-aware time inside the object's month.
        name: Object base name without extension (letters, digits, ``._=-``; no ``/``).

    Returns:
        ``bars/symbol={SYMBOL}/year={YYYY}/month={MM}/{name}.json.gz``.

    Raises:
        ValueError: bad symbol, bad name or naive time.
    """
    ticker = symbol.strip().upper()
    if not SYMBOL_RE.match(ticker):
        raise ValueError(f"symbol {symbol!r} is not a valid ticker")
    if not _NAME_RE.match(name):
        raise ValueError(f"object name {name!r} must be 1-201 chars of [A-Za-z0-9._=-]")
    if bar_time.tzinfo is None or bar_time.utcoffset() is None:
        raise ValueError("bar_time must be timezone-aware")
    utc = bar_time.astimezone(UTC)
    return f"{PREFIX}/symbol={ticker}/year={utc.year:04d}/month={utc.month:02d}/{name}.json.gz"


def encode_objects(bars: Iterable[Bar], name: str | None = None) -> dict[str, bytes]:
    """Group bars by (symbol, UTC year, month) into gzip NDJSON bodies.

    Args:
        bars: Any bars; input order is kept inside each object (duplicates too: history is raw).
        name: Base name for every object; by default a deterministic name per object,
            ``{first time}_{last time}_{12 hex of sha256(body)}`` (e.g.
            ``20210323T000000Z_20210331T000000Z_3f2a...``), so re-encoding the same bars
            gives the same key and body (idempotent backfill; gzip mtime is fixed at 0).

    Returns:
        ``{s3 key: gzip body}``; empty for no bars.
    """
    groups: dict[tuple[str, int, int], list[Bar]] = {}
    for bar in bars:
        groups.setdefault((bar.symbol, bar.bar_time.year, bar.bar_time.month), []).append(bar)
    objects: dict[str, bytes] = {}
    for members in groups.values():
        text = b"".join(bar.to_json() + b"\n" for bar in members)
        body = gzip.compress(text, compresslevel=6, mtime=0)
        base = name or _default_name(members, text)
        objects[history_key(members[0].symbol, members[0].bar_time, base)] = body
    return objects


def _default_name(members: list[Bar], text: bytes) -> str:
    times = [bar.bar_time for bar in members]
    stamp = "%Y%m%dT%H%M%SZ"
    digest = hashlib.sha256(text).hexdigest()[:12]
    return f"{min(times).strftime(stamp)}_{max(times).strftime(stamp)}_{digest}"


def decode_object(body: bytes, *,
                  on_invalid: Callable[[int, str], None] | None = None) -> list[Bar]:
    """Bars of one history object (gzip NDJSON; plain NDJSON is accepted too).

    Blank lines (e.g. the trailing newline) are skipped; several objects glued on one line
    are split.

    Args:
        body: The object's bytes.
        on_invalid: Called with (1-based line number, reason) for each line that is not a
            valid bar (the delivery stream stores every record of the stream, the quarantined
            ones and trade records too); the line is skipped. Without it a bad line raises.

    Raises:
        MalformedBarError: corrupt or truncated gzip (the object is unreadable as a whole);
            without ``on_invalid``, a bad line (the reason starts with ``line N:``).
    """
    text = _inflate(bytes(body))
    bars: list[Bar] = []
    for number, line in enumerate(text.split(b"\n"), start=1):
        if not line.strip():
            continue
        try:
            bars.extend(_decode_line(number, line))
        except MalformedBarError as err:
            if on_invalid is None:
                raise
            on_invalid(number, err.reason)
    return bars


@dataclass
class SkippedLines:
    """Lines the history readers skipped: ``(object name, line number, reason)`` each, also
    logged as a warning (logger ``stocksage.history``)."""

    lines: list[tuple[str, int, str]] = field(default_factory=list)

    def __len__(self) -> int:
        return len(self.lines)

    def recorder(self, name: str) -> Callable[[int, str], None]:
        """The ``on_invalid`` callback of ``decode_object`` for the object ``name``."""
        def record(number: int, reason: str) -> None:
            self.lines.append((name, number, reason))
            log.warning("history line skipped", extra={"object": name, "line": number,
                                                       "reason": reason})
        return record


def _inflate(body: bytes) -> bytes:
    if not body.startswith(_GZIP_MAGIC):
        return body
    inflater = zlib.decompressobj(wbits=16 + zlib.MAX_WBITS)
    try:
        text = inflater.decompress(body, MAX_OBJECT_BYTES + 1)
    except zlib.error as err:
        raise MalformedBarError(f"object is not valid gzip ({err})") from None
    if len(text) > MAX_OBJECT_BYTES:
        raise MalformedBarError(f"object inflates beyond {MAX_OBJECT_BYTES} bytes")
    if not inflater.eof:
        raise MalformedBarError("object is truncated gzip")
    return text


def _bar_of(obj: Any) -> Bar:
    """``bar_from_mapping``; a daily or weekly bar stored before bar times had to start their
    interval (stamped at midnight New York, ``05:00Z``) is read at 00:00 UTC of its session
    date (``session_date_start``) instead of being skipped."""
    try:
        return bar_from_mapping(obj)
    except MalformedBarError as err:
        if err.kind != "time_not_aligned" or obj.get("interval", "1d") not in ("1d", "1w"):
            raise
        moment = session_date_start(check_time_text(obj["bar_time"]))
        return bar_from_mapping({**obj, "bar_time": format_time(moment)})


def _decode_line(number: int, line: bytes) -> list[Bar]:
    try:
        text = line.decode("utf-8")
    except UnicodeDecodeError as err:
        raise MalformedBarError(f"line {number}: not valid UTF-8 (byte {err.start})") from None
    bars: list[Bar] = []
    position = 0
    text = text.strip()
    while position < len(text):
        try:
            obj, position = JSON_DECODER.raw_decode(text, position)
            bars.append(_bar_of(obj))
        except MalformedBarError as err:
            raise MalformedBarError(f"line {number}: {err.reason}") from None
        except RecursionError:
            raise MalformedBarError(f"line {number}: JSON is nested too deeply") from None
        except ValueError as err:
            raise MalformedBarError(f"line {number}: not valid JSON ({err})") from None
        while position < len(text) and text[position] in " \t\r":
            position += 1
    return bars
