"""Collector command line: ``python -m stocksage.collector replay ...``.

Runs as an ECS Fargate task in AWS and as a local process against the embedded emulator
(``AWS_ENDPOINT_URL``, default credentials chain). Commands: ``replay`` (bundled real data),
``replay-trades`` (a trades file or the bundled E-mini S&P 500 ticks, packed per symbol with
watermark heartbeats; :mod:`stocksage.collector.trade_replay`), ``live`` (Alpaca Market
Data v2 bars, polled; :mod:`stocksage.collector.live`), ``live-stream`` (Alpaca Market Data
Stream v2 over a websocket: trades packed like the replay's, minute bars, reconnects with a
REST backfill; :mod:`stocksage.collector.live_stream`) and ``health`` (the container health
check; :mod:`stocksage.collector.health`). Examples::

    python -m stocksage.collector replay --symbols TSLA,AAPL --speed 0 --limit 500
    python -m stocksage.collector replay --stream stocksage-dev-bars --symbols TSLA \\
        --start 2021-06-01 --end 2021-12-31 --speed 86400      # one calendar day per second

    python -m stocksage.collector replay-trades bundled --speed 60 --limit 20000  # ES ticks
    python -m stocksage.collector replay-trades trades.parquet --symbol AAPL --tz America/New_York

    python -m stocksage.collector live --symbols AAPL,MSFT --timeframe 1Min   # key from env
    python -m stocksage.collector live-stream --symbols AAPL,MSFT --feed iex   # key from env
    python -m stocksage.collector live-stream --symbols FAKEPACA --feed test \\
        --stream-url ws://127.0.0.1:8765 --rest-url http://127.0.0.1:8766  # the local fake
    python -m stocksage.collector health                                     # exit 0 = healthy

Stopping: SIGTERM (``ecs stop-task``, ``docker stop``) or Ctrl-C ends the replay after the current
bar, flushes the buffered records to Kinesis and exits 0; a second signal exits at once (130).
ECS sends SIGTERM and waits ``stopTimeout`` seconds (task definition, 30 s by default, from
``collector_stop_timeout_seconds``) before SIGKILL. The flush is bounded by a deadline,
``--stop-deadline-seconds`` (``COLLECTOR_STOP_DEADLINE_SECONDS``, default 20) after the signal:
no request starts after it, and one request is bounded by the client's timeouts (3 s connect +
5 s read, ``make_kinesis_client``), so set the deadline to ``stopTimeout`` minus ~10 s. Whatever
is still buffered then is appended to the spill file (``--spill-file``,
``COLLECTOR_SPILL_FILE``, default ``.local/collector-spill.jsonl``; on ECS a path under the
task's writable ``/tmp``) and sent first at the next
start; without a spill file the count is logged as an error and the exit code is 1 - never a
silent drop. The live source also wakes from its poll sleep at once on SIGTERM (it sleeps on
the stop event), and its cursor (last bar time sent per symbol, ``--cursor``; see
:mod:`stocksage.collector.cursor`) is saved only after a poll's bars were all acknowledged, so
a restart re-requests whatever was not.

Exit codes: 0 done/stopped, 1 Kinesis write failure (records given up after retries, or stream
error), 2 bad input (unknown symbol, bad dates, missing or malformed data file, a trades row
that cannot be parsed: the message names its line). ``live`` and ``live-stream``: 2 also for
a refused or missing market-data key (and, ``live-stream``, Alpaca's 405 symbol limit / 409
plan without the feed), 1 for a provider failure retrying did not fix (406 connection limit,
REST errors).
``live-stream`` on SIGTERM stops the websocket, packs the trades it delivered, cuts every
open pack, sends a final watermark per symbol, then flushes like the others.

This module is the command line only: the source -> sink loop is
:func:`stocksage.collector.run.collect`, logs, signals and the Kinesis client are in
:mod:`stocksage.collector.process_control` (both re-exported here).
"""

from __future__ import annotations

import logging
import os
import sys
import threading
from collections.abc import Callable, Mapping
from contextlib import AbstractContextManager
from typing import TYPE_CHECKING, Annotated, Any, Protocol

import typer

