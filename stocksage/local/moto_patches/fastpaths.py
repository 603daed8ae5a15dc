"""Two per-request costs of moto's server that a streaming load multiplies, removed.

Measured with py-spy on the emulator during ``scripts/bench_stream.py --e2e`` (500 symbols,
one bar each per Lambda batch): moto spent ~25 % of its time serialising DynamoDB items it
returns and ~9 % finding the backend of each request. Neither changes what a client sees:

* ``dynamodb_item_responses``: ``GetItem``, ``BatchGetItem``, ``Query`` and ``Scan`` return
  items that moto already holds in DynamoDB's JSON wire form (``{"S": ...}``, numbers as
  strings, binaries base64). moto's generic serializer walks the botocore shape of every
  attribute value of every item (~50 µs per attribute); the wire form is the same
  ``json.dumps`` of the result with empty members dropped. Errors and every other action keep
  moto's serializer. ``tests/unit/test_moto_fastpaths.py`` proves the bodies equal for every
  attribute type, projections, pagination keys and unprocessed keys.
* ``backend_lookup_cache``: ``DomainDispatcherApplication.get_backend_for_host`` lists moto's
  package directory (``os.listdir`` + ``isdir`` of ~200 entries) and tries ~1,000 URL regexes
  on every request, under one lock shared by all request threads. The answer depends only on
  the host, so it is cached per host (a host that matches nothing is cached as ``None`` and
  the request falls through to moto's header-based inference as before).
"""

from __future__ import annotations

import base64
import functools
import json
from collections.abc import Callable
from typing import Any

ITEM_ACTIONS = frozenset({"GetItem", "BatchGetItem", "Query", "Scan"})
"""DynamoDB actions whose results are items in wire form (served by the fast path)."""

_JSON_HEADERS = {"Content-Type": "application/x-amz-json-1.0"}


def _pruned(value: Any) -> Any:
    """``value`` without ``None`` members (moto's serializer drops them), recursively."""
    if isinstance(value, dict):
        return {k: _pruned(v) for k, v in value.items() if v is not None}
    if isinstance(value, list):
        return [_pruned(v) for v in value]
    return value


def _blob(value: Any) -> str:
    """Binary attribute values (``B``, ``BS``) that moto holds as bytes: base64 text."""
    if isinstance(value, bytes | bytearray):
        return base64.b64encode(value).decode("ascii")
    raise TypeError(f"{type(value).__name__} is not part of DynamoDB's wire form")


def wire_body(result: Any) -> str:
    """DynamoDB JSON body of an item-returning action's result (``DynamoResult.result``)."""
    return json.dumps(_pruned(result), separators=(",", ":"), default=_blob)


def patch_dynamodb_item_responses() -> None:
    """Serve ``ITEM_ACTIONS`` results as their wire form instead of walking their shapes."""
    from moto.dynamodb.responses import DynamoHandler, DynamoResult

    original: Callable[..., Any] = DynamoHandler.serialized
    if getattr(original, "_stocksage_fast", False):
        return

    @functools.wraps(original)
    def serialized(self: Any, action_result: Any) -> Any:
        if (isinstance(action_result, DynamoResult)
                and not isinstance(action_result.result, Exception)
                and self._get_action() in ITEM_ACTIONS):
            headers = dict(_JSON_HEADERS)
            headers.update(self.response_headers)
            return 200, headers, wire_body(action_result.result)
        return original(self, action_result)

    serialized._stocksage_fast = True  # type: ignore[attr-defined]
    DynamoHandler.serialized = serialized  # type: ignore[method-assign]  # patching moto on purpose


def patch_backend_lookup_cache() -> None:
    """Cache ``DomainDispatcherApplication.get_backend_for_host`` per host."""
    from moto.moto_server.werkzeug_app import DomainDispatcherApplication

    original: Callable[..., Any] = DomainDispatcherApplication.get_backend_for_host
    if getattr(original, "_stocksage_fast", False):
        return
    cache: dict[str | None, Any] = {}

    @functools.wraps(original)
    def get_backend_for_host(self: Any, host: str | None) -> Any:
        try:
            return cache[host]
        except KeyError:
            found = cache[host] = original(self, host)
            return found

    get_backend_for_host._stocksage_fast = True  # type: ignore[attr-defined]
    # patching moto on purpose (mypy forbids assigning to a method):
    DomainDispatcherApplication.get_backend_for_host = (  # type: ignore[method-assign]
        get_backend_for_host
    )
