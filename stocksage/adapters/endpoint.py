"""SageMaker endpoint adapter: one InvokeEndpoint per batch, split only by payload size.

Request (``application/json``): ``{"features": [names...], "instances": [[f1, ...], ...]}``;
response: ``{"predictions": [p_up, ...], "model_version": "..."}`` plus, from a model with a
range model, ``"range_forecasts": [ln(high/low) of the next bar, ...]`` (see
``sagemaker/inference.py``). A response without ``range_forecasts`` (an older model) gives
``Prediction.range_forecasts = None``. Serverless Inference accepts request bodies up to 4 MB and
real-time endpoints up to 6 MB; the default limit keeps every request under the smaller one.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from typing import Any

from stocksage.processing import Prediction

SERVERLESS_PAYLOAD_LIMIT = 4_000_000
"""Bytes: the request body limit of SageMaker Serverless Inference (real-time: 6 MB)."""


class EndpointResponseError(RuntimeError):
    """The endpoint answered, but not with one probability per instance."""


def _chunks(rows: Sequence[Sequence[float]], names: Sequence[str], limit: int) -> list[bytes]:
    """Encode rows as JSON bodies of at most ``limit`` bytes each (one row may not exceed it)."""
    header = json.dumps({"features": list(names), "instances": []}).encode()
    bodies: list[bytes] = []
    current: list[str] = []
    size = len(header)
    for row in rows:
        encoded = json.dumps([float(v) for v in row], separators=(",", ":"))
        if current and size + len(encoded) + 1 > limit:
            bodies.append(_body(names, current))
            current, size = [], len(header)
        current.append(encoded)
        size += len(encoded) + 1
    if current:
        bodies.append(_body(names, current))
    return bodies


def _body(names: Sequence[str], encoded_rows: list[str]) -> bytes:
    return (b'{"features":' + json.dumps(list(names)).encode() + b',"instances":['
            + ",".join(encoded_rows).encode() + b"]}")


class SageMakerPredictor:
    """Calls ``sagemaker-runtime.invoke_endpoint``.

    Args:
        client: ``boto3.client("sagemaker-runtime")`` (``AWS_ENDPOINT_URL_SAGEMAKER_RUNTIME``
            redirects it to the local endpoint host).
        endpoint_name: Endpoint name (``ENDPOINT_NAME``).
        payload_limit: Largest request body in bytes.
    """

    def __init__(self, client: Any, endpoint_name: str,
                 payload_limit: int = SERVERLESS_PAYLOAD_LIMIT) -> None:
        self._client = client
        self._endpoint_name = endpoint_name
        self._payload_limit = payload_limit
        self.calls = 0

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]) -> Prediction:
        """P(up) (and range forecasts if served) for each row.

        Raises:
            botocore errors, or :class:`EndpointResponseError` for a response it cannot read.
        """
        probabilities: list[float] = []
        ranges: list[float] = []
        chunks_with_ranges = 0
        chunks = 0
        version = ""
        for body in _chunks(rows, feature_names, self._payload_limit):
            response = self._client.invoke_endpoint(
                EndpointName=self._endpoint_name, Body=body,
                ContentType="application/json", Accept="application/json",
            )
            self.calls += 1
            raw = response["Body"].read()
            try:
                decoded = json.loads(raw)
            except ValueError:
                raise EndpointResponseError(f"endpoint {self._endpoint_name} returned non-JSON "
                                            f"({len(raw)} bytes: {raw[:60]!r})") from None
            predictions = decoded.get("predictions") if isinstance(decoded, dict) else None
            if not isinstance(predictions, list):
                raise EndpointResponseError(f"endpoint {self._endpoint_name} returned no "
                                            "'predictions' list")
            probabilities.extend(float(p) for p in predictions)
            chunks += 1
            forecasts = decoded.get("range_forecasts")
            if forecasts is not None:
                if not isinstance(forecasts, list) or len(forecasts) != len(predictions):
                    raise EndpointResponseError(f"endpoint {self._endpoint_name} returned "
                                                "'range_forecasts' that do not match "
                                                "'predictions'")
                ranges.extend(float(r) for r in forecasts)
                chunks_with_ranges += 1
            version = str(decoded.get("model_version", version))
        if len(probabilities) != len(rows):
            raise EndpointResponseError(f"endpoint {self._endpoint_name} returned "
                                        f"{len(probabilities)} predictions for {len(rows)} rows")
        if any(not 0.0 <= p <= 1.0 for p in probabilities):
            raise EndpointResponseError(f"endpoint {self._endpoint_name} returned a probability "
                                        "outside [0, 1]")
        if chunks_with_ranges not in (0, chunks):  # the endpoint changed model mid-batch
            raise EndpointResponseError(f"endpoint {self._endpoint_name} returned range "
                                        "forecasts for only part of the rows")
        if any(not (math.isfinite(r) and r > 0) for r in ranges):
            raise EndpointResponseError(f"endpoint {self._endpoint_name} returned a range "
                                        "forecast that is not a positive number")
        return Prediction(probabilities=probabilities, model_version=version,
                          range_forecasts=ranges if chunks_with_ranges else None)
