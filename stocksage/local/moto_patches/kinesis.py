"""Kinesis patches: moto stays out of the event source mappings and reads in O(1) per record.

* ``no_lambda_from_kinesis_puts``: while a Kinesis event source mapping exists moto invokes the
  function once per record *inside* ``put_records`` and tries Docker each time (puts fall from
  thousands to ~230 records/s, and a deleted function makes every put fail). The local runtime
  (``stocksage.local.esm``) owns event source mappings, so moto must not.
* ``kinesis_constant_time_shard_ops``: moto copies the whole shard to find the last sequence
  number on every put and scans the whole shard on every ``get_records``; both become O(1)/O(k).
"""

from __future__ import annotations

import hashlib
from collections import OrderedDict
from typing import Any


def no_lambda_from_kinesis_puts() -> None:
    """Keep moto from invoking Lambda functions from Kinesis puts.

    ``moto.kinesis.models.Stream.put_record`` loops over ``stream.lambda_event_source_mappings``
    and calls ``LambdaBackend.send_kinesis_message`` per record, which runs the function in
    Docker (or fails trying). Two changes, both narrow:

    * ``LambdaBackend.send_kinesis_message`` becomes a no-op (the only caller is that loop);
    * ``LambdaBackend.create_event_source_mapping`` no longer leaves the mapping registered on
      the Kinesis stream object (moto never unregisters it on delete either), so ``put_record``
      does not even enter the loop.

    The mapping itself stays stored and listed exactly as before: the local runtime reads it
    with ``list_event_source_mappings``.
    """
    from moto.awslambda.models import LambdaBackend
    from moto.kinesis.models import kinesis_backends

    def send_kinesis_message(self: Any, *args: Any, **kwargs: Any) -> None:  # noqa: ARG001
        """Replaces moto's method: its arguments are accepted and ignored."""
        return None

    send_kinesis_message.__stocksage_patch__ = True  # type: ignore[attr-defined]
    LambdaBackend.send_kinesis_message = send_kinesis_message  # type: ignore[method-assign]

    original_create = LambdaBackend.create_event_source_mapping

    def create_event_source_mapping(self: Any, spec: dict[str, Any]) -> Any:
        esm = original_create(self, spec)
        arn = esm.event_source_arn
        if arn.split(":")[2] == "kinesis":
            backend = kinesis_backends[self.account_id][self.region_name]
            for stream in backend.streams.values():
                if stream.arn == arn:
                    stream.lambda_event_source_mappings.pop(arn, None)
        return esm

    create_event_source_mapping.__stocksage_patch__ = True  # type: ignore[attr-defined]
    LambdaBackend.create_event_source_mapping = create_event_source_mapping  # type: ignore


def kinesis_constant_time_shard_ops() -> None:
    """Make moto's per-put and per-read shard work independent of the shard's size.

    * ``Shard.get_max_sequence_number`` built ``list(self.records.keys())`` on every put: puts
      slowed from ~2,300 to ~210 records/s at 100k records. The dict is insertion ordered with
      increasing keys, so the last key is ``next(reversed(...))``.
    * ``Shard.get_records`` scanned every record of the shard on each call. moto's sequence
      numbers are consecutive integers, so when the keys are contiguous the records after the
      iterator position are read by key. Same results, same ``MillisBehindLatest``; it falls back
      to the original code when the keys are not contiguous.
    """
    from moto.kinesis.models import Shard

    def get_max_sequence_number(self: Any) -> int:
        if self.records:
            return next(reversed(self.records))
        return 0

    def get_min_sequence_number(self: Any) -> int:
        if self.records:
            return next(iter(self.records))
        return 0

    original_get_records = Shard.get_records

    def get_records(self: Any, last_sequence_id: str, limit: int | None) -> Any:
        records = self.records
        if not records:
            return [], int(last_sequence_id), 0
        first = next(iter(records))
        last = next(reversed(records))
        if last - first + 1 != len(records):
            return original_get_records(self, last_sequence_id, limit)
        position = max(int(last_sequence_id), first - 1)
        end = last if not limit else min(last, position + int(limit))
        results = [records[k] for k in range(position + 1, end + 1)]
        if not results:
            return [], int(last_sequence_id), 0
        behind = records[last].created_at - results[-1].created_at
        return results, results[-1].sequence_number, int(behind * 1000)

    for fn in (get_max_sequence_number, get_min_sequence_number, get_records):
        fn.__stocksage_patch__ = True  # type: ignore[union-attr]  # a marker on a function
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]



