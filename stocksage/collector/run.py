"""``collect``: feed a source's bars into a ``KinesisSink`` until it ends or a stop signal,
then flush; records that cannot be sent go to the spill file, never silently away."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stocksage.collector.sink.kinesis_sink import FlushDeadlineError, KinesisPutError, KinesisSink

__all__ = ["CollectResult", "collect"]

log = logging.getLogger("stocksage.collector")


@dataclass
class CollectResult:
    """Outcome of :func:`collect`.

    Attributes:
        bars_read: Bars taken from the source.
        stopped: True when a stop signal ended the run early.
        spilled: Records not sent in time, written to the spill file.
        seconds: Wall-clock duration.
        sink: The sink's counters (``SinkStats.as_dict()``).
    """

    bars_read: int = 0
    stopped: bool = False
    spilled: int = 0
    seconds: float = 0.0
    sink: dict[str, Any] = field(default_factory=dict)


def collect(
    source: Iterable[Any],
    sink: KinesisSink,
    stop: threading.Event | None = None,
    *,
    spill_path: str | Path | None = None,
) -> CollectResult:
    """Feed every bar of ``source`` into ``sink`` and flush; stop early when ``stop`` is set.

    The sink is flushed on every exit path (its context manager); the counts are logged.
    With ``spill_path``, records left in a previous run's spill file are sent first, and
    records that cannot be sent (the sink's ``deadline`` passed, or Kinesis kept failing) are
    appended to it instead of being lost.

    Raises:
        FlushDeadlineError: the deadline passed and there is no spill file.
        KinesisPutError: records were given up after retries (spilled first when possible).
    """
    result = CollectResult()
    began = time.monotonic()
    try:
        with sink:
            if spill_path is not None:
                sink.restore(spill_path)
            for bar in source:
                if stop is not None and stop.is_set():
                    result.stopped = True
                    break
                sink.put(bar)
                result.bars_read += 1
            else:
                if stop is not None and stop.is_set():
                    result.stopped = True
    except KinesisPutError as exc:
        if spill_path is not None and sink.buffered:
            result.spilled = sink.spill(spill_path)
        elif sink.buffered:
            log.error("records could not be sent and there is no spill file",
                      extra={"records": sink.buffered})
        result.stopped = result.stopped or (stop is not None and stop.is_set())
        if not (isinstance(exc, FlushDeadlineError) and result.spilled):
            raise
    finally:
        result.seconds = round(time.monotonic() - began, 3)
        result.sink = sink.stats.as_dict()
        log.info(
            "collector finished",
            extra={"bars_read": result.bars_read, "stopped": result.stopped,
                   "spilled": result.spilled, "seconds": result.seconds,
                   "buffered": sink.buffered, **result.sink},
        )
    return result
