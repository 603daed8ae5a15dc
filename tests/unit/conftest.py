"""Shared unit-test fixtures: the patched in-process emulator, one per test module.

Every unit test that needs AWS APIs over HTTP uses ``emulator`` / ``kw``; only tests of the
emulator itself (process mode, its CLI, plain moto as a control) and the local runtime (which
runs every event source mapping it finds, so it needs an emulator of its own) start another.
moto's state is global in a process (shared by every in-process server and reset by
``mock_aws``), so tests give their resources unique names or remove them.
"""

from __future__ import annotations

import pytest

from stocksage.local.emulator import Emulator
from tests.helpers.aws import client_kwargs


@pytest.fixture(scope="module")
def emulator():
    """The patched moto server in this process, on a free port (one per test module)."""
    with Emulator(port=0) as emu:
        yield emu


@pytest.fixture(scope="module")
def kw(emulator):
    """boto3 client keyword arguments for ``emulator`` (dummy credentials)."""
    return client_kwargs(emulator.endpoint_url)
