"""Incremental indicators: the recursion state of each ``ta`` indicator, advanced O(1) per bar.

``stocksage.indicators.definition.compute_indicators`` runs ``ta`` over a whole OHLCV frame; it is
the definition. This module keeps, per symbol, only what the recursions of those same indicators
carry from one bar to the next, and advances it one bar at a time for many symbols at once
(numpy arrays, one row per symbol). Cost per bar is constant: about 60 array operations per
*step* of a batch, where a step advances every symbol of the batch by one bar, so a live-feed
batch (hundreds of symbols, one bar each) is a single step.

What is carried (``Kernel`` columns), and why the value equals ``ta`` on the whole series:

* EMA(12), EMA(26): ``close.ewm(span, adjust=False)``, NaN before row span-1.
  Carried: the EMA itself.
* MACD(12, 26, 9): EMA12 - EMA26 (NaN before row 25); signal = ewm(9) of MACD, first value
  at row 25, NaN before row 33. Carried: the signal EMA.
* RSI(14): Wilder, ``ewm(alpha=1/14, adjust=False)`` of gains and losses, both 0 on row 0;
  100 when the loss average is 0. Carried: the two averages.
* ATR(14): row 13 = mean of the first 14 true ranges, then ``(atr*13 + tr)/14`` (a Python
  loop in ta). Carried: ATR, and the first 14 true ranges while warming up.
* SMA(20), Bollinger(20, 2): rolling mean and population std (ddof=0) of 20 closes.
  Carried: the last 20 closes.
* OBV: cumulative sum of +volume (close >= previous close, and row 0) or -volume.
  Carried: OBV.
* features ``ret_1``, ``ret_5``, ``volume_ratio`` (see ``stocksage.indicators.features``).
  Carried: the last 20 closes and volumes.

Every recursion is the same floating-point expression pandas evaluates (``pandas`` ewm with
``adjust=False`` computes ``(w*y + a*x) / (w + a)`` with ``w = 1 - a`` and skips the update
when ``y == x``; ``alpha`` is derived through pandas' centre of mass), so EMAs, RSI, MACD, ATR
and OBV are bit-identical to ``ta`` in practice. SMA and Bollinger are computed from the 20
closes directly; pandas' rolling sums carry their own round-off (running add/remove), so
they agree to ~1e-13 relative. ``bb_pband`` is a ratio whose numerator crosses zero, judged
with an absolute floor of 1e-9 (tests/unit/indicators/test_incremental.py).

Warm-up: NaN exactly where ``ta`` has NaN (``stocksage.indicators.definition.WARMUP_ROWS``), because
each output is masked by the symbol's 0-based bar index ``n``.

Seeding: a new symbol starts from the empty state (row 0 of the series). A symbol whose
history is known only as a frame (a state item of the old 600-bar format) is seeded by
running ``ta`` over the frame (``seed_from_frame``); when the frame is the whole series the
bars are replayed instead, which is exact through the warm-up too.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from stocksage.config import STACK
from stocksage.indicators.definition import (
    ATR,
    EMA_FAST,
    EMA_SLOW,
    INDICATOR_COLUMNS,
    OUTPUT_COLUMNS,
    RSI,
    SMA,
    WARMUP_ROWS,
    compute_indicators,
)
from stocksage.indicators.features import FEATURES, VOLUME_WINDOW

__all__ = [
    "ATR_WARM_BARS",
    "CLOSES_KEPT",
    "SCALARS",
    "Kernel",
    "seed_from_frame",
]

_P = {name: int(value) for name, value in STACK.indicators.items() if name != "bb_dev"}
_BB_DEV = float(STACK.indicators["bb_dev"])
_ATR_N = _P["atr_window"]
_SLOW = _P["ema_slow"]
_SIGNAL = _P["macd_signal"]

ATR_WARM_BARS = _ATR_N
"""True ranges carried per symbol until ATR is seeded (``Kernel.warm_tr`` columns): the ATR
window; from then on the Wilder average alone is carried."""

CLOSES_KEPT = max(_P["sma_window"], _P["bb_window"], VOLUME_WINDOW, 6)
"""Closes and volumes carried per symbol: the longest finite window (SMA/Bollinger 20,
volume mean 20, ``ret_5`` needs 6)."""

SCALARS = ("ema_fast", "ema_slow", "signal", "avg_gain", "avg_loss", "atr", "obv")
"""Recursion values carried per symbol (float64), in ``Kernel.scalars`` column order."""
_EF, _ES, _SG, _UP, _DN, _ATRV, _OBV = range(len(SCALARS))

_COLUMN = {name: i for i, name in enumerate(OUTPUT_COLUMNS)}


def _pandas_alpha(*, span: float | None = None, alpha: float | None = None) -> float:
    """``alpha`` exactly as pandas derives it (through the centre of mass)."""
    if span is not None:
        com = (span - 1) / 2.0
    elif alpha is not None:
        com = (1 - alpha) / alpha
    else:
        raise TypeError("_pandas_alpha() needs span or alpha")
    return 1.0 / (1.0 + com)


_A_FAST = _pandas_alpha(span=_P["ema_fast"])
_A_SLOW = _pandas_alpha(span=_SLOW)
_A_SIGNAL = _pandas_alpha(span=_SIGNAL)
_A_WILDER = _pandas_alpha(alpha=1 / _P["rsi_window"])


def _ewm_step(previous: np.ndarray, value: np.ndarray, alpha: float) -> np.ndarray:
    """One step of pandas' ``ewm(adjust=False)``: ``(w*y + a*x)/(w + a)``, unchanged if y == x."""
    weight = 1.0 - alpha
    updated = (weight * previous + alpha * value) / (weight + alpha)
    return np.where(previous == value, previous, updated)


