"""DynamoDB adapter of ``RuleSource``: alert rules from the ``alert-rules`` table.

One cached Scan of the (small) rules table through Powertools Parameters, at most every
``max_age`` s per warm instance; ``put_rule`` writes one rule (operators, the demo, tests).
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from aws_lambda_powertools.utilities.parameters.base import BaseProvider

from stocksage.adapters.dynamodb.calls import (
    from_wire,
)
from stocksage.alerts import Rule, RuleError
from stocksage.config import STACK

__all__ = ["DynamoRuleSource", "RulesTableProvider", "put_rule"]

logger = logging.getLogger(__name__)


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
        self._lock = threading.Lock()

    def _documents(self, symbols: Sequence[str]) -> dict[str, Any]:
        """The table's rules: cached for ``max_age`` s, re-read at once (at most once a second)
        when a symbol appears that no read since the cached one was asked for, so the rules
        of a new symbol apply from its first batch, as with a per-symbol read.

        A symbol is *covered* once a read was made after it appeared (forced for it, or the
        cache expired); later rule changes reach it within ``max_age``. A new symbol that
        comes within the second after a forced read gets that read's rules but stays
        uncovered, so its first call after the second re-reads: a rule put in that second is
        at most a second late, never ``max_age`` late. Serialised (one instance serves the
        concurrent batches of the local runtime's lanes; on AWS a sandbox runs one
        invocation, so the lock is never contended).
        """
        with self._lock:
            new = not set(symbols) <= self._covered
            now = self._clock()
            force = new and now - self._forced_at >= 1.0
            if force:
                self._forced_at = now
            documents = self._provider.get_multiple("all", max_age=self._max_age,
                                                    force_fetch=force)
            if force or documents is not self._last:  # a read made now, for these symbols
                self._covered |= set(symbols)
            self._last = documents
            return documents

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Rules per symbol (each symbol's own plus the ``*`` rules) and the broken ones.

        Raises:
            botocore errors: only when the table was never read successfully.
        """
        try:
            documents = self._documents(symbols)
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