def kinesis_resharding() -> None:
    """Make a split or merge behave as in Kinesis for puts and reads.

    moto closes the parent shard on ``SplitShard``/``MergeShards`` (``ListShards`` shows its
    ``EndingSequenceNumber``) but still routes new records to it by hash range and keeps
    handing out iterators at its end; and it *moves* (split) or *copies* (merge) the parents'
    records into the children, under new sequence numbers. Kinesis keeps a closed shard's
    records in it (until retention), writes new records to the open child shards only, and
    ``GetRecords`` on a closed shard read to its end returns no ``NextShardIterator`` (the
    consumer's signal to move on to the children). Three changes:

    * ``Stream.split_shard``/``merge_shards`` leave the parents' records where they were and
      the children empty;
    * ``Stream.get_shard_for_key`` looks at open shards only;
    * ``KinesisBackend.get_records`` returns no next iterator for a closed shard when the read
      returned nothing and the iterator is at or past the shard's last record.
    """
    from moto.kinesis.models import KinesisBackend, Stream
    from moto.kinesis.utils import decompose_shard_iterator

    if getattr(Stream.get_shard_for_key, "__stocksage_patch__", False):
        return
    original_for_key = Stream.get_shard_for_key
    original_get_records = KinesisBackend.get_records
    original_split, original_merge = Stream.split_shard, Stream.merge_shards

    def keeping_records(original: Any) -> Any:
        def reshard(self: Any, *args: Any, **kwargs: Any) -> None:
            kept = {sid: shard.records for sid, shard in self.shards.items()}
            original(self, *args, **kwargs)
            for sid, shard in self.shards.items():
                shard.records = kept[sid] if sid in kept else OrderedDict()

        reshard.__stocksage_patch__ = True  # type: ignore[attr-defined]
        return reshard

    def get_shard_for_key(self: Any, partition_key: str, explicit_hash_key: str) -> Any:
        shard = original_for_key(self, partition_key, explicit_hash_key)  # validates the key
        if shard is None or shard.is_open:
            return shard
        int_key = int(explicit_hash_key) if explicit_hash_key else int(
            hashlib.md5(partition_key.encode("utf-8")).hexdigest(), 16)  # as moto (and Kinesis)
        for candidate in list(self.shards.values()):
            # inclusive end: a split child's ending_hash is the split point - 1 (moto's own
            # lookup misses that key and falls back to the closed parent)
            if candidate.is_open and candidate.starting_hash <= int_key <= candidate.ending_hash:
                return candidate
        return shard

    def get_records(self: Any, stream_arn: str | None, shard_iterator: str,
                    limit: int | None) -> Any:
        next_iterator, records, behind = original_get_records(self, stream_arn,
                                                              shard_iterator, limit)
        if not records:
            stream_name, shard_id, last = decompose_shard_iterator(shard_iterator)
            stream = self.describe_stream(stream_arn=stream_arn, stream_name=stream_name)
            shard = stream.get_shard(shard_id)
            if not shard.is_open and int(last) >= shard.get_max_sequence_number():
                return None, records, behind
        return next_iterator, records, behind

    get_shard_for_key.__stocksage_patch__ = True  # type: ignore[attr-defined]
    get_records.__stocksage_patch__ = True  # type: ignore[attr-defined]
    Stream.get_shard_for_key = get_shard_for_key  # type: ignore[method-assign]
    KinesisBackend.get_records = get_records  # type: ignore[method-assign]
    Stream.split_shard = keeping_records(original_split)  # type: ignore[method-assign]
    Stream.merge_shards = keeping_records(original_merge)  # type: ignore[method-assign]
