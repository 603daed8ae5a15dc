"""Fixtures for every test (unit and integration); helpers live in ``tests.helpers``."""

from __future__ import annotations

import pytest

from tests.helpers.lambda_context import LambdaContext


@pytest.fixture
def lambda_context() -> LambdaContext:
    """The processor's context (function ``processor``, 1024 MB, 60 s left)."""
    return LambdaContext()
