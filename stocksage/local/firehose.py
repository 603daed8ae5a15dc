"""Firehose delivery for the local stack: a Kinesis-source delivery stream never pulls on moto.

``FirehoseWorker`` reads each deployed delivery stream back (``list_delivery_streams`` +
``describe_delivery_stream``: source stream ARN, bucket, prefix, error prefix, buffering
hints) and does the delivery itself:

* polls every shard of the source stream with its **own** iterators and checkpoints
  (``<state dir>/firehose-checkpoints.json``), independent of the Lambda event source mapping;
* partitions each record by the deployed JQ query itself (the delivery stream's
  ``MetadataExtractionQuery``, ``stack.json`` ``lifecycle.history_partition_query``), run by
  ``jq`` (the libjq bindings), so the local layout is the deployed one: ``record`` = ``bars``
  for a bar, ``trades`` for a trades or watermark record (year and month of its first
  trade), then ``symbol``, ``year``, ``month`` (``partition_keys``); it stores the record
  **as it is**, like the real delivery stream: a record the processor quarantines (price 0,
  a bar from 2150) is in the history too, which is why the history readers skip invalid
  lines. Only records the query cannot partition (not JSON, an error in the query, a null
  or empty key) go to the error prefix (``!{firehose:error-output-type}`` =
  ``processing-failed``), one JSON line each with the base64 raw data and the reason, as
  Firehose writes them;
* buffers by size and time (``BufferingHints``: ``SizeInMBs`` of record bytes,
  ``IntervalInSeconds``) and writes one gzip NDJSON object (each record + a newline, the
  ``AppendDelimiterToRecord`` processor) per rendered prefix, keys
  ``{deployed prefix rendered}/{stream}-{shard}-{first seq}-{last seq}.json.gz``
  (``bars/symbol=X/year=YYYY/month=MM/...`` with the stack's prefix);
* moves the checkpoints only after the objects are written (at-least-once, like Firehose;
  duplicates in history are harmless: training keeps one bar per symbol and time).

``flush()`` writes whatever is buffered now (tests, ``drain``).
"""

from __future__ import annotations

import base64
import functools
import gzip
import json
import logging
import re
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import jq

from stocksage.bars import Bar
from stocksage.config import STACK
from stocksage.local.checkpoints import CheckpointStore

log = logging.getLogger("stocksage.local.firehose")

_PARTITION = re.compile(r"!\{partitionKeyFromQuery:([A-Za-z0-9_]+)\}")
_TIMESTAMP = re.compile(r"!\{timestamp:([^}]+)\}")
_DEFAULT_PREFIX = ("!{partitionKeyFromQuery:record}/symbol=!{partitionKeyFromQuery:symbol}/"
                   "year=!{partitionKeyFromQuery:year}/month=!{partitionKeyFromQuery:month}/")
PARTITION_QUERY: str = STACK.raw["lifecycle"]["history_partition_query"]
"""The history delivery stream's JQ ``MetadataExtractionQuery`` (one source: stack.json)."""


@dataclass(frozen=True)
class DeliveryConfig:
    name: str
    arn: str
    stream_arn: str
    bucket: str
    prefix: str
    error_prefix: str
    buffer_bytes: int
    buffer_seconds: float
    query: str = PARTITION_QUERY

    @classmethod
    def from_description(cls, desc: dict[str, Any]) -> DeliveryConfig | None:
        """None when the stream has no Kinesis source or no S3 destination."""
        d = desc.get("DeliveryStreamDescription", desc)
        source = (d.get("Source") or {}).get("KinesisStreamSourceDescription") or {}
        stream_arn = source.get("KinesisStreamARN")
        dests = d.get("Destinations") or []
        s3 = next((x.get("ExtendedS3DestinationDescription") or x.get(
            "S3DestinationDescription") for x in dests if x.get(
            "ExtendedS3DestinationDescription") or x.get("S3DestinationDescription")), None)
        if not stream_arn or not s3:
            return None
        hints = s3.get("BufferingHints") or {}
        processors = (s3.get("ProcessingConfiguration") or {}).get("Processors") or []
        query = next((p.get("ParameterValue") for proc in processors
                      for p in proc.get("Parameters") or []
                      if p.get("ParameterName") == "MetadataExtractionQuery"), None)
        return cls(query=query or PARTITION_QUERY,
            name=d["DeliveryStreamName"], arn=d.get("DeliveryStreamARN", ""),
            stream_arn=stream_arn, bucket=s3["BucketARN"].split(":::")[-1],
            prefix=s3.get("Prefix") or "", error_prefix=s3.get("ErrorOutputPrefix") or "",
            buffer_bytes=int(float(hints.get("SizeInMBs") or 5) * 1024 * 1024),
            buffer_seconds=float(hints.get("IntervalInSeconds") or 300))


@functools.cache
def _compiled(query: str) -> Any:
    return jq.compile(query)


