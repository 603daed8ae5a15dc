"""``process_batch``: the seven steps of the processor, in order, once per Kinesis batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from stocksage.bars import Bar
from stocksage.bars.aggregation import DEFAULT_GRACE_NS, DEFAULT_INTERVALS
from stocksage.processing.alerting import raise_alerts
from stocksage.processing.computation import compute
from stocksage.processing.intake import classify, load_states
from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import Ports, StreamBar, StreamTrades
from stocksage.processing.prediction import predict
from stocksage.processing.storage import write_results, write_states
from stocksage.processing.trade_path import build_bars, group_trades
from stocksage.processing.work import group_by_symbol

__all__ = ["process_batch"]


def process_batch(bars: Sequence[StreamBar], ports: Ports, *,
                  now: datetime | None = None, trades: Sequence[StreamTrades] = (),
                  trade_interval: str = DEFAULT_INTERVALS[0],
                  grace_ns: int = DEFAULT_GRACE_NS) -> BatchOutcome:
    """Process one batch of decoded records (steps in ``stocksage.processing``'s docstring).

    Args:
        bars: Decoded bar records of one Kinesis batch, any symbols, in any order.
        ports: AWS-facing dependencies.
        now: Processing time stamp for the items (UTC, ``processed_at``); defaults to the
            time the results are written (after indicators and the endpoint call).
        trades: Decoded trades and watermark records of the batch (step 1b builds bars
            from them, ``stocksage.processing.trade_path``).
        trade_interval: Interval of the bars built for a symbol that has none yet.
        grace_ns: How long after its end (event time, ns) a bar built from trades waits.

    Returns:
        The batch outcome: counts per symbol, the symbols to retry (``failed``), bars to
        quarantine (``rejected``), late bars, broken rules. A failing endpoint or SNS never
        raises: predictions and alerts wait (pending, outbox) and are completed later.

    Raises:
        Exception: only for a programming error; ports report storage failures per symbol.
    """
    outcome = BatchOutcome()
    groups = group_by_symbol(bars)
    trade_groups = group_trades(trades)
    if not groups and not trade_groups:
        return outcome
    states = load_states(ports.states, sorted(set(groups) | set(trade_groups)), outcome)
    forming: dict[str, Bar] = {}
    built = build_bars(trade_groups, states, ports, outcome, interval=trade_interval,
                       grace_ns=grace_ns, forming=forming)
    for symbol, stream_bars in built.items():
        merged = groups.get(symbol, []) + stream_bars
        merged.sort(key=lambda item: int(item.sequence_number))  # stable: built bars after
        groups[symbol] = merged
    work = classify(groups, {s: st for s, st in states.items() if s not in outcome.failed},
                    ports.results, outcome)
    for symbol in built:
        if symbol in work:
            work[symbol].trades_changed = True
            work[symbol].forming = forming.get(symbol)
    compute(work)
    predict(work, ports, outcome)
    write_results(work, ports, outcome, now or datetime.now(UTC))  # stamped as written
    raise_alerts(work, ports, outcome)
    write_states(work, ports, outcome)
    return outcome
