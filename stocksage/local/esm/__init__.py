"""Kinesis event source mappings, run locally the way Lambda runs them.

moto stores event source mappings but never polls a stream. ``EsmEngine`` reads the mappings
back from the emulator (``list_event_source_mappings``) and, for every Kinesis mapping, polls
each shard with ``GetRecords``, builds Lambda's Kinesis event, invokes the function in process
(``stocksage.local.lambda_invoker``) and applies Lambda's documented error handling::

    engine = EsmEngine(session_kwargs)       # boto3 client kwargs for the emulator
    engine.refresh()                          # discover mappings
    engine.drain(timeout=30)                  # process until every shard is caught up
    engine.stats()                            # {uuid: MappingStats}
    engine.start(); ...; engine.stop()        # or: one polling thread per mapping

The package, one concern per module:

* ``config``: the mapping read back from the emulator (``MappingConfig``), its counters
  (``MappingStats``), the test-only faults (``EsmFaults``);
* ``records``: what a mapping has read and not finished: records, pending batches, lanes,
  shards, and the checkpoint as the end of the finished prefix;
* ``reader``: the Kinesis side: shards, starting positions, ``GetRecords``;
* ``batching``: the batching and error-handling rules (batch size and window, record age,
  partial batch responses, bisection, retry backoff);
* ``event``: Lambda's Kinesis event and the on-failure invocation record;
* ``destinations``: sending that record to SQS, SNS or S3;
* ``worker``: one mapping at work (``MappingWorker``): rounds, lanes, outcomes, its thread;
* ``engine``: discovery of mappings and functions, threads, ``drain`` (``EsmEngine``).

Checkpoints are kept by ``stocksage.local.checkpoints.CheckpointStore`` (shared with the
Firehose worker), boto3 clients by ``stocksage.local.clients.Clients``.

What is implemented (AWS documentation for Kinesis event sources, see also shared FACTS.md):

Batching
    Up to ``BatchSize`` records per invocation and at most 6 MB of payload (estimated from the
    base64 data and envelope). With ``MaximumBatchingWindowInSeconds`` > 0 a batch that is not
    full (neither BatchSize records nor 6 MB) waits until the window has passed since its first
    record was read; with 0 a batch is invoked as soon as records are there.
    ``StartingPosition`` ``TRIM_HORIZON``, ``LATEST`` (read as ``AT_TIMESTAMP`` at the
    mapping's ``LastModified`` so that records put between creation and discovery are not
    lost) and ``AT_TIMESTAMP`` (``StartingPositionTimestamp``). ``State`` other than
    ``Enabled``/``Enabling``/``Updating``/``Creating`` pauses the mapping.

Event
    ``Records[].kinesis.{kinesisSchemaVersion "1.0", partitionKey, sequenceNumber, data
    (base64), approximateArrivalTimestamp (epoch seconds, float)}``, ``eventSource
    "aws:kinesis"``, ``eventVersion "1.0"``, ``eventID "shardId-...:seq"``, ``eventName
    "aws:kinesis:record"``, ``invokeIdentityArn`` (the function's role), ``awsRegion``,
    ``eventSourceARN``.

Ordering and ParallelizationFactor
    Each shard has ``ParallelizationFactor`` (1-10) lanes; a record goes to the lane of its
    partition key (MD5 of the key, modulo the factor), so a key's records are delivered in
    sequence-number order (compared as integers: moto's sequence numbers are per-shard
    counters) while different keys of a shard can be in flight at the same time, as on AWS.
    Each lane has one batch in flight; the ready batches of a shard's lanes run concurrently
    (thread pool), outcomes are applied under one lock. A shard's checkpoint is the end of
    the prefix of records that are finished (processed or given up) in every lane, so a
    failing lane holds the checkpoint back while the other lanes go on. Shards of a mapping
    are visited round-robin by the mapping's thread. Invocations are not serialised by any
    global lock (``lambda_runtime`` applies each function's environment per thread).

Partial batch response (``FunctionResponseTypes`` contains ``ReportBatchItemFailures``)
    ``{"batchItemFailures": [{"itemIdentifier": "<seq>"}, ...]}``: records before the lowest
    reported sequence number are checkpointed; the retry re-sends the lowest failed record and
    everything after it in the batch. An empty list (or a missing key / null response) is
    success. An identifier that is empty, null or not a sequence number of the batch makes the
    whole batch failed (as a function error would). Without ``ReportBatchItemFailures`` the
    response is ignored.

Function errors and retries
    An exception or a timeout fails the batch (``lambda_runtime`` stops waiting at the
    function's ``Timeout``: ``Sandbox.Timedout``; the abandoned handler thread's late writes
    still happen, an emulator difference). With ``BisectBatchOnFunctionError`` any failed batch
    of more than one record (whichever record failed, the first included) is split in two
    halves retried in order;
    splitting does not count as a retry ("Splitting a batch does not count towards the retry
    quota"). Interpretation for partial failures with bisect on: the batch is split at the
    lowest reported record (records before it are checkpointed, the rest is retried, and this
    split does not count as a retry); when the reported record is already the first record of
    the batch (no progress), the batch is bisected like on a function error, so that a poison
    record ends up alone before retries are counted. Without bisect, a partial failure counts
    one retry for the remaining records.
    A failed attempt that is not a split counts one retry for the pending batch; the count is
    carried by the records still pending (a partial success does not reset it). Retries are
    bounded by ``MaximumRetryAttempts`` (-1 = unbounded) and ``MaximumRecordAgeInSeconds`` (-1 =
    unbounded; checked before every invocation, new or retry: the expired prefix of the batch
    is discarded). Retries are immediate apart from a short configurable backoff.

On-failure destination (``DestinationConfig.OnFailure.Destination``)
    When retries are exhausted (condition ``RetryAttemptsExhausted``) or records expire
    (``RecordAgeExceeded``) Lambda sends one invocation record describing the discarded range
    to SQS (``SendMessage``) or SNS (``Publish``); S3 destinations get a ``PutObject``. Its
    shape is in ``stocksage.local.esm.event`` (``failure_record``).

    Then the records are skipped (checkpoint moves past them) and the lane continues. A send
    that fails does **not** move the checkpoint: the send is retried with the retry backoff
    (the function is not invoked again) until it succeeds, and the lane waits (stats
    ``destination_failures``). Without a destination the records are just skipped (logged).

Checkpoints, crashes
    Last finished sequence number per mapping and shard, in memory and, with
    ``checkpoint_path``, in a JSON file written atomically after every change (temporary file,
    fsync, rename); a restarted engine resumes with ``AFTER_SEQUENCE_NUMBER``, so records that
    were in flight when the runtime died are delivered again. ``EsmEngine.kill()`` simulates
    that crash in process (nothing applied or written after it); ``kill -9`` of the runtime
    process is the real thing. A checkpoint that the stream no longer accepts falls
    back to the starting position. New shards (resharding) are picked up with ``ListShards``
    (every ``SHARD_REFRESH_S``); a child shard is not read until every parent it was split or
    merged from is read to its end and finished (a parent no longer listed is not waited
    for), so a key's records stay in order across a reshard, as on AWS; a closed shard ends
    when a read returns no next iterator or nothing past its ``EndingSequenceNumber``, and is
    then dropped. A failed read (``GetRecords``) takes a new iterator after the last record
    read: buffered records and pending batches stay, with their retry and invoke counts.

Test-only faults (``EsmFaults``, ``engine.faults``; the runtime reads
``STOCKSAGE_ESM_REDELIVER=1``)
    ``redeliver``: every batch is delivered twice (the second outcome is applied).
"""

from stocksage.local.checkpoints import CheckpointStore
from stocksage.local.clients import Clients
from stocksage.local.esm.batching import MAX_PAYLOAD_BYTES
from stocksage.local.esm.engine import EsmEngine
from stocksage.local.esm.event import build_event, failure_record
from stocksage.local.esm.mapping import ACTIVE_STATES, EsmFaults, MappingConfig, MappingStats
from stocksage.local.esm.records import KRecord, Lane, PendingBatch, ShardState, lane_of
from stocksage.local.esm.worker import Invoker, MappingWorker

#: The runtime's shared client cache under its former name (``Clients``).
_Clients = Clients

__all__ = [
    "ACTIVE_STATES",
    "MAX_PAYLOAD_BYTES",
    "CheckpointStore",
    "Clients",
    "EsmEngine",
    "EsmFaults",
    "Invoker",
    "KRecord",
    "Lane",
    "MappingConfig",
    "MappingStats",
    "MappingWorker",
    "PendingBatch",
    "ShardState",
    "_Clients",
    "build_event",
    "failure_record",
    "lane_of",
]
