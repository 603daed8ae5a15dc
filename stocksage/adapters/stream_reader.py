"""Kinesis adapter: re-read a sequence-number range of one shard (redrive).

``KinesisRangeReader`` implements ``stocksage.operations.redrive.StreamRangeReader`` with
GetShardIterator (``AT_SEQUENCE_NUMBER``) and GetRecords (10,000 records a call, the service's
limit) until the range's end sequence number.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from botocore.exceptions import ClientError

from stocksage.operations.redrive import RangeUnavailableError

__all__ = ["KinesisRangeReader"]

_GET_RECORDS_LIMIT = 10_000


class KinesisRangeReader:
    """Ranges of a stream through ``client`` (``boto3.client("kinesis")``)."""

    def __init__(self, client: Any) -> None:
        self._client = client

    def read_range(self, stream_arn: str, shard_id: str, start: str,
                   end: str) -> Iterator[dict[str, Any]]:
        """Records (``SequenceNumber``, ``PartitionKey``, ``Data``) of one shard from sequence
        number ``start`` to ``end`` (inclusive).

        Raises:
            RangeUnavailableError: the range cannot be read (``ResourceNotFoundException`` /
                ``InvalidArgumentException``: past the stream's retention; any other failure).
        """
        try:
            yield from self._read(stream_arn, shard_id, start, int(end))
        except ClientError as exc:
            raise RangeUnavailableError(exc.response["Error"]["Code"]) from exc

    def _read(self, stream_arn: str, shard_id: str, start: str,
              last: int) -> Iterator[dict[str, Any]]:
        iterator = self._client.get_shard_iterator(
            StreamARN=stream_arn, ShardId=shard_id, ShardIteratorType="AT_SEQUENCE_NUMBER",
            StartingSequenceNumber=start)["ShardIterator"]
        while iterator:
            response = self._client.get_records(ShardIterator=iterator,
                                                Limit=_GET_RECORDS_LIMIT, StreamARN=stream_arn)
            for record in response["Records"]:
                if int(record["SequenceNumber"]) > last:
                    return
                yield record
            if not response["Records"] and response.get("MillisBehindLatest", 0) == 0:
                return
            iterator = response.get("NextShardIterator")
