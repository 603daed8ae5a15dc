"""Alert rule types on real bars: each firing list equals an independent pandas computation.

For every rule type the test runs ``evaluate_rules`` bar by bar over a real series (as the
processor does: previous/current values + the OHLCV window up to the bar) and compares the full
list of firing bars with the definition in docs/ALERTS.md computed vectorized with pandas.
"""

from __future__ import annotations

import itertools
import json
import math

import numpy as np
import pandas as pd
import pytest

from stocksage.alerts import (
    CANDLESTICK_PATTERNS,
    COOLDOWN_STATE_KEY,
    BarWindow,
    Rule,
    RuleError,
    evaluate_rules,
    prune_last_fired,
    swing_levels,
)
from stocksage.bars import frame_to_bars
from stocksage.datasets import dataset_info, load_bars
from stocksage.indicators.features import enrich
from tests.helpers.predictors import logistic_prob_up

WINDOW_BARS = 600


def real(symbol: str, tail: int | None = None, with_prob: bool = False) -> pd.DataFrame:
    frame = enrich(load_bars(symbol))
    if tail:
        frame = frame.tail(tail)
    if with_prob:  # a deterministic stand-in model on real returns
        frame = frame.assign(prob_up=logistic_prob_up(frame["ret_1"]))
    return frame


def fired(rules: list[Rule], frame: pd.DataFrame, symbol: str, cooldown: bool = True):
    """Evaluate like process_batch does; returns {rule_id: [bar_time, ...]}."""
    bars = frame_to_bars(symbol, frame[["open", "high", "low", "close", "volume"]],
                         interval=dataset_info(symbol).interval)
    window = BarWindow.from_frame(frame)
    rows = frame.to_dict("records")
    last_fired: dict[str, str] | None = {} if cooldown else None
    previous = None
    out: dict[str, list[pd.Timestamp]] = {rule.rule_id: [] for rule in rules}
    for index, (bar, current) in enumerate(zip(bars, rows, strict=True)):
        alerts, errors = evaluate_rules(rules, bar, previous, current,
                                        window.upto(index + 1, WINDOW_BARS), last_fired)
        assert errors == []
        for alert in alerts:
            out[alert.rule.rule_id].append(frame.index[index])
            assert alert.alert_id == f"{alert.rule.rule_id}#{symbol}#{bar.to_dict()['bar_time']}"
            assert len(alert.subject) < 100 and alert.subject.isascii()
            assert "\n" not in alert.subject and symbol in alert.subject
        previous = current
    return out


def times(mask: pd.Series) -> list[pd.Timestamp]:
    return list(mask.index[mask.fillna(False).to_numpy(dtype=bool)])


def check(got: list, expected: list) -> None:
    assert got == expected
    assert len(expected) >= 1, "the real series must contain at least one firing bar"


# ------------------------------------------------------------------------------------ price
def test_price_above_and_below_on_real_closes():
    frame = real("TSLA")
    level = float(frame["close"].median())
    rules = [Rule("up", "TSLA", "price_above", {"level": level}),
             Rule("down", "TSLA", "price_below", {"level": level})]
    got = fired(rules, frame, "TSLA")
    close, prev = frame["close"], frame["close"].shift(1)
    check(got["up"], times((prev <= level) & (level < close)))
    check(got["down"], times((prev >= level) & (level > close)))


# ------------------------------------------------------------------------------------ pct_move
@pytest.mark.parametrize("direction", ["up", "down", "either"])
@pytest.mark.parametrize("mode", ["cross", "level"])
def test_pct_move_over_n_bars(direction, mode):
    frame = real("NVDA", tail=1500)
    n, threshold = 5, 0.12
    rule = Rule("move", "NVDA", "pct_move",
                {"bars": n, "threshold": threshold, "direction": direction, "mode": mode})
    got = fired([rule], frame, "NVDA")["move"]
    change = frame["close"] / frame["close"].shift(n) - 1
    up = (change >= threshold) if direction != "down" else change < -np.inf
    down = (change <= -threshold) if direction != "up" else change < -np.inf
    if mode == "level":
        expected = up | down
    else:
        defined_before = change.shift(1).notna()
        expected = ((up & ~up.shift(1, fill_value=False))
                    | (down & ~down.shift(1, fill_value=False))) & defined_before
    check(got, times(expected))
    if mode == "level":
        assert len(got) > len(fired([Rule("m", "NVDA", "pct_move", {
            "bars": n, "threshold": threshold, "direction": direction})], frame, "NVDA")["m"])


