"""process_batch with in-memory ports: results, alerts, state, and every failure mode.

Each failure test checks the same end state as a run without the failure: one results item per
bar, values equal to ``ta`` on the whole series, every prediction filled, every alert exactly
once (docs/DESIGN.md "Failure modes").
"""

from __future__ import annotations

import copy
import itertools
from dataclasses import replace
from datetime import timedelta

import numpy as np
import pytest

from stocksage.adapters.memory import memory_ports
from stocksage.alerts import BarWindow, Rule, RuleError, evaluate_rules
from stocksage.bars import frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import dataset_info, load_bars
from stocksage.indicators.features import enrich
from stocksage.processing import PREDICTION_PENDING, PREDICTION_READY, StreamBar, process_batch


def stream(symbol: str, limit: int, first_seq: int = 1) -> list[StreamBar]:
    frame = load_bars(symbol).tail(limit)
    return [StreamBar(bar, str(first_seq + i)) for i, bar in enumerate(
        frame_to_bars(symbol, frame, interval=dataset_info(symbol).interval))]


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def run(ports, bars, size):
    outcomes = [process_batch(batch, ports) for batch in batches(bars, size)]
    return outcomes


def window_rules(symbol):
    return [
        Rule("move", symbol, "pct_move", {"bars": 5, "threshold": 0.03}, cooldown_bars=4),
        Rule("swing", symbol, "support_resistance", {"bars": 40, "k": 3}),
        Rule("engulf", symbol, "candlestick", {"pattern": "bullish_engulfing"}),
        Rule("doji", symbol, "candlestick", {"pattern": "doji", "trend_bars": 0},
             cooldown_bars=6),
        Rule("rsi", symbol, "rsi_cross", {"upper": 60, "lower": 40}, cooldown_bars=2),
        Rule("macd", symbol, "macd_cross", {}),
    ]


def offline_alert_ids(symbol, limit, rules):
    """The rules evaluated once over the whole series (windows from the full frame)."""
    frame = enrich(load_bars(symbol).tail(limit))
    bars = frame_to_bars(symbol, frame[["open", "high", "low", "close", "volume"]])
    window = BarWindow.from_frame(frame)
    last_fired, previous, ids = {}, None, set()
    for index, (bar, record) in enumerate(zip(bars, frame.to_dict("records"), strict=True)):
        current = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                   for k, v in record.items()}
        alerts, errors = evaluate_rules(rules, bar, previous, current,
                                        window.upto(index + 1, 600), last_fired)
        assert errors == []
        ids |= {a.alert_id for a in alerts}
        previous = current
    return ids


def assert_results_equal_ta(ports, symbol, limit):
    expected = enrich(load_bars(symbol).tail(limit))
    items = {t: item for (s, t), item in ports.results.items.items() if s == symbol}
    assert len(items) == limit
    for bar_time, row in expected.iterrows():
        item = items[bar_time.strftime("%Y-%m-%dT%H:%M:%SZ")]
        for column in (*STACK.indicator_columns, *STACK.features):
            if np.isnan(row[column]):
                assert column not in item, column
            else:
                assert item[column] == pytest.approx(row[column], rel=1e-9, abs=1e-9), column
        finite = not row[list(STACK.features)].isna().any()
        assert item.get("prediction_status") == (PREDICTION_READY if finite else None)
        assert ("prob_up" in item) == finite


def test_results_equal_ta_with_one_endpoint_call_per_batch():
    ports = memory_ports()
    run(ports, stream("TSLA", 254), 37)
    assert ports.predictor.calls == 7
    assert_results_equal_ta(ports, "TSLA", 254)


def test_mixed_symbols_are_advanced_together_and_keep_their_own_state():
    tsla, ibm = stream("TSLA", 60), stream("IBM", 90, first_seq=1000)
    mixed = [b for pair in itertools.zip_longest(tsla, ibm) for b in pair if b is not None]
    ports = memory_ports()
    run(ports, mixed, 25)
    assert ports.states.items["TSLA"]["bars_seen"] == 60
    assert ports.states.items["IBM"]["bars_seen"] == 90
    assert_results_equal_ta(ports, "TSLA", 60)
    assert_results_equal_ta(ports, "IBM", 90)