from stocksage.collector.process_control import (
    SERVICE_NAME,
    arm_deadline,
    configure_logging,
    install_stop_handlers,
    make_kinesis_client,
)
from stocksage.collector.run import CollectResult, collect
from stocksage.collector.sink.kinesis_sink import KinesisPutError, KinesisSink, ProgressCallback

if TYPE_CHECKING:  # replay sources need pandas; the live image has none (imported lazily)
    from collections.abc import Sequence

log = logging.getLogger("stocksage.collector")

app = typer.Typer(
    add_completion=False,
    no_args_is_help=True,
    help="Push OHLCV bars into the stocksage Kinesis stream (partition key = symbol).",
)


@app.callback()
def _root() -> None:
    """stocksage collector."""


class _Progressable(Protocol):
    """What the progress display needs of a source (``Source`` and ``TradeReplay`` fit)."""

    @property
    def symbols(self) -> Sequence[str]: ...

    def expected_counts(self) -> Mapping[str, int] | None: ...


def _progress_hook(
    source: _Progressable, enabled: bool,
) -> tuple[AbstractContextManager[Any], Callable[[Mapping[str, int]], None] | None]:
    """A rich progress display with one bar per symbol (records acknowledged, of the
    source's expected counts when it knows them); returns (context, callback)."""
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


_Stream = Annotated[str | None, typer.Option(
    envvar="STREAM_NAME", help="Stream name (default stocksage-{env}-bars).")]
_Env = Annotated[str, typer.Option(help="Environment used for the default stream name.")]
_Symbols = Annotated[str, typer.Option(
    envvar="COLLECTOR_SYMBOLS", help="Comma-separated symbols, e.g. TSLA,AAPL.")]
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
_LogLevel = Annotated[str, typer.Option(envvar="LOG_LEVEL", help="Log level.")]
_StopDeadline = Annotated[float, typer.Option(
    envvar="COLLECTOR_STOP_DEADLINE_SECONDS",
    help="Seconds after SIGTERM by which sending stops (ECS stopTimeout minus ~10).")]
_SpillFile = Annotated[str, typer.Option(
    envvar="COLLECTOR_SPILL_FILE",
    help="Where records not sent in time are kept (sent first at the next start); '' = none.")]


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
    stop_deadline_seconds: _StopDeadline = 20.0,
    spill_file: _SpillFile = ".local/collector-spill.jsonl",
) -> None:
    """Replay real bundled OHLCV bars of SYMBOLS into the Kinesis stream, interleaved by time."""
    from botocore.exceptions import BotoCoreError, ClientError

    from stocksage.collector.sources import ReplayError, ReplaySource
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
    sink = KinesisSink(
        make_kinesis_client(region, endpoint_url), stream_name,
        max_records_per_key=per_key, on_sent=on_sent,
    )
    restore = install_stop_handlers(stop, arm_deadline(sink, stop_deadline_seconds))
    try:
        with display:
            result = collect(source, sink, stop, spill_path=spill_file or None)
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
        f"({result.sink['retried']} retried, {result.sink['failed']} failed entries"
        f"{f', {result.spilled} spilled' if result.spilled else ''}) in {result.seconds:.1f}s",
        err=True,
    )


_TradesPath = Annotated[str, typer.Argument(
    help="CSV or Parquet trades file (columns time, price, size, optional symbol, trade_id), "
         "or 'bundled': mlfinpy's E-mini S&P 500 ticks (`make tick-data`).")]
_TradeSymbol = Annotated[str | None, typer.Option(
    help="Symbol of a file without a symbol column (bundled: ES); with one, replay only it.")]
_Tz = Annotated[str | None, typer.Option(
    help="IANA zone of naive times, e.g. America/New_York (bundled: America/Chicago).")]
_TradeSpeed = Annotated[str, typer.Option(
    help="max = as fast as the stream takes; N = N event seconds per wall second (60: a "
         "minute per second).")]
_TradeLimit = Annotated[int | None, typer.Option(help="Replay only the first N trades.")]
_WindowMs = Annotated[float, typer.Option(
    help="Longest event-time span of one trades record, in milliseconds.")]


