"""The processor's domain logic: one Kinesis batch of bars in, results, alerts and state out.

Plain Python: it never imports boto3. It reaches AWS only through the ports below, which
``stocksage.adapters`` implements with boto3 and ``stocksage.memory`` in memory. The processor
Lambda (``lambdas/processor.py``) wires the two together.

``process_batch`` runs these steps, each one call per batch (not per record):

1. ``load_states`` -- one BatchGetItem for the state of every symbol (``stocksage.state``).
2. ``classify`` -- per symbol: accepted, duplicate, late, or rejected (an interval other than
   the symbol's stream). A bar older than the newest accepted one is a duplicate when its
   results item exists (one BatchGetItem for all such bars), else late.
3. ``compute`` -- indicators and features of the accepted bars by ``streaming.Kernel``:
   O(1) per bar, all symbols of a step at once.
4. ``predict`` -- one InvokeEndpoint for every accepted bar with finite features, and for the
   bars still pending from an earlier outage. If the endpoint fails or times out the bars keep
   ``prediction_status = "pending"``: results and state advance anyway (degrade, don't drop).
5. ``write_results`` -- one item per accepted bar (keys symbol, bar_time; idempotent), and the
   predictions that filled pending items.
6. ``raise_alerts`` -- rules per accepted bar; each alert goes to the symbol's outbox (kept in
   the state) and the outbox is published (one SNS message per alert id, idempotent). A failed
   publish keeps the alert in the outbox for the next batch of the symbol.
7. ``write_states`` -- one conditional write per symbol (optimistic ``version``).

Failure is narrow: a symbol whose results or state could not be written is reported in
``BatchOutcome.failed``; the handler turns only that symbol's records into batch item
failures. Kinesis re-sends them; every step above is idempotent, so the retry converges.
"""

from __future__ import annotations

import logging
import math
from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, Protocol

import numpy as np

from stocksage.alerts import (
    MAX_LOOKBACK_BARS,
    BarWindow,
    Rule,
    RuleError,
    evaluate_rules,
    lookback_bars,
)
from stocksage.bars import OHLCV, Bar, epoch_micros, format_time
from stocksage.config import STACK
from stocksage.indicators import OUTPUT_COLUMNS
from stocksage.state import FORMAT, StateFormatError, SymbolState
from stocksage.streaming import Kernel

logger = logging.getLogger(__name__)

PREDICTION_READY = "ready"
PREDICTION_PENDING = "pending"
"""``prediction_status`` of a results item whose features are finite: ``ready`` with
``prob_up`` and ``model_version``, or ``pending`` until the endpoint answers again."""

OUTBOX_LIMIT = 200
"""Alerts kept per symbol while SNS is unavailable (~1 KB each, well under DynamoDB's 400 KB
item limit); beyond it the oldest are dropped and counted (``alerts_dropped``)."""

PENDING_FILL_LIMIT = 1000
"""Pending predictions filled per symbol and batch (the rest in the next batches)."""



@dataclass(frozen=True)
class StreamBar:
    """A decoded bar with its position in the stream.

    Attributes:
        bar: The validated bar.
        sequence_number: Kinesis sequence number of the record (decimal string, per shard).
    """

    bar: Bar
    sequence_number: str


@dataclass(frozen=True)
class Prediction:
    """Endpoint output for a list of feature rows.

    Attributes:
        probabilities: P(next bar closes higher), one per input row, each in [0, 1].
        model_version: Version label of the model that served the request.
        range_forecasts: Forecast next-bar range ``ln(high/low)`` (log-price units, > 0), one
            per row, or None when the serving model has no range model
            (``stocksage.model.volatility``).
    """

    probabilities: list[float]
    model_version: str
    range_forecasts: list[float] | None = None


@dataclass(frozen=True)
class PredictionFill:
    """A prediction for a results item written earlier with ``prediction_status = pending``."""

    symbol: str
    bar_time: str
    prob_up: float
    model_version: str
    range_forecast: float | None = None  # ln(high/low) of the next bar, log-price units
    range_low: float | None = None  # price band of range_forecast around the bar's close
    range_high: float | None = None

    def range_attributes(self) -> dict[str, float]:
        """``range_forecast``/``range_low``/``range_high`` to set, or ``{}`` (one-output model)."""
        if self.range_forecast is None or self.range_low is None or self.range_high is None:
            return {}
        return {"range_forecast": self.range_forecast, "range_low": self.range_low,
                "range_high": self.range_high}


