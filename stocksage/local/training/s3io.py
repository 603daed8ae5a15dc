"""S3 transfers of a training job: channel data in, source bundle in, artifacts out."""

from __future__ import annotations

import shutil
from pathlib import Path
from typing import Any

from stocksage.model.artifact import extract_tar


def parse_s3_uri(uri: str) -> tuple[str, str]:
    """``s3://bucket/key/prefix`` -> ``("bucket", "key/prefix")``.

    Raises:
        ValueError: not an ``s3://`` URI, or no bucket.
    """
    if not uri.startswith("s3://"):
        raise ValueError(f"not an s3:// URI: {uri!r}")
    bucket, _, key = uri[5:].partition("/")
    if not bucket:
        raise ValueError(f"s3 URI without a bucket: {uri!r}")
    return bucket, key


def download_prefix(s3_client: Any, uri: str, dest: Path) -> int:
    """Download every object under an S3 prefix into ``dest`` keeping relative paths (a
    channel's ``S3Prefix`` data, as SageMaker's File mode does); return the object count.

    Raises:
        ValueError: an object key would land outside ``dest``.
    """
    bucket, prefix = parse_s3_uri(uri)
    count = 0
    paginator = s3_client.get_paginator("list_objects_v2")
    for page in paginator.paginate(Bucket=bucket, Prefix=prefix):
        for obj in page.get("Contents", []):
            key = obj["Key"]
            if key.endswith("/"):
                continue
            rel = key[len(prefix) :].lstrip("/") if prefix else key
            if not rel:  # the prefix is the object itself
                rel = key.rsplit("/", 1)[-1]
            target = (dest / rel).resolve()
            if not str(target).startswith(str(dest.resolve())):
                raise ValueError(f"object key escapes the channel directory: {key!r}")
            target.parent.mkdir(parents=True, exist_ok=True)
            s3_client.download_file(bucket, key, str(target))
            count += 1
    return count


def fetch_source(s3_client: Any, location: str, dest: Path) -> None:
    """Put the training code at ``dest``: an ``s3://`` tarball (``sourcedir.tar.gz``), a
    local tarball, or a local folder (``file://`` or a plain path)."""
    if location.startswith("s3://"):
        bucket, key = parse_s3_uri(location)
        data = s3_client.get_object(Bucket=bucket, Key=key)["Body"].read()
        extract_tar(data, dest)
        return
    path = Path(location.removeprefix("file://"))
    if path.is_dir():
        shutil.copytree(path, dest, dirs_exist_ok=True)
    else:
        extract_tar(path.read_bytes(), dest)


def upload(s3_client: Any, uri: str, data: bytes) -> None:
    """Write ``data`` to the ``s3://`` URI."""
    bucket, key = parse_s3_uri(uri)
    s3_client.put_object(Bucket=bucket, Key=key, Body=data)
