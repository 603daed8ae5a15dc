"""boto3 clients on the emulator, shared by the local runtime's workers.

Every worker of the local runtime (event source mappings, Firehose, schedules, training jobs,
event routing) talks to the emulator with the same keyword arguments. ``Clients`` makes each
client once per service and region, thread-safely, with few retries (the emulator is local:
a failure is retried by the worker's own loop, not by botocore for seconds)::

    clients = Clients({"endpoint_url": "http://127.0.0.1:4566", "region_name": "us-east-1"})
    clients.client("kinesis").list_streams()
    clients.client("sqs", region="eu-west-1")   # another region, same endpoint

boto3 is imported when the first ``Clients`` is made, not with this module.
"""

from __future__ import annotations

import threading
from typing import Any


class Clients:
    """A cache of boto3 clients made from one set of keyword arguments.

    Args:
        client_kwargs: boto3 client keyword arguments (``endpoint_url``, ``region_name``,
            credentials). A ``config`` is added when absent: 2 attempts, standard retry mode.
    """

    def __init__(self, client_kwargs: dict[str, Any]) -> None:
        import boto3
        from botocore.config import Config

        kwargs = dict(client_kwargs)
        kwargs.setdefault("config", Config(retries={"max_attempts": 2, "mode": "standard"}))
        self._kwargs = kwargs
        self._boto3 = boto3
        self._cache: dict[tuple[str, str], Any] = {}
        self._lock = threading.Lock()

    def client(self, service: str, region: str | None = None) -> Any:
        """The client of ``service`` (in ``region`` when given, else the default region)."""
        key = (service, region or "")
        with self._lock:
            if key not in self._cache:
                kwargs = dict(self._kwargs)
                if region:
                    kwargs["region_name"] = region
                self._cache[key] = self._boto3.client(service, **kwargs)
            return self._cache[key]

    @property
    def kinesis(self) -> Any:
        return self.client("kinesis")

    @property
    def lambda_(self) -> Any:
        return self.client("lambda")