class StateStore(Protocol):
    """Symbol state (DynamoDB table ``window-state``)."""

    def get_states(self, symbols: Sequence[str]) -> tuple[dict[str, SymbolState], dict[str, str]]:
        """Return ``({symbol: state}, {symbol: reason})``: the stored states, and the symbols
        whose state could not be read (the reason). Symbols with no item are in neither."""

    def put_states(self, states: Sequence[SymbolState]) -> dict[str, str]:
        """Write each state if its stored version is still ``state.version``; return
        ``{symbol: reason}`` for the states not written (conflict, throttling, error)."""


class ResultStore(Protocol):
    """Per-bar results (DynamoDB table ``results``)."""

    def put_results(self, items: Sequence[dict[str, Any]]) -> dict[str, str]:
        """Write items keyed by (symbol, bar_time), overwriting; return ``{symbol: reason}``
        for the symbols of which some item could not be written."""

    def existing(self, keys: Sequence[tuple[str, str]]) -> set[tuple[str, str]]:
        """The (symbol, bar_time) keys that have an item."""

    def pending(self, symbol: str, since: str, limit: int) -> list[dict[str, Any]]:
        """Up to ``limit`` items of ``symbol`` from ``since`` on (ISO, inclusive) whose
        ``prediction_status`` is pending, oldest first (plain values, features included)."""

    def fill_predictions(self, fills: Sequence[PredictionFill]) -> dict[str, str]:
        """Set prob_up/model_version/ready on pending items (idempotent); ``{symbol: reason}``
        of the symbols with a fill not written."""


class Predictor(Protocol):
    """The SageMaker endpoint."""

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]) -> Prediction:
        """Return one probability per row; raise on endpoint, timeout or payload errors."""


class RuleSource(Protocol):
    """Alert rules per symbol (DynamoDB table ``alert-rules``)."""

    def rules_for(self, symbols: Sequence[str]) -> tuple[dict[str, list[Rule]], list[RuleError]]:
        """Return the rules of each symbol (and of ``*``) and the rules that could not be read."""


class AlertPublisher(Protocol):
    """SNS alerts topic, idempotent per alert id."""

    def publish_message(self, message: dict[str, Any]) -> bool:
        """Publish an ``Alert.message()`` once per ``alert_id``; False if sent before; raise
        on failure (nothing recorded as sent)."""


@dataclass
class Ports:
    """The AWS-facing dependencies of :func:`process_batch`."""

    states: StateStore
    results: ResultStore
    predictor: Predictor
    rules: RuleSource
    alerts: AlertPublisher


@dataclass
class SymbolOutcome:
    """What happened to one symbol's bars in a batch (counts of bars or alerts)."""

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


@dataclass
class BatchOutcome:
    """Result of :func:`process_batch`.

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


@dataclass
class SymbolWork:
    """One symbol's share of the batch, filled in step by step."""

    state: SymbolState
    accepted: list[Bar] = field(default_factory=list)
    values: list[list[float]] = field(default_factory=list)  # OUTPUT_COLUMNS per accepted bar
    prob_up: list[float | None] = field(default_factory=list)
    range_forecast: list[float | None] = field(default_factory=list)
    fills: list[PredictionFill] = field(default_factory=list)
    pending_read: bool = False  # the stored pending items were read (step 4)
    pending_filled: bool = False  # ... and every one of them got a prediction stored
    still_pending: str | None = None  # more pending items than one batch fills: resume here
    outbox_before: int = 0
    pending_before: str | None = None
    previous_close: float = float("nan")  # the close before the batch


def group_by_symbol(bars: Iterable[StreamBar]) -> dict[str, list[StreamBar]]:
    """Group bars by symbol, each group in stream order (ascending sequence number).

    Sequence numbers are compared as integers: they are decimal strings of different lengths.
    A batch comes from one shard, where sequence numbers are ordered.
    """
    groups: dict[str, list[StreamBar]] = defaultdict(list)
    for item in bars:
        groups[item.bar.symbol].append(item)
    for items in groups.values():
        items.sort(key=lambda item: int(item.sequence_number))
    return dict(groups)