@pytest.mark.parametrize("size", [1, 9, 64, 300])
def test_window_rules_and_cooldowns_do_not_depend_on_batching(size):
    symbol, limit = "MSFT", 300
    ports = memory_ports({symbol: window_rules(symbol)})
    for outcome in run(ports, stream(symbol, limit), size):
        assert outcome.rule_errors == []
    expected = offline_alert_ids(symbol, limit, window_rules(symbol))
    assert set(ports.alerts.published) == expected
    assert {a.split("#")[0] for a in expected} == {r.rule_id for r in window_rules(symbol)}


def test_state_keeps_only_the_rules_look_back():
    ports = memory_ports({"IBM": [Rule("sr", "IBM", "support_resistance", {"bars": 240})],
                          "AAPL": [Rule("up", "AAPL", "price_above", {"level": 50.0})]})
    run(ports, stream("IBM", 400) + stream("AAPL", 400, first_seq=1000), 100)
    assert ports.states.items["IBM"]["recent_count"] == 241
    assert "recent" not in ports.states.items["AAPL"]


def test_redelivered_batch_changes_nothing_and_publishes_nothing():
    bars = stream("AAPL", 80)
    level = float(np.median([b.bar.close for b in bars]))
    ports = memory_ports({"AAPL": [Rule("median-up", "AAPL", "price_above", {"level": level})]})
    run(ports, bars, 20)
    before = copy.deepcopy((ports.results.items, ports.states.items, ports.alerts.published))
    assert before[2], "the median must be crossed at least once in 80 real bars"
    outcome = process_batch(bars[40:60], ports)  # Kinesis redelivers a batch
    assert outcome.total("duplicates") == 20 and outcome.total("accepted") == 0
    assert (ports.results.items, ports.states.items, ports.alerts.published) == before


def test_endpoint_outage_leaves_predictions_pending_then_fills_them():
    symbol, limit = "NFLX", 300
    ports = memory_ports()
    bars = stream(symbol, limit)
    run(ports, bars[:100], 20)
    ports.predictor.fail = TimeoutError("endpoint read timed out")
    outcomes = run(ports, bars[100:200], 20)
    assert all(o.endpoint_error and not o.failed for o in outcomes)
    assert sum(o.total("pending_predictions") for o in outcomes) == 100
    pending = [k for k, i in ports.results.items.items()
               if i.get("prediction_status") == PREDICTION_PENDING]
    assert len(pending) == 100
    assert ports.states.items[symbol]["pending_since"] == min(t for _, t in pending)
    ports.predictor.fail = None
    outcomes = run(ports, bars[200:], 20)
    assert outcomes[0].total("filled_predictions") == 100
    assert "pending_since" not in ports.states.items[symbol]
    assert_results_equal_ta(ports, symbol, limit)
    reference = memory_ports()
    run(reference, bars, 20)
    assert {k: i["prob_up"] for k, i in reference.results.items.items() if "prob_up" in i} == \
        {k: i["prob_up"] for k, i in ports.results.items.items() if "prob_up" in i}


def test_sns_outage_keeps_alerts_in_the_outbox_and_publishes_each_once():
    symbol, limit = "MSFT", 300
    rules = {symbol: window_rules(symbol)}
    ports = memory_ports(rules)
    bars = stream(symbol, limit)
    ports.alerts.fail = ConnectionError("SNS unavailable")
    outcomes = run(ports, bars[:200], 25)
    assert all(not o.failed for o in outcomes) and ports.alerts.published == {}
    assert len(ports.states.items[symbol]["outbox"]) == outcomes[-1].total("alerts_pending") > 0
    ports.alerts.fail = None
    run(ports, bars[200:], 25)
    assert "outbox" not in ports.states.items[symbol]
    assert set(ports.alerts.published) == offline_alert_ids(symbol, limit, rules[symbol])