@dataclass
class Kernel:
    """The indicator state of ``len(n)`` symbols, one row each.

    Attributes:
        n: int64 (S,): bars seen per symbol; also the 0-based index of the next bar.
        scalars: float64 (S, 7): ``SCALARS`` (price units; RSI averages in price units;
            OBV in volume units). Values before their first use are 0.
        closes: float64 (S, 20): the last ``CLOSES_KEPT`` closes, oldest first, NaN-padded on
            the left while fewer bars were seen.
        volumes: float64 (S, 20): the matching volumes.
        warm_tr: float64 (S, 14): the first 14 true ranges (only read before ATR's first value).
    """

    n: np.ndarray
    scalars: np.ndarray
    closes: np.ndarray
    volumes: np.ndarray
    warm_tr: np.ndarray

    @classmethod
    def empty(cls, rows: int) -> Kernel:
        """State of ``rows`` symbols that have seen no bar."""
        return cls(
            n=np.zeros(rows, dtype=np.int64),
            scalars=np.zeros((rows, len(SCALARS))),
            closes=np.full((rows, CLOSES_KEPT), np.nan),
            volumes=np.full((rows, CLOSES_KEPT), np.nan),
            warm_tr=np.zeros((rows, _ATR_N)),
        )

    @classmethod
    def stack(cls, kernels: Sequence[Kernel]) -> Kernel:
        """Concatenate single- or multi-row kernels (row order kept)."""
        if not kernels:
            return cls.empty(0)
        return cls(*(np.concatenate([getattr(k, name) for k in kernels])
                     for name in ("n", "scalars", "closes", "volumes", "warm_tr")))

    def row(self, index: int) -> Kernel:
        """A one-row copy."""
        pick = slice(index, index + 1)
        return Kernel(self.n[pick].copy(), self.scalars[pick].copy(), self.closes[pick].copy(),
                      self.volumes[pick].copy(), self.warm_tr[pick].copy())

    def __len__(self) -> int:
        return len(self.n)

    def step(self, rows: np.ndarray, ohlcv: np.ndarray) -> np.ndarray:
        """Advance ``rows`` by one bar each, in place; return their output values.

        Args:
            rows: int indices of the symbols that have a bar in this step (no repeats).
            ohlcv: float64 (len(rows), 5): open, high, low, close, volume of those bars.

        Returns:
            float64 (len(rows), len(OUTPUT_COLUMNS)): indicators then features
            (``stocksage.indicators.definition.OUTPUT_COLUMNS``), NaN during warm-up and where a
            ratio is undefined, equal to ``features.enrich`` over the whole series at those bars.
        """
        high, low, close, volume = ohlcv[:, 1], ohlcv[:, 2], ohlcv[:, 3], ohlcv[:, 4]
        i = self.n[rows]
        first = i == 0
        s = self.scalars[rows]
        closes = self.closes[rows]
        volumes = self.volumes[rows]
        prev_close = closes[:, -1]
        closes = np.concatenate([closes[:, 1:], close[:, None]], axis=1)
        volumes = np.concatenate([volumes[:, 1:], volume[:, None]], axis=1)

        # EMAs of close: the recursion starts at row 0 with the first close.
        s[:, _EF] = np.where(first, close, _ewm_step(s[:, _EF], close, _A_FAST))
        s[:, _ES] = np.where(first, close, _ewm_step(s[:, _ES], close, _A_SLOW))
        macd = s[:, _EF] - s[:, _ES]
        # MACD signal: ewm over MACD, whose first defined value is at row ema_slow - 1.
        start = i == _SLOW - 1
        s[:, _SG] = np.where(start, macd, np.where(i > _SLOW - 1,
                                                    _ewm_step(s[:, _SG], macd, _A_SIGNAL), 0.0))
        # RSI: gains/losses of close.diff(); row 0's diff is NaN and counts as 0 gain, 0 loss.
        with np.errstate(invalid="ignore"):
            diff = close - prev_close
            gain = np.where(diff > 0, diff, 0.0)
            loss = np.where(diff < 0, -diff, 0.0)
        s[:, _UP] = np.where(first, gain, _ewm_step(s[:, _UP], gain, _A_WILDER))
        s[:, _DN] = np.where(first, loss, _ewm_step(s[:, _DN], loss, _A_WILDER))
        # ATR: true range with a NaN-skipping max (row 0: high - low); seed = mean of 14.
        true_range = np.fmax(np.fmax(high - low, np.abs(high - prev_close)),
                             np.abs(low - prev_close))
        warming = i < _ATR_N
        if warming.any():
            warm = self.warm_tr[rows]
            warm_rows = np.flatnonzero(warming)
            warm[warm_rows, i[warm_rows]] = true_range[warm_rows]
            self.warm_tr[rows] = warm
            seed = warm.sum(axis=1) / _ATR_N
        else:
            seed = s[:, _ATRV]
        s[:, _ATRV] = np.where(i == _ATR_N - 1, seed, np.where(
            i >= _ATR_N, (s[:, _ATRV] * (_ATR_N - 1) + true_range) / float(_ATR_N), 0.0))
        # OBV: +volume on row 0 and when close >= previous close.
        signed = np.where(close < prev_close, -volume, volume)
        s[:, _OBV] = np.where(first, volume, s[:, _OBV] + signed)

        self.scalars[rows] = s
        self.closes[rows] = closes
        self.volumes[rows] = volumes
        self.n[rows] = i + 1
        return _outputs(i, s, closes, volumes, close, volume, prev_close)


