"""Publishing the symbols' alert outboxes (part of step 6 of ``process_batch``).

An alert waits in its symbol's outbox (kept in the state) until SNS has taken it. The first
publish failure stops publishing for the rest of the batch: every alert not yet sent stays in
its outbox for the symbol's next batch (publishing is idempotent per alert id).
"""

from __future__ import annotations

from collections.abc import Sequence

from stocksage.processing.outcome import BatchOutcome
from stocksage.processing.ports import AlertPublisher
from stocksage.processing.work import SymbolWork

__all__ = ["publish_outboxes"]


def publish_outboxes(items: Sequence[SymbolWork], alerts: AlertPublisher,
                     outcome: BatchOutcome) -> None:
    """Publish every outbox message in order; keep the unsent ones in their outbox.

    Counts ``alerts_published``, ``alerts_suppressed`` (sent before) and ``alerts_pending``
    per symbol; ``outcome.alert_error`` says why publishing stopped ("" if it did not).
    """
    for item in items:
        counts = outcome.symbols[item.state.symbol]
        kept = []
        for message in item.state.outbox:
            if outcome.alert_error:
                kept.append(message)
                continue
            try:
                sent = alerts.publish_message(message)
            except Exception as exc:  # noqa: BLE001 -- keep it in the outbox, stop for now
                outcome.alert_error = f"{type(exc).__name__}: {exc}"[:500]
                kept.append(message)
                continue
            if sent:
                counts.alerts_published += 1
            else:
                counts.alerts_suppressed += 1
        item.state.outbox = kept
        counts.alerts_pending = len(kept)
