"""``process_batch``: the seven steps of the processor, in order, once per Kinesis batch."""

from __future__ import annotations

from collections.abc import Sequence
from datetime import UTC, datetime

from stocksage.processing.alerting import raise_alerts
from stocksage.processing.computation import compute
from stocksage.processing.intake import classify, load_states
from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import Ports, StreamBar
from stocksage.processing.prediction import predict
from stocksage.processing.storage import write_results, write_states
from stocksage.processing.work import group_by_symbol

__all__ = ["process_batch"]


def process_batch(bars: Sequence[StreamBar], ports: Ports, *,
                  now: datetime | None = None) -> BatchOutcome:
    """Process one batch of decoded bars (steps in ``stocksage.processing``'s docstring).

    Args:
        bars: Decoded bars of one Kinesis batch, any symbols, in any order.
        ports: AWS-facing dependencies.
        now: Processing time stamp for the items (UTC); defaults to the current time.

    Returns:
        The batch outcome: counts per symbol, the symbols to retry (``failed``), bars to
        quarantine (``rejected``), late bars, broken rules. A failing endpoint or SNS never
        raises: predictions and alerts wait (pending, outbox) and are completed later.

    Raises:
        Exception: only for a programming error; ports report storage failures per symbol.
    """
    now = now or datetime.now(UTC)
    outcome = BatchOutcome()
    groups = group_by_symbol(bars)
    if not groups:
        return outcome
    states = load_states(ports.states, sorted(groups), outcome)
    work = classify(groups, states, ports.results, outcome)
    compute(work)
    predict(work, ports, outcome)
    write_results(work, ports, outcome, now)
    raise_alerts(work, ports, outcome)
    write_states(work, ports, outcome)
    return outcome
