"""botocore client configuration shared by every adapter: bounded time, bounded retries.

Every AWS call of the data path must end in bounded time, whatever the dependency does (fail,
throttle, hang). ``client_config`` gives a ``botocore.config.Config`` with connect and read
timeouts and the *standard* retry mode (exponential backoff with jitter, retry quota, at most
``max_attempts`` attempts including the first), so the worst case of one call is about
``max_attempts * (connect_timeout + read_timeout)`` plus backoff.

| client | connect s | read s | attempts | worst case, s | why |
|---|---:|---:|---:|---:|---|
| dynamodb | 2 | 5 | 4 | ~30 | state, results: retry throttling a few times, then fail the symbol |
| sagemaker-runtime | 2 | 5 | 2 | ~15 | enrichment: a slow endpoint leaves bars pending, not stuck |
| sns | 2 | 5 | 3 | ~22 | alerts wait in the outbox when SNS fails |
| sqs | 2 | 5 | 3 | ~22 | quarantine: a failure fails the record (retried by Kinesis) |
"""

from __future__ import annotations

from botocore.config import Config

__all__ = ["CLIENT_LIMITS", "client_config"]

CLIENT_LIMITS: dict[str, tuple[float, float, int]] = {
    "dynamodb": (2.0, 5.0, 4),
    "sagemaker-runtime": (2.0, 5.0, 2),
    "sns": (2.0, 5.0, 3),
    "sqs": (2.0, 5.0, 3),
    "s3": (2.0, 10.0, 3),
    "kinesis": (2.0, 5.0, 4),
}
"""Per service: (connect timeout s, read timeout s, max attempts)."""


_UNVALIDATED = frozenset({"dynamodb"})
"""Clients whose requests botocore does not validate client-side: the adapters build them from
typed code and tests, and validating a 25-item BatchWriteItem took ~30% of the processor's CPU
(py-spy, docs/BENCHMARKS.md). DynamoDB still validates every request server-side."""


def client_config(service: str) -> Config:
    """``Config`` for ``boto3.client(service, config=...)`` with the limits above.

    Raises:
        KeyError: for a service without limits (add it to ``CLIENT_LIMITS``).
    """
    connect, read, attempts = CLIENT_LIMITS[service]
    return Config(connect_timeout=connect, read_timeout=read,
                  retries={"mode": "standard", "max_attempts": attempts},
                  max_pool_connections=16,
                  parameter_validation=service not in _UNVALIDATED)