def test_failed_state_write_fails_only_that_symbol_and_the_retry_converges():
    ibm, aapl = stream("IBM", 120), stream("AAPL", 120, first_seq=1000)
    rules = {"*": [Rule("rsi", "*", "rsi_cross", {})]}
    ports = memory_ports(rules)
    run(ports, ibm[:60] + aapl[:60], 200)
    ports.states.fail_write = lambda symbol: symbol == "IBM"
    outcome = process_batch(ibm[60:] + aapl[60:], ports)
    assert set(outcome.failed) == {"IBM"}
    assert ports.states.items["IBM"]["bars_seen"] == 60
    assert ports.states.items["AAPL"]["bars_seen"] == 120
    ports.states.fail_write = lambda symbol: False
    retry = process_batch(ibm[60:] + aapl[60:], ports)  # Kinesis re-sends both symbols' records
    assert retry.symbols["IBM"].accepted == 60 and retry.symbols["AAPL"].duplicates == 60
    assert retry.total("alerts_published") == 0  # published before the failed write
    reference = memory_ports(rules)
    run(reference, ibm + aapl, 500)
    assert set(ports.alerts.published) == set(reference.alerts.published)
    assert ports.results.items.keys() == reference.results.items.keys()
    assert_results_equal_ta(ports, "IBM", 120)


def test_failed_results_write_fails_the_symbol_before_alerts_and_state():
    ports = memory_ports({"IBM": [Rule("low", "IBM", "price_below", {"level": 1e9})]})
    ports.results.fail_write = lambda symbol: True
    outcome = process_batch(stream("IBM", 40), ports)
    assert set(outcome.failed) == {"IBM"}
    assert ports.states.items == {} and ports.alerts.published == {}


def test_stale_invocation_cannot_overwrite_newer_state():
    bars = stream("GOOG", 80)
    ports = memory_ports()
    run(ports, bars[:40], 40)
    read_early, _ = ports.states.get_states(["GOOG"])  # a slow invocation read version 1
    run(ports, bars[40:60], 20)  # another one advanced the symbol (version 2)
    newer = copy.deepcopy(ports.states.items["GOOG"])
    assert ports.states.put_states([read_early["GOOG"]]) == {
        "GOOG": "state version is 2, expected 1"}
    assert ports.states.items["GOOG"] == newer


def test_duplicates_late_bars_and_another_interval():
    bars = stream("GOOG", 50)
    ports = memory_ports()
    process_batch(bars[:30], ports)
    outcome = process_batch([StreamBar(bars[10].bar, "31"), *bars[30:]], ports)
    assert outcome.total("duplicates") == 1 and outcome.total("accepted") == 20
    gap = next(k for k in range(29, 0, -1)  # a day without a bar (a weekend) before bar 29
               if bars[k].bar.bar_time - bars[k - 1].bar.bar_time > timedelta(days=1))
    between = bars[gap - 1].bar.bar_time + timedelta(days=1)
    late = StreamBar(replace(bars[gap - 1].bar, bar_time=between), "60")
    outcome = process_batch([late], ports)
    assert outcome.late == [late] and outcome.total("accepted") == 0
    hourly = StreamBar(replace(bars[-1].bar, bar_time=bars[-1].bar.bar_time.replace(hour=1),
                               interval="1h"), "61")
    outcome = process_batch([hourly], ports)
    reason = "interval 1h differs from the interval of GOOG's stream (1d)"
    assert outcome.rejected == [(hourly, reason)]
    assert len(ports.results.items) == 50


def test_broken_rule_is_reported_not_fatal():
    ports = memory_ports()
    broken = RuleError("r1", "TSLA", "params.level must be a positive number")
    ports.rules.rules_for = lambda symbols: ({s: [] for s in symbols}, [broken])
    outcome = process_batch(stream("TSLA", 30), ports)
    assert outcome.results_written == 30 and outcome.rule_errors == [broken]


