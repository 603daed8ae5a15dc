"""A measured replay of real trades through the running local stack (``make up``).

Used by ``make demo`` (:mod:`stocksage.local.live_demo`) and
``scripts/bench_latency.py --stack``:

1. **Symbol.** The trades are the bundled E-mini S&P 500 ticks (mlfinpy's), replayed under a
   symbol with no state on the stack yet: ``ES`` the first time, then ``ES2``, ``ES3``, ...
   A replay of the same event time under a symbol that already has state would be all late
   trades (its watermark is past them), and its alert ids (``rule#symbol#bar``) would be
   dropped as already published; a fresh symbol also makes the processor read the rules table
   at its first batch (the rules cache re-reads for a symbol it was not asked about).
2. **Rules** (seeded first): ``price_above`` / ``price_below`` at levels the window crosses
   (:func:`level_rules`), written with ``put_rule`` like ``stocksage alerts add``.
3. **Warm-up** (optional): the ``warmup_minutes`` of trades before the window, unpaced, so the
   window's 1-minute bars have their indicators and features (MACD's signal needs 34 bars)
   and predictions. Its last heartbeat stops just before the window's first trade. The demo
   waits until its bars are in the results table before the measured part begins.
4. **Window**: the window's trades at ``speed`` x real time through the collector's own code
   path (``TradeReplay`` -> ``collect`` -> ``KinesisSink``: packs of 100 ms of event time,
   per-second heartbeats for a quiet symbol, the sink's 0.2 s flush timer, the final heartbeat
   that closes the last bar); an :class:`~stocksage.local.latency.AckLog` records when each
   record was acknowledged. Optionally one trade of one record is made invalid (price 0): the
   processor reports it to the failure queue (``RejectedTrades``) and processes the rest.
5. **Wait** (no fixed sleeps: a poll of real conditions until a deadline): every 1-minute bar
   of the window has its results item and the symbol's alert outbox (in its state item) is
   empty, i.e. every alert was handed to SNS, which delivers to the inbox queue synchronously.
6. **Measure** (:mod:`stocksage.local.latency`): trade-to-alert for the intrabar alerts and
   bar-close-to-result for the window's bars.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field, replace
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd

from stocksage.collector.trade_packing import PackedRecord
from stocksage.collector.trade_replay import TradeTable
from stocksage.config import STACK
from stocksage.local.latency import AckLog, BarDelay, alert_delays, bar_close_delays, iso_epoch_s

__all__ = [
    "DEFAULT_START",
    "ES_TICK",
    "LiveResult",
    "LiveWindow",
    "fresh_symbol",
    "level_rules",
    "poison_one_trade",
    "run_live",
    "select_window",
]

ES_TICK = 0.25
"""The E-mini S&P 500's price increment (index points)."""
DEFAULT_START = "2013-09-03T08:30"
"""The US cash-session open (08:30 Central) of the bundled file's last, busiest day."""
DEFAULT_TZ = "America/Chicago"
MINUTE_NS = 60 * 1_000_000_000
RULE_PREFIX = "live-"
GRACE_NS = int(STACK.bar_building["grace_ms"]) * 1_000_000