def test_pct_move_details_and_message():
    frame = real("NVDA", tail=400)
    rule = Rule("move", "NVDA", "pct_move", {"bars": 3, "threshold": 0.1, "direction": "down"},
                severity="critical")
    bars = frame_to_bars("NVDA", frame)
    window = BarWindow.from_frame(frame)
    change = frame["close"] / frame["close"].shift(3) - 1
    index = int(np.flatnonzero((change <= -0.1) & (change.shift(1) > -0.1))[0])
    (alert,), _ = evaluate_rules([rule], bars[index], frame.iloc[index - 1].to_dict(),
                                 frame.iloc[index].to_dict(), window.upto(index + 1))
    assert alert.details["change"] == pytest.approx(change.iloc[index])
    assert alert.details["direction"] == "down"
    assert alert.details["base_close"] == frame["close"].iloc[index - 3]
    assert "over 3 bars" in alert.subject and "-" in alert.subject
    payload = json.loads(json.dumps(alert.payload()))
    assert payload["rule_params"] == {"bars": 3, "threshold": 0.1, "direction": "down"}
    assert payload["subject"] == alert.subject and payload["text"] == alert.body
    assert alert.body.splitlines()[0].startswith("NVDA moved")
    assert len(alert.sms_text()) <= 140


def test_window_rules_do_not_fire_without_a_window():
    frame = real("NVDA", tail=50)
    bar = frame_to_bars("NVDA", frame)[-1]
    rules = [Rule("a", "NVDA", "pct_move", {"bars": 1, "threshold": 1e-9, "mode": "level"}),
             Rule("b", "NVDA", "candlestick", {"pattern": "doji", "trend_bars": 0})]
    assert evaluate_rules(rules, bar, frame.iloc[-2].to_dict(), frame.iloc[-1].to_dict()) \
        == ([], [])


# ------------------------------------------------------------------------------------ rsi
@pytest.mark.parametrize("params, direction", [({}, "either"), ({"upper": 65, "lower": 35}, "up"),
                                               ({"upper": 75, "lower": 25}, "down")])
def test_rsi_cross_enters_overbought_or_oversold(params, direction):
    frame = real("MSFT")
    upper, lower = params.get("upper", 70), params.get("lower", 30)
    rule = Rule("rsi", "MSFT", "rsi_cross", {**params, "direction": direction})
    got = fired([rule], frame, "MSFT")["rsi"]
    rsi, prev = frame["rsi_14"], frame["rsi_14"].shift(1)
    overbought = (prev <= upper) & (rsi > upper)
    oversold = (prev >= lower) & (rsi < lower)
    expected = {"either": overbought | oversold, "up": overbought, "down": oversold}[direction]
    check(got, times(expected))


# ------------------------------------------------------------------------------------ macd
@pytest.mark.parametrize("direction", ["up", "down", "either"])
def test_macd_cross_of_the_signal_line(direction):
    frame = real("IBM", tail=800)
    rule = Rule("macd", "IBM", "macd_cross", {"direction": direction})
    got = fired([rule], frame, "IBM")["macd"]
    diff = frame["macd"] - frame["macd_signal"]
    np.testing.assert_allclose(diff.dropna(), frame["macd_diff"].dropna(), atol=1e-9)
    d, p = frame["macd_diff"], frame["macd_diff"].shift(1)
    bullish, bearish = (p <= 0) & (d > 0), (p >= 0) & (d < 0)
    expected = {"up": bullish, "down": bearish, "either": bullish | bearish}[direction]
    check(got, times(expected))
    # crossings alternate: between two bullish crosses there is a bearish one
    if direction == "either":
        kinds = [bool(bullish[t]) for t in got]
        assert all(a != b for a, b in itertools.pairwise(kinds))


# ------------------------------------------------------------------------------------ bollinger
@pytest.mark.parametrize("direction", ["up", "down", "either"])
def test_bollinger_break_fires_on_the_bar_the_close_leaves_the_band(direction):
    frame = real("TSLA")
    rule = Rule("bb", "TSLA", "bollinger_break", {"direction": direction})
    got = fired([rule], frame, "TSLA")["bb"]
    close, prev = frame["close"], frame["close"].shift(1)
    above = (close > frame["bb_high"]) & (prev <= frame["bb_high"].shift(1))
    below = (close < frame["bb_low"]) & (prev >= frame["bb_low"].shift(1))
    expected = {"up": above, "down": below, "either": above | below}[direction]
    check(got, times(expected))
    outside = (close > frame["bb_high"]) if direction == "up" else None
    if outside is not None:  # bars that stay outside do not fire again
        assert outside.sum() > len(got)


