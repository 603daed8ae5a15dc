"""The spill file: records not sent before the stop deadline, kept for the next start.

JSON lines, one record each: ``{"key": <partition key>, "data": <base64 payload>}``, appended
and fsync'd, in buffer order.
"""

from __future__ import annotations

import base64
import json
import os
from collections.abc import Sequence
from pathlib import Path

from stocksage.collector.sink.put_requests import Entry

__all__ = ["read_spill", "write_spill"]


def write_spill(path: str | Path, entries: Sequence[Entry]) -> None:
    """Append ``entries`` to the spill file ``path`` (directories created) and fsync it."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    with open(target, "a", encoding="utf-8") as fh:
        fh.writelines(json.dumps({"key": e.key, "data": base64.b64encode(e.data).decode()})
                      + "\n" for e in entries)
        fh.flush()
        os.fsync(fh.fileno())


def read_spill(path: str | Path) -> list[Entry]:
    """The records of the spill file ``path``, in file order (blank lines skipped)."""
    entries = []
    for line in Path(path).read_text(encoding="utf-8").splitlines():
        if line.strip():
            doc = json.loads(line)
            entries.append(Entry(doc["key"], base64.b64decode(doc["data"])))
    return entries