def _outputs(i: np.ndarray, s: np.ndarray, closes: np.ndarray, volumes: np.ndarray,
             close: np.ndarray, volume: np.ndarray, prev_close: np.ndarray) -> np.ndarray:
    out = np.full((len(i), len(OUTPUT_COLUMNS)), np.nan)
    window = _P["bb_window"]
    last = closes[:, -window:]
    with np.errstate(invalid="ignore", divide="ignore"):
        mavg = last.sum(axis=1) / window
        constant = last.max(axis=1) == last.min(axis=1)
        mavg = np.where(constant, last[:, -1], mavg)
        std = np.sqrt(((last - mavg[:, None]) ** 2).sum(axis=1) / window)
        std = np.where(constant, 0.0, std)
        high_band, low_band = mavg + _BB_DEV * std, mavg - _BB_DEV * std
        width = high_band - low_band
        pband = np.where(width != 0, (close - low_band) / np.where(width != 0, width, 1.0),
                         np.nan)
        macd = s[:, _EF] - s[:, _ES]
        rsi = np.where(s[:, _DN] == 0, 100.0, 100 - (100 / (1 + s[:, _UP] / s[:, _DN])))
        sma = closes[:, -_P["sma_window"]:].sum(axis=1) / _P["sma_window"]
        sma = np.where(closes[:, -_P["sma_window"]:].max(axis=1)
                       == closes[:, -_P["sma_window"]:].min(axis=1), close, sma)
    values_by_column = {  # NaN before each column's first row (WARMUP_ROWS, as ta)
        SMA: sma,
        EMA_FAST: s[:, _EF],
        EMA_SLOW: s[:, _ES],
        RSI: rsi,
        "macd": macd,
        "macd_signal": s[:, _SG],
        "macd_diff": macd - s[:, _SG],
        "bb_mavg": mavg,
        "bb_high": high_band,
        "bb_low": low_band,
        "bb_pband": pband,
        ATR: s[:, _ATRV],
        "obv": s[:, _OBV],
    }
    for name, values in values_by_column.items():
        out[:, _COLUMN[name]] = np.where(i >= WARMUP_ROWS[name], values, np.nan)
    col = {name: out[:, _COLUMN[name]] for name in INDICATOR_COLUMNS}
    with np.errstate(invalid="ignore", divide="ignore"):
        volume_mean = volumes.sum(axis=1) / VOLUME_WINDOW
        features = {
            "ret_1": np.where(i >= 1, close / prev_close - 1, np.nan),
            "ret_5": np.where(i >= 5, close / closes[:, -6] - 1, np.nan),
            "rsi_14": col[RSI],
            "macd_diff_norm": col["macd_diff"] / close,
            "bb_pband": col["bb_pband"],
            "atr_norm": col[ATR] / close,
            "ema_gap": col[EMA_FAST] / col[EMA_SLOW] - 1,
            "sma_gap": close / col[SMA] - 1,
            "volume_ratio": np.where((i >= VOLUME_WINDOW - 1) & (volume_mean > 0),
                                     volume / volume_mean - 1, np.nan),
        }
    for name in FEATURES:
        values = features[name]
        out[:, _COLUMN[name]] = np.where(np.isfinite(values), values, np.nan)
    return out