def test_cooldown_counts_bars_across_batches():
    symbol = "BTC-USD"
    rule = Rule("doji", symbol, "candlestick", {"pattern": "doji", "trend_bars": 0},
                cooldown_bars=7)
    ports = memory_ports({symbol: [rule]})
    bars = stream(symbol, 400)
    run(ports, bars, 5)
    position = {b.bar.to_dict()["bar_time"]: i for i, b in enumerate(bars)}
    fired = sorted(position[a.split("#")[2]] for a in ports.alerts.published)
    assert len(fired) >= 3 and all(b - a > 7 for a, b in itertools.pairwise(fired))


def test_two_output_endpoint_writes_the_range_band_and_the_fill_carries_it():
    """A model with a range output: every predicted item has ``range_forecast`` and its price
    band; an outage writes neither output, and the fill later writes both, equal to a run
    without the outage (real NFLX daily bars)."""
    symbol, limit = "NFLX", 200
    bars = stream(symbol, limit)
    reference = memory_ports()
    reference.predictor.ranges = True
    run(reference, bars, 20)
    ready = [i for i in reference.results.items.values() if "prob_up" in i]
    assert ready and all("range_forecast" in i for i in ready)
    for item in ready:
        r = item["range_forecast"]
        assert r == pytest.approx(2 * item["atr_norm"])
        assert item["range_low"] < item["close"] < item["range_high"]
        assert np.log(item["range_high"] / item["range_low"]) == pytest.approx(r)
    assert not any("range_forecast" in i for i in reference.results.items.values()
                   if "prob_up" not in i)
    ports = memory_ports()
    ports.predictor.ranges = True
    run(ports, bars[:100], 20)
    ports.predictor.fail = TimeoutError("endpoint read timed out")
    run(ports, bars[100:150], 25)
    pending = [i for i in ports.results.items.values()
               if i.get("prediction_status") == PREDICTION_PENDING]
    assert len(pending) == 50 and not any("range_forecast" in i for i in pending)
    ports.predictor.fail = None
    run(ports, bars[150:], 25)
    assert ports.results.items == {k: {**v, "processed_at": ports.results.items[k]["processed_at"]}
                                   for k, v in reference.results.items.items()}


@pytest.mark.parametrize("size", [1, 7])
def test_range_above_forecast_uses_the_forecast_stored_across_batches(size):
    """The rule compares bar t with the forecast made at t-1: with one bar per batch that
    forecast comes from the stored state, and the alerts equal one run over one batch."""
    symbol = "AMZN"
    rules = {symbol: [Rule("wide", symbol, "range_above_forecast", {"k": 0.8})]}
    bars = stream(symbol, 300)
    whole, split = memory_ports(rules), memory_ports(rules)
    for ports in (whole, split):
        ports.predictor.ranges = True
    run(whole, bars, len(bars))
    run(split, bars, size)
    assert len(whole.alerts.published) >= 3
    assert sorted(split.alerts.published) == sorted(whole.alerts.published)


def test_one_output_endpoint_writes_no_range_columns():
    ports = memory_ports()
    run(ports, stream("TSLA", 80), 40)
    assert not any("range_forecast" in i or "range_low" in i
                   for i in ports.results.items.values())


def test_bars_of_another_interval_than_the_models_get_no_prediction_and_say_so():
    """The served model is trained and gated on daily bars (stack.json model.interval): a
    15-minute bar is never sent to the endpoint, never left pending, and says ``no_model``."""
    from stocksage.processing.results import MODEL_INTERVAL, PREDICTION_NO_MODEL

    assert MODEL_INTERVAL == "1d"
    frame = load_bars("BTC-USD").head(80)
    bars = [StreamBar(b, str(i + 1)) for i, b in enumerate(frame_to_bars("BTC", frame, "15m"))]
    ports = memory_ports()
    run(ports, bars, 40)
    assert ports.predictor.calls == 0
    items = [item for (s, _), item in ports.results.items.items() if s == "BTC"]
    assert len(items) == 80 and not any("prob_up" in item for item in items)
    finite = enrich(frame)[list(STACK.features)].notna().all(axis=1).sum()
    assert sum(i.get("prediction_status") == PREDICTION_NO_MODEL for i in items) == finite > 0
    assert "pending_since" not in ports.states.items["BTC"]
