"""The embedded AWS: moto's standalone server with the project's patches.

moto's server is the emulator that Terraform provisions and every local component talks to
(127.0.0.1:4566, LocalStack's edge port). A few of moto's behaviours get in the way of a
faithful local stack; they are changed *in the server process* by small patch functions listed
in ``PATCHES`` (each idempotent, each documented with what it fixes):

* ``no_lambda_from_kinesis_puts``: while a Kinesis event source mapping exists moto invokes the
  function once per record *inside* ``put_records`` and tries Docker each time (puts fall from
  thousands to ~230 records/s, and a deleted function makes every put fail). The local runtime
  (``stocksage.local.esm``) owns event source mappings, so moto must not.
* ``kinesis_constant_time_shard_ops``: moto copies the whole shard to find the last sequence
  number on every put and scans the whole shard on every ``get_records``; both become O(1)/O(k).
* ``sagemaker_update_endpoint``: moto lacks ``UpdateEndpoint`` (HTTP 500); the patch re-points
  the endpoint to the new endpoint configuration and keeps it ``InService``.
* ``sagemaker_training_job_lifecycle``: moto reports a training job ``Completed`` at once with
  no artifact; the patch keeps it ``InProgress`` until the local runtime reports the outcome
  through a private action (status, artifact, ``FinalMetricDataList``).
* ``events_test_event_pattern``: EventBridge ``TestEventPattern`` (moto: not implemented),
  answered by moto's own rule matcher; the local runtime routes events with it.
* ``fault_injection``: for resilience tests, DynamoDB write throttling and SNS ``Publish``
  failures switched on for a duration through ``POST /moto-api/stocksage/faults`` (client:
  ``stocksage.local.faults``).

Command line::

    python -m stocksage.local.emulator start  [--port 4566] [--state-dir .local]   # background
    python -m stocksage.local.emulator status [--port 4566] [--state-dir .local]
    python -m stocksage.local.emulator stop   [--state-dir .local]
    python -m stocksage.local.emulator serve  [--port 4566]                        # foreground

Python API (tests)::

    with Emulator(port=0) as emu:          # in-process, threaded, patched
        boto3.client("kinesis", endpoint_url=emu.endpoint_url, ...)

``start|stop|status`` run the server as a background process (``stocksage.local.daemon``,
shared with ``stocksage.local.runtime``).
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import subprocess
import sys
import threading
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Self

from stocksage.local.daemon import (
    DEFAULT_STATE_DIR,
    REPO_ROOT,
    Daemon,
    child_env,
    log_tail,
    port_in_use,
    wait_until,
)

DEFAULT_HOST = "127.0.0.1"
DEFAULT_PORT = 4566

# --------------------------------------------------------------------------------------------
# Patches (applied in the process that runs moto's server)
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Patch:
    """One change to moto. ``apply`` must be idempotent."""

    name: str
    summary: str
    apply: Callable[[], None]


_applied: set[str] = set()
_patch_lock = threading.Lock()


def _patch_no_lambda_from_kinesis_puts() -> None:
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

    def send_kinesis_message(self: Any, *args: Any, **kwargs: Any) -> None:
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


def _patch_kinesis_constant_time_shard_ops() -> None:
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
        fn.__stocksage_patch__ = True  # type: ignore[attr-defined]
    Shard.get_max_sequence_number = get_max_sequence_number  # type: ignore[method-assign]
    Shard.get_min_sequence_number = get_min_sequence_number  # type: ignore[method-assign]
    Shard.get_records = get_records  # type: ignore[method-assign]


def _patch_sagemaker_update_endpoint() -> None:
    """Implement ``UpdateEndpoint`` (moto answers HTTP 500 "not implemented").

    The endpoint keeps its name and ARN, takes the new configuration's name, production variants
    and data capture configuration, ``LastModifiedTime`` moves, and the status stays
    ``InService`` (a real update goes through ``Updating`` for minutes; the local SageMaker host
    switches model version on the next invocation). An unknown endpoint or configuration is a
    ``ValidationError`` like AWS.
    """
    from moto.core.responses import ActionResult
    from moto.core.utils import utcnow
    from moto.sagemaker.exceptions import ValidationError
    from moto.sagemaker.models import FakeEndpoint, FakeEndpointConfig, SageMakerModelBackend
    from moto.sagemaker.responses import SageMakerResponse

    def update_endpoint(self: Any, endpoint_name: str, endpoint_config_name: str) -> str:
        endpoint = self.endpoints.get(endpoint_name)
        if endpoint is None:
            arn = FakeEndpoint.arn_formatter(endpoint_name, self.account_id, self.region_name)
            raise ValidationError(message=f"Could not find endpoint '{arn}'.")
        try:
            config = self.describe_endpoint_config(endpoint_config_name)
        except KeyError:
            arn = FakeEndpointConfig.arn_formatter(
                endpoint_config_name, self.account_id, self.region_name
            )
            raise ValidationError(message=f"Could not find endpoint_config '{arn}'.") from None
        endpoint.endpoint_config_name = endpoint_config_name
        endpoint.production_variants = endpoint._process_production_variants(
            config["ProductionVariants"]
        )
        endpoint.data_capture_config = config.get("DataCaptureConfig")
        endpoint.endpoint_status = "InService"
        endpoint.last_modified_time = utcnow()
        return endpoint.arn

    def update_endpoint_action(self: Any) -> Any:
        arn = self.sagemaker_backend.update_endpoint(
            endpoint_name=self._get_param("EndpointName"),
            endpoint_config_name=self._get_param("EndpointConfigName"),
        )
        return ActionResult({"EndpointArn": arn})

    update_endpoint.__stocksage_patch__ = True  # type: ignore[attr-defined]
    SageMakerModelBackend.update_endpoint = update_endpoint  # type: ignore[attr-defined]
    SageMakerResponse.update_endpoint = update_endpoint_action  # type: ignore[attr-defined]


#: Training-job states a job may be finished into (``StocksageFinishTrainingJob``).
TRAINING_FINAL_STATES = ("Completed", "Failed", "Stopped")
#: Private emulator route (POST JSON) the local runtime calls to record a training job's outcome;
#: see ``stocksage.local.training_jobs``. Under ``/moto-api/`` like moto's own control routes.
FINISH_TRAINING_JOB_PATH = "/moto-api/stocksage/finish-training-job"


def _patch_sagemaker_training_job_lifecycle() -> None:
    """Give training jobs a real lifecycle: ``InProgress`` until the local runtime finishes them.

    moto reports every job ``Completed`` the moment it is created, with no artifact, canned
    ``MetricDefinitions`` (``test:dcg``) and a canned ``FinalMetricDataList``, and silently
    replaces a job created twice under the same name. With this patch:

    * ``CreateTrainingJob`` stores the job ``InProgress`` (secondary status ``Starting``) with
      the metric definitions that were sent, no end time, no metrics and no ``ModelArtifacts``;
      a name that exists already is ``ResourceInUse`` (as on AWS: names are unique per account
      and region, which is what makes the retrain schedule idempotent);
    * a private route ``POST /moto-api/stocksage/finish-training-job`` (JSON body
      ``TrainingJobName``, ``TrainingJobStatus`` = Completed | Failed | Stopped, optional
      ``FailureReason``, ``S3ModelArtifacts``, ``FinalMetricDataList`` [{MetricName, Value}],
      ``BillableSeconds``, ``Region``, ``AccountId``) sets the outcome once: a job that is not
      ``InProgress`` is a 400 ``ValidationException``. (moto's SageMaker handler only accepts
      operations of botocore's service model, hence a route next to moto's own ``/moto-api``
      control routes rather than a custom SageMaker action.)
      The local runtime (``stocksage.local.training_jobs``) runs the job with
      ``stocksage.local.training.run_training_job`` and reports through this action, so every
      reader (``DescribeTrainingJob``, ``ListTrainingJobs StatusEquals``) sees AWS's shape.
    """
    import copy

    from moto.core import DEFAULT_ACCOUNT_ID
    from moto.core.utils import utcnow
    from moto.moto_api._internal import urls as moto_api_urls
    from moto.sagemaker.exceptions import ResourceInUseException, ValidationError
    from moto.sagemaker.models import FakeTrainingJob, SageMakerModelBackend, sagemaker_backends

    original_init = FakeTrainingJob.__init__

    def __init__(self: Any, *args: Any, **kwargs: Any) -> None:
        spec = kwargs.get("algorithm_specification") or {}
        sent = copy.deepcopy(spec.get("MetricDefinitions") or [])
        original_init(self, *args, **kwargs)
        self.algorithm_specification["MetricDefinitions"] = sent
        self.training_job_status = "InProgress"
        self.secondary_status = "Starting"
        self.training_end_time = None
        self.final_metric_data_list = None
        self.model_artifacts = None
        self.failure_reason = None

    original_create = SageMakerModelBackend.create_training_job

    def create_training_job(self: Any, training_job_name: str, *args: Any, **kwargs: Any) -> Any:
        if training_job_name in self.training_jobs:
            raise ResourceInUseException(
                message=f"Training job names must be unique within an AWS account and region, "
                f"and a training job with this name already exists "
                f"({self.training_jobs[training_job_name].arn})"
            )
        return original_create(self, training_job_name, *args, **kwargs)

    def finish_training_job(self: Any, name: str, status: str, failure_reason: str | None,
                            artifact: str | None, metrics: list[dict[str, Any]] | None,
                            billable: int | None) -> dict[str, Any]:
        job = self.training_jobs.get(name)
        if job is None:
            raise ValidationError(message=f"Could not find training job '{name}'.")
        if job.training_job_status not in ("InProgress", "Stopping"):
            raise ValidationError(
                message=f"Training job {name} is {job.training_job_status}, not InProgress.")
        if status not in TRAINING_FINAL_STATES:
            raise ValidationError(message=f"TrainingJobStatus must be one of "
                                          f"{TRAINING_FINAL_STATES}, not {status!r}.")
        now = utcnow()
        job.training_job_status = status
        job.secondary_status = status
        job.training_end_time = now
        job.last_modified_time = now
        job.failure_reason = failure_reason or None
        job.model_artifacts = {"S3ModelArtifacts": artifact} if artifact else None
        job.final_metric_data_list = [
            {"MetricName": m["MetricName"], "Value": float(m["Value"]), "Timestamp": now}
            for m in (metrics or [])
        ] or None
        if billable is not None:
            job.billable_time_in_seconds = int(billable)
        job.secondary_status_transitions.append(
            {"Status": status, "StartTime": job.training_start_time, "EndTime": now,
             "StatusMessage": failure_reason or f"Training job {status.lower()}"})
        return {"TrainingJobArn": job.arn, "TrainingJobStatus": status}

    def stocksage_finish_training_job_route(request: Any, full_url: str, headers: Any) -> Any:
        try:
            body = json.loads(request.data or b"{}")
            backend = sagemaker_backends[body.get("AccountId") or DEFAULT_ACCOUNT_ID][
                body.get("Region") or "us-east-1"]
            result = finish_training_job(
                backend, body["TrainingJobName"], body["TrainingJobStatus"],
                body.get("FailureReason"), body.get("S3ModelArtifacts"),
                body.get("FinalMetricDataList"), body.get("BillableSeconds"))
        except (ValidationError, KeyError, ValueError) as err:
            message = getattr(err, "message", None) or str(err)
            return 400, {"Content-Type": "application/json"}, json.dumps(
                {"__type": "ValidationException", "message": message})
        return 200, {"Content-Type": "application/json"}, json.dumps(result)

    for fn in (__init__, create_training_job, finish_training_job,
               stocksage_finish_training_job_route):
        fn.__stocksage_patch__ = True  # type: ignore[attr-defined]
    FakeTrainingJob.__init__ = __init__  # type: ignore[method-assign]
    SageMakerModelBackend.create_training_job = create_training_job  # type: ignore
    SageMakerModelBackend.stocksage_finish_training_job = finish_training_job  # type: ignore
    moto_api_urls.url_paths["{0}" + FINISH_TRAINING_JOB_PATH] = stocksage_finish_training_job_route


def _patch_events_test_event_pattern() -> None:
    """Implement EventBridge ``TestEventPattern`` (moto: ``NotImplementedError``).

    The answer comes from moto's own event-pattern matcher (``moto.events.models.EventPattern``,
    the one ``PutEvents`` uses for rules: exact values, ``prefix``, ``suffix``,
    ``anything-but``, ``exists``, ``numeric``, ``equals-ignore-case``, ``$or``). The local
    runtime asks the emulator through this API which rules an event matches, exactly as a tool
    would ask AWS.
    """
    from moto.events.models import EventPattern
    from moto.events.responses import EventsHandler

    def test_event_pattern(self: Any) -> Any:
        pattern = EventPattern.load(self._get_param("EventPattern"))
        event = json.loads(self._get_param("Event") or "{}")
        return json.dumps({"Result": bool(pattern.matches_event(event))}), self.response_headers

    test_event_pattern.__stocksage_patch__ = True  # type: ignore[attr-defined]
    EventsHandler.test_event_pattern = test_event_pattern  # type: ignore[method-assign]


def _patch_dynamodb_transaction_item_snapshots() -> None:
    """TransactWriteItems snapshots the items it touches, not whole tables.

    moto deep-copies the whole table once per transaction item, to roll back on failure: a
    100-item transaction on a table of 10,000 items copied a million items (seconds per call;
    the processor writes its state as such transactions). The patch snapshots the touched
    items (at most 100) and restores exactly those on failure: the same all-or-nothing
    outcome, in time independent of the table size. The conditions, errors and
    ``CancellationReasons`` are still moto's own.
    """
    import copy as _copy

    from moto.dynamodb import models
    from moto.dynamodb.models import DynamoDBBackend
    from moto.dynamodb.models.table import Table

    original = DynamoDBBackend.transact_write_items
    if getattr(original, "__stocksage_patch__", False):
        return

    class _KeepTables:
        """Stands in for ``copy`` inside moto's module: tables are not copied (see above)."""

        @staticmethod
        def deepcopy(value: Any, memo: Any = None) -> Any:
            return value if isinstance(value, Table) else _copy.deepcopy(value, memo)

    def _key(table: Any, op_type: str, op: dict[str, Any]) -> dict[str, Any]:
        if op_type != "Put":
            return dict(op.get("Key", {}))
        key = {table.hash_key_attr: op["Item"][table.hash_key_attr]}
        if table.range_key_attr is not None:
            key[table.range_key_attr] = op["Item"][table.range_key_attr]
        return key

    def transact_write_items(self: Any, transact_items: list[dict[str, Any]]) -> None:
        saved = []
        for entry in transact_items:
            op_type, op = next(iter(entry.items()))
            table = self.tables.get(op.get("TableName"))
            if table is None or not isinstance(op, dict):
                continue
            try:
                key = _key(table, op_type, op)
                current = self.get_item(op["TableName"], key)
            except Exception:  # noqa: BLE001, S112 -- moto's own call reports the error
                continue
            saved.append((op["TableName"], key, None if current is None
                          else current.to_json()["Attributes"]))
        real = models.copy
        models.copy = _KeepTables  # type: ignore[assignment]
        try:
            return original(self, transact_items)
        except Exception:
            for table_name, key, attributes in reversed(saved):
                if attributes is None:
                    self.delete_item(table_name, key)
                else:
                    self.put_item(table_name, attributes)
            raise
        finally:
            models.copy = real  # type: ignore[assignment]

    transact_write_items.__stocksage_patch__ = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