def partition_keys(data: bytes, query: str = PARTITION_QUERY) -> dict[str, str]:
    """What the delivery stream's JQ ``query`` (default: the deployed one) extracts from one
    record; nothing else is checked (Firehose does not validate bars or trades).

    Raises:
        ValueError: the record is not JSON, the query fails, or it yields a key that is not a
            non-empty string (Firehose then writes the record to the error prefix), with the
            reason.
    """
    try:
        text = data.decode() if isinstance(data, bytes) else str(data)
        json.loads(text)
    except (UnicodeDecodeError, ValueError) as err:
        raise ValueError(f"record is not JSON ({err})") from None
    try:
        keys = _compiled(query).input_text(text).first()
    except (ValueError, StopIteration) as err:
        raise ValueError(f"partition query failed ({str(err)[:120]})") from None
    if not isinstance(keys, dict) or not all(isinstance(v, str) and v for v in keys.values()):
        raise ValueError(f"partition key null or empty in {keys!r:.200}")
    return keys


def render_prefix(template: str, bar: Bar | dict[str, str], now: datetime | None = None) -> str:
    """The S3 prefix Firehose renders for a bar (or the partition keys of a record) with the
    deployed JQ keys (``partition_keys``)."""
    keys = bar if isinstance(bar, dict) else partition_keys(bar.to_json())
    out = _PARTITION.sub(lambda m: keys.get(m.group(1), m.group(0)), template)
    now = now or datetime.now(UTC)
    return _TIMESTAMP.sub(lambda m: _java_time(now, m.group(1)), out)


def _java_time(now: datetime, pattern: str) -> str:
    for java, py in (("yyyy", "%Y"), ("MM", "%m"), ("dd", "%d"), ("HH", "%H")):
        pattern = pattern.replace(java, py)
    return now.strftime(pattern)


@dataclass
class _Shard:
    shard_id: str
    iterator: str | None = None
    buffered_seq: str | None = None  # last sequence number in the buffer


@dataclass
class DeliveryStats:
    records: int = 0
    bars_written: int = 0
    objects_written: int = 0
    errors_written: int = 0
    flushes: int = 0
    last_flush: float | None = None


@dataclass
class _Buffer:
    # (shard, seq, partition keys, raw record)
    bars: list[tuple[str, str, dict[str, str], bytes]] = field(default_factory=list)
    errors: list[tuple[str, str, bytes, str]] = field(default_factory=list)
    size: int = 0
    since: float | None = None


class DeliveryStreamWorker:
    def __init__(self, config: DeliveryConfig, clients: Any, checkpoints: CheckpointStore
                 ) -> None:
        self.config = config
        self.clients = clients
        self.checkpoints = checkpoints
        self.shards: dict[str, _Shard] = {}
        self.buffer = _Buffer()
        self.stats = DeliveryStats()
        self.lock = threading.RLock()

    @property
    def stream_name(self) -> str:
        return self.config.stream_arn.split("/", 1)[1]

    def _refresh_shards(self) -> None:
        kinesis = self.clients.client("kinesis")
        for shard in kinesis.list_shards(StreamName=self.stream_name).get("Shards", []):
            self.shards.setdefault(shard["ShardId"], _Shard(shard["ShardId"]))

    def _iterator(self, shard: _Shard) -> str:
        kinesis = self.clients.client("kinesis")
        seq = shard.buffered_seq or self.checkpoints.get(self.config.arn, self.config.stream_arn,
                                                         shard.shard_id)
        # By name: moto's iterators made from StreamARN lose the stream.
        kwargs: dict[str, Any] = {"StreamName": self.stream_name, "ShardId": shard.shard_id}
        if seq:
            kwargs.update(ShardIteratorType="AFTER_SEQUENCE_NUMBER", StartingSequenceNumber=seq)
        else:
            kwargs["ShardIteratorType"] = "TRIM_HORIZON"
        return kinesis.get_shard_iterator(**kwargs)["ShardIterator"]

    def poll(self) -> int:
        """Read what is new on every shard into the buffer; flush when a hint is reached."""
        with self.lock:
            if not self.shards:
                self._refresh_shards()
            kinesis = self.clients.client("kinesis")
            read = 0
            for shard in self.shards.values():
                for _ in range(50):  # bounded per poll
                    if shard.iterator is None:
                        shard.iterator = self._iterator(shard)
                    page = kinesis.get_records(ShardIterator=shard.iterator, Limit=1000)
                    shard.iterator = page.get("NextShardIterator")
                    records = page.get("Records", [])
                    for record in records:
                        self._add(shard, record)
                    read += len(records)
                    if not records or shard.iterator is None:
                        break
                    if self.buffer.size >= self.config.buffer_bytes:
                        self.flush()
            self.stats.records += read
            if self.buffer.since is not None and (
                    self.buffer.size >= self.config.buffer_bytes
                    or time.monotonic() - self.buffer.since >= self.config.buffer_seconds):
                self.flush()
            return read

    def _add(self, shard: _Shard, record: dict[str, Any]) -> None:
        data = record["Data"]
        seq = record["SequenceNumber"]
        try:
            keys = partition_keys(data, self.config.query)
            self.buffer.bars.append((shard.shard_id, seq, keys, data))
        except ValueError as err:
            self.buffer.errors.append((shard.shard_id, seq, data, str(err)))
        self.buffer.size += len(data) + 1
        if self.buffer.since is None:
            self.buffer.since = time.monotonic()
        shard.buffered_seq = seq

    def flush(self) -> int:
        """Write the buffer to S3, then advance the checkpoints. Returns objects written."""
        with self.lock:
            buf = self.buffer
            if not buf.bars and not buf.errors:
                return 0
            s3 = self.clients.client("s3")
            written = 0
            template = self.config.prefix or _DEFAULT_PREFIX
            groups: dict[tuple[str, str], list[tuple[str, bytes]]] = {}
            for shard_id, seq, keys, data in buf.bars:
                prefix = render_prefix(template, keys)
                groups.setdefault((shard_id, prefix), []).append((seq, data))
            for (shard_id, prefix), items in groups.items():
                name = f"{self.config.name}-{shard_id}-{items[0][0]}-{items[-1][0]}"
                body = gzip.compress(b"".join(data + b"\n" for _, data in items),
                                     compresslevel=6, mtime=0)
                s3.put_object(Bucket=self.config.bucket, Key=f"{prefix}{name}.json.gz",
                              Body=body, ContentType="application/x-ndjson")
                written += 1
                self.stats.bars_written += len(items)
            if buf.errors:
                now = datetime.now(UTC)
                lines = [json.dumps({
                    "rawData": base64.b64encode(data).decode(), "errorCode":
                    "DynamicPartitioning.MetadataExtractionFailed", "errorMessage": reason,
                    "sequenceNumber": seq, "shardId": shard_id,
                    "deliveryStreamARN": self.config.arn}) for shard_id, seq, data, reason
                    in buf.errors]
                prefix = (self.config.error_prefix or "errors/")
                prefix = prefix.replace("!{firehose:error-output-type}", "processing-failed")
                prefix = _TIMESTAMP.sub(lambda m: _java_time(now, m.group(1)), prefix)
                key = f"{prefix}{self.config.name}-{buf.errors[0][1]}-{buf.errors[-1][1]}.json"
                s3.put_object(Bucket=self.config.bucket, Key=key,
                              Body=("\n".join(lines) + "\n").encode())
                self.stats.errors_written += len(buf.errors)
            for shard in self.shards.values():
                if shard.buffered_seq:
                    self.checkpoints.set(self.config.arn, self.config.stream_arn,
                                         shard.shard_id, shard.buffered_seq)
                    shard.buffered_seq = None
            self.buffer = _Buffer()
            self.stats.objects_written += written
            self.stats.flushes += 1
            self.stats.last_flush = time.time()
            return written