def _parse_speed(text: str) -> float | None:
    """``max`` (or 0) -> None; a positive number -> itself.

    Raises:
        ValueError: anything else.
    """
    if text.strip().lower() in ("max", "0", "0.0"):
        return None
    try:
        value = float(text)
    except ValueError:
        raise ValueError(f"--speed must be 'max' or a positive number, got {text!r}") from None
    if not value > 0 or value != value or value == float("inf"):
        raise ValueError(f"--speed must be 'max' or a positive number, got {text!r}")
    return value


@app.command("replay-trades")
def replay_trades(
    path: _TradesPath = "bundled",
    symbol: _TradeSymbol = None,
    tz: _Tz = None,
    speed: _TradeSpeed = "max",
    stream: _Stream = None,
    env: _Env = "local",
    limit: _TradeLimit = None,
    window_ms: _WindowMs = 100.0,
    per_key: _PerKey = 1,
    region: _Region = None,
    endpoint_url: _Endpoint = None,
    progress: _Progress = None,
    log_level: _LogLevel = "INFO",
    stop_deadline_seconds: _StopDeadline = 20.0,
    spill_file: _SpillFile = ".local/collector-spill.jsonl",
) -> None:
    """Replay real trades into the Kinesis stream: packed records per symbol (at most
    MAX_TRADES_PER_RECORD trades spanning at most --window-ms), a watermark heartbeat per
    quiet symbol and second of event time, and a final one that closes every bar."""
    from botocore.exceptions import BotoCoreError, ClientError

    from stocksage.collector.trade_replay import TradeReplay, describe_table, load_trades
    from stocksage.config import resource_name

    configure_logging(log_level)
    stop = threading.Event()
    try:
        if limit is not None and limit < 1:
            raise ValueError(f"--limit must be >= 1, got {limit}")
        if not window_ms >= 0:
            raise ValueError(f"--window-ms must be >= 0, got {window_ms}")
        pace = _parse_speed(speed)
        stream_name = stream or resource_name(env, "stream")
        table = load_trades(path, symbol=symbol, tz=tz)
        if limit is not None:
            table = table.head(limit)
        source = TradeReplay(table, speed=pace, window_ns=round(window_ms * 1_000_000),
                             stop=stop, sleep=stop.wait)
    except ValueError as exc:  # TradeFileError included
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    log.info("trade replay ready", extra={**describe_table(table), "speed": speed})

    show = sys.stderr.isatty() if progress is None else progress
    display, on_sent = _progress_hook(source, show)
    sink = KinesisSink(
        make_kinesis_client(region, endpoint_url), stream_name,
        max_records_per_key=per_key, on_sent=on_sent,
    )
    restore = install_stop_handlers(stop, arm_deadline(sink, stop_deadline_seconds))
    try:
        with display:
            result = collect(source, sink, stop, spill_path=spill_file or None)
    except KinesisPutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError) as exc:
        typer.echo(f"error: writing to stream {stream_name!r} failed: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        restore()
    typer.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.sink['sent']} records sent to "
        f"{stream_name} ({source.trades_sent} trades in {source.records_sent} trades records, "
        f"{source.heartbeats_sent} watermarks) in {result.sink['batches']} requests "
        f"({result.sink['retried']} retried, {result.sink['failed']} failed entries"
        f"{f', {result.spilled} spilled' if result.spilled else ''}) in {result.seconds:.1f}s",
        err=True,
    )


_Timeframe = Annotated[str, typer.Option(
    envvar="COLLECTOR_TIMEFRAME", help="Bar timeframe: 1Min, 5Min, 15Min, 30Min, 1Hour, 1Day.")]
_Feed = Annotated[str, typer.Option(envvar="ALPACA_FEED", help="Alpaca feed: iex or sip.")]
_BaseUrl = Annotated[str, typer.Option(envvar="ALPACA_DATA_URL", help="Market-data API root.")]
_SecretId = Annotated[str | None, typer.Option(
    envvar="ALPACA_SECRET_ID",
    help="Secrets Manager secret (JSON key_id, secret_key) read at start when the key is not "
         "in ALPACA_API_KEY_ID / ALPACA_API_SECRET_KEY.")]
