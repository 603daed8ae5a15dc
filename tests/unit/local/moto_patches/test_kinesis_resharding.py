"""The emulator reshards as Kinesis does: a split leaves the parent's records in the parent,
new records go to the children, and the closed parent ends with no next iterator."""

from __future__ import annotations

import boto3


def _read_all(kinesis, stream: str, shard: str) -> tuple[list[bytes], bool]:
    iterator = kinesis.get_shard_iterator(StreamName=stream, ShardId=shard,
                                          ShardIteratorType="TRIM_HORIZON")["ShardIterator"]
    data: list[bytes] = []
    for _ in range(5):
        response = kinesis.get_records(ShardIterator=iterator)
        data += [r["Data"] for r in response["Records"]]
        iterator = response.get("NextShardIterator")
        if not iterator:
            return data, True
    return data, False


def test_split_keeps_the_parents_records_and_routes_new_ones_to_the_children(kw):
    kinesis = boto3.client("kinesis", **kw)
    kinesis.create_stream(StreamName="reshard", ShardCount=1)
    kinesis.put_records(StreamName="reshard", Records=[
        {"Data": f"old{i}".encode(), "PartitionKey": f"k{i}"} for i in range(6)])
    parent = kinesis.list_shards(StreamName="reshard")["Shards"][0]["ShardId"]
    kinesis.split_shard(StreamName="reshard", ShardToSplit=parent,
                        NewStartingHashKey=str(2**127))
    put = kinesis.put_records(StreamName="reshard", Records=[
        {"Data": f"new{i}".encode(), "PartitionKey": f"k{i}"} for i in range(6)])
    shards = {s["ShardId"]: s for s in kinesis.list_shards(StreamName="reshard")["Shards"]}
    children = [sid for sid, s in shards.items() if s.get("ParentShardId") == parent]
    assert len(children) == 2 and {e["ShardId"] for e in put["Records"]} <= set(children)
    assert shards[parent]["SequenceNumberRange"]["EndingSequenceNumber"] == "6"
    old, ended = _read_all(kinesis, "reshard", parent)
    assert old == [f"old{i}".encode() for i in range(6)] and ended
    new = [d for child in children for d in _read_all(kinesis, "reshard", child)[0]]
    assert sorted(new) == sorted(f"new{i}".encode() for i in range(6))


def test_merge_keeps_the_parents_records_and_the_child_starts_empty(kw):
    kinesis = boto3.client("kinesis", **kw)
    kinesis.create_stream(StreamName="remerge", ShardCount=2)
    kinesis.put_records(StreamName="remerge", Records=[
        {"Data": f"old{i}".encode(), "PartitionKey": f"k{i}"} for i in range(8)])
    first, second = (s["ShardId"] for s in kinesis.list_shards(StreamName="remerge")["Shards"])
    kinesis.merge_shards(StreamName="remerge", ShardToMerge=first, AdjacentShardToMerge=second)
    child = next(s["ShardId"] for s in kinesis.list_shards(StreamName="remerge")["Shards"]
                 if s.get("AdjacentParentShardId"))
    assert _read_all(kinesis, "remerge", child)[0] == []
    parents = [d for sid in (first, second) for d in _read_all(kinesis, "remerge", sid)[0]]
    assert sorted(parents) == sorted(f"old{i}".encode() for i in range(8))
