"""The firing condition of each rule type, as pure functions of parameters and bars.

Each condition has the shape of ``stocksage.alerts.params.Condition``: ``(params, context) ->
details | None``. ``params`` are the rule's validated parameters with defaults filled in;
``context`` holds the values of bars ``t-1`` and ``t`` and the OHLCV window (all bars ``<= t``:
no look-ahead). It returns the alert's details (JSON values: the level and the values that
crossed it, the pattern and its body...) or None. A value that does not exist yet (warm-up, no
previous bar, too little history) never fires. The exact definitions, with their sources, are
in docs/ALERTS.md ("Definitions"); the docstrings below only name the variant.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from stocksage.alerts.params import Params
from stocksage.alerts.window import Context, iso_seconds, value_of
from stocksage.config import STACK

CANDLESTICK_PATTERNS = ("bullish_engulfing", "bearish_engulfing", "hammer", "doji")
DOJI_MAX_BODY_RATIO = 0.10
"""Doji: body <= 10 % of the range."""
HAMMER_MIN_LOWER_TO_BODY = 2.0
"""Hammer: lower shadow >= 2 x body."""
HAMMER_MAX_UPPER_RATIO = 0.10
"""Hammer: upper shadow <= 10 % of the range."""

RSI = f"rsi_{STACK.indicators['rsi_window']}"
"""Column of the RSI that ``rsi_cross`` reads (``rsi_14``)."""

Details = dict[str, Any]


def crosses_up(before: float | None, now: float | None, level: float | None) -> bool:
    """``before <= level < now``; False when any of them is None."""
    if before is None or now is None or level is None:
        return False
    return before <= level < now


def crosses_down(before: float | None, now: float | None, level: float | None) -> bool:
    """``before >= level > now``; False when any of them is None."""
    if before is None or now is None or level is None:
        return False
    return before >= level > now


def _wanted(params: Params) -> tuple[bool, bool]:
    direction = params["direction"]
    return direction in ("up", "either"), direction in ("down", "either")


def price_above(params: Params, ctx: Context) -> Details | None:
    """The close crosses above ``level``. Details: level, previous_close, close."""
    level = params["level"]
    before, now = value_of(ctx.previous, "close"), value_of(ctx.current, "close")
    if not crosses_up(before, now, level):
        return None
    return {"level": level, "previous_close": before, "close": now}


def price_below(params: Params, ctx: Context) -> Details | None:
    """The close crosses below ``level``. Details: level, previous_close, close."""
    level = params["level"]
    before, now = value_of(ctx.previous, "close"), value_of(ctx.current, "close")
    if not crosses_down(before, now, level):
        return None
    return {"level": level, "previous_close": before, "close": now}


def pct_move(params: Params, ctx: Context) -> Details | None:
    """The close moved by ``threshold`` (a fraction) over ``bars`` bars of the window.

    Details: bars, threshold, change (fraction), direction, close, base_close, base_bar_time,
    mode.
    """
    window = ctx.window
    n, threshold, mode = params["bars"], params["threshold"], params["mode"]
    want_up, want_down = _wanted(params)
    if window is None:
        return None
    close, t = window.close, len(window) - 1
    if t - n < 0 or close[t - n] <= 0:
        return None
    change = float(close[t] / close[t - n] - 1)
    up, down = want_up and change >= threshold, want_down and change <= -threshold
    if mode == "cross" and (up or down):
        if t - 1 - n < 0 or close[t - 1 - n] <= 0:
            return None
        before = float(close[t - 1] / close[t - 1 - n] - 1)
        up = up and not before >= threshold
        down = down and not before <= -threshold
    if not (up or down):
        return None
    return {"bars": n, "threshold": threshold, "change": change,
            "direction": "up" if up else "down",
            "close": float(close[t]), "base_close": float(close[t - n]),
            "base_bar_time": iso_seconds(window.times[t - n]), "mode": mode}


def rsi_cross(params: Params, ctx: Context) -> Details | None:
    """RSI(14) enters overbought (crosses above ``upper``) or oversold (below ``lower``).

    Details: rsi, previous_rsi, level, zone (``overbought`` | ``oversold``).
    """
    upper, lower = params["upper"], params["lower"]
    want_up, want_down = _wanted(params)
    before, now = value_of(ctx.previous, RSI), value_of(ctx.current, RSI)
    if want_up and crosses_up(before, now, upper):
        return {"rsi": now, "previous_rsi": before, "level": upper, "zone": "overbought"}
    if want_down and crosses_down(before, now, lower):
        return {"rsi": now, "previous_rsi": before, "level": lower, "zone": "oversold"}
    return None


def macd_cross(params: Params, ctx: Context) -> Details | None:
    """``macd_diff`` changes sign: the MACD line crosses its signal line.

    Details: signal (``bullish`` | ``bearish``), macd, macd_signal, macd_diff,
    previous_macd_diff.
    """
    want_up, want_down = _wanted(params)
    before, now = value_of(ctx.previous, "macd_diff"), value_of(ctx.current, "macd_diff")
    signal = None
    if want_up and crosses_up(before, now, 0.0):
        signal = "bullish"
    elif want_down and crosses_down(before, now, 0.0):
        signal = "bearish"
    if signal is None:
        return None
    return {"signal": signal, "macd": value_of(ctx.current, "macd"),
            "macd_signal": value_of(ctx.current, "macd_signal"), "macd_diff": now,
            "previous_macd_diff": before}


def bollinger_break(params: Params, ctx: Context) -> Details | None:
    """The close goes outside a Bollinger band (on the bar it leaves, not the bars it stays).

    Details: band (``upper`` | ``lower``), level, close, previous_close, bb_high, bb_low,
    bb_mavg.
    """
    want_up, want_down = _wanted(params)
    prev_close, close = value_of(ctx.previous, "close"), value_of(ctx.current, "close")
    if prev_close is None or close is None:
        return None
    prev_high, high = value_of(ctx.previous, "bb_high"), value_of(ctx.current, "bb_high")
    prev_low, low = value_of(ctx.previous, "bb_low"), value_of(ctx.current, "bb_low")
    band = None
    if (want_up and prev_high is not None and high is not None
            and prev_close <= prev_high and close > high):
        band, level = "upper", high
    elif (want_down and prev_low is not None and low is not None
            and prev_close >= prev_low and close < low):
        band, level = "lower", low
    if band is None:
        return None
    return {"band": band, "level": level, "close": close, "previous_close": prev_close,
            "bb_high": high, "bb_low": low, "bb_mavg": value_of(ctx.current, "bb_mavg")}


def prob_up_above(params: Params, ctx: Context) -> Details | None:
    """``prob_up`` rises above ``threshold`` (``cross``) or is above it (``level``).

    Details: prob_up, previous_prob_up, threshold, mode.
    """
    threshold, mode = params["threshold"], params["mode"]
    before, now = value_of(ctx.previous, "prob_up"), value_of(ctx.current, "prob_up")
    if now is None:
        return None
    fired = now > threshold if mode == "level" else crosses_up(before, now, threshold)
    if not fired:
        return None
    return {"prob_up": now, "previous_prob_up": before, "threshold": threshold, "mode": mode}


def range_above_forecast(params: Params, ctx: Context) -> Details | None:
    """Bar ``t``'s range ``ln(high/low)`` above ``k`` x the range forecast made for it at bar
    ``t-1`` (``previous["range_forecast"]``, log-price units, from the endpoint's range model).

    Details: range, range_forecast, k, ratio (range / forecast), high, low.
    """
    forecast = value_of(ctx.previous, "range_forecast")
    high, low = value_of(ctx.current, "high"), value_of(ctx.current, "low")
    if forecast is None or forecast <= 0 or high is None or low is None or low <= 0:
        return None
    realised = math.log(high / low)
    k = params["k"]
    if realised <= k * forecast:
        return None
    return {"range": realised, "range_forecast": forecast, "k": k,
            "ratio": realised / forecast, "high": high, "low": low}


def swing_levels(high: np.ndarray, low: np.ndarray, t: int, lookback: int,
                 k: int) -> tuple[int | None, int | None]:
    """Indexes of the most recent confirmed swing high and swing low for bar ``t``.

    Args:
        high, low: Prices of the window's bars.
        t: Index of the bar being evaluated.
        lookback: L, the bars before ``t`` searched: ``max(0, t - L) .. t - 1``.
        k: Bars on each side of a swing; a swing at ``j`` needs ``j + k <= t - 1``.

    Returns:
        ``(swing_high, swing_low)`` indexes, each None when there is none.
    """
    start = max(0, t - lookback)
    swing_high = swing_low = None
    for j in range(t - 1 - k, start + k - 1, -1):
        if swing_high is None and high[j] == high[j - k:j + k + 1].max():
            swing_high = j
        if swing_low is None and low[j] == low[j - k:j + k + 1].min():
            swing_low = j
        if swing_high is not None and swing_low is not None:
            break
    return swing_high, swing_low


def support_resistance(params: Params, ctx: Context) -> Details | None:
    """The close crosses the most recent confirmed swing high (resistance) or low (support).

    Details: kind (``resistance`` | ``support``), level, swing_bar_time, previous_close, close,
    bars, k.
    """
    window = ctx.window
    lookback, k = params["bars"], params["k"]
    want_up, want_down = _wanted(params)
    if window is None or len(window) < 2:
        return None
    t = len(window) - 1
    close = window.close
    swing_high, swing_low = swing_levels(window.high, window.low, t, lookback, k)
    if want_up and swing_high is not None:
        level = float(window.high[swing_high])
        if crosses_up(float(close[t - 1]), float(close[t]), level):
            return {"kind": "resistance", "level": level, "swing_bar_time":
                    iso_seconds(window.times[swing_high]), "previous_close": float(close[t - 1]),
                    "close": float(close[t]), "bars": lookback, "k": k}
    if want_down and swing_low is not None:
        level = float(window.low[swing_low])
        if crosses_down(float(close[t - 1]), float(close[t]), level):
            return {"kind": "support", "level": level, "swing_bar_time":
                    iso_seconds(window.times[swing_low]), "previous_close": float(close[t - 1]),
                    "close": float(close[t]), "bars": lookback, "k": k}
    return None


def _trend(close: np.ndarray, t: int, m: int) -> float | None:
    """``C_{t-1} - C_{t-1-m}`` (the prior trend); 0.0 when ``m = 0``; None without the bars."""
    if m == 0:
        return 0.0
    if t - 1 - m < 0:
        return None
    return float(close[t - 1] - close[t - 1 - m])


def candlestick(params: Params, ctx: Context) -> Details | None:
    """Bar ``t`` completes ``pattern`` (one of :data:`CANDLESTICK_PATTERNS`, after Nison).

    Details: pattern, open, high, low, close, body, range, upper_shadow, lower_shadow (price
    units); except for ``doji`` also trend_bars and prior_trend_change (``C[t-1] - C[t-1-m]``).
    """
    window = ctx.window
    pattern, m = params["pattern"], params["trend_bars"]
    if window is None or len(window) < 1:
        return None
    t = len(window) - 1
    o, h, lo, c = (float(a[t]) for a in (window.open, window.high, window.low, window.close))
    body, rng = abs(c - o), h - lo
    upper, lower = h - max(o, c), min(o, c) - lo
    trend = None
    if pattern == "doji":
        fired = rng > 0 and body <= DOJI_MAX_BODY_RATIO * rng
    elif pattern == "hammer":
        trend = _trend(window.close, t, m)
        fired = (rng > 0 and body > 0 and lower >= HAMMER_MIN_LOWER_TO_BODY * body
                 and upper <= HAMMER_MAX_UPPER_RATIO * rng
                 and trend is not None and (m == 0 or trend < 0))
    else:
        if t < 1:
            return None
        o1, c1 = float(window.open[t - 1]), float(window.close[t - 1])
        trend = _trend(window.close, t, m)
        if trend is None:
            return None
        if pattern == "bullish_engulfing":
            fired = (c1 < o1 and c > o and o <= c1 and c >= o1 and body > o1 - c1
                     and (m == 0 or trend < 0))
        else:
            fired = (c1 > o1 and c < o and o >= c1 and c <= o1 and body > c1 - o1
                     and (m == 0 or trend > 0))
    if not fired:
        return None
    details = {"pattern": pattern, "open": o, "high": h, "low": lo, "close": c, "body": body,
               "range": rng, "upper_shadow": upper, "lower_shadow": lower}
    if pattern != "doji":
        details.update(trend_bars=m, prior_trend_change=trend)
    return details
