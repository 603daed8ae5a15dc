"""Where stream readers of the local runtime have got to, kept across restarts.

The event source mapping engine (``stocksage.local.esm``) and the Firehose worker
(``stocksage.local.firehose``) read Kinesis shards and must resume after the last record they
finished when the runtime restarts, as AWS does. ``CheckpointStore`` keeps, per reader (a
mapping UUID or a delivery stream ARN), the stream it reads and the last finished sequence
number of each shard::

    store = CheckpointStore(".local/esm-checkpoints.json")   # None: memory only
    store.set(mapping_uuid, stream_arn, "shardId-000000000000", "49")
    store.get(mapping_uuid, stream_arn, "shardId-000000000000")   # "49"
    store.get(mapping_uuid, other_stream_arn, "shardId-000000000000")   # None: other stream

The file is rewritten atomically on every change (temporary file, fsync, rename), so a crash
(``kill -9``) leaves the previous or the new checkpoints, never a torn file. ``close()`` makes
the store ignore later writes, which is how a simulated crash stops checkpointing at once.
"""

from __future__ import annotations

import json
import logging
import os
import threading
from pathlib import Path
from typing import Any

log = logging.getLogger("stocksage.local.checkpoints")


class CheckpointStore:
    """``{reader: {"stream": arn, "shards": {shard_id: sequence number}}}``, optionally
    persisted to a JSON file (atomic replace on every change).

    Args:
        path: The JSON file (read when it exists; an unreadable file is ignored with a
            warning and replaced on the next write). None keeps checkpoints in memory.
    """

    def __init__(self, path: str | Path | None = None) -> None:
        self.path = Path(path) if path else None
        self._lock = threading.Lock()
        self._closed = False
        self._data: dict[str, dict[str, Any]] = {}
        if self.path and self.path.exists():
            try:
                self._data = json.loads(self.path.read_text())
            except (OSError, ValueError) as err:
                log.warning("ignoring unreadable checkpoint file %s: %s", self.path, err)

    def get(self, reader: str, stream_arn: str, shard_id: str) -> str | None:
        """The last finished sequence number of a shard, None when there is none for this
        stream (a reader re-pointed to another stream starts over)."""
        with self._lock:
            entry = self._data.get(reader)
            if not entry or entry.get("stream") != stream_arn:
                return None
            return entry.get("shards", {}).get(shard_id)

    def set(self, reader: str, stream_arn: str, shard_id: str, seq: str) -> None:
        """Record ``seq`` as the last finished record of a shard (forgets the checkpoints of
        another stream the reader had)."""
        with self._lock:
            if self._closed:
                return
            entry = self._data.setdefault(reader, {"stream": stream_arn, "shards": {}})
            if entry.get("stream") != stream_arn:
                entry.clear()
                entry.update({"stream": stream_arn, "shards": {}})
            entry["shards"][shard_id] = seq
            self._save()

    def close(self) -> None:
        """Write nothing more (a killed engine: what it finishes after the crash is lost)."""
        with self._lock:
            self._closed = True

    def _save(self) -> None:
        """Atomic: write a temporary file in the same folder, fsync it, rename it over the
        checkpoint file (a crash leaves the old or the new file, never a torn one)."""
        if not self.path:
            return
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_suffix(self.path.suffix + f".{os.getpid()}.tmp")
        with open(tmp, "w") as fh:
            fh.write(json.dumps(self._data, indent=1, sort_keys=True))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)
