"""Injected endpoint outages (resilience tests), in the SageMaker host's process.

An outage lasts ``seconds`` and hits one endpoint or all of them, in one of three modes::

    switch = OutageSwitch()
    switch.start(90, mode="fail")          # invocations answer 503 ServiceUnavailable
    switch.start(90, mode="model_error")   # ... 424 ModelError (boto3 does not retry it)
    switch.start(90, mode="hang")          # ... block until the outage ends, then are served
    switch.apply("stocksage-dev-endpoint") # called by the host before each invocation
    switch.end()

The host exposes it in process (``SageMakerHost.outage`` / ``end_outage``) and over HTTP
(``POST``/``DELETE /_stocksage/outage``; client:
``stocksage.local.fault_injection.endpoint_outage``).
"""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

from stocksage.local.sagemaker_host.errors import HostError

OUTAGE_MODES = ("fail", "model_error", "hang")


@dataclass(frozen=True)
class Outage:
    """An injected endpoint outage: ``mode`` until ``until`` (monotonic), one or all
    endpoints."""

    mode: str
    until: float
    endpoint: str | None = None


class OutageSwitch:
    """The one current outage (a new one replaces it); ends by itself at ``until``."""

    def __init__(self) -> None:
        self._outage: Outage | None = None
        self._cv = threading.Condition()

    def start(self, seconds: float, mode: str = "fail", endpoint: str | None = None) -> Outage:
        """Make invocations (of ``endpoint``, or all) fail or hang for ``seconds``.

        Raises:
            ValueError: unknown ``mode`` or ``seconds`` <= 0.
        """
        if mode not in OUTAGE_MODES or seconds <= 0:
            raise ValueError(f"mode must be one of {OUTAGE_MODES} and seconds > 0")
        with self._cv:
            self._outage = Outage(mode, time.monotonic() + seconds, endpoint)
            self._cv.notify_all()
            return self._outage

    def end(self) -> None:
        """End the outage now (hanging invocations go on)."""
        with self._cv:
            self._outage = None
            self._cv.notify_all()

    def current(self, endpoint: str | None = None) -> Outage | None:
        """The outage in force (for ``endpoint`` when given), else None."""
        with self._cv:
            outage = self._outage
            if outage is None or time.monotonic() >= outage.until:
                return None
            if endpoint is not None and outage.endpoint not in (None, endpoint):
                return None
            return outage

    def apply(self, endpoint: str) -> None:
        """Raise (``fail``, ``model_error``) or block (``hang``) while an outage hits
        ``endpoint``; return at once otherwise.

        Raises:
            HostError: 503 ``ServiceUnavailable`` (``fail``) or 424 ``ModelError``
                (``model_error``).
        """
        outage = self.current(endpoint)
        if outage is None:
            return
        if outage.mode == "hang":
            with self._cv:
                self._cv.wait_for(lambda: self.current(endpoint) is None,
                                  timeout=max(0.0, outage.until - time.monotonic()))
            return
        if outage.mode == "model_error":
            raise HostError(424, "ModelError", f"Received server error (500) from primary with "
                            f"message \"endpoint {endpoint} is down (outage)\".",
                            OriginalStatusCode=500, OriginalMessage="outage")
        raise HostError(503, "ServiceUnavailable", f"endpoint {endpoint} is unavailable (outage)")
