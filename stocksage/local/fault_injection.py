"""Fault injection for resilience tests against the local stack (client side).

The faults happen where AWS would produce them: DynamoDB throttling and SNS failures inside the
emulator (``stocksage.local.moto_patches.fault_routes``, patch ``fault_injection``), endpoint
outages in the SageMaker endpoint host (``stocksage.local.sagemaker_host``). Every fault ends by
itself after ``seconds``; ``clear`` ends them at once::

    from stocksage.local import fault_injection as faults

    faults.throttle_dynamodb(emulator_url, fraction=0.3, seconds=60)
    faults.fail_sns(emulator_url, fraction=1.0, seconds=30, error="Throttled")
    faults.endpoint_outage(sagemaker_url, seconds=90, mode="fail")
    ...
    faults.clear(emulator_url, sagemaker_url)

Event source mapping faults (every batch delivered twice, a crash mid-batch) are switches of
the local runtime itself: ``EsmEngine(faults=EsmFaults(redeliver=True))`` / ``engine.kill()``
(``stocksage.local.esm``).
"""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections.abc import Sequence
from typing import Any

from stocksage.local.moto_patches.fault_routes import FAULTS_PATH

#: Route of the SageMaker host's outage switch.
OUTAGE_PATH = "/_stocksage/outage"


class FaultError(RuntimeError):
    """The emulator or the host refused the fault (bad value) or is not reachable."""


def _call(url: str, method: str, body: dict[str, Any] | None = None,
          timeout: float = 10.0) -> dict[str, Any]:
    data = json.dumps(body).encode() if body is not None else None
    request = urllib.request.Request(url, data=data, method=method,
                                     headers={"Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return json.loads(response.read() or b"{}")
    except urllib.error.HTTPError as err:
        raise FaultError(f"{method} {url}: {err.code} {err.read().decode(errors='replace')}") \
            from None
    except OSError as err:
        raise FaultError(f"{method} {url}: {err}") from None


def throttle_dynamodb(endpoint_url: str, fraction: float = 0.3, seconds: float = 60.0, *,
                      tables: Sequence[str] | None = None,
                      operations: Sequence[str] | None = None,
                      seed: int | None = None) -> dict[str, Any]:
    """Throttle a ``fraction`` (0..1) of DynamoDB write calls for ``seconds``.

    ``PutItem``/``UpdateItem`` fail with ``ProvisionedThroughputExceededException``;
    ``BatchWriteItem`` returns that fraction of its requests as ``UnprocessedItems``. (boto3
    retries a throttled call up to its ``max_attempts``.)

    Args:
        endpoint_url: The emulator, e.g. ``http://127.0.0.1:4566``.
        tables: Only these tables (default: all).
        operations: Subset of ``PutItem``, ``UpdateItem``, ``BatchWriteItem`` (default: all).
        seed: Seed of the fault's random draws (reproducible runs).

    Returns:
        The active faults: ``{"faults": {name: {fraction, remaining_s, calls, injected...}}}``.

    Raises:
        FaultError: bad values or no emulator.
    """
    return _call(endpoint_url.rstrip("/") + FAULTS_PATH, "POST", {
        "fault": "dynamodb_throttle", "fraction": fraction, "seconds": seconds,
        "tables": list(tables or []), "operations": list(operations or []), "seed": seed})


def fail_sns(endpoint_url: str, fraction: float = 1.0, seconds: float = 60.0, *,
             error: str = "InternalError", seed: int | None = None) -> dict[str, Any]:
    """Fail a ``fraction`` of SNS ``Publish``/``PublishBatch`` calls for ``seconds`` with
    ``InternalError`` (HTTP 500) or ``Throttled`` (HTTP 429); struck messages are not delivered.

    Raises:
        FaultError: bad values or no emulator.
    """
    return _call(endpoint_url.rstrip("/") + FAULTS_PATH, "POST", {
        "fault": "sns_publish", "fraction": fraction, "seconds": seconds, "error": error,
        "seed": seed})


def endpoint_outage(sagemaker_url: str, seconds: float = 90.0, *, mode: str = "fail",
                    endpoint: str | None = None) -> dict[str, Any]:
    """Take SageMaker endpoints of the local host down for ``seconds``.

    Args:
        sagemaker_url: The endpoint host (``LocalRuntime.sagemaker_url``, default
            ``http://127.0.0.1:4567``).
        mode: ``fail`` (503 ``ServiceUnavailable``, retried by boto3), ``model_error`` (424
            ``ModelError``, not retried) or ``hang`` (requests wait until the outage ends).
        endpoint: One endpoint name (default: every endpoint).

    Raises:
        FaultError: bad values or no host.
    """
    return _call(sagemaker_url.rstrip("/") + OUTAGE_PATH, "POST",
                 {"seconds": seconds, "mode": mode, "endpoint": endpoint})


def active(endpoint_url: str) -> dict[str, Any]:
    """The emulator's active faults (``{"faults": {...}}`` with call and injection counts)."""
    return _call(endpoint_url.rstrip("/") + FAULTS_PATH, "GET")


def clear(endpoint_url: str | None = None, sagemaker_url: str | None = None) -> None:
    """End every emulator fault and/or the endpoint outage now."""
    if endpoint_url:
        _call(endpoint_url.rstrip("/") + FAULTS_PATH, "DELETE")
    if sagemaker_url:
        _call(sagemaker_url.rstrip("/") + OUTAGE_PATH, "DELETE")
