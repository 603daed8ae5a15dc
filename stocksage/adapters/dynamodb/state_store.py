"""DynamoDB adapter of ``StateStore``: one item per symbol in the ``window-state`` table.

Call budget per Kinesis batch: one BatchGetItem for the states of up to 100 symbols (more
symbols: one call per 100 keys), unprocessed keys retried a bounded number of times with
jittered backoff; conditional puts of the symbol states (optimistic lock on ``version``), 100
per TransactWriteItems. Failures are reported per symbol, never for the whole batch.

The wire format of items, error reasons and the bounded retries of batch calls are in
``stocksage.adapters.dynamodb.calls``.
"""

from __future__ import annotations

import logging
from collections.abc import Sequence
from typing import Any

from botocore.exceptions import BotoCoreError, ClientError

from stocksage.adapters.dynamodb.calls import (
    DEFAULT_BACKOFF,
    MAX_BATCH_GET,
    Backoff,
    batch_get,
    error_reason,
    from_wire,
    to_wire,
)
from stocksage.config import STACK
from stocksage.state import StateFormatError, SymbolState

__all__ = ["DynamoStateStore"]

logger = logging.getLogger(__name__)

MAX_TRANSACTION = 100
"""Items per TransactWriteItems call (DynamoDB's limit)."""


class DynamoStateStore:
    """Symbol state in the ``window-state`` table (partition key ``symbol``), format 2.

    Reads: BatchGetItem (strongly consistent), 100 keys a call. Writes: conditional puts
    (the version read, then version + 1) in TransactWriteItems of up to 100: a stale or
    concurrent invocation cannot overwrite newer state, and one failing symbol does not fail
    the others. A transactional write costs 2 write units per KB (the state item is < 1 KB
    with price rules) and one call per 100 symbols.

    Args:
        client: ``boto3.client("dynamodb")`` (thread-safe; give it ``client_config()``).
        table_name: Physical table name (``STATE_TABLE``).
        backoff: Retries of unprocessed keys and of failed transactions.
    """

    def __init__(self, client: Any, table_name: str, backoff: Backoff = DEFAULT_BACKOFF) -> None:
        self._client = client
        self._table_name = table_name
        self._backoff = backoff
        self._key = STACK.keys["state"]["partition"]

    def get_states(self, symbols: Sequence[str]) -> tuple[dict[str, SymbolState], dict[str, str]]:
        """``({symbol: state}, {symbol: reason})``; missing items are in neither."""
        found: dict[str, SymbolState] = {}
        failed: dict[str, str] = {}
        for start in range(0, len(symbols), MAX_BATCH_GET):
            chunk = list(symbols[start:start + MAX_BATCH_GET])
            try:
                items, unprocessed = batch_get(self._client, self._table_name,
                                                [{self._key: {"S": s}} for s in chunk],
                                                self._backoff, consistent=True)
            except (ClientError, BotoCoreError) as exc:
                failed.update(dict.fromkeys(chunk, error_reason(exc)))
                continue
            for key in unprocessed:
                failed[key[self._key]["S"]] = "state read throttled (keys unprocessed)"
            for raw in items:
                plain = from_wire(raw)
                try:
                    found[plain[self._key]] = SymbolState.from_item(plain)
                except StateFormatError as err:
                    failed[plain[self._key]] = str(err)
        return found, failed

    def put_states(self, states: Sequence[SymbolState]) -> dict[str, str]:
        """Conditional puts, 100 per TransactWriteItems; ``{symbol: reason}`` of those not written.

        A transaction is all-or-nothing: when one item's condition fails, or DynamoDB cannot
        store an item (``ValidationError``, e.g. a number outside its range), it cancels the
        transaction and names that item (``CancellationReasons``); the others are sent again
        without it at once (each such round removes at least one item, so it ends). Whole-call
        failures (throttling, timeouts, cancellations that name no item) are retried with
        backoff, ``backoff.attempts`` in all. Every state not written is in the result with its
        reason: none is ever dropped silently.
        """
        failed: dict[str, str] = {}
        for start in range(0, len(states), MAX_TRANSACTION):
            pending = list(states[start:start + MAX_TRANSACTION])
            attempt = 0
            while pending:
                rejected, error = self._transact(pending)
                if not error:
                    break
                if rejected:  # progress: the conflicting items leave, the others go again
                    failed.update(rejected)
                    pending = [s for s in pending if s.symbol not in rejected]
                    continue
                attempt += 1
                if attempt >= self._backoff.attempts:
                    failed.update(dict.fromkeys((s.symbol for s in pending),
                                                f"not written after {attempt} attempts: {error}"))
                    break
                self._backoff.sleep(attempt - 1)
        return failed

    def _transact(self, states: Sequence[SymbolState]) -> tuple[dict[str, str], str]:
        """One transaction; ``(rejected {symbol: reason}, error)`` -- both empty on success."""
        try:
            self._client.transact_write_items(TransactItems=[{"Put": self._put_request(s)}
                                                             for s in states])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            rejected = {}
            for state, reason in zip(states, reasons, strict=False):
                code = reason.get("Code")
                if code == "ConditionalCheckFailed":
                    rejected[state.symbol] = self._conflict(state)
                elif code in REFUSED_ITEM_CODES:  # this item cannot be stored: only it fails
                    rejected[state.symbol] = (f"state of {state.symbol} refused by DynamoDB: "
                                              f"{reason.get('Message', code)}")[:300]
            return rejected, error_reason(exc)
        except BotoCoreError as exc:
            return {}, error_reason(exc)
        return {}, ""

    @staticmethod
    def _conflict(state: SymbolState) -> str:
        return (f"state of {state.symbol} changed since it was read (version {state.version}): "
                f"another invocation wrote it")

    def _put_request(self, state: SymbolState) -> dict[str, Any]:
        """Put with ``attribute_not_exists(symbol)`` (new), ``attribute_not_exists(version)``
        (format-1 item being migrated) or ``version = :read``."""
        request: dict[str, Any] = {"TableName": self._table_name,
                                   "Item": to_wire(state.to_item())}
        if state.migrated_from == 1:
            request.update(ConditionExpression="attribute_not_exists(#v)",
                           ExpressionAttributeNames={"#v": "version"})
        elif state.version == 0:
            request.update(ConditionExpression="attribute_not_exists(#k)",
                           ExpressionAttributeNames={"#k": self._key})
        else:
            request.update(ConditionExpression="#v = :v",
                           ExpressionAttributeNames={"#v": "version"},
                           ExpressionAttributeValues={":v": {"N": str(state.version)}})
        return request

REFUSED_ITEM_CODES = frozenset({"ValidationError", "ValidationException"})
"""Cancellation reasons of an item DynamoDB cannot store (``ValidationError`` on AWS; moto
names it ``ValidationException``): that item fails, the transaction's others go again."""