#: Private emulator route for fault injection (``stocksage.local.faults`` is the client):
#: ``POST`` one fault, ``GET`` the active ones, ``DELETE`` all.
FAULTS_PATH = "/moto-api/stocksage/faults"
#: Fault names the route accepts.
FAULT_NAMES = ("dynamodb_throttle", "sns_publish")
DYNAMODB_WRITE_OPERATIONS = ("PutItem", "UpdateItem", "BatchWriteItem")
SNS_ERRORS = {"InternalError": 500, "Throttled": 429}


@dataclass
class ActiveFault:
    """One switched-on fault in the server process."""

    name: str
    fraction: float
    until: float  # time.monotonic() deadline
    operations: tuple[str, ...] = ()
    tables: tuple[str, ...] = ()
    error: str = ""
    rng: Any = None
    calls: int = 0
    injected: int = 0

    def strikes(self, operation: str, table: str | None = None) -> bool:
        """Whether this call fails (counts it); False once the fault has expired."""
        if time.monotonic() >= self.until:
            return False
        if self.operations and operation not in self.operations:
            return False
        if self.tables and table is not None and table not in self.tables:
            return False
        self.calls += 1
        hit = self.rng.random() < self.fraction
        self.injected += int(hit)
        return hit

    def as_dict(self) -> dict[str, Any]:
        return {"fraction": self.fraction, "remaining_s": max(0.0, self.until - time.monotonic()),
                "operations": list(self.operations), "tables": list(self.tables),
                "error": self.error, "calls": self.calls, "injected": self.injected}


