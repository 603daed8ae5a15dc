"""DynamoDB adapters: window state, per-bar results and alert rules.

Call budget per Kinesis batch: one BatchGetItem for the states of up to 100 symbols (more
symbols: one call per 100 keys); BatchWriteItem in chunks of 25 for results, unprocessed items
retried a bounded number of times with jittered backoff (boto3's ``batch_writer`` would
re-send them at once and forever); conditional puts of the symbol states, 100 per
TransactWriteItems; for rules one cached Scan of the (small) rules table through Powertools
Parameters (at most every ``max_age`` s). Failures are reported per symbol, never for the
whole batch.

The wire format of items, error reasons and the bounded retries of batch calls are in
``stocksage.adapters.dynamo_calls``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider
from botocore.exceptions import BotoCoreError, ClientError

from stocksage.adapters.dynamo_calls import (
    DEFAULT_BACKOFF,
    MAX_BATCH_GET,
    SERIALIZER,
    Backoff,
    batch_get,
    error_reason,
    from_wire,
    to_wire,
)
from stocksage.adapters.dynamo_values import to_dynamo
from stocksage.alerts import Rule, RuleError
from stocksage.config import STACK
from stocksage.processing import PREDICTION_PENDING, PREDICTION_READY, PredictionFill
from stocksage.state import StateFormatError, SymbolState

__all__ = ["Backoff", "DynamoResultStore", "DynamoRuleSource", "DynamoStateStore",
           "RulesTableProvider", "put_rule"]

logger = logging.getLogger(__name__)

MAX_BATCH_WRITE = 25
"""Items per BatchWriteItem call (DynamoDB's limit)."""

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

        A transaction is all-or-nothing: when one item's condition fails DynamoDB cancels it
        and names that item (``CancellationReasons``); the others are sent again without it
        (bounded attempts). So one stale symbol fails alone, and 100 symbols cost one call.
        """
        failed: dict[str, str] = {}
        for start in range(0, len(states), MAX_TRANSACTION):
            pending = list(states[start:start + MAX_TRANSACTION])
            for attempt in range(self._backoff.attempts):
                if not pending:
                    break
                rejected, error = self._transact(pending)
                if error and not rejected:  # the whole call failed (throttled, timeout...)
                    if attempt + 1 < self._backoff.attempts:
                        self._backoff.sleep(attempt)
                        continue
                    failed.update(dict.fromkeys((s.symbol for s in pending), error))
                    break
                failed.update(rejected)
                pending = [s for s in pending if s.symbol not in rejected] if error else []
        return failed

    def _transact(self, states: Sequence[SymbolState]) -> tuple[dict[str, str], str]:
        """One transaction; ``(rejected {symbol: reason}, error)`` -- both empty on success."""
        try:
            self._client.transact_write_items(TransactItems=[{"Put": self._put_request(s)}
                                                             for s in states])
        except ClientError as exc:
            reasons = exc.response.get("CancellationReasons") or []
            rejected = {state.symbol: self._conflict(state)
                        for state, reason in zip(states, reasons, strict=False)
                        if reason.get("Code") == "ConditionalCheckFailed"}
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


class DynamoResultStore:
    """Per-bar results in the ``results`` table (keys ``symbol``, ``bar_time``).

    Writes: BatchWriteItem, 25 items a call, unprocessed items retried with bounded jittered
    backoff; what is still unprocessed fails its symbol (not the batch). Fills of pending
    predictions: UpdateItem conditioned on ``prediction_status = pending`` (idempotent).

    Args:
        client: ``boto3.client("dynamodb")``.
        table_name: Physical table name (``RESULTS_TABLE``).
        ttl_days: Days until DynamoDB's TTL may delete an item (``expires_at``, epoch seconds);
            0 keeps items forever.
        backoff: Retries of unprocessed items.
        workers: Threads sending the fills of pending predictions (one UpdateItem each).
    """

    def __init__(self, client: Any, table_name: str, ttl_days: int = 0,
                 backoff: Backoff = DEFAULT_BACKOFF, workers: int = 8) -> None:
        self._client = client
        self._table_name = table_name
        self._ttl_days = ttl_days
        self._backoff = backoff
        keys = STACK.keys["results"]
        self._pk, self._sk = keys["partition"], keys["sort"]
        self._pool = ThreadPoolExecutor(max_workers=workers, thread_name_prefix="result-fill")

    def put_results(self, items: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Write items (overwriting by key); ``{symbol: reason}`` of symbols not fully written."""
        expires_at = None
        if self._ttl_days > 0:
            expires_at = int((datetime.now(UTC) + timedelta(days=self._ttl_days)).timestamp())
        failed: dict[str, str] = {}
        for start in range(0, len(items), MAX_BATCH_WRITE):
            chunk = items[start:start + MAX_BATCH_WRITE]
            requests = []
            for item in chunk:
                wire = to_wire(item)
                if expires_at is not None:
                    wire["expires_at"] = {"N": str(expires_at)}
                requests.append({"PutRequest": {"Item": wire}})
            try:
                left = self._write(requests)
            except (ClientError, BotoCoreError) as exc:
                failed.update({item[self._pk]: error_reason(exc) for item in chunk})
                continue
            for request in left:
                symbol = request["PutRequest"]["Item"][self._pk]["S"]
                failed[symbol] = "results write throttled (items unprocessed after retries)"
        return failed

    def _write(self, requests: list[dict[str, Any]]) -> list[dict[str, Any]]:
        for attempt in range(self._backoff.attempts):
            response = self._client.batch_write_item(RequestItems={self._table_name: requests})
            requests = response.get("UnprocessedItems", {}).get(self._table_name, [])
            if not requests:
                return []
            self._backoff.sleep(attempt)
        return requests

    def existing(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """Keys with an item (BatchGetItem of the keys only); unanswered keys count as absent."""
        found: set[tuple[str, str]] = set()
        for start in range(0, len(keys), MAX_BATCH_GET):
            wire = [{self._pk: {"S": s}, self._sk: {"S": t}}
                    for s, t in keys[start:start + MAX_BATCH_GET]]
            items, _ = batch_get(self._client, self._table_name, wire, self._backoff,
                                  projection="#p, #s", names={"#p": self._pk, "#s": self._sk})
            found.update((i[self._pk]["S"], i[self._sk]["S"]) for i in items)
        return found

    def pending(self, symbol: str, since: str, limit: int) -> list[dict[str, Any]]:
        """Items of ``symbol`` from ``since`` with ``prediction_status = pending`` (Query)."""
        paginator = self._client.get_paginator("query")
        pages = paginator.paginate(
            TableName=self._table_name, ConsistentRead=True,
            KeyConditionExpression="#p = :p AND #s >= :since",
            FilterExpression="prediction_status = :pending",
            ExpressionAttributeNames={"#p": self._pk, "#s": self._sk},
            ExpressionAttributeValues={":p": {"S": symbol}, ":since": {"S": since},
                                       ":pending": {"S": PREDICTION_PENDING}})
        found: list[dict[str, Any]] = []
        for page in pages:
            found.extend(from_wire(item) for item in page.get("Items", []))
            if len(found) >= limit:
                break
        return found[:limit]

    def items_for(self, symbol: str) -> list[dict[str, Any]]:
        """Every results item of ``symbol``, oldest first (Query, paginated; for repair)."""
        pages = self._client.get_paginator("query").paginate(
            TableName=self._table_name, ConsistentRead=True,
            KeyConditionExpression="#p = :p", ExpressionAttributeNames={"#p": self._pk},
            ExpressionAttributeValues={":p": {"S": symbol}})
        return [from_wire(item) for page in pages for item in page.get("Items", [])]

    def fill_predictions(self, fills: Sequence[PredictionFill]) -> dict[str, str]:
        """UpdateItem per fill, only if still pending; ``{symbol: reason}`` of failed fills."""
        results = self._pool.map(self._fill, fills)
        return {symbol: reason for symbol, reason in results if reason}

    def _fill(self, fill: PredictionFill) -> tuple[str, str]:
        ranges = fill.range_attributes()  # two-output model: the forecast and its price band
        values = {":p": SERIALIZER.serialize(to_dynamo(fill.prob_up)),
                  ":m": {"S": fill.model_version}, ":r": {"S": PREDICTION_READY},
                  ":pending": {"S": PREDICTION_PENDING}}
        values.update({f":{name}": SERIALIZER.serialize(to_dynamo(value))
                       for name, value in ranges.items()})
        assignments = ["prob_up = :p", "model_version = :m", "prediction_status = :r",
                       *(f"{name} = :{name}" for name in ranges)]
        try:
            self._client.update_item(
                TableName=self._table_name,
                Key={self._pk: {"S": fill.symbol}, self._sk: {"S": fill.bar_time}},
                UpdateExpression="SET " + ", ".join(assignments),
                ConditionExpression="prediction_status = :pending",
                ExpressionAttributeValues=values)
        except ClientError as exc:
            if exc.response.get("Error", {}).get("Code") == "ConditionalCheckFailedException":
                return fill.symbol, ""  # filled before: idempotent
            return fill.symbol, error_reason(exc)
        except BotoCoreError as exc:
            return fill.symbol, error_reason(exc)
        return fill.symbol, ""


class RulesTableProvider(BaseProvider):
    """Powertools Parameters provider of the whole ``alert-rules`` table (one paginated Scan).

    ``get_multiple("all", max_age=...)`` returns ``{"SYMBOL\x1fRULE_ID": document}``, cached by
    Powertools for ``max_age`` seconds: one Scan per minute per warm Lambda instead of one
    Query per symbol (500 symbols = 500 calls per batch with the stock DynamoDBProvider).
    """

    SEPARATOR = "\x1f"

    def __init__(self, table_name: str, client: Any) -> None:
        super().__init__(client=client)
        self._client = client
        self._table_name = table_name
        keys = STACK.keys["rules"]
        self._pk, self._sk = keys["partition"], keys["sort"]

    def _get(self, name: str, **sdk_options: Any) -> str:
        raise NotImplementedError("read rules with get_multiple")

    def _get_multiple(self, path: str, **sdk_options: Any  # noqa: ARG002 -- BaseProvider's
                      ) -> dict[str, Any]:  # signature; the whole table is read, no options
        """``{"SYMBOL\x1fRULE_ID": rule document}``; a document may be missing or malformed
        (``Rule.from_document`` reports it as a broken rule)."""
        pages = self._client.get_paginator("scan").paginate(TableName=self._table_name)
        found: dict[str, Any] = {}
        for page in pages:
            for item in page.get("Items", []):
                plain = from_wire(item)
                found[f"{plain[self._pk]}{self.SEPARATOR}{plain[self._sk]}"] = plain.get("rule")
        return found


class DynamoRuleSource:
    """Alert rules from the ``alert-rules`` table, cached through Powertools Parameters.

    Items: ``symbol`` (partition key; ``*`` = every symbol), ``rule_id`` (sort key), ``rule``
    (JSON document, see ``stocksage.alerts.Rule.from_document``). The table is small (rules,
    not data), so it is read whole (``RulesTableProvider``) at most every ``max_age`` seconds.
    If a re-read fails the last rules read are used (logged); only a cold start with the table
    unreadable raises, which fails the batch's symbols (retried, nothing lost).

    Args:
        table_name: Physical table name (``RULES_TABLE``).
        max_age: Seconds the rules are cached in the warm Lambda.
        client: ``boto3.client("dynamodb")`` to use (endpoint, config).
    """

    def __init__(self, table_name: str, max_age: int = 60, client: Any | None = None,
                 clock: Any = time.monotonic) -> None:
        self._provider = RulesTableProvider(table_name, client)
        self._max_age = max_age
        self._last: dict[str, Any] | None = None
        self._covered: set[str] = set()
        self._clock = clock
        self._forced_at = float("-inf")

    def _documents(self, symbols: Sequence[str]) -> dict[str, Any]:
        """The table's rules: cached for ``max_age`` s, re-read at once (at most once a second)
        when a symbol appears that the cached read was not asked for, so the rules of a new
        symbol apply from its first batch, as with a per-symbol read."""
        new = not set(symbols) <= self._covered
        now = self._clock()
        force = new and now - self._forced_at >= 1.0
        if force:
            self._forced_at = now
        documents = self._provider.get_multiple("all", max_age=self._max_age,
                                                force_fetch=force)
        if force or documents is not self._last:
            self._covered = set()
        self._covered |= set(symbols)
        return documents

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Rules per symbol (each symbol's own plus the ``*`` rules) and the broken ones.

        Raises:
            botocore errors: only when the table was never read successfully.
        """
        try:
            documents = self._documents(symbols)
            self._last = documents
        except Exception:
            if self._last is None:
                raise
            logger.warning("alert rules re-read failed; using the rules read before",
                           exc_info=True)
            documents = self._last
        errors: list[RuleError] = []
        by_symbol: dict[str, list[Rule]] = {}
        for key, document in sorted(documents.items()):
            symbol, _, rule_id = key.partition(RulesTableProvider.SEPARATOR)
            try:
                by_symbol.setdefault(symbol, []).append(
                    Rule.from_document(symbol, rule_id, document))
            except RuleError as err:
                errors.append(err)
        wildcard = by_symbol.get("*", [])
        rules = {symbol: by_symbol.get(symbol, []) + [replace(r, symbol=symbol) for r in wildcard]
                 for symbol in symbols}
        return rules, errors


def put_rule(resource: Any, table_name: str, rule: Rule) -> None:
    """Create or replace a rule (used by the CLI, the demo and tests)."""
    keys = STACK.keys["rules"]
    resource.Table(table_name).put_item(Item={keys["partition"]: rule.symbol,
                                              keys["sort"]: rule.rule_id,
                                              "rule": rule.to_document()})
