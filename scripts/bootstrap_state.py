#!/usr/bin/env python3
"""Create or harden the Terraform state bucket of an environment (see bootstrap_state.sh).

Usage: python scripts/bootstrap_state.py network/envs/dev.s3.tfbackend

The bucket name is not in the backend file: S3 bucket names are global, so it is
``state_bucket_name(env, account)`` = ``<project>-<env>-tfstate-<account id>`` (project from
``stocksage/stack.json``), or ``STOCKSAGE_STATE_BUCKET`` when set. ``scripts/tf.sh`` uses the
same function, so both always agree.
"""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError

REPO = Path(__file__).resolve().parent.parent


def backend_settings(path: Path) -> dict[str, str]:
    """String settings of a ``*.s3.tfbackend`` file: ``{"key": ..., "region": ...}``."""
    return dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', path.read_text(), re.MULTILINE))


def state_bucket_name(env: str, account_id: str, override: str | None = None) -> str:
    """State bucket of ``env`` in account ``account_id`` (12 digits).

    Returns ``override`` (``STOCKSAGE_STATE_BUCKET``) when given, else
    ``<project>-<env>-tfstate-<account id>``. Raises ValueError on a malformed account id.
    """
    if override:
        return override
    if not re.fullmatch(r"\d{12}", account_id):
        raise ValueError(f"not an AWS account id: {account_id!r}")
    project = json.loads((REPO / "stocksage" / "stack.json").read_text())["project"]
    return f"{project}-{env}-tfstate-{account_id}"


def bootstrap(s3, bucket: str, region: str) -> list[str]:
    """Idempotently create and configure the state bucket; returns the steps done."""
    steps = []
    try:
        s3.head_bucket(Bucket=bucket)
        steps.append(f"bucket {bucket} exists")
    except ClientError as exc:
        if exc.response["Error"]["Code"] not in ("404", "NoSuchBucket"):
            raise
        kwargs = {} if region == "us-east-1" else {
            "CreateBucketConfiguration": {"LocationConstraint": region}}
        s3.create_bucket(Bucket=bucket, ObjectOwnership="BucketOwnerEnforced", **kwargs)
        steps.append(f"created {bucket} in {region}")
    s3.put_public_access_block(Bucket=bucket, PublicAccessBlockConfiguration={
        "BlockPublicAcls": True, "IgnorePublicAcls": True, "BlockPublicPolicy": True,
        "RestrictPublicBuckets": True})
    s3.put_bucket_versioning(Bucket=bucket, VersioningConfiguration={"Status": "Enabled"})
    s3.put_bucket_encryption(Bucket=bucket, ServerSideEncryptionConfiguration={"Rules": [{
        "ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "aws:kms"},
        "BucketKeyEnabled": True}]})
    s3.put_bucket_lifecycle_configuration(Bucket=bucket, LifecycleConfiguration={"Rules": [{
        "ID": "old-state-versions", "Status": "Enabled", "Filter": {},
        "NoncurrentVersionExpiration": {"NoncurrentDays": 90},
        "AbortIncompleteMultipartUpload": {"DaysAfterInitiation": 7}}]})
    s3.put_bucket_policy(Bucket=bucket, Policy=json.dumps({
        "Version": "2012-10-17",
        "Statement": [{
            "Sid": "DenyInsecureTransport", "Effect": "Deny", "Principal": "*",
            "Action": "s3:*", "Resource": [f"arn:aws:s3:::{bucket}", f"arn:aws:s3:::{bucket}/*"],
            "Condition": {"Bool": {"aws:SecureTransport": "false"}}}]}))
    steps.append("public access blocked, versioning, SSE-KMS, lifecycle, TLS-only policy set")
    return steps


def main(argv: list[str]) -> int:
    if len(argv) != 1:
        print(__doc__, file=sys.stderr)
        return 2
    path = Path(argv[0])
    settings = backend_settings(path)
    env = path.name.split(".", 1)[0]
    region = settings.get("region", "us-east-1")
    try:
        account = boto3.client("sts", region_name=region).get_caller_identity()["Account"]
        bucket = state_bucket_name(env, account, os.environ.get("STOCKSAGE_STATE_BUCKET"))
        s3 = boto3.client("s3", region_name=region)
        for step in bootstrap(s3, bucket, region):
            print(f"bootstrap_state: {step}")
    except NoCredentialsError:
        print("bootstrap_state: no AWS credentials (set AWS_PROFILE or AWS_ACCESS_KEY_ID)",
              file=sys.stderr)
        return 3
    except (ClientError, BotoCoreError) as exc:
        print(f"bootstrap_state: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
