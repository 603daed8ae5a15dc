"""Reading a mapping's stream: its shards, where to start in each, and the next records.

Thin functions over the Kinesis API, with the event source mapping's rules for where reading
starts::

    for shard_id in list_shard_ids(kinesis, config.event_source_arn):
        iterator = shard_iterator(kinesis, config, shard_id, after=checkpoint)
        records, iterator = get_records(kinesis, config.event_source_arn, iterator, limit=100)

Starting positions: after the checkpoint (``AFTER_SEQUENCE_NUMBER``) when there is one and the
stream accepts it, else the mapping's ``StartingPosition``: ``TRIM_HORIZON``, ``AT_TIMESTAMP``
(``StartingPositionTimestamp``), or ``LATEST``, read as ``AT_TIMESTAMP`` at the mapping's
``LastModified`` so that records put between the mapping's creation and its discovery by the
engine are not lost.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from stocksage.local.esm.mapping import MappingConfig
from stocksage.local.esm.records import KRecord

log = logging.getLogger("stocksage.local.esm")


def list_shard_ids(kinesis: Any, stream_arn: str) -> list[str]:
    """Every shard of the stream (open and closed), in ``ListShards`` order."""
    return list(list_shards(kinesis, stream_arn))


@dataclass(frozen=True)
class ShardInfo:
    """What ``ListShards`` says of a shard.

    Attributes:
        parents: The shards it was split (``ParentShardId``) or merged from (and
            ``AdjacentParentShardId``); none for a shard of the stream's creation.
        ending_sequence: ``SequenceNumberRange.EndingSequenceNumber``: set once the shard is
            closed (split or merged), the last sequence number it holds.
    """

    parents: tuple[str, ...] = ()
    ending_sequence: str | None = None


def list_shards(kinesis: Any, stream_arn: str) -> dict[str, ShardInfo]:
    """``{shard id: ShardInfo}`` of every shard (open and closed), in ``ListShards`` order."""
    shards: dict[str, ShardInfo] = {}
    token = None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {"StreamARN": stream_arn}
        resp = kinesis.list_shards(**kwargs)
        for shard in resp.get("Shards", []):
            parents = tuple(p for p in (shard.get("ParentShardId"),
                                        shard.get("AdjacentParentShardId")) if p)
            ending = (shard.get("SequenceNumberRange") or {}).get("EndingSequenceNumber")
            shards[shard["ShardId"]] = ShardInfo(parents, ending)
        token = resp.get("NextToken")
        if not token:
            return shards


def shard_iterator(kinesis: Any, config: MappingConfig, shard_id: str,
                   after: str | None = None) -> str:
    """A shard iterator after sequence number ``after`` when given and accepted (a stream
    recreated or trimmed rejects it: logged), else at the mapping's starting position."""
    if after:
        try:
            return kinesis.get_shard_iterator(
                StreamName=config.stream_name, ShardId=shard_id,
                ShardIteratorType="AFTER_SEQUENCE_NUMBER",
                StartingSequenceNumber=after)["ShardIterator"]
        except Exception as err:  # noqa: BLE001 - stream recreated/trimmed
            log.warning("checkpoint %s of %s rejected (%s); using the starting position",
                        after, shard_id, err)
    position = config.starting_position
    # by name: moto's iterators only carry the stream name
    kwargs: dict[str, Any] = {"StreamName": config.stream_name, "ShardId": shard_id}
    if position == "AT_TIMESTAMP" and config.starting_position_timestamp:
        kwargs.update(ShardIteratorType="AT_TIMESTAMP",
                      Timestamp=config.starting_position_timestamp)
    elif position == "LATEST" and config.last_modified is not None:
        kwargs.update(ShardIteratorType="AT_TIMESTAMP", Timestamp=min(
            config.last_modified, datetime.now(UTC)))
    elif position == "LATEST":
        kwargs.update(ShardIteratorType="LATEST")
    else:
        kwargs.update(ShardIteratorType="TRIM_HORIZON")
    return kinesis.get_shard_iterator(**kwargs)["ShardIterator"]


def get_records(kinesis: Any, stream_arn: str, iterator: str,
                limit: int) -> tuple[list[KRecord], str | None]:
    """Up to ``limit`` records from ``iterator`` and the next iterator (None: the shard is
    closed and read to its end)."""
    resp = kinesis.get_records(ShardIterator=iterator, StreamARN=stream_arn, Limit=limit)
    records = []
    for r in resp.get("Records", []):
        arrival = r["ApproximateArrivalTimestamp"]
        records.append(KRecord(
            r["SequenceNumber"], r["PartitionKey"], bytes(r["Data"]),
            arrival.timestamp() if hasattr(arrival, "timestamp") else float(arrival)))
    return records, resp.get("NextShardIterator")
