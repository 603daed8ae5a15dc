"""S3 reader/writer of bar history objects (layout: ``stocksage.history``).

* ``put_history(s3_client, bucket, bars, name=None)``: encode with
  ``stocksage.history.encode_objects`` (one object per symbol and UTC month) and put them.
  Keys are deterministic: with ``name=None`` the name is derived from the object's content,
  with a fixed ``name`` (backfill uses ``"backfill"``) each symbol/month has one object that a
  re-run overwrites. Either way a re-run writes the same keys: idempotent.
* ``iter_history(s3_client, bucket, prefix="bars/")``: every bar of every ``*.json.gz`` object
  under the prefix (list_objects_v2 paginator), in key order.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

from stocksage.bars import Bar
from stocksage.history import PREFIX, SkippedLines, decode_object, encode_objects

CONTENT_TYPE = "application/x-ndjson"
BACKFILL_OBJECT_NAME = "backfill"
"""Object name of backfilled history: a re-run overwrites the same keys."""
CONTENT_ENCODING = "gzip"


@dataclass(frozen=True)
class PutSummary:
    keys: list[str]
    bars: int
    bytes: int


def put_history(
    s3_client: Any, bucket: str, bars: Iterable[Bar], name: str | None = None
) -> PutSummary:
    """Write bars as history objects; returns the keys written (sorted)."""
    bar_list = list(bars)
    objects = encode_objects(bar_list, name=name)
    total = 0
    for key in sorted(objects):
        body = objects[key]
        # Content-Encoding is deliberately not set: the object *is* a .gz file and clients
        # must not transparently inflate it.
        s3_client.put_object(Bucket=bucket, Key=key, Body=body, ContentType=CONTENT_TYPE)
        total += len(body)
    return PutSummary(keys=sorted(objects), bars=len(bar_list), bytes=total)


def list_history_keys(s3_client: Any, bucket: str, prefix: str = f"{PREFIX}/") -> Iterator[str]:
    """Keys of the ``*.json.gz`` objects under ``prefix`` (S3 order = key order)."""
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            if obj["Key"].endswith(".json.gz"):
                yield obj["Key"]


def iter_history(s3_client: Any, bucket: str, prefix: str = f"{PREFIX}/",
                 skipped: SkippedLines | None = None) -> Iterator[Bar]:
    """Every bar stored under ``prefix``; lines that are not valid bars are skipped, logged
    with the object key and line number, and recorded in ``skipped`` when given.

    Raises:
        MalformedBarError: an object that is not readable gzip at all.
    """
    skipped = skipped if skipped is not None else SkippedLines()
    for key in list_history_keys(s3_client, bucket, prefix):
        body = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        yield from decode_object(body, on_invalid=skipped.recorder(key))
