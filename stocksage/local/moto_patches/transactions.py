"""DynamoDB patch: ``TransactWriteItems`` in time independent of the table size."""

from __future__ import annotations

from typing import Any


def dynamodb_transaction_item_snapshots() -> None:
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
            except Exception:  # noqa: BLE001 -- moto's own call reports the error
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
            models.copy = real

    transact_write_items.__stocksage_patch__ = True  # type: ignore[attr-defined]
    DynamoDBBackend.transact_write_items = transact_write_items  # type: ignore[method-assign]