_faults: dict[str, ActiveFault] = {}
_faults_lock = threading.Lock()


def _active_fault(name: str) -> ActiveFault | None:
    with _faults_lock:
        fault = _faults.get(name)
        if fault is not None and time.monotonic() >= fault.until:
            del _faults[name]
            return None
        return fault


def set_fault(spec: dict[str, Any]) -> ActiveFault:
    """Switch on one fault in this (server) process; replaces a fault of the same name.

    ``spec``: ``fault`` (one of ``FAULT_NAMES``), ``fraction`` (0..1 of matching calls that
    fail), ``seconds`` (duration), optional ``operations`` / ``tables`` (DynamoDB filters),
    ``error`` (SNS: ``InternalError`` -> HTTP 500, ``Throttled`` -> 429), ``seed``.

    Raises:
        ValueError: an unknown fault or an out-of-range value.
    """
    import random

    name = spec.get("fault")
    if name not in FAULT_NAMES:
        raise ValueError(f"fault must be one of {FAULT_NAMES}, not {name!r}")
    fraction = float(spec.get("fraction", 1.0))
    seconds = float(spec.get("seconds", 60))
    if not 0.0 <= fraction <= 1.0 or seconds <= 0:
        raise ValueError("fraction must be within 0..1 and seconds > 0")
    operations = tuple(spec.get("operations") or (
        DYNAMODB_WRITE_OPERATIONS if name == "dynamodb_throttle" else ("Publish", "PublishBatch")))
    if name == "dynamodb_throttle" and set(operations) - set(DYNAMODB_WRITE_OPERATIONS):
        raise ValueError(f"operations must be among {DYNAMODB_WRITE_OPERATIONS}")
    error = str(spec.get("error") or ("InternalError" if name == "sns_publish" else ""))
    if name == "sns_publish" and error not in SNS_ERRORS:
        raise ValueError(f"error must be one of {sorted(SNS_ERRORS)}")
    fault = ActiveFault(name, fraction, time.monotonic() + seconds, operations,
                        tuple(spec.get("tables") or ()), error, random.Random(spec.get("seed")))
    with _faults_lock:
        _faults[name] = fault
    return fault


