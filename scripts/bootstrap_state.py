#!/usr/bin/env python3
"""Create or harden the S3 bucket named in a ``*.s3.tfbackend`` file (see bootstrap_state.sh).

Usage: python scripts/bootstrap_state.py network/envs/dev.s3.tfbackend
"""

from __future__ import annotations

import json
import re
import sys
from pathlib import Path

import boto3
from botocore.exceptions import BotoCoreError, ClientError, NoCredentialsError


def backend_settings(path: Path) -> dict[str, str]:
    return dict(re.findall(r'^(\w+)\s*=\s*"([^"]*)"', path.read_text(), re.MULTILINE))


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
    settings = backend_settings(Path(argv[0]))
    bucket, region = settings["bucket"], settings.get("region", "us-east-1")
    try:
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