def seed_from_frame(frame: pd.DataFrame, bars_seen: int, obv_offset: float = 0.0) -> Kernel:
    """One-row kernel for a symbol whose recent bars are known, by running ``ta`` over them.

    Args:
        frame: The symbol's last bars in time order, float columns ``open high low close
            volume`` (e.g. the 600-bar window of a format-1 state item). At least
            ``CLOSES_KEPT`` rows unless it is the whole series.
        bars_seen: Bars in the symbol's whole series (>= len(frame)).
        obv_offset: OBV of the whole series minus ``ta``'s OBV of ``frame`` (volume units;
            format 1 kept this number).

    Returns:
        A kernel whose next ``step`` continues the series. When ``frame`` is the whole series
        (``bars_seen == len(frame)``) its bars are replayed through ``Kernel.step`` (exact
        through the warm-up); otherwise the recursions are taken from ``ta`` at the last row:
        EMAs, MACD signal and ATR from ``ta``'s indicators, RSI's averages from the same
        pandas ewm ``ta.momentum.RSIIndicator`` runs, OBV from ``ta`` plus ``obv_offset``.
        Both are within float round-off of ``ta`` over the whole series once the frame holds
        ``stocksage.indicators.definition.MIN_WINDOW_BARS`` bars (the recursions forget their
        start).

    Raises:
        ValueError: when ``bars_seen < len(frame)``, or when a partial frame is too short.
    """
    data = frame[["open", "high", "low", "close", "volume"]].astype(np.float64)
    rows = len(data)
    if bars_seen < rows:
        raise ValueError(f"bars_seen {bars_seen} is below the frame's {rows} rows")
    kernel = Kernel.empty(1)
    if bars_seen == rows:
        matrix = data.to_numpy()
        only = np.zeros(1, dtype=np.int64)
        for values in matrix:
            kernel.step(only, values[None, :])
        return kernel
    if rows < max(CLOSES_KEPT, _SLOW + _SIGNAL):
        raise ValueError(f"a partial history needs at least {max(CLOSES_KEPT, _SLOW + _SIGNAL)}"
                         f" bars to seed from, got {rows}")
    flat = data.reset_index(drop=True)
    indicators = compute_indicators(flat)
    from ta.trend import MACD, EMAIndicator  # the unmasked recursions at the last row

    close = flat["close"]
    diff = close.diff(1)
    gains = diff.where(diff > 0, 0.0).ewm(alpha=1 / _P["rsi_window"], adjust=False).mean()
    losses = (-diff.where(diff < 0, 0.0)).ewm(alpha=1 / _P["rsi_window"], adjust=False).mean()
    macd = MACD(close, window_slow=_SLOW, window_fast=_P["ema_fast"], window_sign=_SIGNAL)
    s = kernel.scalars[0]
    s[_EF] = EMAIndicator(close, window=_P["ema_fast"]).ema_indicator().iloc[-1]
    s[_ES] = EMAIndicator(close, window=_SLOW).ema_indicator().iloc[-1]
    s[_SG] = macd.macd_signal().iloc[-1]
    s[_UP], s[_DN] = gains.iloc[-1], losses.iloc[-1]
    s[_ATRV] = indicators[ATR].iloc[-1]
    s[_OBV] = indicators["obv"].iloc[-1] + obv_offset
    kernel.n[0] = bars_seen
    kernel.closes[0] = close.to_numpy()[-CLOSES_KEPT:]
    kernel.volumes[0] = flat["volume"].to_numpy()[-CLOSES_KEPT:]
    return kernel
