"""boto3 arguments for the emulators the tests start."""

from __future__ import annotations

REGION = "us-east-1"


def client_kwargs(endpoint_url: str, region: str = REGION) -> dict[str, str]:
    """``boto3.client(service, **client_kwargs(url))`` for an emulator at ``endpoint_url``
    (dummy credentials: the environment's are never used)."""
    return {"endpoint_url": endpoint_url, "region_name": region,
            "aws_access_key_id": "test", "aws_secret_access_key": "test"}