_Poll = Annotated[float | None, typer.Option(help="Seconds between polls (default: bar length).")]
_Lookback = Annotated[float, typer.Option(help="Minutes the first poll reads back.")]
_MaxPolls = Annotated[int | None, typer.Option(help="Stop after N polls (default: run forever).")]
_HealthFile = Annotated[str, typer.Option(envvar="COLLECTOR_HEALTH_FILE",
                                          help="Heartbeat file for the health check.")]


@app.command()
def live(
    stream: _Stream = None,
    env: _Env = "local",
    symbols: _Symbols = "AAPL,MSFT",
    timeframe: _Timeframe = "1Min",
    feed: _Feed = "iex",
    base_url: _BaseUrl = "https://data.alpaca.markets",
    secret_id: _SecretId = None,
    poll_seconds: _Poll = None,
    lookback_minutes: _Lookback = 15.0,
    max_polls: _MaxPolls = None,
    health_file: _HealthFile = "/tmp/collector-health.json",
    region: _Region = None,
    endpoint_url: _Endpoint = None,
    log_level: _LogLevel = "INFO",
    cursor: Annotated[str, typer.Option(
        envvar="COLLECTOR_CURSOR",
        help="Where the last bar time per symbol is kept: a file or s3://bucket/key; '' = none."
    )] = ".local/collector-cursor.json",
    stop_deadline_seconds: _StopDeadline = 20.0,
    spill_file: _SpillFile = ".local/collector-spill.jsonl",
) -> None:
    """Poll Alpaca Market Data v2 for new closed bars of SYMBOLS and push them into Kinesis."""
    from datetime import timedelta

    from botocore.exceptions import BotoCoreError, ClientError

    from stocksage.collector.cursor import cursor_store
    from stocksage.collector.health import CollectorMetrics, HealthFile
    from stocksage.collector.live import (
        AlpacaBarsSource,
        ProviderAuthError,
        ProviderError,
        load_credentials,
    )
    from stocksage.config import resource_name

    configure_logging(log_level)
    stop = threading.Event()
    stream_name = stream or resource_name(env, "stream")
    try:
        credentials = load_credentials(os.environ, secret_id)
    except (ProviderAuthError, ClientError, BotoCoreError, ValueError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    health = HealthFile(health_file)
    metrics = CollectorMetrics(SERVICE_NAME)
    sink = KinesisSink(make_kinesis_client(region, endpoint_url), stream_name)
    try:
        store = cursor_store(cursor)
        start_cursor = store.load() if store is not None else {}
    except (ClientError, BotoCoreError, ValueError) as exc:
        typer.echo(f"error: collector cursor {cursor!r}: {exc}", err=True)
        raise typer.Exit(2) from exc
    sent_before = 0

    def on_poll(_bars: int, ok: bool) -> None:  # bars sent are counted by the sink instead
        nonlocal sent_before
        sink.flush()  # a poll's bars go out now, not when the next poll's bars arrive
        if store is not None:  # only once every bar up to the cursor is acknowledged
            try:
                store.save(source.cursor)
            except Exception:  # keep collecting; a restart then re-reads from the older cursor
                log.exception("collector cursor not saved", extra={"cursor": cursor})
                metrics.count("CursorSaveErrors", 1)
        sent = sink.stats.sent
        metrics.count("BarsSent", sent - sent_before)
        metrics.count("PollErrors", 0 if ok else 1)
        metrics.count("BarsSkipped", source.skipped)
        metrics.flush()
        health.beat(sent - sent_before, ok, stream=stream_name)
        sent_before = sent

    try:
        source = AlpacaBarsSource(
            symbols.split(","), credentials, timeframe=timeframe, feed=feed, base_url=base_url,
            poll_seconds=poll_seconds, lookback=timedelta(minutes=lookback_minutes),
            sleep=stop.wait, max_polls=max_polls, on_poll=on_poll, cursor=start_cursor)
    except ValueError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    health.beat(0, True, stream=stream_name, starting=True)
    restore = install_stop_handlers(stop, arm_deadline(sink, stop_deadline_seconds))
    try:
        result = collect(source, sink, stop, spill_path=spill_file or None)
    except ProviderAuthError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(2) from exc
    except KinesisPutError as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    except (ClientError, BotoCoreError, ProviderError) as exc:
        typer.echo(f"error: {exc}", err=True)
        raise typer.Exit(1) from exc
    finally:
        restore()
    typer.echo(
        f"{'stopped' if result.stopped else 'done'}: {result.sink['sent']} bars sent to "
        f"{stream_name} in {source.polls} polls ({source.requests} API requests, "
        f"{source.skipped} invalid bars skipped"
        f"{f', {result.spilled} spilled' if result.spilled else ''}) in {result.seconds:.1f}s",
        err=True,
    )


_StreamFeed = Annotated[str, typer.Option(
    envvar="ALPACA_FEED", help="Alpaca stream feed: iex (free), sip (paid) or test (FAKEPACA).")]
_StreamUrl = Annotated[str, typer.Option(
    envvar="ALPACA_STREAM_URL",
    help="Websocket root, the feed is appended (the local fake: ws://127.0.0.1:8765).")]
_RestUrl = Annotated[str, typer.Option(
    envvar="ALPACA_DATA_URL", help="REST root of the trades backfill after a reconnection.")]
_AllowanceMs = Annotated[float, typer.Option(
    help="Milliseconds the packer's clock stays behind the feed (delivery delay and disorder).")]


@app.command("live-stream")
def live_stream(
    symbols: _Symbols = "AAPL,MSFT",
    feed: _StreamFeed = "iex",
    stream_url: _StreamUrl = "wss://stream.data.alpaca.markets/v2",
    rest_url: _RestUrl = "https://data.alpaca.markets",
    stream: _Stream = None,
    env: _Env = "local",
    secret_id: _SecretId = None,
    window_ms: _WindowMs = 100.0,
    allowance_ms: _AllowanceMs = 500.0,
    per_key: _PerKey = 1,
    health_file: _HealthFile = "/tmp/collector-health.json",
    region: _Region = None,
    endpoint_url: _Endpoint = None,
    log_level: _LogLevel = "INFO",
    stop_deadline_seconds: _StopDeadline = 20.0,
    spill_file: _SpillFile = ".local/collector-spill.jsonl",
    bars: Annotated[bool, typer.Option(
        "--bars/--no-bars", help="Also forward the provider's minute bars (off: the processor "
        "builds bars from the trades, and the two are not reconciled).")] = False,
) -> None:
    """Stream Alpaca trades of SYMBOLS over a websocket into Kinesis: trades packed per symbol
    (at most MAX_TRADES_PER_RECORD spanning at most --window-ms) with watermark heartbeats
    (and with --bars the provider's minute bars); reconnects and backfills missed trades."""
    from stocksage.collector.live_stream import run_live_stream
    from stocksage.config import resource_name

    configure_logging(log_level)
    stream_name = stream or resource_name(env, "stream")
    outcome = run_live_stream(
        symbols.split(","), stream_name=stream_name,
        kinesis_client=make_kinesis_client(region, endpoint_url), stop=threading.Event(),
        env=os.environ, secret_id=secret_id, feed=feed, stream_url=stream_url,
        rest_url=rest_url, window_ms=window_ms, allowance_ms=allowance_ms, per_key=per_key,
        bars=bars,
        stop_deadline_seconds=stop_deadline_seconds, spill_path=spill_file or None,
        health_file=health_file or None)
    typer.echo(outcome.message, err=True)
    if outcome.code:
        raise typer.Exit(outcome.code)


@app.command()
def health(
    health_file: _HealthFile = "/tmp/collector-health.json",
    max_age: Annotated[float, typer.Option(envvar="COLLECTOR_HEALTH_MAX_AGE",
                                           help="Seconds a heartbeat stays fresh.")] = 180.0,
) -> None:
    """Container health check: exit 0 when the heartbeat is fresh and the last poll succeeded."""
    from stocksage.collector.health import check_health

    ok, reason = check_health(health_file, max_age)
    typer.echo(reason)
    raise typer.Exit(0 if ok else 1)


__all__ = [
    "CollectResult",
    "ProgressCallback",
    "app",
    "arm_deadline",
    "collect",
    "configure_logging",
    "health",
    "install_stop_handlers",
    "live",
    "live_stream",
    "make_kinesis_client",
    "replay",
    "replay_trades",
]
