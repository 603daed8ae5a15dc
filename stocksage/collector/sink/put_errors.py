"""Why records could not be written: given up after retries, or out of time."""

from __future__ import annotations

from collections.abc import Mapping

__all__ = ["FlushDeadlineError", "KinesisPutError"]


class KinesisPutError(RuntimeError):
    """Records could not be written after the bounded number of attempts.

    Attributes:
        failed: Records given up on in the failing request (or the whole request when the call
            itself kept failing).
        pending: Records still buffered (including ``failed``); a later ``flush`` retries them.
        error_codes: ``ErrorCode`` -> count for the last failing response.
    """

    def __init__(self, message: str, failed: int, pending: int, error_codes: Mapping[str, int]):
        super().__init__(message)
        self.failed = failed
        self.pending = pending
        self.error_codes = dict(error_codes)


class FlushDeadlineError(KinesisPutError):
    """The sink's ``deadline`` passed with records still buffered (``pending``)."""
