"""scripts/bootstrap_state.py against moto (in process): idempotent, hardened state bucket."""

from __future__ import annotations

import importlib.util
import json
from pathlib import Path

import boto3
from moto import mock_aws

REPO = Path(__file__).resolve().parents[3]
spec = importlib.util.spec_from_file_location("bootstrap_state",
                                              REPO / "scripts" / "bootstrap_state.py")
bootstrap_state = importlib.util.module_from_spec(spec)
spec.loader.exec_module(bootstrap_state)


def test_state_bucket_is_created_hardened_and_idempotent(monkeypatch):
    monkeypatch.delenv("AWS_ENDPOINT_URL", raising=False)
    settings = bootstrap_state.backend_settings(REPO / "network" / "envs" / "dev.s3.tfbackend")
    services = bootstrap_state.backend_settings(REPO / "services" / "envs" / "dev.s3.tfbackend")
    # One bucket per account (named by state_bucket_name, not in the files), one key per root.
    assert "bucket" not in settings and "bucket" not in services
    assert settings["key"] != services["key"]
    bucket = bootstrap_state.state_bucket_name("dev", "123456789012")
    with mock_aws():
        s3 = boto3.client("s3", region_name="us-east-1")
        first = bootstrap_state.bootstrap(s3, bucket, "us-east-1")
        again = bootstrap_state.bootstrap(s3, bucket, "us-east-1")
        assert first[0].startswith("created") and again[0].endswith("exists")
        assert s3.get_bucket_versioning(Bucket=bucket)["Status"] == "Enabled"
        rule = s3.get_bucket_encryption(Bucket=bucket)[
            "ServerSideEncryptionConfiguration"]["Rules"][0]
        assert rule["ApplyServerSideEncryptionByDefault"]["SSEAlgorithm"] == "aws:kms"
        block = s3.get_public_access_block(Bucket=bucket)["PublicAccessBlockConfiguration"]
        assert all(block.values())
        policy = json.loads(s3.get_bucket_policy(Bucket=bucket)["Policy"])
        assert policy["Statement"][0]["Condition"] == {"Bool": {"aws:SecureTransport": "false"}}
