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
from datetime import UTC, datetime
from typing import Any

from stocksage.local.esm.mapping import MappingConfig
from stocksage.local.esm.records import KRecord

log = logging.getLogger("stocksage.local.esm")


def list_shard_ids(kinesis: Any, stream_arn: str) -> list[str]:
    """Every shard of the stream (open and closed), in ``ListShards`` order."""
    ids: list[str] = []
    token = None
    while True:
        kwargs: dict[str, Any] = {"NextToken": token} if token else {"StreamARN": stream_arn}
        resp = kinesis.list_shards(**kwargs)
        ids += [s["ShardId"] for s in resp.get("Shards", [])]
        token = resp.get("NextToken")
        if not token:
            return ids


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
