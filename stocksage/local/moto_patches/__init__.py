"""The project's changes to moto, applied in the process that runs moto's server.

A few of moto's behaviours get in the way of a faithful local stack. Each is changed by one
small, idempotent function, registered in ``PATCHES`` with a one-line summary
(``python -m stocksage.local.emulator patches`` lists them)::

    from stocksage.local.moto_patches import apply_patches, applied_patches

    apply_patches()          # all of PATCHES, once per process (the emulator does this)
    applied_patches()        # ['dynamodb_transaction_item_snapshots', ...]

The patches, by service (each module's docstring says what moto does and what changes):

* ``kinesis``: ``no_lambda_from_kinesis_puts`` (the local runtime, not moto, runs event source
  mappings), ``kinesis_constant_time_shard_ops`` (puts and reads no longer copy or scan the
  whole shard), ``kinesis_resharding`` (after a split or merge, records go to the children
  and a closed shard ends);
* ``sagemaker``: ``sagemaker_update_endpoint`` (``UpdateEndpoint``),
  ``sagemaker_training_job_lifecycle`` (jobs stay ``InProgress`` until the local runtime
  reports their outcome);
* ``dynamodb``: ``dynamodb_transaction_item_snapshots`` (``TransactWriteItems`` snapshots the
  touched items, not whole tables);
* ``eventbridge``: ``events_test_event_pattern`` (``TestEventPattern``);
* ``faults``: ``fault_injection`` (DynamoDB throttling and SNS failures on demand, for
  resilience tests);
* ``fastpaths``: ``dynamodb_item_responses`` and ``backend_lookup_cache`` (per-request costs
  of moto's server removed without changing a response);
* ``fastwrites``: ``dynamodb_item_size_once``, ``dynamodb_compiled_request_parser`` and
  ``dynamodb_condition_lexer_cache`` (per-item costs of DynamoDB writes removed, same
  results).

moto is imported inside the patch functions: importing this package stays cheap.
"""

from __future__ import annotations

import threading
from collections.abc import Callable
from dataclasses import dataclass

from stocksage.local.moto_patches.eventbridge import events_test_event_pattern
from stocksage.local.moto_patches.fastpaths import (
    patch_backend_lookup_cache,
    patch_dynamodb_item_responses,
)
from stocksage.local.moto_patches.fastwrites import (
    dynamodb_compiled_request_parser,
    dynamodb_condition_lexer_cache,
    dynamodb_item_size_once,
)
from stocksage.local.moto_patches.fault_routes import fault_injection
from stocksage.local.moto_patches.kinesis import (
    kinesis_constant_time_shard_ops,
    kinesis_resharding,
    no_lambda_from_kinesis_puts,
)
from stocksage.local.moto_patches.sagemaker import (
    sagemaker_training_job_lifecycle,
    sagemaker_update_endpoint,
)
from stocksage.local.moto_patches.transactions import dynamodb_transaction_item_snapshots

__all__ = ["PATCHES", "Patch", "applied_patches", "apply_patches"]


@dataclass(frozen=True)
class Patch:
    """One change to moto. ``apply`` must be idempotent."""

    name: str
    summary: str
    apply: Callable[[], None]


PATCHES: list[Patch] = [
    Patch(
        "no_lambda_from_kinesis_puts",
        "put_records never invokes Lambda; stocksage.local.esm runs the mappings",
        no_lambda_from_kinesis_puts,
    ),
    Patch(
        "kinesis_constant_time_shard_ops",
        "puts and get_records no longer copy/scan the whole shard",
        kinesis_constant_time_shard_ops,
    ),
    Patch(
        "kinesis_resharding",
        "after a split or merge, puts go to open shards and a closed shard read to its end "
        "has no next iterator",
        kinesis_resharding,
    ),
    Patch(
        "sagemaker_update_endpoint",
        "UpdateEndpoint re-points the endpoint to a new configuration (stays InService)",
        sagemaker_update_endpoint,
    ),
    Patch(
        "sagemaker_training_job_lifecycle",
        "training jobs stay InProgress until the local runtime reports their outcome",
        sagemaker_training_job_lifecycle,
    ),
    Patch(
        "dynamodb_transaction_item_snapshots",
        "TransactWriteItems snapshots the touched items, not whole tables (O(items))",
        dynamodb_transaction_item_snapshots,
    ),
    Patch(
        "events_test_event_pattern",
        "EventBridge TestEventPattern answers with moto's own rule matcher",
        events_test_event_pattern,
    ),
    Patch(
        "fault_injection",
        "DynamoDB write throttling and SNS Publish failures on demand (resilience tests)",
        fault_injection,
    ),
    Patch(
        "dynamodb_item_responses",
        "GetItem/BatchGetItem/Query/Scan items sent in their wire form (no shape walk)",
        patch_dynamodb_item_responses,
    ),
    Patch(
        "backend_lookup_cache",
        "the backend of a request's host is looked up once per host",
        patch_backend_lookup_cache,
    ),
    Patch(
        "dynamodb_item_size_once",
        "an item's 400 KB limit checked with a running sum (moto re-sums per attribute)",
        dynamodb_item_size_once,
    ),
    Patch(
        "dynamodb_compiled_request_parser",
        "DynamoDB request bodies parsed by shape walks compiled once per shape",
        dynamodb_compiled_request_parser,
    ),
    Patch(
        "dynamodb_condition_lexer_cache",
        "a condition expression's tokens lexed once per distinct expression",
        dynamodb_condition_lexer_cache,
    ),
]

_applied: set[str] = set()
_lock = threading.Lock()


def apply_patches(patches: list[Patch] | None = None) -> list[str]:
    """Apply ``patches`` (default: all of ``PATCHES``) once per process; return their names."""
    names = []
    with _lock:
        for patch in PATCHES if patches is None else patches:
            if patch.name not in _applied:
                patch.apply()
                _applied.add(patch.name)
            names.append(patch.name)
    return names


def applied_patches() -> list[str]:
    """Names of the patches applied in this process."""
    return sorted(_applied)