def clear_faults() -> None:
    """Switch every fault off."""
    with _faults_lock:
        _faults.clear()


def _patch_fault_injection() -> None:
    """Fault injection for resilience tests, switched on for a duration through a private
    route (``FAULTS_PATH``, client: ``stocksage.local.faults``):

    * ``dynamodb_throttle``: a ``fraction`` of ``PutItem`` / ``UpdateItem`` /
      ``BatchWriteItem`` calls (optionally only some tables) fail with
      ``ProvisionedThroughputExceededException`` (HTTP 400, as DynamoDB answers); a struck
      ``BatchWriteItem`` instead returns that fraction of its write requests as
      ``UnprocessedItems`` (the rest is written), and fails as a whole only when every request
      was held back - DynamoDB's own behaviour under throttling.
    * ``sns_publish``: a ``fraction`` of ``Publish`` / ``PublishBatch`` calls fail with
      ``InternalError`` (HTTP 500) or ``Throttled`` (HTTP 429); nothing is delivered.

    boto3 retries these errors (standard mode: up to 3 attempts): a client sees a fault only
    when all its attempts are struck, exactly as against AWS.
    """
    from moto.core.exceptions import ServiceException
    from moto.dynamodb.responses import DynamoHandler
    from moto.moto_api._internal import urls as moto_api_urls
    from moto.sns.responses import SNSResponse

    class ProvisionedThroughputExceededException(ServiceException):
        code = "ProvisionedThroughputExceededException"
        message = ("The level of configured provisioned throughput for the table was exceeded. "
                   "Consider increasing your provisioning level with the UpdateTable API.")

    class InternalError(ServiceException):
        code = "InternalError"
        message = "Internal error (stocksage fault injection)"

    class Throttled(ServiceException):
        code = "Throttled"
        message = "Rate exceeded (stocksage fault injection)"

    def single_write(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def action(self: Any) -> Any:
            fault = _active_fault("dynamodb_throttle")
            if fault is not None and fault.strikes(operation, self.body.get("TableName")):
                raise ProvisionedThroughputExceededException()
            return original(self)

        action.__stocksage_patch__ = True  # type: ignore[attr-defined]
        return action

    original_batch = DynamoHandler.batch_write_item

    def batch_write_item(self: Any) -> Any:
        fault = _active_fault("dynamodb_throttle")
        if fault is None or not fault.strikes("BatchWriteItem"):
            return original_batch(self)
        kept: dict[str, list[Any]] = {}
        held: dict[str, list[Any]] = {}
        for table, requests in self.body["RequestItems"].items():
            for request in requests:
                hit = (not fault.tables or table in fault.tables) \
                    and fault.rng.random() < fault.fraction
                (held if hit else kept).setdefault(table, []).append(request)
        if not held:
            return original_batch(self)
        if not kept:
            raise ProvisionedThroughputExceededException()
        self.body["RequestItems"] = kept
        result = original_batch(self)
        result.result["UnprocessedItems"] = held
        return result

    batch_write_item.__stocksage_patch__ = True  # type: ignore[attr-defined]

    def publishing(operation: str, original: Callable[..., Any]) -> Callable[..., Any]:
        def action(self: Any) -> Any:
            fault = _active_fault("sns_publish")
            if fault is not None and fault.strikes(operation):
                raise (Throttled if fault.error == "Throttled" else InternalError)()
            return original(self)

        action.__stocksage_patch__ = True  # type: ignore[attr-defined]
        return action

    def faults_route(request: Any, full_url: str, headers: Any) -> Any:
        json_type = {"Content-Type": "application/json"}
        try:
            if request.method == "POST":
                set_fault(json.loads(request.data or b"{}"))
            elif request.method == "DELETE":
                clear_faults()
        except (ValueError, TypeError) as err:
            return 400, json_type, json.dumps({"__type": "ValidationException",
                                               "message": str(err)})
        with _faults_lock:
            active = {name: f.as_dict() for name, f in _faults.items()
                      if time.monotonic() < f.until}
        return 200, json_type, json.dumps({"faults": active})

    DynamoHandler.put_item = single_write("PutItem", DynamoHandler.put_item)  # type: ignore
    DynamoHandler.update_item = single_write(  # type: ignore[method-assign]
        "UpdateItem", DynamoHandler.update_item)
    DynamoHandler.batch_write_item = batch_write_item  # type: ignore[method-assign]
    SNSResponse.publish = publishing("Publish", SNSResponse.publish)  # type: ignore
    SNSResponse.publish_batch = publishing(  # type: ignore[method-assign]
        "PublishBatch", SNSResponse.publish_batch)
    moto_api_urls.url_paths["{0}" + FAULTS_PATH] = faults_route


PATCHES: list[Patch] = [
    Patch(
        "no_lambda_from_kinesis_puts",
        "put_records never invokes Lambda; stocksage.local.esm runs the mappings",
        _patch_no_lambda_from_kinesis_puts,
    ),
    Patch(
        "kinesis_constant_time_shard_ops",
        "puts and get_records no longer copy/scan the whole shard",
        _patch_kinesis_constant_time_shard_ops,
    ),
    Patch(
        "sagemaker_update_endpoint",
        "UpdateEndpoint re-points the endpoint to a new configuration (stays InService)",
        _patch_sagemaker_update_endpoint,
    ),
    Patch(
        "sagemaker_training_job_lifecycle",
        "training jobs stay InProgress until the local runtime reports their outcome",
        _patch_sagemaker_training_job_lifecycle,
    ),
    Patch(
        "dynamodb_transaction_item_snapshots",
        "TransactWriteItems snapshots the touched items, not whole tables (O(items))",
        _patch_dynamodb_transaction_item_snapshots,
    ),
    Patch(
        "events_test_event_pattern",
        "EventBridge TestEventPattern answers with moto's own rule matcher",
        _patch_events_test_event_pattern,
    ),
    Patch(
        "fault_injection",
        "DynamoDB write throttling and SNS Publish failures on demand (resilience tests)",
        _patch_fault_injection,
    ),
]


def apply_patches(patches: list[Patch] | None = None) -> list[str]:
    """Apply ``patches`` (default: all of ``PATCHES``) once per process; return their names."""
    names = []
    with _patch_lock:
        for patch in PATCHES if patches is None else patches:
            if patch.name not in _applied:
                patch.apply()
                _applied.add(patch.name)
            names.append(patch.name)
    return names


def applied_patches() -> list[str]:
    """Names of the patches applied in this process."""
    return sorted(_applied)


# --------------------------------------------------------------------------------------------
# Server
# --------------------------------------------------------------------------------------------


def _make_server(host: str, port: int, access_log: bool = False) -> Any:
    from moto.moto_server.werkzeug_app import (
        DomainDispatcherApplication,
        MotoRequestHandler,
        create_backend_app,
    )
    from werkzeug.serving import make_server

    handler: type = MotoRequestHandler
    if not access_log:

        class QuietHandler(MotoRequestHandler):  # type: ignore[misc, valid-type]
            def log_request(self, *args: Any, **kwargs: Any) -> None:
                return None

        handler = QuietHandler
    app = DomainDispatcherApplication(create_backend_app)
    return make_server(host, port, app, threaded=True, request_handler=handler)


def probe(endpoint_url: str, timeout: float = 2.0) -> bool:
    """True when a moto server answers ``GET /moto-api/`` at ``endpoint_url``."""
    try:
        with urllib.request.urlopen(f"{endpoint_url}/moto-api/", timeout=timeout) as resp:
            return resp.status == 200
    except (urllib.error.URLError, OSError, ValueError):
        return False


class Emulator:
    """The patched moto server for tests and embedding.

    Args:
        port: TCP port; 0 picks a free one (read ``.port`` / ``.endpoint_url`` after start).
        host: Bind address.
        mode: ``"thread"`` runs the server in this process (patches applied here: moto's
            global state is shared by every in-process emulator); ``"process"`` runs
            ``python -m stocksage.local.emulator serve`` as a child (isolated state).
        state_dir: For ``mode="process"``: where the child writes its log and port file
            (default: a temporary directory).
    """

    def __init__(
        self,
        port: int = 0,
        host: str = DEFAULT_HOST,
        mode: str = "thread",
        state_dir: str | Path | None = None,
        startup_timeout: float = 30.0,
    ) -> None:
        if mode not in ("thread", "process"):
            raise ValueError("mode must be 'thread' or 'process'")
        self.host = host
        self.port = port
        self.mode = mode
        self.state_dir = Path(state_dir) if state_dir else None
        self.startup_timeout = startup_timeout
        self._server: Any = None
        self._thread: threading.Thread | None = None
        self._proc: subprocess.Popen[bytes] | None = None
        self._tmp: Any = None

    @property
    def endpoint_url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def start(self) -> Emulator:
        if self.mode == "thread":
            apply_patches()
            self._server = _make_server(self.host, self.port)
            self.port = self._server.server_address[1]
            self._thread = threading.Thread(
                target=self._server.serve_forever, name=f"moto-{self.port}", daemon=True
            )
            self._thread.start()
        else:
            self._start_process()
        if not wait_until(lambda: probe(self.endpoint_url), self.startup_timeout):
            self.stop()
            raise RuntimeError(f"emulator did not answer on {self.endpoint_url}")
        return self

    def _start_process(self) -> None:
        import tempfile

        if self.state_dir is None:
            self._tmp = tempfile.TemporaryDirectory(prefix="stocksage-emu-")
            self.state_dir = Path(self._tmp.name)
        self.state_dir.mkdir(parents=True, exist_ok=True)
        port_file = self.state_dir / "emulator.port"
        port_file.unlink(missing_ok=True)
        log = open(self.state_dir / "emulator.log", "ab")  # noqa: SIM115
        self._proc = subprocess.Popen(
            [sys.executable, "-m", "stocksage.local.emulator", "serve", "--host", self.host,
             "--port", str(self.port), "--port-file", str(port_file)],
            stdout=log, stderr=subprocess.STDOUT, cwd=str(REPO_ROOT),
            env=child_env(),
        )
        log.close()
        ok = wait_until(lambda: port_file.exists() or self._proc.poll() is not None,
                        self.startup_timeout)
        if not ok or not port_file.exists():
            tail = log_tail(self.state_dir / "emulator.log")
            self.stop()
            raise RuntimeError(f"emulator child failed to start:\n{tail}")
        self.port = int(port_file.read_text().strip())

    def reset(self) -> None:
        """Drop every resource (moto's ``/moto-api/reset``)."""
        req = urllib.request.Request(f"{self.endpoint_url}/moto-api/reset", method="POST")
        urllib.request.urlopen(req, timeout=10).close()

    def stop(self) -> None:
        if self._server is not None:
            self._server.shutdown()
            self._server.server_close()
            self._server = None
        if self._thread is not None:
            self._thread.join(timeout=10)
            self._thread = None
        if self._proc is not None:
            if self._proc.poll() is None:
                self._proc.terminate()
                try:
                    self._proc.wait(timeout=10)
                except subprocess.TimeoutExpired:
                    self._proc.kill()
                    self._proc.wait()
            self._proc = None
        if self._tmp is not None:
            self._tmp.cleanup()
            self._tmp = None

    def __enter__(self) -> Self:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()


def serve(host: str = DEFAULT_HOST, port: int = DEFAULT_PORT,
          port_file: str | Path | None = None, access_log: bool = False) -> None:
    """Run the patched server in the foreground until SIGINT/SIGTERM."""
    names = apply_patches()
    server = _make_server(host, port, access_log)
    actual = server.server_address[1]
    os.environ.setdefault("MOTO_PORT", str(actual))

    def _stop(signum: int, frame: Any) -> None:
        threading.Thread(target=server.shutdown, daemon=True).start()

    signal.signal(signal.SIGTERM, _stop)
    signal.signal(signal.SIGINT, _stop)
    print(f"stocksage emulator (moto) on http://{host}:{actual}; patches: {', '.join(names)}",
          flush=True)
    if port_file:
        tmp = Path(f"{port_file}.tmp")
        tmp.write_text(str(actual))
        tmp.replace(port_file)
    try:
        server.serve_forever()
    finally:
        server.server_close()
        print("stocksage emulator stopped", flush=True)


# --------------------------------------------------------------------------------------------
# CLI
# --------------------------------------------------------------------------------------------


def _daemon(state_dir: str, host: str, port: int) -> Daemon:
    url = f"http://{host}:{port}"
    return Daemon("emulator", "stocksage.local.emulator", Path(state_dir), lambda: probe(url))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m stocksage.local.emulator",
                                     description="The embedded AWS (patched moto server).")
    parser.add_argument("command", choices=["start", "stop", "status", "serve", "patches"])
    parser.add_argument("--host", default=DEFAULT_HOST)
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--state-dir", default=DEFAULT_STATE_DIR)
    parser.add_argument("--timeout", type=float, default=60.0)
    parser.add_argument("--access-log", action="store_true", help="log every request (serve)")
    parser.add_argument("--port-file", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    daemon = _daemon(args.state_dir, args.host, args.port)
    url = f"http://{args.host}:{args.port}"

    if args.command == "serve":
        serve(args.host, args.port, args.port_file, args.access_log)
        return 0
    if args.command == "patches":
        for patch in PATCHES:
            print(f"{patch.name}: {patch.summary}")
        return 0
    if args.command == "start":
        if daemon.pid() is None and port_in_use(args.host, args.port):
            print(f"port {args.port} is already in use by another process", file=sys.stderr)
            return 1
        try:
            pid = daemon.start(["--host", args.host, "--port", str(args.port)], args.timeout)
        except RuntimeError as err:
            print(str(err), file=sys.stderr)
            return 1
        print(f"emulator running on {url} (pid {pid}, log {daemon.log_file})")
        return 0
    if args.command == "stop":
        stopped = daemon.stop()
        print("emulator stopped" if stopped else "emulator was not running")
        return 0
    # status
    pid = daemon.pid()
    up = probe(url)
    print(json.dumps({"pid": pid, "endpoint_url": url, "healthy": up,
                      "log": str(daemon.log_file)}))
    return 0 if up else 3


if __name__ == "__main__":
    sys.exit(main())
