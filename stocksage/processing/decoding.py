"""One stream record -> the input of ``process_batch``: a bar, or a trades/watermark record.

The stream carries three record types (partition key = symbol): a bar (``stocksage.bars``,
no ``type`` field) and the trades and watermark records of ``stocksage.bars.trades`` (with
``"type"``). The processor Lambda and ``stocksage redrive`` decode with this one function,
so a record is validated the same way on the live path and when redriven.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

from stocksage.bars import parse_bar
from stocksage.bars.schema import DEFAULT_MAX_FUTURE_SKEW
from stocksage.bars.trade_parsing import RejectedTrade, parse_trade_record
from stocksage.processing.ports import StreamBar, StreamTrades

__all__ = ["DecodedRecord", "decode_record", "is_trade_record"]


@dataclass(frozen=True)
class DecodedRecord:
    """A decoded record.

    Attributes:
        item: The bar or the trades/watermark record, with its stream position.
        rejected: The invalid trades of a trades record (each goes to the failure
            destination with its reason; the valid ones are in ``item``).
    """

    item: StreamBar | StreamTrades
    rejected: tuple[RejectedTrade, ...] = ()


def is_trade_record(data: bytes | str) -> bool:
    """Whether ``data`` is routed to the trades parser: it has a ``"type"`` key (bars never
    have one; a record that only pretends is refused by that parser with its reason)."""
    return (b'"type"' in data) if isinstance(data, bytes) else ('"type"' in data)


def decode_record(data: bytes | str, *, partition_key: str, sequence_number: str,
                  shard_id: str, arrived_at: datetime | float | None = None,
                  max_future_skew: timedelta = DEFAULT_MAX_FUTURE_SKEW) -> DecodedRecord:
    """Decode and validate one record.

    Args:
        data: The record's data (UTF-8 JSON).
        partition_key: Its partition key; must be the record's symbol.
        sequence_number: Its sequence number (decimal string).
        shard_id: The shard it was read from (a trades record's stream identity with the
            sequence number).
        arrived_at: Its approximate arrival time; times later than it plus
            ``max_future_skew`` are refused.
        max_future_skew: Clock-skew tolerance.

    Returns:
        The bar or trades record; a trades record with no valid trade has an empty
        ``trades`` and every trade in ``rejected``.

    Raises:
        MalformedBarError: the record as a whole is invalid (its ``kind`` and ``reason``).
    """
    if is_trade_record(data):
        parsed = parse_trade_record(data, partition_key=partition_key, arrived_at=arrived_at,
                                    max_future_skew=max_future_skew)
        return DecodedRecord(StreamTrades(parsed.symbol, parsed.trades, sequence_number,
                                          shard_id, parsed.watermark_ns), parsed.rejected)
    bar = parse_bar(data, partition_key=partition_key, arrived_at=arrived_at,
                    max_future_skew=max_future_skew)
    return DecodedRecord(StreamBar(bar, sequence_number))
