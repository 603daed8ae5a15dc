"""process_batch: the processor's domain logic, on real bars, with in-memory ports."""

from __future__ import annotations

import copy
import itertools
import math
from dataclasses import dataclass, field, replace
from typing import Any

import numpy as np
import pytest

from stocksage.alerts import Rule, RuleError
from stocksage.bars import frame_to_bars
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.features import enrich
from stocksage.processing import Ports, Prediction, StreamBar, process_batch


@dataclass
class MemoryStates:
    items: dict[str, Any] = field(default_factory=dict)
    gets: int = 0
    fail_puts: int = 0

    def get_states(self, symbols):
        self.gets += 1
        return {s: copy.deepcopy(self.items[s]) for s in symbols if s in self.items}

    def put_states(self, states):
        if self.fail_puts:
            self.fail_puts -= 1
            raise RuntimeError("state write failed")
        for state, last in states:
            self.items[state.symbol] = (copy.deepcopy(state), dict(last))


@dataclass
class MemoryResults:
    items: dict[tuple[str, str], dict] = field(default_factory=dict)
    fail: bool = False

    def put_results(self, items):
        if self.fail:
            raise RuntimeError("results write failed")
        for item in items:
            self.items[(item["symbol"], item["bar_time"])] = dict(item)


@dataclass
class SignPredictor:
    """A deterministic stand-in model: p_up = logistic(50 * ret_1)."""

    calls: int = 0

    def predict(self, names, rows):
        self.calls += 1
        index = list(names).index("ret_1")
        return Prediction([1 / (1 + math.exp(-50 * row[index])) for row in rows], "test-v1")


@dataclass
class StaticRules:
    rules: dict[str, list[Rule]] = field(default_factory=dict)
    errors: list[RuleError] = field(default_factory=list)

    def rules_for(self, symbols):
        return {s: list(self.rules.get(s, [])) for s in symbols}, list(self.errors)


@dataclass
class OncePublisher:
    sent: dict[str, Any] = field(default_factory=dict)

    def publish(self, alert):
        if alert.alert_id in self.sent:
            return False
        self.sent[alert.alert_id] = alert
        return True


def make_ports(rules=None):
    return Ports(states=MemoryStates(), results=MemoryResults(), predictor=SignPredictor(),
                 rules=StaticRules(rules or {}), alerts=OncePublisher())


def stream(symbol: str, limit: int) -> list[StreamBar]:
    frame = load_bars(symbol).tail(limit)
    return [StreamBar(bar, str(i + 1)) for i, bar in enumerate(frame_to_bars(symbol, frame))]


def batches(items, size):
    return [items[i:i + size] for i in range(0, len(items), size)]


def test_streamed_results_equal_the_batch_computation_and_one_endpoint_call_per_batch():
    bars = stream("TSLA", 254)
    ports = make_ports()
    for batch in batches(bars, 37):
        process_batch(batch, ports)
    assert ports.predictor.calls == len(batches(bars, 37))
    assert ports.states.gets == len(batches(bars, 37))

    expected = enrich(load_bars("TSLA").tail(254))
    assert len(ports.results.items) == 254
    for bar_time, row in expected.iterrows():
        item = ports.results.items[("TSLA", bar_time.strftime("%Y-%m-%dT%H:%M:%SZ"))]
        for column in (*STACK.indicator_columns, *STACK.features):
            if np.isnan(row[column]):
                assert item[column] is None, column
            else:
                assert item[column] == pytest.approx(row[column], rel=1e-6, abs=1e-9), column
        finite = all(not np.isnan(row[f]) for f in STACK.features)
        assert ("prob_up" in item) == finite
        if finite:
            assert item["prob_up"] == pytest.approx(1 / (1 + math.exp(-50 * row["ret_1"])))
            assert item["model_version"] == "test-v1"


def test_mixed_symbols_in_one_batch_are_grouped_and_keep_their_own_windows():
    tsla, ibm = stream("TSLA", 60), stream("IBM", 60)
    mixed = [item for pair in zip(tsla, ibm, strict=True) for item in pair]
    ports = make_ports()
    for batch in batches(mixed, 25):
        outcome = process_batch(batch, ports)
        assert set(outcome.symbols) <= {"TSLA", "IBM"}
    assert {s for s, _ in ports.results.items} == {"TSLA", "IBM"}
    assert ports.states.items["TSLA"][0].bars_seen == 60
    assert ports.states.items["IBM"][0].bars_seen == 60