# --------------------------------------------------------------------------- steps
def load_states(store: StateStore, symbols: Sequence[str],
                outcome: BatchOutcome) -> dict[str, SymbolState]:
    """Step 1: the state of each symbol (a fresh one for a new symbol); unreadable -> failed."""
    stored, failed = store.get_states(symbols)
    outcome.failed.update(failed)
    return {s: stored.get(s) or SymbolState(symbol=s) for s in symbols if s not in failed}


def classify(groups: Mapping[str, list[StreamBar]], states: Mapping[str, SymbolState],
             results: ResultStore, outcome: BatchOutcome) -> dict[str, SymbolWork]:
    """Step 2: split each symbol's bars (arrival order) into accepted / duplicate / late /
    rejected. Bars are accepted only when strictly newer than every bar accepted before."""
    work: dict[str, SymbolWork] = {}
    stale: list[tuple[str, StreamBar]] = []
    for symbol, state in states.items():
        counts = outcome.symbols.setdefault(symbol, SymbolOutcome())
        item = work[symbol] = SymbolWork(state=state, outbox_before=len(state.outbox),
                                         pending_before=state.pending_since)
        latest = state.last_bar_time
        interval = state.interval
        seen: set[datetime] = set()
        for stream_bar in groups[symbol]:
            bar = stream_bar.bar
            if interval and bar.interval != interval:
                reason = (f"interval {bar.interval} differs from the interval of {symbol}'s "
                          f"stream ({interval})")
                outcome.rejected.append((stream_bar, reason))
                counts.rejected += 1
            elif bar.bar_time in seen or bar.bar_time == latest:
                counts.duplicates += 1
            elif latest is not None and bar.bar_time < latest:
                stale.append((symbol, stream_bar))
            else:
                item.accepted.append(bar)
                latest, interval = bar.bar_time, bar.interval
            seen.add(bar.bar_time)
    if stale:
        keys = [(s, format_time(b.bar.bar_time)) for s, b in stale]
        existing = results.existing(sorted(set(keys)))
        for key, (symbol, stream_bar) in zip(keys, stale, strict=True):
            if key in existing:
                outcome.symbols[symbol].duplicates += 1
            else:
                outcome.symbols[symbol].late += 1
                outcome.late.append(stream_bar)
    for symbol, item in work.items():
        outcome.symbols[symbol].accepted = len(item.accepted)
    return work


def compute(work: Mapping[str, SymbolWork]) -> None:
    """Step 3: advance every symbol's kernel through its accepted bars, one step per bar
    position (all symbols with a k-th bar in step k); fills ``SymbolWork.values``."""
    active = [item for item in work.values() if item.accepted]
    if not active:
        return
    kernel = Kernel.stack([item.state.kernel for item in active])
    counts = np.array([len(item.accepted) for item in active])
    depth = int(counts.max())
    ohlcv = np.full((len(active), depth, len(OHLCV)), np.nan)
    for row, item in enumerate(active):
        ohlcv[row, : len(item.accepted)] = [(b.open, b.high, b.low, b.close, b.volume)
                                            for b in item.accepted]
    outputs = np.empty((len(active), depth, len(OUTPUT_COLUMNS)))
    every = np.arange(len(active))
    for k in range(depth):
        rows = every if k == 0 or counts.min() > k else np.flatnonzero(counts > k)
        outputs[rows, k] = kernel.step(rows, ohlcv[rows, k])
    for row, item in enumerate(active):
        item.previous_close = float(item.state.kernel.closes[0, -1])
        item.state.kernel = kernel.row(row)
        item.values = outputs[row, : len(item.accepted)].tolist()


