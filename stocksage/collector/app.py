"""Collector command line: ``python -m stocksage.collector replay ...``.

Runs as an ECS Fargate task in AWS and as a local process against the embedded emulator
(``AWS_ENDPOINT_URL``, default credentials chain). Examples::

    python -m stocksage.collector replay --symbols TSLA,AAPL --speed 0 --limit 500
    python -m stocksage.collector replay --stream stocksage-dev-bars --symbols TSLA \\
        --start 2021-06-01 --end 2021-12-31 --speed 86400      # one calendar day per second

Stopping: SIGTERM (``ecs stop-task``, ``docker stop``) or Ctrl-C ends the replay after the current
bar, flushes the buffered records to Kinesis and exits 0; a second signal exits at once (130).

Exit codes: 0 done/stopped, 1 Kinesis write failure (records given up after retries, or stream
error), 2 bad input (unknown symbol, bad dates, missing or malformed data file).
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from typing import Annotated, Any

import typer

from stocksage.collector.sink import KinesisPutError, KinesisSink, ProgressCallback
from stocksage.collector.sources import ReplayError, ReplaySource, Source

log = logging.getLogger("stocksage.collector")

SERVICE_NAME = "stocksage-collector"

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Push OHLCV bars into the stocksage Kinesis stream (partition key = symbol).",
)


@app.callback()
def _root() -> None:
    """stocksage collector."""


@dataclass
class CollectResult:
    """Outcome of :func:`collect`.

    Attributes:
        bars_read: Bars taken from the source.
        stopped: True when a stop signal ended the run early.
        seconds: Wall-clock duration.
        sink: The sink's counters (``SinkStats.as_dict()``).
    """

    bars_read: int = 0
    stopped: bool = False
    seconds: float = 0.0
    sink: dict[str, Any] = field(default_factory=dict)


def collect(
    source: Iterable[Any],
    sink: KinesisSink,
    stop: threading.Event | None = None,
) -> CollectResult:
    """Feed every bar of ``source`` into ``sink`` and flush; stop early when ``stop`` is set.

    The sink is flushed on every exit path (its context manager); the counts are logged.
    """
    result = CollectResult()
    began = time.monotonic()
    try:
        with sink:
            for bar in source:
                if stop is not None and stop.is_set():
                    result.stopped = True
                    break
                sink.put(bar)
                result.bars_read += 1
            else:
                if stop is not None and stop.is_set():
                    result.stopped = True
    finally:
        result.seconds = round(time.monotonic() - began, 3)
        result.sink = sink.stats.as_dict()
        log.info(
            "collector finished",
            extra={"bars_read": result.bars_read, "stopped": result.stopped,
                   "seconds": result.seconds, "buffered": sink.buffered, **result.sink},
        )
    return result


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


def install_stop_handlers(stop: threading.Event) -> Callable[[], None]:
    """SIGTERM/SIGINT set ``stop`` (graceful: flush then exit); a second signal exits at once.

    Returns a function restoring the previous handlers. Main thread only (a no-op elsewhere).
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
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}

    def restore() -> None:
        for sig, old in previous.items():
            signal.signal(sig, old)

    return restore


def _progress_hook(source: Source, enabled: bool):
    """A rich progress display with one bar per symbol; returns (context, callback)."""
    from contextlib import nullcontext

    if not enabled:
        return nullcontext(), None
    from rich.console import Console
    from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn

    progress = Progress(
        TextColumn("[bold]{task.description:<6}"),
        BarColumn(),
        MofNCompleteColumn(),
        TimeElapsedColumn(),
        console=Console(stderr=True),
    )
    counts: Mapping[str, int] | None = source.expected_counts()
    tasks = {s: progress.add_task(s, total=(counts or {}).get(s)) for s in source.symbols}

    def on_sent(acked: Mapping[str, int]) -> None:
        for symbol, n in acked.items():
            if symbol in tasks:
                progress.advance(tasks[symbol], n)

    return progress, on_sent