def test_redelivered_batch_changes_nothing_and_publishes_nothing():
    bars = stream("AAPL", 80)
    level = float(np.median([b.bar.close for b in bars]))
    rules = {"AAPL": [Rule("median-up", "AAPL", "price_above", {"level": level})]}
    ports = make_ports(rules)
    for batch in batches(bars, 20):
        process_batch(batch, ports)
    results_before = copy.deepcopy(ports.results.items)
    state_before = copy.deepcopy(ports.states.items)
    alerts_before = dict(ports.alerts.sent)
    assert alerts_before, "the median level must be crossed at least once in 80 real bars"

    outcome = process_batch(bars[40:60], ports)  # Kinesis redelivers a batch
    assert outcome.total("duplicates") == 20 and outcome.total("accepted") == 0
    assert ports.results.items == results_before
    assert ports.states.items["AAPL"][0].bars_seen == state_before["AAPL"][0].bars_seen
    assert ports.alerts.sent == alerts_before


def test_failed_state_write_leaves_state_behind_and_the_retry_is_idempotent():
    bars = stream("MSFT", 90)
    level = float(np.median([b.bar.close for b in bars]))
    rules = {"MSFT": [Rule("mid", "MSFT", "price_below", {"level": level}),
                      Rule("mid-up", "MSFT", "price_above", {"level": level})]}
    ports = make_ports(rules)
    process_batch(bars[:45], ports)
    ports.states.fail_puts = 1
    with pytest.raises(RuntimeError, match="state write failed"):
        process_batch(bars[45:], ports)
    assert ports.states.items["MSFT"][0].bars_seen == 45  # not advanced
    alerts_after_failure = set(ports.alerts.sent)

    outcome = process_batch(bars[45:], ports)  # the retry
    assert outcome.total("accepted") == 45
    assert outcome.total("alerts_published") == 0  # already published before the failure
    assert set(ports.alerts.sent) == alerts_after_failure

    reference = make_ports(rules)
    process_batch(bars[:45], reference)
    process_batch(bars[45:], reference)
    assert ports.results.items.keys() == reference.results.items.keys()
    assert set(ports.alerts.sent) == set(reference.alerts.sent)


def test_failed_results_write_raises_before_alerts_and_state():
    bars = stream("IBM", 40)
    ports = make_ports({"IBM": [Rule("low", "IBM", "price_below", {"level": 1e9})]})
    ports.results.fail = True
    with pytest.raises(RuntimeError):
        process_batch(bars, ports)
    assert ports.states.items == {} and ports.alerts.sent == {}


def test_duplicate_and_late_bars_are_dropped_and_counted():
    bars = stream("GOOG", 50)
    ports = make_ports()
    process_batch(bars[:30], ports)
    # A producer retry re-sends bar 10 with a new sequence number: same bar_time -> duplicate.
    outcome = process_batch([StreamBar(bars[10].bar, "31"), *bars[30:]], ports)
    assert outcome.total("duplicates") == 1 and outcome.total("accepted") == 20
    # A bar between two processed bars arrives late: dropped, nothing rewritten.
    between = bars[28].bar.bar_time + (bars[29].bar.bar_time - bars[28].bar.bar_time) / 2
    outcome = process_batch([StreamBar(replace(bars[28].bar, bar_time=between), "60")], ports)
    assert outcome.total("late") == 1 and outcome.total("accepted") == 0
    assert len(ports.results.items) == 50


def test_broken_rule_is_reported_not_fatal():
    bars = stream("TSLA", 30)
    broken = RuleError("r1", "TSLA", "params.level must be a positive number")
    ports = make_ports()
    ports.rules.errors.append(broken)
    outcome = process_batch(bars, ports)
    assert outcome.results_written == 30
    assert outcome.rule_errors == [broken]


# --------------------------------------------------------------------------- alerts with window
def _window_rules(symbol):
    return [
        Rule("move", symbol, "pct_move", {"bars": 5, "threshold": 0.03}, cooldown_bars=4),
        Rule("swing", symbol, "support_resistance", {"bars": 40, "k": 3}),
        Rule("engulf", symbol, "candlestick", {"pattern": "bullish_engulfing"}),
        Rule("doji", symbol, "candlestick", {"pattern": "doji", "trend_bars": 0},
             cooldown_bars=6),
        Rule("rsi", symbol, "rsi_cross", {"upper": 60, "lower": 40}, cooldown_bars=2),
        Rule("p", symbol, "prob_up_above", {"threshold": 0.7}, cooldown_bars=3),
    ]


