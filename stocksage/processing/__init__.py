"""The processor's domain logic: a Kinesis batch of bars and trades in; results, alerts, state out.

Plain Python: it never imports boto3. It reaches AWS only through the ports (``ports``), which
``stocksage.adapters`` implements with boto3 and ``stocksage.adapters.memory`` in memory. The
processor Lambda (``lambdas/processor.py``) wires the two together.

``process_batch`` runs these steps, each one call per batch (not per record):

1. ``load_states`` -- one BatchGetItem for the state of every symbol (``stocksage.state``).
1b. ``build_bars`` -- trades and watermark records folded into each symbol's bar builder
   (kept in its state), price-level rules tested on every trade (intrabar alerts), and the
   bars the watermark closed added to the symbol's bars (``trade_path``).
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

Modules (each imports only the modules listed before it, never this package):

- ``ports`` -- ``StreamBar``/``StreamTrades`` (input), ``Prediction``/``PredictionFill``
  (endpoint answers) and the port protocols gathered in ``Ports``;
- ``decoding`` -- ``decode_record``: one stream record -> ``StreamBar`` or ``StreamTrades``;
- ``outcome`` -- ``BatchOutcome`` and ``SymbolOutcome`` (what the handler reports);
- ``results`` -- the results-table item of a bar (``result_item``, ``prediction_status``);
- ``work`` -- ``SymbolWork``, one symbol's share of the batch, filled in by the steps;
- ``intake`` (steps 1-2), ``trade_path`` (1b), ``computation`` (3), ``prediction`` (4),
  ``storage`` (5, 7), ``outbox`` (publishing the outboxes) and ``alerting`` (6: rules,
  then ``outbox``);
- ``batch`` -- ``process_batch``, the steps in order.

This package re-exports the public names, so ``from stocksage.processing import X`` is the
way in.
"""

from stocksage.processing.alerting import OUTBOX_LIMIT
from stocksage.processing.batch import process_batch
from stocksage.processing.decoding import DecodedRecord, decode_record
from stocksage.processing.outcome import BatchOutcome, SymbolOutcome
from stocksage.processing.ports import (
    AlertPublisher,
    Ports,
    Prediction,
    PredictionFill,
    Predictor,
    ResultStore,
    RuleSource,
    StateStore,
    StreamBar,
    StreamTrades,
)
from stocksage.processing.prediction import PENDING_FILL_LIMIT
from stocksage.processing.results import (
    FEATURE_INDEX,
    FIRST_BAR,
    PREDICTION_PENDING,
    PREDICTION_READY,
    features_defined,
    range_band,
    result_item,
)
from stocksage.processing.work import group_by_symbol

__all__ = [
    "FEATURE_INDEX",
    "FIRST_BAR",
    "OUTBOX_LIMIT",
    "PENDING_FILL_LIMIT",
    "PREDICTION_PENDING",
    "PREDICTION_READY",
    "AlertPublisher",
    "BatchOutcome",
    "DecodedRecord",
    "Ports",
    "Prediction",
    "PredictionFill",
    "Predictor",
    "ResultStore",
    "RuleSource",
    "StateStore",
    "StreamBar",
    "StreamTrades",
    "SymbolOutcome",
    "decode_record",
    "features_defined",
    "group_by_symbol",
    "process_batch",
    "range_band",
    "result_item",
]
