"""Lambda events for tests: JSON fixtures (``tests/events/*.json``) and Kinesis events.

``kinesis_event`` builds the event a Kinesis event source mapping delivers to the processor
from bars or raw payloads: base64 ``data``, consecutive sequence numbers (decimal strings, as
Kinesis writes them), ``eventID = <shard>:<sequence>``, partition key = the bar's symbol, the
stream's ARN and region. Every record is a copy of the first record of
``tests/events/kinesis_data_streams_event.json`` (an event as AWS sends it) with these fields
replaced, so the helper cannot drift from the fixture (``tests/unit/helpers/test_events.py``).
"""

from __future__ import annotations

import base64
import copy
import json
from collections.abc import Iterable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, Protocol

EVENTS_DIR = Path(__file__).resolve().parents[1] / "events"
KINESIS_EVENT = "kinesis_data_streams_event"
STREAM_ARN = "arn:aws:kinesis:us-east-1:123456789012:stream/stocksage-bars"
SHARD_ID = "shardId-000000000000"
FIRST_SEQUENCE = 49590338271490256608559692538361571095921575989136588898
"""Sequence number of the fixture's first record (Kinesis writes 56-digit decimal strings)."""


class _Serialisable(Protocol):  # stocksage.bars.Bar
    symbol: str

    def to_json(self) -> bytes: ...


Payload = _Serialisable | Mapping[str, Any] | bytes | str
"""A bar (``Bar.to_json``), a JSON object, or the record's raw data (bytes or text)."""


@cache
def _load(name: str) -> str:
    return (EVENTS_DIR / f"{name}.json").read_text()


def load_event(name: str) -> dict[str, Any]:
    """A fresh copy of ``tests/events/<name>.json``."""
    return json.loads(_load(name))


def record_data(payload: Payload) -> bytes:
    """The bytes a producer puts on the stream for ``payload``."""
    if isinstance(payload, bytes):
        return payload
    if isinstance(payload, str):
        return payload.encode()
    if isinstance(payload, Mapping):
        return json.dumps(payload, separators=(",", ":")).encode()
    return payload.to_json()


def payload_symbol(payload: Payload) -> str | None:
    """The symbol of a bar or of a JSON object with a ``symbol``; None for anything else."""
    if isinstance(payload, bytes | str):
        try:
            payload = json.loads(payload)
        except ValueError:
            return None
    if isinstance(payload, Mapping):
        symbol = payload.get("symbol")
        return symbol if isinstance(symbol, str) else None
    return payload.symbol


def kinesis_record(payload: Payload, *, sequence_number: int | str = FIRST_SEQUENCE,
                   partition_key: str | None = None, shard_id: str = SHARD_ID,
                   stream_arn: str = STREAM_ARN, arrival: float | None = None) -> dict[str, Any]:
    """One record of a Kinesis Data Streams Lambda event.

    Args:
        payload: The record's data (see ``Payload``).
        sequence_number: Its sequence number.
        partition_key: Default: the payload's symbol (a payload without one needs it).
        shard_id: The shard, part of ``eventID``.
        stream_arn: ``eventSourceARN``; ``awsRegion`` is its region.
        arrival: ``approximateArrivalTimestamp`` (epoch seconds); default: the fixture's.
    """
    key = partition_key if partition_key is not None else payload_symbol(payload)
    if key is None:
        raise ValueError(f"payload {payload!r:.60} has no symbol: pass partition_key")
    record = copy.deepcopy(load_event(KINESIS_EVENT)["Records"][0])
    kinesis = record["kinesis"]
    kinesis.update(partitionKey=key, sequenceNumber=str(sequence_number),
                   data=base64.b64encode(record_data(payload)).decode("ascii"))
    if arrival is not None:
        kinesis["approximateArrivalTimestamp"] = arrival
    record.update(eventID=f"{shard_id}:{sequence_number}", eventSourceARN=stream_arn,
                  awsRegion=stream_arn.split(":")[3])
    return record


def kinesis_event(payloads: Iterable[Payload], *, first_sequence: int = FIRST_SEQUENCE,
                  partition_key: str | None = None, shard_id: str = SHARD_ID,
                  stream_arn: str = STREAM_ARN, arrival: float | None = None) -> dict[str, Any]:
    """A Kinesis Data Streams Lambda event: one record per payload, in order, from one shard
    (sequence numbers ``first_sequence``, ``first_sequence + 1``, ...; other arguments as for
    ``kinesis_record``)."""
    return {"Records": [
        kinesis_record(payload, sequence_number=first_sequence + i, partition_key=partition_key,
                       shard_id=shard_id, stream_arn=stream_arn, arrival=arrival)
        for i, payload in enumerate(payloads)]}
