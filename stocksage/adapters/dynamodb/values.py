"""Convert between plain Python values and what DynamoDB's resource API stores.

DynamoDB numbers are ``Decimal``; it has no NaN or infinity. ``to_dynamo`` converts floats to
``Decimal`` (shortest repr, so 0.1 stays 0.1) and leaves out None and non-finite numbers;
``from_dynamo`` turns ``Decimal`` back into ``int`` or ``float`` and ``Binary`` into ``bytes``.
"""

from __future__ import annotations

import math
from decimal import Decimal
from typing import Any

from boto3.dynamodb.types import Binary


def to_dynamo(value: Any) -> Any:
    """Plain value -> DynamoDB resource value (recursively). Returns None for "leave out"."""
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if isinstance(value, int):
        return value
    if isinstance(value, float):
        return Decimal(repr(value)) if math.isfinite(value) else None
    if isinstance(value, dict):
        out = {}
        for key, item in value.items():
            converted = to_dynamo(item)
            if converted is not None:
                out[key] = converted
        return out
    if isinstance(value, list | tuple):
        return [to_dynamo(item) for item in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return to_dynamo(value.item())
    return value


def from_dynamo(value: Any) -> Any:
    """DynamoDB resource value -> plain value (recursively)."""
    if isinstance(value, Decimal):
        whole = value == value.to_integral_value() and abs(value) < 2**53
        return int(value) if whole else float(value)
    if isinstance(value, Binary):
        return bytes(value.value)
    if isinstance(value, dict):
        return {key: from_dynamo(item) for key, item in value.items()}
    if isinstance(value, list):
        return [from_dynamo(item) for item in value]
    return value