# ------------------------------------------------------------------------------------ prob_up
@pytest.mark.parametrize("mode", ["cross", "level"])
def test_prob_up_above_threshold(mode):
    frame = real("AAPL", tail=500, with_prob=True)
    rule = Rule("p", "AAPL", "prob_up_above", {"threshold": 0.8, "mode": mode})
    got = fired([rule], frame, "AAPL")["p"]
    p = frame["prob_up"]
    expected = (p > 0.8) if mode == "level" else (p.shift(1) <= 0.8) & (p > 0.8)
    check(got, times(expected))


# ------------------------------------------------------------------------------------ swings
def _expected_breaks(frame: pd.DataFrame, lookback: int, k: int):
    """Independent form: centered rolling max/min flags, used only once confirmed."""
    high, low, close = frame["high"], frame["low"], frame["close"]
    swing_high = (high == high.rolling(2 * k + 1, center=True).max()).to_numpy()
    swing_low = (low == low.rolling(2 * k + 1, center=True).min()).to_numpy()
    resistance, support = [], []
    for t in range(1, len(frame)):
        first = max(0, t - lookback) + k
        last = t - 1 - k  # confirmed by bar t-1 at the latest: no look-ahead
        highs = [j for j in range(first, last + 1) if swing_high[j]]
        lows = [j for j in range(first, last + 1) if swing_low[j]]
        c0, c1 = close.iloc[t - 1], close.iloc[t]
        if highs and c0 <= high.iloc[highs[-1]] < c1:
            resistance.append(frame.index[t])
        elif lows and c0 >= low.iloc[lows[-1]] > c1:
            support.append(frame.index[t])
    return resistance, support


@pytest.mark.parametrize("symbol, lookback, k", [("GOOG", 60, 3), ("BTC-USD", 40, 5)])
def test_support_resistance_breaks_of_confirmed_swing_levels(symbol, lookback, k):
    frame = real(symbol, tail=1200)
    rules = [Rule("res", symbol, "support_resistance",
                  {"bars": lookback, "k": k, "direction": "up"}),
             Rule("sup", symbol, "support_resistance",
                  {"bars": lookback, "k": k, "direction": "down"}),
             Rule("any", symbol, "support_resistance", {"bars": lookback, "k": k})]
    got = fired(rules, frame, symbol)
    resistance, support = _expected_breaks(frame, lookback, k)
    check(got["res"], resistance)
    check(got["sup"], support)
    assert got["any"] == sorted(resistance + support)


def test_swing_levels_use_no_future_bar():
    frame = real("GOOG", tail=300)
    high, low = frame["high"].to_numpy(), frame["low"].to_numpy()
    for t in range(10, 300, 7):
        truncated = swing_levels(high[:t + 1], low[:t + 1], t, 60, 3)
        assert swing_levels(high, low, t, 60, 3) == truncated
        changed = high.copy()
        changed[t:] = 1e9  # the current bar and the future cannot move the level
        assert swing_levels(changed, low, t, 60, 3) == truncated


# ------------------------------------------------------------------------------------ candles
def _candles(frame: pd.DataFrame, m: int) -> dict[str, pd.Series]:
    o, h, low, c = frame["open"], frame["high"], frame["low"], frame["close"]
    body, rng = (c - o).abs(), h - low
    upper, lower = h - np.maximum(o, c), np.minimum(o, c) - low
    trend = frame["close"].shift(1) - frame["close"].shift(1 + m)
    down_trend = (trend < 0) if m else trend.notna() | True
    up_trend = (trend > 0) if m else trend.notna() | True
    o1, c1 = o.shift(1), c.shift(1)
    return {
        "doji": (rng > 0) & (body <= 0.1 * rng),
        "hammer": (rng > 0) & (body > 0) & (lower >= 2 * body) & (upper <= 0.1 * rng)
        & down_trend,
        "bullish_engulfing": (c1 < o1) & (c > o) & (o <= c1) & (c >= o1) & (body > o1 - c1)
        & down_trend,
        "bearish_engulfing": (c1 > o1) & (c < o) & (o >= c1) & (c <= o1) & (body > c1 - o1)
        & up_trend,
    }


@pytest.mark.parametrize("symbol, m", [("AAPL", 5), ("NVDA", 0), ("BTC-USD", 3)])
def test_candlestick_patterns_match_their_textbook_definitions(symbol, m):
    frame = real(symbol, tail=1500)
    rules = [Rule(p, symbol, "candlestick", {"pattern": p, "trend_bars": m})
             for p in CANDLESTICK_PATTERNS]
    got = fired(rules, frame, symbol)
    for pattern, expected in _candles(frame, m).items():
        check(got[pattern], times(expected))
    assert not set(got["bullish_engulfing"]) & set(got["bearish_engulfing"])