def _offline_alert_ids(symbol, limit):
    """The same rules evaluated once over the whole series (windows from the full frame)."""
    from stocksage.alerts import BarWindow, evaluate_rules

    frame = enrich(load_bars(symbol).tail(limit))
    frame = frame.assign(prob_up=np.where(frame[list(STACK.features)].notna().all(axis=1),
                                          1 / (1 + np.exp(-50 * frame["ret_1"])), np.nan))
    bars = frame_to_bars(symbol, frame[["open", "high", "low", "close", "volume"]])
    window = BarWindow.from_frame(frame)
    last_fired, previous, ids = {}, None, set()
    for index, (bar, current) in enumerate(zip(bars, frame.to_dict("records"), strict=True)):
        current = {k: (None if isinstance(v, float) and np.isnan(v) else v)
                   for k, v in current.items()}
        alerts, errors = evaluate_rules(_window_rules(symbol), bar, previous, current,
                                        window.upto(index + 1, STACK.window_bars), last_fired)
        assert errors == []
        ids |= {a.alert_id for a in alerts}
        previous = current
    return ids


@pytest.mark.parametrize("size", [1, 9, 64, 300])
def test_window_rules_and_cooldowns_do_not_depend_on_how_the_stream_is_batched(size):
    symbol, limit = "MSFT", 300
    bars = stream(symbol, limit)
    ports = make_ports({symbol: _window_rules(symbol)})
    for batch in batches(bars, size):
        outcome = process_batch(batch, ports)
        assert outcome.rule_errors == []
    expected = _offline_alert_ids(symbol, limit)
    assert set(ports.alerts.sent) == expected
    kinds = {alert_id.split("#")[0] for alert_id in expected}
    assert kinds == {"move", "swing", "engulf", "doji", "rsi", "p"}


def test_a_batch_longer_than_the_window_sees_the_same_windows():
    symbol = "NVDA"
    bars = stream(symbol, 700)
    one = make_ports({symbol: _window_rules(symbol)})
    process_batch(bars, one, window_bars=260)  # 700 accepted bars > 260-bar window
    many = make_ports({symbol: _window_rules(symbol)})
    for batch in batches(bars, 50):
        process_batch(batch, many, window_bars=260)
    assert set(one.alerts.sent) == set(many.alerts.sent) and one.alerts.sent
    assert one.states.items[symbol][1]["alerts_last_fired"] == \
        many.states.items[symbol][1]["alerts_last_fired"]


def test_cooldown_state_is_kept_in_last_values_and_survives_a_failed_state_write():
    symbol = "MSFT"
    bars = stream(symbol, 240)
    rules = {symbol: _window_rules(symbol)}
    ports = make_ports(rules)
    process_batch(bars[:120], ports)
    stored = ports.states.items[symbol][1]["alerts_last_fired"]
    assert set(stored) <= {"move", "doji", "rsi", "p"} and stored  # only rules with a cooldown
    assert "alerts_last_fired" not in {k for k in ports.results.items[next(iter(
        ports.results.items))]}

    ports.states.fail_puts = 1  # alerts are published, then the state write fails
    with pytest.raises(RuntimeError):
        process_batch(bars[120:], ports)
    assert ports.states.items[symbol][1]["alerts_last_fired"] == stored  # not advanced
    sent_before_retry = dict(ports.alerts.sent)

    outcome = process_batch(bars[120:], ports)  # the retry recomputes the same decisions
    assert outcome.total("alerts_published") == 0
    assert outcome.total("alerts_suppressed") == len(
        [a for a in sent_before_retry if a not in _ids_before(ports, bars[120].bar)])
    assert ports.alerts.sent.keys() == sent_before_retry.keys()

    reference = make_ports(rules)
    process_batch(bars[:120], reference)
    process_batch(bars[120:], reference)
    assert set(reference.alerts.sent) == set(ports.alerts.sent)
    assert reference.states.items[symbol][1] == ports.states.items[symbol][1]

    # Kinesis redelivers the whole second batch once more: only duplicates, nothing changes.
    outcome = process_batch(bars[120:], ports)
    assert outcome.total("duplicates") == 120 and outcome.total("alerts_suppressed") == 0
    assert ports.states.items[symbol][1] == reference.states.items[symbol][1]


def _ids_before(ports, bar):
    stamp = bar.to_dict()["bar_time"]
    return {a for a in ports.alerts.sent if a.split("#")[2] < stamp}


def test_cooldown_counts_bars_across_batches():
    symbol = "BTC-USD"
    bars = stream(symbol, 400)
    rule = Rule("doji", symbol, "candlestick", {"pattern": "doji", "trend_bars": 0},
                cooldown_bars=7)
    ports = make_ports({symbol: [rule]})
    for batch in batches(bars, 5):
        process_batch(batch, ports)
    position = {b.bar.to_dict()["bar_time"]: i for i, b in enumerate(bars)}
    fired = sorted(position[a.split("#")[2]] for a in ports.alerts.sent)
    assert len(fired) >= 3 and all(b - a > 7 for a, b in itertools.pairwise(fired))