def make_kinesis_client(region: str | None = None, endpoint_url: str | None = None):
    """A boto3 Kinesis client; ``AWS_ENDPOINT_URL`` (emulator) is honoured by boto3 itself."""
    import boto3
    from botocore.config import Config

    return boto3.client(
        "kinesis",
        region_name=region,
        endpoint_url=endpoint_url,
        config=Config(retries={"mode": "standard", "max_attempts": 3}),
    )


_Stream = Annotated[str | None, typer.Option(help="Stream name (default stocksage-{env}-bars).")]
_Env = Annotated[str, typer.Option(help="Environment used for the default stream name.")]
_Symbols = Annotated[str, typer.Option(help="Comma-separated symbols, e.g. TSLA,AAPL.")]
_Limit = Annotated[int | None, typer.Option(help="Last N bars per symbol of the range (all).")]
_Start = Annotated[str | None, typer.Option(help="First bar date, inclusive (YYYY-MM-DD).")]
_End = Annotated[str | None, typer.Option(help="Last bar date, inclusive (YYYY-MM-DD).")]
_Speed = Annotated[float, typer.Option(
    help="0 = as fast as possible; else sleep real gap / speed (86400: a day per second).")]
_Interleave = Annotated[str, typer.Option(
    help="time (merge by bar_time) or round-robin (one bar per symbol per round).")]
_PerKey = Annotated[int, typer.Option(
    help="Records per symbol per PutRecords request; 1 keeps order under partial failures.")]
_Region = Annotated[str | None, typer.Option(help="AWS region (default from the environment).")]
_Endpoint = Annotated[str | None, typer.Option(help="Kinesis endpoint (default AWS_ENDPOINT_URL).")]
_Progress = Annotated[bool | None, typer.Option(
    "--progress/--no-progress", help="Progress bars (default: when stderr is a terminal).")]
_LogLevel = Annotated[str, typer.Option(help="Log level.")]


@app.command()
def replay(
    stream: _Stream = None,
    env: _Env = "local",
    symbols: _Symbols = "TSLA,AAPL",
    limit: _Limit = None,
    start: _Start = None,
    end: _End = None,
    speed: _Speed = 0.0,
    interleave: _Interleave = "time",
    per_key: _PerKey = 1,
    region: _Region = None,
    endpoint_url: _Endpoint = None,
    progress: _Progress = None,
    log_level: _LogLevel = "INFO",
) -> None:
    """Replay real bundled OHLCV bars of SYMBOLS into the Kinesis stream, interleaved by time."""
    from botocore.exceptions import BotoCoreError, ClientError

    from stocksage.config import resource_name
    from stocksage.datasets import DataFileError

    configure_logging(log_level)
    stop = threading.Event()
    try:
        stream_name = stream or resource_name(env, "stream")
        source = ReplaySource(
            symbols.split(","), limit=limit, start=start, end=end, speed=speed,
            interleave=interleave, sleep=stop.wait
        )
    except (ReplayError, DataFileError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc

    show = sys.stderr.isatty() if progress is None else progress
    display, on_sent = _progress_hook(source, show)
    restore = install_stop_handlers(stop)
    try:
        sink = KinesisSink(
            make_kinesis_client(region, endpoint_url), stream_name,
            max_records_per_key=per_key, on_sent=on_sent,
        )
        with display:
            result = collect(source, sink, stop)
    except KinesisPutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        typer.echo(f"error: writing to stream {stream_name!r} failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        restore()
    typer.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.sink['sent']} bars sent to "
        f"{stream_name} in {result.sink['batches']} requests "
        f"({result.sink['retried']} retried, {result.sink['failed']} failed entries) "
        f"in {result.seconds:.1f}s",
        err=True,
    )


def main() -> None:  # console-script style entry
    app()


__all__ = [
    "CollectResult",
    "ProgressCallback",
    "app",
    "collect",
    "configure_logging",
    "install_stop_handlers",
    "make_kinesis_client",
    "replay",
]
