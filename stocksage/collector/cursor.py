"""Where the live collector resumes: the last bar time sent per symbol, persisted.

The live source emits only bars newer than a symbol's cursor. The collector saves the cursor
after every poll whose bars were all acknowledged by Kinesis (never before), and the next
start - after a crash, a deployment, a Spot interruption, any gap - re-requests from it, so no
bar is lost (a bar sent twice is a duplicate the processor drops). Without a saved cursor the
source falls back to its lookback window.

Document (JSON)::

    {"version": 1, "cursor": {"AAPL": "2024-01-03T14:31:00Z", "MSFT": "2024-01-03T14:32:00Z"}}

Stores (``cursor_store(uri)``):

* a local file (default ``.local/collector-cursor.json``; on ECS only ``/tmp`` is writable;
  written atomically: temporary file, fsync, rename) - survives process restarts, not the
  loss of the task's disk (a new Fargate task starts with an empty ``/tmp``: use S3 there);
* ``s3://bucket/key`` - an S3 object (on AWS: the history bucket, e.g.
  ``s3://<history bucket>/collector/cursor.json``; needs ``s3:GetObject``/``s3:PutObject`` on it
  and the bucket key's ``kms:Decrypt``/``kms:GenerateDataKey``).
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Protocol

from stocksage.bars import format_time

log = logging.getLogger(__name__)

DEFAULT_CURSOR_URI = ".local/collector-cursor.json"


class CursorStore(Protocol):
    """Loads and saves ``{symbol: last bar_time sent}`` (tz-aware UTC datetimes)."""

    def load(self) -> dict[str, datetime]: ...

    def save(self, cursor: Mapping[str, datetime]) -> None: ...


def encode_cursor(cursor: Mapping[str, datetime]) -> bytes:
    """The JSON document of a cursor."""
    return json.dumps({"version": 1, "cursor": {s: format_time(t) for s, t in
                                                sorted(cursor.items())}}).encode()


def decode_cursor(data: bytes | str) -> dict[str, datetime]:
    """Parse a cursor document.

    Raises:
        ValueError: not a cursor document (bad JSON, times without offset...).
    """
    doc = json.loads(data)
    if not isinstance(doc, dict) or not isinstance(doc.get("cursor"), dict):
        raise ValueError("not a cursor document")  # bad content, not a wrong argument type
    out: dict[str, datetime] = {}
    for symbol, text in doc["cursor"].items():
        moment = datetime.fromisoformat(str(text))
        if moment.tzinfo is None:
            raise ValueError(f"cursor time of {symbol} has no UTC offset")
        out[str(symbol).upper()] = moment.astimezone(UTC)
    return out


class FileCursorStore:
    """A cursor in a local JSON file (atomic replace)."""

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)

    def load(self) -> dict[str, datetime]:
        """The saved cursor; ``{}`` when there is none (or it is unreadable: logged)."""
        try:
            return decode_cursor(self.path.read_bytes())
        except FileNotFoundError:
            return {}
        except (OSError, ValueError) as err:
            log.error("unreadable collector cursor ignored (lookback used)",
                      extra={"path": str(self.path), "error": str(err)})
            return {}

    def save(self, cursor: Mapping[str, datetime]) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        tmp = self.path.with_name(self.path.name + f".{os.getpid()}.tmp")
        with open(tmp, "wb") as fh:
            fh.write(encode_cursor(cursor))
            fh.flush()
            os.fsync(fh.fileno())
        tmp.replace(self.path)


class S3CursorStore:
    """A cursor in an S3 object (a single PUT replaces it atomically)."""

    def __init__(self, client: Any, bucket: str, key: str) -> None:
        self.client, self.bucket, self.key = client, bucket, key

    def load(self) -> dict[str, datetime]:
        """The saved cursor; ``{}`` when the object does not exist.

        Raises:
            botocore.exceptions.ClientError: any other S3 error (e.g. access denied): the
                collector must not silently fall back to the lookback.
        """
        try:
            body = self.client.get_object(Bucket=self.bucket, Key=self.key)["Body"].read()
        except self.client.exceptions.NoSuchKey:
            return {}
        try:
            return decode_cursor(body)
        except ValueError as err:
            log.error("unreadable collector cursor ignored (lookback used)",
                      extra={"uri": f"s3://{self.bucket}/{self.key}", "error": str(err)})
            return {}

    def save(self, cursor: Mapping[str, datetime]) -> None:
        self.client.put_object(Bucket=self.bucket, Key=self.key, Body=encode_cursor(cursor),
                               ContentType="application/json")


def cursor_store(uri: str | None, s3_client: Any = None) -> CursorStore | None:
    """The store for ``uri``: ``s3://bucket/key``, a file path, or None/"" (no cursor).

    Args:
        uri: Where the cursor lives.
        s3_client: boto3 S3 client for ``s3://`` (default: a new one).
    """
    if not uri:
        return None
    if uri.startswith("s3://"):
        bucket, _, key = uri[5:].partition("/")
        if not bucket or not key:
            raise ValueError(f"cursor URI {uri!r} must be s3://bucket/key")
        if s3_client is None:
            import boto3

            s3_client = boto3.client("s3")
        return S3CursorStore(s3_client, bucket, key)
    return FileCursorStore(uri)


__all__ = ["DEFAULT_CURSOR_URI", "CursorStore", "FileCursorStore", "S3CursorStore",
           "cursor_store", "decode_cursor", "encode_cursor"]