@dataclass(frozen=True)
class LiveWindow:
    """The trades of a replay.

    Attributes:
        window: The measured trades (event time order).
        warmup: The trades before them that warm the indicators up (None: no warm-up).
        start_ns: The window's start (epoch ns UTC; its first trade is at or after it).
    """

    window: TradeTable
    warmup: TradeTable | None
    start_ns: int

    def bar_starts_ns(self) -> list[int]:
        """Starts (epoch ns) of the window's 1-minute bars: minutes holding a trade."""
        return sorted({int(t) for t in np.unique(self.window.times_ns // MINUTE_NS)
                       * MINUTE_NS})


def _rows(table: TradeTable, start: int, stop: int) -> TradeTable:
    ids = None if table.trade_ids is None else table.trade_ids[start:stop]
    return replace(table, codes=table.codes[start:stop], times_ns=table.times_ns[start:stop],
                   prices=table.prices[start:stop], sizes=table.sizes[start:stop],
                   trade_ids=ids)


def select_window(table: TradeTable, *, start: str = DEFAULT_START, tz: str = DEFAULT_TZ,
                  minutes: float | None = 30.0, trades: int | None = None,
                  warmup_minutes: float = 60.0) -> LiveWindow:
    """The trades from ``start`` (local time in ``tz``) on: ``minutes`` of event time, or the
    first ``trades`` trades when given; plus the ``warmup_minutes`` of trades before ``start``.

    Raises:
        ValueError: no trade in the window, or neither ``minutes`` nor ``trades``.
    """
    if minutes is None and trades is None:
        raise ValueError("give minutes or trades")
    start_ns = int(pd.Timestamp(start, tz=tz).value)
    first = int(np.searchsorted(table.times_ns, start_ns, side="left"))
    if trades is not None:
        stop = min(len(table), first + trades)
    else:
        assert minutes is not None
        stop = int(np.searchsorted(table.times_ns, start_ns + round(minutes * MINUTE_NS),
                                   side="left"))
    if stop <= first:
        raise ValueError(f"no trades from {start} ({tz}) in the file")
    warm_from = int(np.searchsorted(table.times_ns, start_ns - round(warmup_minutes * MINUTE_NS),
                                    side="left"))
    warmup = _rows(table, warm_from, first) if warmup_minutes > 0 and warm_from < first else None
    return LiveWindow(_rows(table, first, stop), warmup, start_ns)


def level_rules(symbol: str, prices: np.ndarray, offsets_ticks: Sequence[float],
                tick: float = ES_TICK) -> list[Any]:
    """``price_above`` rules at median + offset and ``price_below`` at median - offset for
    each offset (in ticks; a half-tick offset puts the level between two prices, so every
    move across it is a crossing), severity info; rule ids ``live-above-<offset>t`` ...

    Returns:
        ``stocksage.alerts.Rule`` objects.
    """
    from stocksage.alerts import Rule

    median = float(np.median(prices))
    rules = []
    for offset in offsets_ticks:
        label = f"{offset:g}".replace(".", "_")
        rules.append(Rule(f"{RULE_PREFIX}above-{label}t", symbol, "price_above",
                          {"level": round(median + offset * tick, 4)}, "info"))
        rules.append(Rule(f"{RULE_PREFIX}below-{label}t", symbol, "price_below",
                          {"level": round(median - offset * tick, 4)}, "info"))
    return rules


def fresh_symbol(dynamodb: Any, state_table: str, results_table: str,
                 base: str = "ES") -> str:
    """``base``, else ``base2``, ``base3``, ...: the first with no state item and no results
    item on the stack (module docstring, point 1)."""
    key = STACK.keys["state"]["partition"]
    for n in range(1, 10_000):
        symbol = base if n == 1 else f"{base}{n}"
        state = dynamodb.get_item(TableName=state_table, Key={key: {"S": symbol}},
                                  ProjectionExpression="#k",
                                  ExpressionAttributeNames={"#k": key})
        if "Item" in state:
            continue
        results = dynamodb.query(TableName=results_table, Limit=1, Select="COUNT",
                                 KeyConditionExpression="#s = :s",
                                 ExpressionAttributeNames={
                                     "#s": STACK.keys["results"]["partition"]},
                                 ExpressionAttributeValues={":s": {"S": symbol}})
        if not results.get("Count"):
            return symbol
    raise RuntimeError(f"no free symbol name {base}<n> left")


def poison_one_trade(records: Iterable[PackedRecord], nth: int) -> Iterator[PackedRecord]:
    """``records`` with one trade of the ``nth`` trades record that holds >= 3 trades set to
    price 0 (its middle one); every other record unchanged. A ``rejected`` attribute is not
    added: the caller finds the report in the failure queue."""
    seen = 0
    for record in records:
        if record.kind == "trades" and record.trades >= 3:
            seen += 1
            if seen == nth:
                body = json.loads(record.data)
                body["p"][record.trades // 2] = 0
                yield replace(record, data=json.dumps(body, separators=(",", ":")).encode())
                continue
        yield record


@dataclass
class LiveResult:
    """What a measured replay did and measured (times in seconds).

    Attributes:
        symbol: The symbol replayed.
        trades_sent / records_sent / heartbeats_sent: The window's trades, trades records
            and watermark records acknowledged by Kinesis.
        warmup_trades: Trades of the warm-up replay.
        replay_s: Wall seconds of the window's replay (first record to last acknowledgement).
        bars_expected: The window's 1-minute bars (minutes with a trade).
        bars_written: Of them, with a results item; ``bars_predicted``: with ``prob_up``.
        alerts_intrabar / alerts_close: Alerts of the window's bars in the inbox queue.
        trade_to_alert_s / bar_close_s: The delays (``stocksage.local.latency``).
        alert_trade_ns: Event times (epoch ns) of the trades the intrabar alerts fired on.
        unmatched_alerts / unmatched_bars: Delays that could not be computed.
        rejected: The failure-queue report of the poisoned record (None without one).
        complete: Everything arrived before the deadline.
        order_breaks: The sink's ``stats.order_breaks`` (0: the record matching is exact).
    """

    symbol: str
    trades_sent: int = 0
    records_sent: int = 0
    heartbeats_sent: int = 0
    warmup_trades: int = 0
    replay_s: float = 0.0
    bars_expected: int = 0
    bars_written: int = 0
    bars_predicted: int = 0
    alerts_intrabar: int = 0
    alerts_close: int = 0
    trade_to_alert_s: list[float] = field(default_factory=list)
    bar_close_s: list[BarDelay] = field(default_factory=list)
    alert_trade_ns: list[int] = field(default_factory=list)
    unmatched_alerts: int = 0
    unmatched_bars: int = 0
    rejected: dict[str, Any] | None = None
    complete: bool = False
    order_breaks: int = 0
    rules: list[Any] = field(default_factory=list)


def _results(dynamodb: Any, table: str, symbol: str, since_ns: int) -> dict[int, dict[str, Any]]:
    """``{bar start ns: {processed_at, has_prediction}}`` of the symbol's items from the
    1-minute bar holding ``since_ns`` on (one paginated Query)."""
    keys = STACK.keys["results"]
    paginator = dynamodb.get_paginator("query")
    since = datetime.fromtimestamp(since_ns // MINUTE_NS * 60, UTC).strftime(
        "%Y-%m-%dT%H:%M:%SZ")
    found: dict[int, dict[str, Any]] = {}
    for page in paginator.paginate(
            TableName=table, KeyConditionExpression="#s = :s AND #t >= :t",
            ProjectionExpression="#t, processed_at, prob_up",
            ExpressionAttributeNames={"#s": keys["partition"], "#t": keys["sort"]},
            ExpressionAttributeValues={":s": {"S": symbol}, ":t": {"S": since}}):
        for item in page["Items"]:
            start = round(iso_epoch_s(item[keys["sort"]]["S"]) * 1e9)
            found[start] = {"processed_at": item.get("processed_at", {}).get("S"),
                            "predicted": "prob_up" in item and "NULL" not in item["prob_up"]}
    return found


def _outbox_empty(dynamodb: Any, table: str, symbol: str) -> bool:
    key = STACK.keys["state"]["partition"]
    item = dynamodb.get_item(TableName=table, Key={key: {"S": symbol}},
                             ProjectionExpression="outbox").get("Item")
    return item is not None and not item.get("outbox", {}).get("L")


def _wait(done: Callable[[], bool], timeout_s: float, poll_s: float,
          on_poll: Callable[[], None]) -> bool:
    """Poll ``done()`` every ``poll_s`` seconds until it is True or ``timeout_s`` passed."""
    deadline = time.monotonic() + timeout_s
    while True:
        on_poll()
        if done():
            return True
        if time.monotonic() >= deadline:
            return False
        time.sleep(poll_s)


def _closed_bars(table: TradeTable, watermark_ns: int) -> set[int]:
    """Starts of the 1-minute bars of ``table`` that ``watermark_ns`` closes."""
    starts = {int(t) for t in np.unique(table.times_ns // MINUTE_NS) * MINUTE_NS}
    return {s for s in starts if s + MINUTE_NS + GRACE_NS <= watermark_ns}


@dataclass
class Hooks:
    """Progress callbacks of :func:`run_live` (all optional).

    Attributes:
        phase: ``(text)`` when a step begins.
        sent: The sink's ``on_sent`` of the window replay (``{key: count}``).
        waiting: ``(bars written, bars expected)`` after each poll.
    """

    phase: Callable[[str], None] = lambda _text: None
    sent: Callable[[Mapping[str, int]], None] | None = None
    waiting: Callable[[int, int], None] = lambda _done, _total: None


def run_live(out: Mapping[str, Any], window: LiveWindow | None = None, *, speed: float = 60.0,
             minutes: float | None = 30.0, trades: int | None = None,
             warmup_minutes: float = 60.0, offsets_ticks: Sequence[float] = (1.5, 3.5),
             poison: bool = False, timeout_s: float = 300.0, poll_s: float = 0.5,
             hooks: Hooks | None = None) -> LiveResult:
    """Steps 1-6 of the module docstring on the stack whose Terraform outputs are ``out``.

    Args:
        out: ``stocksage.local.stack.require_running()``.
        window: The trades (default: ``select_window`` of the bundled file with ``minutes``,
            ``trades`` and ``warmup_minutes``).
        speed: Event seconds per wall second of the window's replay.
        offsets_ticks: Rule levels, ticks from the window's median price (``level_rules``).
        poison: Make one trade of one record invalid (price 0).
        timeout_s: Longest wait for the warm-up's and the window's results (each).
        poll_s: Seconds between two polls of the results table.
    """
    import boto3

    from stocksage.adapters.dynamodb.rule_source import put_rule
    from stocksage.adapters.results_reader import read_alerts
    from stocksage.collector.run import collect
    from stocksage.collector.sink.kinesis_sink import KinesisSink
    from stocksage.collector.trade_replay import TradeReplay, load_trades

    hooks = hooks or Hooks()
    dynamodb, sqs, kinesis = (boto3.client(n) for n in ("dynamodb", "sqs", "kinesis"))
    symbol = fresh_symbol(dynamodb, out["state_table"], out["results_table"])
    if window is None:
        window = select_window(load_trades(None, symbol=symbol), minutes=minutes,
                               trades=trades, warmup_minutes=warmup_minutes)
    else:  # the caller's table, renamed to the fresh symbol
        window = replace(window, window=replace(window.window, symbols=(symbol,)),
                         warmup=None if window.warmup is None
                         else replace(window.warmup, symbols=(symbol,)))
    result = LiveResult(symbol)
    result.rules = level_rules(symbol, window.window.prices, offsets_ticks)
    resource = boto3.resource("dynamodb")
    for rule in result.rules:
        put_rule(resource, out["rules_table"], rule)
    hooks.phase(f"{len(result.rules)} price-level rules for {symbol}")

    first_ns = int(window.window.times_ns[0])
    warmup = window.warmup
    if warmup is not None:
        hooks.phase(f"warm-up: {len(warmup)} trades before the window, unpaced")
        warm = TradeReplay(warmup, speed=None,
                           final_watermark=lambda _s, _last: first_ns - 1)
        collect(warm, KinesisSink(kinesis, out["stream_name"]))
        result.warmup_trades = warm.trades_sent
        expected_warm = _closed_bars(warmup, first_ns - 1)
        warm_from = int(warmup.times_ns[0])
        warmed = _wait(lambda: expected_warm <= set(_results(
            dynamodb, out["results_table"], symbol, warm_from)),
            timeout_s, poll_s, lambda: None)
        if not warmed:
            return result

    hooks.phase(f"replaying {len(window.window)} trades at {speed:g}x real time")
    log = AckLog(forward=hooks.sent)
    replay = TradeReplay(window.window, speed=speed)
    records: Iterable[PackedRecord] = poison_one_trade(replay, 50) if poison else replay
    sink = KinesisSink(kinesis, out["stream_name"], on_sent=log.on_sent)
    began = time.time()
    collected = collect(log.track(records), sink)
    result.replay_s = time.time() - began
    result.trades_sent, result.records_sent = replay.trades_sent, replay.records_sent
    result.heartbeats_sent = replay.heartbeats_sent
    result.order_breaks = int(collected.sink.get("order_breaks", 0))

    bars = set(window.bar_starts_ns())
    result.bars_expected = len(bars)
    seen: dict[int, dict[str, Any]] = {}

    def complete() -> bool:
        seen.clear()
        seen.update({s: v for s, v in _results(dynamodb, out["results_table"], symbol,
                                                window.start_ns).items() if s in bars})
        hooks.waiting(len(seen), len(bars))
        return len(seen) == len(bars) and _outbox_empty(dynamodb, out["state_table"], symbol)

    result.complete = _wait(complete, timeout_s, poll_s, lambda: None)
    result.bars_written = len(seen)
    result.bars_predicted = sum(1 for v in seen.values() if v["predicted"])

    alerts = [a for a in read_alerts(sqs, out["alerts_queue_url"], wait_seconds=0)
              if (a.get("Payload") or {}).get("symbol") == symbol
              and _bar_start_ns(a) in bars]
    phases = [((a.get("Payload") or {}).get("details") or {}).get("phase") for a in alerts]
    result.alerts_intrabar = phases.count("intrabar")
    result.alerts_close = len(alerts) - result.alerts_intrabar
    result.trade_to_alert_s, result.unmatched_alerts = alert_delays(alerts, log)
    result.alert_trade_ns = [int(details["trade_time_ns"]) for details in (
        (a.get("Payload") or {}).get("details") or {} for a in alerts)
        if details.get("phase") == "intrabar" and "trade_time_ns" in details]
    result.bar_close_s, result.unmatched_bars = bar_close_delays(
        symbol, {s: v["processed_at"] for s, v in seen.items() if v["processed_at"]}, log,
        MINUTE_NS, GRACE_NS)
    if poison:
        result.rejected = _rejected_report(sqs, out["failure_queue_url"], symbol)
    return result


def _bar_start_ns(alert: Mapping[str, Any]) -> int | None:
    """Start (epoch ns) of the bar an alert fired on (``alert_bar_time``), or None."""
    from stocksage.alerts.received import alert_bar_time

    moment = alert_bar_time(alert)
    return None if moment is None else int(moment.value)


def _rejected_report(sqs: Any, queue_url: str, symbol: str) -> dict[str, Any] | None:
    """The newest ``RejectedTrades`` report of ``symbol`` in the failure queue (peeked)."""
    from stocksage.local.pages import failure_messages

    reports = [m for m in failure_messages(sqs, queue_url)
               if m.get("kind") == "RejectedTrades" and m.get("partitionKey") == symbol]
    return reports[-1] if reports else None