def test_hammer_needs_a_prior_decline_by_default():
    frame = real("AAPL", tail=1500)
    with_trend = fired([Rule("h", "AAPL", "candlestick", {"pattern": "hammer"})], frame, "AAPL")
    without = fired([Rule("h", "AAPL", "candlestick", {"pattern": "hammer", "trend_bars": 0})],
                    frame, "AAPL")
    assert set(with_trend["h"]) < set(without["h"])


# ------------------------------------------------------------------------------------ cooldown
@pytest.mark.parametrize("cooldown", [1, 3, 10])
def test_cooldown_keeps_a_rule_quiet_for_n_bars_after_it_fired(cooldown):
    frame = real("BTC-USD", tail=800)
    params = {"pattern": "doji", "trend_bars": 0}
    free = fired([Rule("d", "BTC-USD", "candlestick", params)], frame, "BTC-USD")["d"]
    cooled = fired([Rule("d", "BTC-USD", "candlestick", params, cooldown_bars=cooldown)],
                   frame, "BTC-USD")["d"]
    position = {t: i for i, t in enumerate(frame.index)}
    expected, last = [], None
    for t in free:  # independent greedy form of the definition
        if last is None or position[t] - last > cooldown:
            expected.append(t)
            last = position[t]
    assert cooled == expected
    assert len(cooled) < len(free)
    gaps = np.diff([position[t] for t in cooled])
    assert (gaps > cooldown).all() and (gaps == cooldown + 1).any()


def test_cooldown_is_not_applied_without_a_last_fired_map_and_is_per_rule():
    frame = real("BTC-USD", tail=300)
    rules = [Rule("a", "BTC-USD", "candlestick", {"pattern": "doji", "trend_bars": 0},
                  cooldown_bars=5),
             Rule("b", "BTC-USD", "candlestick", {"pattern": "doji", "trend_bars": 0})]
    without = fired(rules, frame, "BTC-USD", cooldown=False)
    assert without["a"] == without["b"]
    with_map = fired(rules, frame, "BTC-USD")
    assert with_map["b"] == without["b"] and len(with_map["a"]) < len(with_map["b"])


def test_prune_last_fired_keeps_entries_inside_the_window():
    frame = real("IBM", tail=100)
    window = BarWindow.from_frame(frame)
    inside = frame_to_bars("IBM", frame.iloc[[50]])[0].to_dict()["bar_time"]
    assert prune_last_fired({"a": inside, "b": "1999-01-01T00:00:00Z", "c": "garbage"},
                            window) == {"a": inside}
    assert COOLDOWN_STATE_KEY == "alerts_last_fired"


# ------------------------------------------------------------------------------------ broken
@pytest.mark.parametrize("rule_type, params, reason", [
    ("pct_move", {"threshold": 0.05}, "needs params.bars"),
    ("pct_move", {"bars": 0, "threshold": 0.05}, "params.bars must be an integer in"),
    ("pct_move", {"bars": 2.5, "threshold": 0.05}, "params.bars must be an integer"),
    ("pct_move", {"bars": 241, "threshold": 0.05}, "params.bars"),
    ("pct_move", {"bars": 5}, "needs params.threshold"),
    ("pct_move", {"bars": 5, "threshold": 0}, "params.threshold"),
    ("pct_move", {"bars": 5, "threshold": "5%"}, "params.threshold"),
    ("pct_move", {"bars": 5, "threshold": 0.1, "direction": "sideways"}, "params.direction"),
    ("pct_move", {"bars": 5, "threshold": 0.1, "mode": "edge"}, "params.mode"),
    ("pct_move", {"bars": 5, "threshold": 0.1, "level": 3}, "does not take level"),
    ("rsi_cross", {"upper": 30, "lower": 70}, "lower must be below"),
    ("rsi_cross", {"upper": 100}, "params.upper"),
    ("rsi_cross", {"lower": -1}, "params.lower"),
    ("rsi_cross", {"upper": True}, "params.upper"),
    ("macd_cross", {"direction": "bullish"}, "params.direction"),
    ("macd_cross", {"level": 1}, "does not take level"),
    ("bollinger_break", {"window": 20}, "does not take window"),
    ("prob_up_above", {}, "needs params.threshold"),
    ("prob_up_above", {"threshold": 1.0}, "params.threshold"),
    ("prob_up_above", {"threshold": 0.6, "mode": "x"}, "params.mode"),
    ("support_resistance", {"bars": 4}, "params.bars"),
    ("support_resistance", {"k": 0}, "params.k"),
    ("support_resistance", {"bars": 10, "k": 5}, "at least 2 \\* k \\+ 1"),
    ("candlestick", {}, "needs params.pattern"),
    ("candlestick", {"pattern": "shooting_star"}, "params.pattern must be one of"),
    ("candlestick", {"pattern": "doji", "trend_bars": -1}, "params.trend_bars"),
    ("price_above", {}, "needs params.level"),
    ("price_below", {"level": float("nan")}, "positive number"),
])
def test_bad_parameters_of_each_type_are_reported_with_a_reason(rule_type, params, reason):
    with pytest.raises(RuleError, match=reason):
        Rule("r1", "MSFT", rule_type, params)
    document = json.dumps({"type": rule_type, "params": params}) if all(
        not (isinstance(v, float) and math.isnan(v)) for v in params.values()) else None
    if document:
        with pytest.raises(RuleError, match=reason):
            Rule.from_document("MSFT", "r1", document)


