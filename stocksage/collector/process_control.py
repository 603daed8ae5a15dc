"""Process plumbing of the collector: structured logs, stop signals with a flush deadline,
and the Kinesis client with bounded timeouts."""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable
from typing import Any

from stocksage.collector.sink.kinesis_sink import KinesisSink

__all__ = [
    "SERVICE_NAME",
    "arm_deadline",
    "configure_logging",
    "install_stop_handlers",
    "make_kinesis_client",
]

log = logging.getLogger("stocksage.collector")

SERVICE_NAME = "stocksage-collector"


def configure_logging(level: str = "INFO") -> None:
    """Structured JSON logs (Powertools formatter) on stderr for the ``stocksage`` loggers."""
    logger = logging.getLogger("stocksage")
    if any(getattr(h, "_stocksage_collector", False) for h in logger.handlers):
        logger.setLevel(level.upper())
        return
    handler = logging.StreamHandler(sys.stderr)
    try:
        from aws_lambda_powertools.logging.formatter import LambdaPowertoolsFormatter

        handler.setFormatter(LambdaPowertoolsFormatter(service=SERVICE_NAME))
    except ImportError:  # pragma: no cover - powertools is a runtime dependency
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    handler._stocksage_collector = True  # type: ignore[attr-defined]
    logger.addHandler(handler)
    logger.setLevel(level.upper())
    logger.propagate = False


def install_stop_handlers(stop: threading.Event,
                          on_stop: Callable[[], None] | None = None) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (graceful: flush then exit); a second signal exits at once.

    ``on_stop`` runs on the first signal (e.g. arms the sink's flush deadline). Returns a
    function restoring the previous handlers. Main thread only (a no-op elsewhere).
    """
    if threading.current_thread() is not threading.main_thread():
        return lambda: None

    def handler(signum: int, _frame: Any) -> None:
        if stop.is_set():  # second signal: give up the flush, exit now
            log.error("second stop signal; exiting without flushing",
                      extra={"signal": signal.Signals(signum).name})
            os._exit(130)
        log.warning("stop signal received; flushing buffered records",
                    extra={"signal": signal.Signals(signum).name})
        if on_stop is not None:
            on_stop()
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def make_kinesis_client(region: str | None = None, endpoint_url: str | None = None) -> Any:
    """A boto3 Kinesis client; ``AWS_ENDPOINT_URL`` (emulator) is honoured by boto3 itself."""
    import boto3
    from botocore.config import Config

    # one attempt per call, each bounded (3 s connect + 5 s read): the sink retries with
    # backoff itself and stops at its deadline; botocore retries would stretch one call
    return boto3.client(
        "kinesis",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(connect_timeout=3, read_timeout=5,
                      retries={"mode": "standard", "total_max_attempts": 1}),
    )


def arm_deadline(sink: KinesisSink, seconds: float) -> Callable[[], None]:
    """``on_stop`` callback: no request of ``sink`` starts later than ``seconds`` from now."""

    def on_stop() -> None:
        sink.deadline = time.monotonic() + seconds

    return on_stop
