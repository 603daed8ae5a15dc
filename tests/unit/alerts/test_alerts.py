"""Alert rules: validation, crossing definitions on real bars, message shape."""

from __future__ import annotations

import json
from itertools import pairwise

import pytest

from stocksage.alerts import Rule, RuleError, evaluate_rules
from stocksage.bars import frame_to_bars
from stocksage.datasets import load_bars


def closes(symbol: str, n: int):
    bars = frame_to_bars(symbol, load_bars(symbol).tail(n))
    return bars


def test_price_above_fires_exactly_on_upward_crossings_of_real_closes():
    bars = closes("TSLA", 120)
    level = sorted(b.close for b in bars)[60]
    rule = Rule("up", "TSLA", "price_above", {"level": level}, severity="info")
    fired = []
    for prev, bar in pairwise(bars):
        alerts, errors = evaluate_rules([rule], bar, {"close": prev.close}, {"close": bar.close})
        assert errors == []
        fired += [a.bar.bar_time for a in alerts]
    expected = [b.bar_time for p, b in pairwise(bars)
                if p.close <= level < b.close]
    assert fired == expected and len(expected) >= 1


def test_price_below_needs_a_previous_bar():
    bar = closes("IBM", 1)[0]
    rule = Rule("down", "IBM", "price_below", {"level": bar.close * 2})
    assert evaluate_rules([rule], bar, None, {"close": bar.close}) == ([], [])


def test_alert_message_has_attributes_for_filter_policies_and_a_json_payload():
    prev, bar = closes("AAPL", 2)
    level = (prev.close + bar.close) / 2
    kind = "price_above" if bar.close > prev.close else "price_below"
    rule = Rule("mid", "AAPL", kind, {"level": level}, severity="critical")
    (alert,), _ = evaluate_rules([rule], bar, {"close": prev.close}, {"close": bar.close})
    assert alert.alert_id == f"mid#AAPL#{bar.to_dict()['bar_time']}"
    assert alert.message_attributes() == {"symbol": "AAPL", "rule_type": kind,
                                          "severity": "critical"}
    assert len(alert.subject) < 100 and "AAPL" in alert.subject
    payload = json.loads(json.dumps(alert.payload()))
    assert payload["details"]["level"] == pytest.approx(level)


@pytest.mark.parametrize("document, reason", [
    ("{not json", "not JSON"),
    ('["a"]', "JSON object"),
    ('{"type": "moon_phase"}', "unknown type"),
    ('{"type": "price_above", "params": {"level": -3}}', "positive number"),
    ('{"type": "price_above", "params": {"level": 5}, "severity": "loud"}', "severity"),
])
def test_broken_rule_documents_raise_rule_error_with_a_reason(document, reason):
    with pytest.raises(RuleError, match=reason):
        Rule.from_document("TSLA", "r1", document)


def test_rule_document_round_trip():
    rule = Rule("r-1", "*", "price_below", {"level": 10.5}, "info")
    assert Rule.from_document("*", "r-1", rule.to_document()) == rule


def test_row_values_read_a_row_as_the_values_dict_would():
    """The streaming path's view over a row of floats answers like the dict it replaced:
    NaN is None, ``extra`` comes first, unknown names are absent."""
    from stocksage.alerts import RowValues

    index = {"rsi_14": 0, "macd": 1, "close": 2}
    row = [55.5, float("nan"), 1.0]
    values = RowValues(index, row, {"close": 101.25, "prob_up": None})
    as_dict = {"close": 101.25, "prob_up": None, "rsi_14": 55.5, "macd": None}
    assert values == as_dict and dict(values) == as_dict and len(values) == 4
    assert values["macd"] is None and values.get("macd", 0.0) is None
    assert values.get("close") == 101.25  # extra wins over the row's position
    assert values.get("unknown") is None and values.get("unknown", 7) == 7
    with pytest.raises(KeyError):
        values["unknown"]
    assert "rsi_14" in values and "unknown" not in values


def test_a_long_subject_is_cut_below_the_sns_limit_of_100_characters():
    from stocksage.alerts.messages import SUBJECT_MAX_CHARS, subject_and_body

    bar = frame_to_bars("AAPL", load_bars("AAPL").iloc[:1])[0]
    rule = Rule("long", "AAPL", "price_above", {"level": 1.0})
    subject, _ = subject_and_body(rule, bar, "2010-01-04T00:00:00Z", "x" * 300, {})
    assert len(subject) == SUBJECT_MAX_CHARS == 99 and subject.endswith("...")