@pytest.mark.parametrize("cooldown", [-1, 241, 1.5, "x", None])
def test_bad_cooldown_is_reported(cooldown):
    with pytest.raises(RuleError, match="cooldown_bars"):
        Rule.from_document("MSFT", "r1", json.dumps({"type": "macd_cross",
                                                     "cooldown_bars": cooldown}))


def test_rule_documents_round_trip_with_defaults_and_cooldown():
    rule = Rule("r-2", "*", "rsi_cross", {"upper": 80}, "critical", cooldown_bars=4)
    assert json.loads(rule.to_document())["cooldown_bars"] == 4
    assert Rule.from_document("*", "r-2", rule.to_document()) == rule
    assert rule.param("lower") == 30.0 and rule.param("direction") == "either"
    assert "cooldown_bars" not in json.loads(Rule("r", "A", "macd_cross").to_document())


def test_a_rule_failing_at_evaluation_is_reported_and_the_others_still_fire():
    frame = real("TSLA", tail=60)
    bars = frame_to_bars("TSLA", frame)
    good = Rule("good", "TSLA", "price_above", {"level": 1e-6})
    bad = Rule("bad", "TSLA", "candlestick", {"pattern": "doji"})
    object.__setattr__(bad, "params", {"pattern": "doji", "trend_bars": "oops"})  # corrupted
    alerts, errors = evaluate_rules([bad, good], bars[1], {"close": 0.0}, frame.iloc[1].to_dict(),
                                    BarWindow.from_frame(frame.iloc[:2]))
    assert [a.rule.rule_id for a in alerts] == ["good"]
    assert len(errors) == 1 and errors[0].rule_id == "bad" and "evaluation failed" in str(errors[0])


def test_range_above_forecast_on_real_bars_with_a_real_range_model():
    """IBM daily bars: a range model fitted on 2000-2006 forecasts 2007-2009 (out of sample);
    the rule fires exactly on the bars whose ln(high/low) exceeds k x the forecast made the bar
    before, and such surprises are rare, more so for a larger k."""
    from stocksage.config import STACK
    from stocksage.model.dataset import build_training_frame
    from stocksage.model.volatility import RANGE_TARGET, make_range_model

    features = list(STACK.features)
    train = build_training_frame({"IBM": load_bars("IBM").loc[:"2006-12-31"]}, features)
    model = make_range_model(features).fit(train[features].to_numpy(float),
                                           train[RANGE_TARGET].to_numpy(float))
    frame = real("IBM").loc["2007-01-01":"2009-12-31"].dropna(subset=features)
    frame = frame.assign(range_forecast=np.exp(model.predict(frame[features].to_numpy(float))))
    rules = [Rule("wide2", "IBM", "range_above_forecast", {"k": 2}),
             Rule("wide15", "IBM", "range_above_forecast", {"k": 1.5})]
    got = fired(rules, frame, "IBM", cooldown=False)
    realised = np.log(frame["high"] / frame["low"])
    prior = frame["range_forecast"].shift(1)
    for rule, k in (("wide2", 2.0), ("wide15", 1.5)):
        expected = list(frame.index[(realised > k * prior).to_numpy()])
        assert got[rule] == expected
    assert 0 < len(got["wide2"]) < len(got["wide15"]) < 0.2 * len(frame)
    assert any(t.year == 2008 for t in got["wide2"])  # the 2008 crash days


def test_range_above_forecast_needs_a_forecast():
    frame = real("IBM", tail=50)  # no range_forecast column: a model without a range output
    got = fired([Rule("wide", "IBM", "range_above_forecast", {})], frame, "IBM")
    assert got["wide"] == []
    with pytest.raises(RuleError, match=r"params\.k"):
        Rule("bad", "IBM", "range_above_forecast", {"k": 0})
