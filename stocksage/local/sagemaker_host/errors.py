"""Errors the SageMaker host answers, in AWS's shape (boto3 raises ``ClientError`` with the
code)."""

from __future__ import annotations

from typing import Any


class HostError(Exception):
    """An error answered to the client in AWS's shape.

    Args:
        status: HTTP status (400 ``ValidationError``, 424 ``ModelError``, 503 ...).
        code: The AWS error code (``x-amzn-ErrorType`` and ``__type``).
        message: The message.
        extra: More fields of the error document (``OriginalStatusCode``,
            ``OriginalMessage``, ``LogStreamArn`` for a ``ModelError``).
    """

    def __init__(self, status: int, code: str, message: str, **extra: Any) -> None:
        super().__init__(message)
        self.status, self.code, self.message, self.extra = status, code, message, extra


class UnsupportedContentType(ValueError):
    """Raised by default handlers (maps to original status 415)."""