def predict(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 4: one endpoint call for the batch's bars with finite features and the symbols'
    pending bars. On any failure the bars stay pending (``endpoint_error`` says why)."""
    rows: list[list[float]] = []
    targets: list[tuple[SymbolWork, int | dict[str, Any]]] = []
    for item in work.values():
        item.prob_up = [None] * len(item.accepted)
        item.range_forecast = [None] * len(item.accepted)
        for index, values in enumerate(item.values):
            row = [values[i] for i in FEATURE_INDEX]
            if all(math.isfinite(v) for v in row):
                rows.append(row)
                targets.append((item, index))
    for item, stored in _pending_items(work, ports):
        row = _feature_row(stored)
        if row is not None:
            rows.append(row)
            targets.append((item, stored))
    if not rows:
        for item in work.values():
            item.pending_filled = item.pending_read
        return
    try:
        prediction = ports.predictor.predict(STACK.features, rows)
        if len(prediction.probabilities) != len(rows):
            raise ValueError(f"endpoint returned {len(prediction.probabilities)} predictions "
                             f"for {len(rows)} rows")
        ranges = prediction.range_forecasts
        if ranges is not None and len(ranges) != len(rows):
            raise ValueError(f"endpoint returned {len(ranges)} range forecasts "
                             f"for {len(rows)} rows")
    except Exception as exc:  # noqa: BLE001 -- any endpoint failure degrades to pending
        outcome.endpoint_error = f"{type(exc).__name__}: {exc}"[:500]
        for item, target in targets:
            if isinstance(target, int):
                outcome.symbols[item.state.symbol].pending_predictions += 1
        return
    outcome.model_version = prediction.model_version
    ranges = ranges if ranges is not None else [None] * len(rows)
    for (item, target), probability, forecast in zip(targets, prediction.probabilities, ranges,
                                                     strict=True):
        counts = outcome.symbols[item.state.symbol]
        forecast = None if forecast is None else float(forecast)
        if isinstance(target, int):
            item.prob_up[target] = float(probability)
            item.range_forecast[target] = forecast
            counts.predicted += 1
        else:
            band = {} if forecast is None else range_band(float(target["close"]), forecast)
            item.fills.append(PredictionFill(item.state.symbol, str(target["bar_time"]),
                                             float(probability), prediction.model_version,
                                             forecast, band.get("range_low"),
                                             band.get("range_high")))
            counts.filled_predictions += 1
    for item in work.values():
        item.pending_filled = item.pending_read


def _pending_items(work: Mapping[str, SymbolWork],
                   ports: Ports) -> list[tuple[SymbolWork, dict[str, Any]]]:
    """The results items still waiting for a prediction, for symbols whose state says so."""
    found = []
    for item in work.values():
        since = item.state.pending_since
        if not since:
            continue
        try:
            stored = ports.results.pending(item.state.symbol, since, PENDING_FILL_LIMIT)
        except Exception as exc:  # noqa: BLE001 -- they stay pending; next batch tries again
            logger.warning("reading pending predictions of %s failed: %s",
                           item.state.symbol, exc)
            continue
        item.pending_read = True
        if len(stored) >= PENDING_FILL_LIMIT:
            item.still_pending = str(stored[-1]["bar_time"])
        found.extend((item, entry) for entry in stored)
    return found


def _feature_row(item: Mapping[str, Any]) -> list[float] | None:
    try:
        row = [float(item[name]) for name in STACK.features]
    except (KeyError, TypeError, ValueError):
        return None
    return row if all(math.isfinite(v) for v in row) else None


def result_item(bar: Bar, values: Sequence[float], prob_up: float | None,
                model_version: str, processed_at: str,
                range_forecast: float | None = None) -> dict[str, Any]:
    """One results-table item: keys, OHLCV, indicators, features, prediction.

    Args:
        bar: The bar.
        values: ``OUTPUT_COLUMNS`` values (NaN = not defined yet: left out of the item).
        prob_up: P(up) or None (no prediction yet).
        model_version: Version label of the model behind ``prob_up``.
        processed_at: ISO UTC time stamp (milliseconds, e.g. ``2026-12-03T08:40:01.123Z``).
        range_forecast: Forecast range ``ln(high/low)`` of the NEXT bar (log-price units) or
            None (no prediction, or the serving model has no range model).

    With a prediction and a range forecast ``r`` the item also holds ``range_forecast = r`` and
    the band around the close ``range_low = close * exp(-r/2)``, ``range_high =
    close * exp(r/2)`` (prices: a next bar of the forecast range, centred on this close).

    ``prediction_status`` is ``ready`` (with ``prob_up``, ``model_version``) or ``pending``
    when the features are finite, absent during the features' warm-up.
    """
    keys = STACK.keys["results"]
    item: dict[str, Any] = {
        keys["partition"]: bar.symbol,
        keys["sort"]: format_time(bar.bar_time),
        "interval": bar.interval,
        "open": bar.open,
        "high": bar.high,
        "low": bar.low,
        "close": bar.close,
        "volume": bar.volume,
        "processed_at": processed_at,
    }
    item.update({name: value for name, value in zip(OUTPUT_COLUMNS, values, strict=True)
                 if not math.isnan(value)})
    if prob_up is not None:
        item["prob_up"] = prob_up
        item["model_version"] = model_version
        item["prediction_status"] = PREDICTION_READY
        if range_forecast is not None:
            item.update(range_band(bar.close, range_forecast))
    elif features_defined(values):
        item["prediction_status"] = PREDICTION_PENDING
    return item


def range_band(close: float, range_forecast: float) -> dict[str, float]:
    """``range_forecast`` (ln(high/low) of the next bar) and its price band around ``close``."""
    half = math.exp(range_forecast / 2)
    return {"range_forecast": float(range_forecast), "range_low": close / half,
            "range_high": close * half}


def write_results(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome,
                  now: datetime) -> None:
    """Step 5: results items and filled predictions; symbols not stored -> ``failed``."""
    stamp = now.strftime("%Y-%m-%dT%H:%M:%S.") + f"{now.microsecond // 1000:03d}Z"
    items = [result_item(bar, values, prob, outcome.model_version, stamp, forecast)
             for item in work.values()
             for bar, values, prob, forecast in zip(item.accepted, item.values, item.prob_up,
                                                    item.range_forecast, strict=True)]
    if items:
        outcome.failed.update(ports.results.put_results(items))
    outcome.results_written = sum(len(item.accepted) for s, item in work.items()
                                  if s not in outcome.failed)
    fills = [fill for item in work.values() for fill in item.fills]
    if fills:
        not_filled = ports.results.fill_predictions(fills)
        for symbol in not_filled:
            work[symbol].pending_filled = False  # they stay pending
            outcome.symbols[symbol].filled_predictions = 0


def raise_alerts(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 6: evaluate rules on each accepted bar, queue alerts in the outbox, publish it."""
    symbols = [s for s, item in work.items() if s not in outcome.failed]
    if not symbols:
        return
    rules, rule_errors = ports.rules.rules_for(symbols)
    outcome.rule_errors.extend(rule_errors)
    for symbol in symbols:
        item = work[symbol]
        symbol_rules = rules.get(symbol, [])
        _evaluate(item, symbol_rules, outcome)
    _publish_outboxes([work[s] for s in symbols], ports, outcome)


def _evaluate(item: SymbolWork, rules: Sequence[Rule], outcome: BatchOutcome) -> None:
    """Rules on each accepted bar, in order; alerts into the outbox; the state's ``recent``
    bars, ``last_values`` and cooldowns advanced."""
    state = item.state
    if not item.accepted:
        return
    keep = lookback_bars(rules)
    window = None
    offset = 0
    if keep or state.recent:
        times = np.array([epoch_micros(b.bar_time) for b in item.accepted], dtype=np.int64)
        ohlcv = np.array([(b.open, b.high, b.low, b.close, b.volume) for b in item.accepted])
        combined = state.recent.extended(times, ohlcv, keep + len(item.accepted))
        state.recent = combined.tail(keep)
        if keep:
            window = BarWindow(combined.times, *(combined.ohlcv[:, j] for j in range(5)))
            offset = len(combined) - len(item.accepted)
    if rules:
        _evaluate_bars(item, rules, window, offset, keep, outcome)
    last_prob, last_range = item.prob_up[-1], item.range_forecast[-1]
    state.last_values = np.array([*item.values[-1], np.nan if last_prob is None else last_prob,
                                  np.nan if last_range is None else last_range])
    oldest = state.bars_seen - 1 - MAX_LOOKBACK_BARS
    state.last_fired = {k: v for k, v in state.last_fired.items() if v >= oldest}
    if len(state.outbox) > OUTBOX_LIMIT:
        dropped = len(state.outbox) - OUTBOX_LIMIT
        outcome.symbols[state.symbol].alerts_dropped += dropped
        logger.error("outbox of %s over %d alerts: %d oldest dropped", state.symbol,
                     OUTBOX_LIMIT, dropped)
        state.outbox = state.outbox[dropped:]


def _evaluate_bars(item: SymbolWork, rules: Sequence[Rule], window: BarWindow | None,
                   offset: int, keep: int, outcome: BatchOutcome) -> None:
    state = item.state
    first_index = state.bars_seen - len(item.accepted)
    previous: dict[str, Any] | None = None
    if first_index:
        previous = state.previous_values(close=item.previous_close)
    for index, bar in enumerate(item.accepted):
        current: dict[str, Any] = {
            name: (None if math.isnan(v) else v)
            for name, v in zip(OUTPUT_COLUMNS, item.values[index], strict=True)}
        current.update(open=bar.open, high=bar.high, low=bar.low, close=bar.close,
                       volume=bar.volume, prob_up=item.prob_up[index],
                       range_forecast=item.range_forecast[index])
        bar_window = window.upto(offset + index + 1, keep) if window is not None else None
        alerts, errors = evaluate_rules(rules, bar, previous, current, bar_window,
                                        state.last_fired, bar_index=first_index + index)
        outcome.rule_errors.extend(errors)
        state.outbox.extend(alert.message() for alert in alerts)
        previous = current


def _publish_outboxes(items: Sequence[SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    for item in items:
        counts = outcome.symbols[item.state.symbol]
        kept = []
        for message in item.state.outbox:
            if outcome.alert_error:
                kept.append(message)
                continue
            try:
                sent = ports.alerts.publish_message(message)
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


def write_states(work: Mapping[str, SymbolWork], ports: Ports, outcome: BatchOutcome) -> None:
    """Step 7: conditional state writes of the symbols not failed yet whose state changed."""
    states = []
    for symbol, item in work.items():
        if symbol in outcome.failed:
            continue
        state = item.state
        if item.accepted:
            state.last_bar_time = item.accepted[-1].bar_time
            state.interval = item.accepted[-1].interval
        state.pending_since = _pending_since(item)
        changed = (item.accepted or state.pending_since != item.pending_before
                   or len(state.outbox) != item.outbox_before or state.migrated_from != FORMAT)
        if changed:
            states.append(state)
    if states:
        outcome.failed.update(ports.states.put_states(states))


def _pending_since(item: SymbolWork) -> str | None:
    """Oldest bar still waiting for a prediction: the earlier pending bars unless they were
    all filled now, else the first new bar left pending in this batch."""
    if item.still_pending:
        return item.still_pending
    old = None if item.pending_filled else item.pending_before
    new = next((format_time(bar.bar_time) for bar, prob, values in
                zip(item.accepted, item.prob_up, item.values, strict=True)
                if prob is None and features_defined(values)), None)
    return old or new


FEATURE_INDEX = tuple(OUTPUT_COLUMNS.index(name) for name in STACK.features)
"""Positions of the model features (``STACK.features``) in ``OUTPUT_COLUMNS``."""


def features_defined(values: Sequence[float]) -> bool:
    """True when every model feature of an ``OUTPUT_COLUMNS`` row is finite."""
    return all(math.isfinite(values[i]) for i in FEATURE_INDEX)


def process_batch(bars: Sequence[StreamBar], ports: Ports, *,
                  now: datetime | None = None) -> BatchOutcome:
    """Process one batch of decoded bars (steps in the module docstring).

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


__all__ = [
    "FEATURE_INDEX",
    "OUTBOX_LIMIT",
    "PREDICTION_PENDING",
    "PREDICTION_READY",
    "AlertPublisher",
    "BatchOutcome",
    "Ports",
    "Prediction",
    "PredictionFill",
    "Predictor",
    "ResultStore",
    "RuleSource",
    "StateFormatError",
    "StateStore",
    "StreamBar",
    "SymbolOutcome",
    "features_defined",
    "group_by_symbol",
    "process_batch",
    "range_band",
    "result_item",
]
