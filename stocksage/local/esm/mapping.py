"""What the engine reads back from the emulator about a mapping, and what it counts.

``MappingConfig.from_api`` turns one ``list_event_source_mappings`` entry into the settings the
engine honours (unset fields come back as null from moto and get Lambda's defaults)::

    config = MappingConfig.from_api(lambda_client.get_event_source_mapping(UUID=uuid))
    config.batch_size, config.bisect_on_error, config.on_failure_destination
    config.stream_name, config.region          # parsed from the stream ARN

``MappingStats`` are the counters of one mapping since the engine started (the runtime writes
them to ``runtime-stats.json``); ``EsmFaults`` are the test-only switches of the engine.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

#: Mapping states in which records are read and delivered (any other state pauses it).
ACTIVE_STATES = {"Enabled", "Enabling", "Creating", "Updating"}


@dataclass(frozen=True)
class MappingConfig:
    """The parts of an event source mapping the engine honours.

    Attributes:
        uuid: The mapping's ``UUID`` (also the key of its checkpoints).
        event_source_arn: The Kinesis stream ARN.
        function_arn: The function invoked with each batch.
        batch_size: ``BatchSize``: most records per invocation.
        batching_window_s: ``MaximumBatchingWindowInSeconds``: how long a batch that is not
            full waits for more records (0: invoke as soon as records are there).
        starting_position: ``TRIM_HORIZON``, ``LATEST`` or ``AT_TIMESTAMP``.
        starting_position_timestamp: ``StartingPositionTimestamp`` (``AT_TIMESTAMP``).
        bisect_on_error: ``BisectBatchOnFunctionError``.
        max_retry_attempts: ``MaximumRetryAttempts`` (-1: unbounded).
        max_record_age_s: ``MaximumRecordAgeInSeconds`` (-1: unbounded).
        report_batch_item_failures: ``FunctionResponseTypes`` has ``ReportBatchItemFailures``.
        on_failure_destination: ``DestinationConfig.OnFailure.Destination`` (SQS, SNS or S3
            ARN), None without one.
        parallelization_factor: ``ParallelizationFactor``: concurrent batches per shard (1-10).
        state: ``State``; outside ``ACTIVE_STATES`` the mapping is paused.
        last_modified: ``LastModified``; where ``LATEST`` starts reading (see the worker).
    """

    uuid: str
    event_source_arn: str
    function_arn: str
    batch_size: int = 100
    batching_window_s: float = 0.0
    starting_position: str = "TRIM_HORIZON"
    starting_position_timestamp: datetime | None = None
    bisect_on_error: bool = False
    max_retry_attempts: int = -1
    max_record_age_s: int = -1
    report_batch_item_failures: bool = False
    on_failure_destination: str | None = None
    parallelization_factor: int = 1
    state: str = "Enabled"
    last_modified: datetime | None = None

    @classmethod
    def from_api(cls, m: dict[str, Any]) -> MappingConfig:
        """From one ``list_event_source_mappings`` entry (moto returns nulls for unset fields)."""

        def num(key: str, default: int) -> int:
            value = m.get(key)
            return default if value is None else int(value)

        return cls(
            uuid=m["UUID"],
            event_source_arn=m["EventSourceArn"],
            function_arn=m["FunctionArn"],
            batch_size=num("BatchSize", 100),
            batching_window_s=float(m.get("MaximumBatchingWindowInSeconds") or 0),
            starting_position=m.get("StartingPosition") or "TRIM_HORIZON",
            starting_position_timestamp=m.get("StartingPositionTimestamp"),
            bisect_on_error=bool(m.get("BisectBatchOnFunctionError")),
            max_retry_attempts=num("MaximumRetryAttempts", -1),
            max_record_age_s=num("MaximumRecordAgeInSeconds", -1),
            report_batch_item_failures="ReportBatchItemFailures"
            in (m.get("FunctionResponseTypes") or []),
            on_failure_destination=((m.get("DestinationConfig") or {}).get("OnFailure") or {})
            .get("Destination") or None,
            parallelization_factor=num("ParallelizationFactor", 1),
            state=m.get("State") or "Enabled",
            last_modified=m.get("LastModified"),
        )

    @property
    def is_kinesis(self) -> bool:
        """True for a Kinesis stream source (the only kind the engine runs)."""
        return self.event_source_arn.split(":")[2] == "kinesis"

    @property
    def stream_name(self) -> str:
        return self.event_source_arn.split(":stream/", 1)[1]

    @property
    def region(self) -> str:
        return self.event_source_arn.split(":")[3]

    @property
    def lanes(self) -> int:
        """Concurrent batches per shard: ``ParallelizationFactor`` clamped to 1-10."""
        return max(1, min(10, self.parallelization_factor or 1))


@dataclass
class MappingStats:
    """Counters of one mapping (since the engine started).

    ``invocations`` counts every call of the function (retries and redeliveries included);
    ``records_discarded`` the records given up (retries exhausted or too old), of which
    ``records_to_destination`` reached the on-failure destination in
    ``destination_messages`` messages; ``read_errors`` the failed reads of a shard (a new
    iterator is taken after the last record read); ``caught_up`` is true after a round with
    nothing to do.
    """

    uuid: str
    function_arn: str
    event_source_arn: str
    shards: int = 0
    invocations: int = 0
    batches_succeeded: int = 0
    records_read: int = 0
    records_succeeded: int = 0
    function_errors: int = 0
    partial_failures: int = 0
    failed_items: int = 0
    retries: int = 0
    bisections: int = 0
    records_to_destination: int = 0
    destination_messages: int = 0
    records_expired: int = 0
    records_discarded: int = 0
    destination_failures: int = 0
    timeouts: int = 0
    redeliveries: int = 0
    read_errors: int = 0
    caught_up: bool = False
    last_error: str | None = None
    last_invocation_at: float | None = None


@dataclass
class EsmFaults:
    """Test-only faults of the engine (shared by its mapping workers; switch at any time).

    Attributes:
        redeliver: Deliver every batch twice: after an invocation that did not fail, the same
            event is invoked again (new request id) and its outcome is the one applied, as
            when Lambda loses a checkpoint and re-reads the records. Handlers must be
            idempotent.
    """

    redeliver: bool = False
