"""What ``process_batch`` reports: counts per symbol, the symbols to retry, the bars to
quarantine, and why the endpoint or SNS could not be used."""

from __future__ import annotations

from dataclasses import dataclass, field

from stocksage.alerts import RuleError
from stocksage.processing.ports import StreamBar

__all__ = ["BatchOutcome", "SymbolOutcome"]


@dataclass
class SymbolOutcome:
    """What happened to one symbol's bars in a batch (counts of bars or alerts).

    The trade path adds: ``trades_accepted`` (folded into bars), ``late_trades`` (after the
    grace: in no bar, kept in the S3 history for ``repair``), ``duplicate_trades`` (a trade id
    counted before), ``duplicate_records`` (trades/watermark records applied before, by shard
    and sequence number), ``bars_built`` (bars closed from trades) and ``intrabar_alerts``.
    """

    accepted: int = 0
    duplicates: int = 0
    late: int = 0
    rejected: int = 0
    predicted: int = 0
    pending_predictions: int = 0
    filled_predictions: int = 0
    alerts_published: int = 0
    alerts_suppressed: int = 0
    alerts_pending: int = 0
    alerts_dropped: int = 0
    trades_accepted: int = 0
    late_trades: int = 0
    duplicate_trades: int = 0
    duplicate_records: int = 0
    bars_built: int = 0
    intrabar_alerts: int = 0


@dataclass
class BatchOutcome:
    """Result of ``process_batch``.

    Attributes:
        symbols: Per-symbol counts.
        failed: ``{symbol: reason}``: symbols whose results or state were not stored; their
            records must be retried (batch item failures).
        rejected: Bars refused by the symbol's state (e.g. another interval), with the reason;
            the handler quarantines them like malformed records.
        late: Bars older than their symbol's newest bar that were never processed; they are
            in the S3 history and ``stocksage repair`` recomputes the symbol.
        results_written: Result items written (one per accepted bar).
        model_version: Model version that served the predictions ("" if none were made).
        endpoint_error: Why the endpoint could not be used ("" when it answered or was not
            needed); the bars wait as pending.
        alert_error: Why publishing stopped ("" when every alert was published).
        rule_errors: Broken rules, reported and skipped (never fatal to the batch).
    """

    symbols: dict[str, SymbolOutcome] = field(default_factory=dict)
    failed: dict[str, str] = field(default_factory=dict)
    rejected: list[tuple[StreamBar, str]] = field(default_factory=list)
    late: list[StreamBar] = field(default_factory=list)
    results_written: int = 0
    model_version: str = ""
    endpoint_error: str = ""
    alert_error: str = ""
    rule_errors: list[RuleError] = field(default_factory=list)

    def total(self, name: str) -> int:
        """Sum of one ``SymbolOutcome`` counter over all symbols."""
        return sum(getattr(outcome, name) for outcome in self.symbols.values())
