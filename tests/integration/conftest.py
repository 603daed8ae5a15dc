"""One embedded stack per test session, provisioned by the project's own Terraform.

By default the session starts its own patched moto server (a child process on a free port, so
a developer's ``make up`` stack on :4566 is left alone), applies ``services/`` with the local
environment to it, trains the initial model through the local training-job executor and starts
the local runtime in this process. Clients come from ``localstack-client`` sessions, so the
same tests run against a real LocalStack: set ``STOCKSAGE_TEST_ENDPOINT=http://host:4566`` to
use a running emulator instead of starting one.
"""

from __future__ import annotations

import os
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from urllib.parse import urlparse

import pytest
from localstack_client.session import Session

from stocksage.local.emulator import Emulator
from stocksage.local.runtime import LocalRuntime
from stocksage.local.stack import (
    LocalEndpoints,
    ensure_model,
    outputs,
    terraform,
    use_local_environ,
)


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@dataclass
class LocalStack:
    """The provisioned stack: Terraform outputs, a localstack-client session, the runtime."""

    outputs: dict[str, Any]
    endpoints: LocalEndpoints
    session: Session
    runtime: LocalRuntime

    def client(self, service: str) -> Any:
        return self.session.client(service)

    def resource(self, service: str) -> Any:
        return self.session.resource(service)


@pytest.fixture(scope="session")
def stack() -> Iterator[LocalStack]:
    if not Path("/usr/local/bin/terraform").exists() and not any(
            (Path(p) / "terraform").exists() for p in os.environ.get("PATH", "").split(":")):
        pytest.skip("terraform is not installed: the integration tests apply services/")
    state_dir = Path(tempfile.mkdtemp(prefix="stocksage-it-"))
    endpoint = os.environ.get("STOCKSAGE_TEST_ENDPOINT")
    emulator = None
    if not endpoint:
        emulator = Emulator(port=_free_port(), mode="process", state_dir=state_dir).start()
        endpoint = emulator.endpoint_url
    endpoints = LocalEndpoints(aws=endpoint, sagemaker_runtime=f"http://127.0.0.1:{_free_port()}")
    saved = {k: os.environ.get(k)
             for k in ("AWS_ENDPOINT_URL", "AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME",
                       "LOCALSTACK_HOST", "STOCKSAGE_TF_DATA_SUFFIX")}
    os.environ["STOCKSAGE_TF_DATA_SUFFIX"] = "it"  # own Terraform data dir: `make up` untouched
    use_local_environ(endpoints)
    parsed = urlparse(endpoint)
    os.environ["LOCALSTACK_HOST"] = f"{parsed.hostname}:{parsed.port}"
    runtime = None
    try:
        terraform("apply", endpoints=endpoints)
        out = outputs(endpoints)
        ensure_model(out, endpoints, log=lambda *_: None)
        runtime = LocalRuntime(endpoint_url=endpoint, sagemaker_port=endpoints.sagemaker_port,
                               state_dir=state_dir, discovery_interval=1.0).start()
        local = LocalStack(out, endpoints, Session(localstack_host=os.environ["LOCALSTACK_HOST"]),
                           runtime)
        yield local
        runtime = local.runtime  # a test may replace it (crash and restart)
    finally:
        if runtime is not None:
            runtime.stop()
        if emulator is not None:
            emulator.stop()
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value
