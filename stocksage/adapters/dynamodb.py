"""DynamoDB adapters: window state, per-bar results and alert rules.

Call budget per Kinesis batch: one BatchGetItem for the states of up to 100 symbols (more
symbols: one call per 100 keys), BatchWriteItem in chunks of 25 for results and states through
boto3's ``batch_writer`` (which re-sends UnprocessedItems), and for rules one cached Query per
symbol through Powertools Parameters (re-read at most every ``max_age`` seconds).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from typing import Any

from aws_lambda_powertools.utilities.parameters import DynamoDBProvider

from stocksage.adapters.dynamo_values import from_dynamo, to_dynamo
from stocksage.alerts import Rule, RuleError
from stocksage.config import STACK
from stocksage.indicators import WindowState

_MAX_BATCH_GET = 100
LAST_VALUES_ATTR = "last_values"
"""State-item attribute holding the last bar's OHLCV, indicator and feature values (crossings)."""


class UnprocessedKeysError(RuntimeError):
    """BatchGetItem still returned unprocessed keys after every retry."""


class DynamoStateStore:
    """Window state per symbol in the ``window-state`` table (partition key ``symbol``).

    Args:
        resource: ``boto3.resource("dynamodb")``.
        table_name: Physical table name (``STATE_TABLE``).
        max_attempts: BatchGetItem attempts for unprocessed keys (exponential backoff from 50 ms).
    """

    def __init__(self, resource: Any, table_name: str, max_attempts: int = 6) -> None:
        self._resource = resource
        self._table = resource.Table(table_name)
        self._table_name = table_name
        self._max_attempts = max_attempts
        self._key = STACK.keys["state"]["partition"]

    def get_states(self, symbols: Sequence[str]) -> dict[str, tuple[WindowState, dict[str, Any]]]:
        """One BatchGetItem per 100 symbols; returns ``{symbol: (state, last_values)}``.

        Raises:
            UnprocessedKeysError: when DynamoDB keeps returning unprocessed keys.
        """
        found: dict[str, tuple[WindowState, dict[str, Any]]] = {}
        for start in range(0, len(symbols), _MAX_BATCH_GET):
            keys = [{self._key: s} for s in symbols[start:start + _MAX_BATCH_GET]]
            for item in self._batch_get(keys):
                plain = from_dynamo(item)
                last_values = plain.pop(LAST_VALUES_ATTR, {}) or {}
                state = WindowState.from_item(plain)
                found[state.symbol] = (state, last_values)
        return found

    def _batch_get(self, keys: list[dict[str, str]]) -> list[dict[str, Any]]:
        request = {self._table_name: {"Keys": keys, "ConsistentRead": True}}
        items: list[dict[str, Any]] = []
        for attempt in range(self._max_attempts):
            response = self._resource.batch_get_item(RequestItems=request)
            items.extend(response.get("Responses", {}).get(self._table_name, []))
            request = response.get("UnprocessedKeys") or {}
            if not request:
                return items
            time.sleep(0.05 * 2**attempt)
        raise UnprocessedKeysError(f"{self._table_name}: keys still unprocessed after "
                                   f"{self._max_attempts} attempts")

    def put_states(self, states: Sequence[tuple[WindowState, dict[str, Any]]]) -> None:
        """BatchWriteItem of the new states (unprocessed items re-sent by ``batch_writer``)."""
        with self._table.batch_writer(overwrite_by_pkeys=[self._key]) as writer:
            for state, last_values in states:
                item = dict(state.to_item())
                item[LAST_VALUES_ATTR] = last_values
                writer.put_item(Item=to_dynamo(item))


class DynamoResultStore:
    """Per-bar results in the ``results`` table (keys ``symbol``, ``bar_time``).

    Args:
        resource: ``boto3.resource("dynamodb")``.
        table_name: Physical table name (``RESULTS_TABLE``).
        ttl_days: Days until DynamoDB's TTL may delete an item (``expires_at``, epoch seconds);
            0 keeps items forever.
    """

    def __init__(self, resource: Any, table_name: str, ttl_days: int = 0) -> None:
        self._table = resource.Table(table_name)
        self._ttl_days = ttl_days
        keys = STACK.keys["results"]
        self._pkeys = [keys["partition"], keys["sort"]]

    def put_results(self, items: Sequence[dict[str, Any]]) -> None:
        """Write items (overwriting by key). Within one call a key appears once."""
        expires_at = None
        if self._ttl_days > 0:
            expires_at = int((datetime.now(UTC) + timedelta(days=self._ttl_days)).timestamp())
        with self._table.batch_writer(overwrite_by_pkeys=self._pkeys) as writer:
            for item in items:
                stored = to_dynamo(item)
                if expires_at is not None:
                    stored["expires_at"] = expires_at
                writer.put_item(Item=stored)


class DynamoRuleSource:
    """Alert rules from the ``alert-rules`` table through Powertools Parameters (cached).

    Items: ``symbol`` (partition key; ``*`` = every symbol), ``rule_id`` (sort key), ``rule``
    (JSON document, see ``stocksage.alerts.Rule.from_document``).

    Args:
        table_name: Physical table name (``RULES_TABLE``).
        max_age: Seconds a symbol's rules are cached in the warm Lambda.
        resource: ``boto3.resource("dynamodb")`` to use (endpoint, session).
    """

    def __init__(self, table_name: str, max_age: int = 60, resource: Any | None = None) -> None:
        keys = STACK.keys["rules"]
        self._provider = DynamoDBProvider(table_name=table_name, key_attr=keys["partition"],
                                          sort_attr=keys["sort"], value_attr="rule",
                                          boto3_client=resource)
        self._max_age = max_age

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Rules per symbol (each symbol's own plus the ``*`` rules) and the broken ones."""
        errors: list[RuleError] = []
        wildcard = self._read("*", errors)
        rules = {}
        for symbol in symbols:
            own = self._read(symbol, errors)
            rules[symbol] = own + [replace(r, symbol=symbol) for r in wildcard]
        return rules, errors

    def _read(self, symbol: str, errors: list[RuleError]) -> list[Rule]:
        documents = self._provider.get_multiple(symbol, max_age=self._max_age)
        rules = []
        for rule_id, document in sorted(documents.items()):
            try:
                rules.append(Rule.from_document(symbol, rule_id, document))
            except RuleError as err:
                errors.append(err)
        return rules


def put_rule(resource: Any, table_name: str, rule: Rule) -> None:
    """Create or replace a rule (used by the CLI, the demo and tests)."""
    keys = STACK.keys["rules"]
    resource.Table(table_name).put_item(Item={keys["partition"]: rule.symbol,
                                              keys["sort"]: rule.rule_id,
                                              "rule": rule.to_document()})
