"""Shared unit-test fixtures: a patched in-process emulator per test module."""

from __future__ import annotations

import pytest

from stocksage.local.emulator import Emulator

REGION = "us-east-1"


@pytest.fixture(scope="module")
def emulator():
    """The patched moto server in this process, on a free port (one per test module)."""
    with Emulator(port=0) as emu:
        yield emu


@pytest.fixture(scope="module")
def kw(emulator):
    """boto3 client keyword arguments for ``emulator`` (dummy credentials)."""
    return {"endpoint_url": emulator.endpoint_url, "region_name": REGION,
            "aws_access_key_id": "test", "aws_secret_access_key": "test"}
