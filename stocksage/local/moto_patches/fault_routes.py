"""Fault injection in the emulator's process, for resilience tests.

A private route, ``FAULTS_PATH`` (client: ``stocksage.local.fault_injection``), switches a fault on
for a duration (``POST``), lists the active ones (``GET``) or switches all off (``DELETE``):

* ``dynamodb_throttle``: DynamoDB writes fail with ``ProvisionedThroughputExceededException``
  (or, for ``BatchWriteItem``, come back partly as ``UnprocessedItems``);
* ``sns_publish``: SNS ``Publish`` / ``PublishBatch`` fail with ``InternalError`` (500) or
  ``Throttled`` (429).

Faults live in module state of the server process (``set_fault`` / ``clear_faults`` work in
process too, e.g. with an in-process ``Emulator``) and end by themselves after their duration.
"""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

#: Private emulator route for fault injection (``stocksage.local.fault_injection`` is the client):
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


def faults_route(request: Any, full_url: str, headers: Any) -> Any:  # noqa: ARG001 -- moto's
    # route signature (it passes ``headers`` by keyword)
    """``FAULTS_PATH``: POST a fault spec (``set_fault``), DELETE to clear; answers the active
    faults (moto route handler: ``(status, headers, body)``)."""
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



def fault_injection() -> None:
    """Fault injection for resilience tests, switched on for a duration through a private
    route (``FAULTS_PATH``, client: ``stocksage.local.fault_injection``):

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
        result.result["UnprocessedItems"] = held  # type: ignore[index]  # moto's result is a dict
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

    DynamoHandler.put_item = single_write("PutItem", DynamoHandler.put_item)  # type: ignore
    DynamoHandler.update_item = single_write(  # type: ignore[method-assign]
        "UpdateItem", DynamoHandler.update_item)
    DynamoHandler.batch_write_item = batch_write_item  # type: ignore[method-assign]
    SNSResponse.publish = publishing("Publish", SNSResponse.publish)  # type: ignore
    SNSResponse.publish_batch = publishing(  # type: ignore[method-assign]
        "PublishBatch", SNSResponse.publish_batch)
    moto_api_urls.url_paths["{0}" + FAULTS_PATH] = faults_route