class FirehoseWorker:
    """Every Kinesis-source delivery stream of the emulator, polled by one thread."""

    def __init__(self, clients: Any, checkpoint_path: str | None = None,
                 poll_interval: float = 0.5) -> None:
        self.clients = clients
        self.checkpoints = CheckpointStore(checkpoint_path)
        self.poll_interval = poll_interval
        self.streams: dict[str, DeliveryStreamWorker] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._lock = threading.Lock()

    def refresh(self) -> list[str]:
        firehose = self.clients.client("firehose")
        names: list[str] = []
        kwargs: dict[str, Any] = {}
        while True:
            page = firehose.list_delivery_streams(**kwargs)
            names += page.get("DeliveryStreamNames", [])
            if not page.get("HasMoreDeliveryStreams") or not names:
                break
            kwargs["ExclusiveStartDeliveryStreamName"] = names[-1]
        new = []
        for name in names:
            config = DeliveryConfig.from_description(
                firehose.describe_delivery_stream(DeliveryStreamName=name))
            with self._lock:
                current = self.streams.get(name)
                if config is None or (current and current.config == config):
                    continue
                self.streams[name] = DeliveryStreamWorker(config, self.clients, self.checkpoints)
            new.append(name)
        return new

    def poll_once(self) -> int:
        with self._lock:
            workers = list(self.streams.values())
        total = 0
        for worker in workers:
            try:
                total += worker.poll()
            except Exception as err:  # noqa: BLE001 - stream recreated, emulator restarting
                log.warning("delivery stream %s: %s", worker.config.name, err)
                worker.shards.clear()
        return total

    def flush(self) -> int:
        """Read everything available and write all buffers now."""
        self.poll_once()
        with self._lock:
            workers = list(self.streams.values())
        return sum(w.flush() for w in workers)

    def start(self) -> None:
        if self._thread and self._thread.is_alive():
            return
        self._stop.clear()
        self._thread = threading.Thread(target=self._loop, name="firehose", daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(self.poll_interval):
            self.poll_once()

    def stop(self, timeout: float = 5.0) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout)
        try:
            self.flush()
        except Exception as err:  # noqa: BLE001 - emulator already gone
            log.warning("final firehose flush failed: %s", err)

    def stats(self) -> dict[str, Any]:
        from dataclasses import asdict

        with self._lock:
            return {n: asdict(w.stats) for n, w in self.streams.items()}
