"""Technical indicators via ``ta`` 0.11 over a whole OHLCV series: the definition.

``compute_indicators(frame)`` runs ``ta`` once over a frame. Training, backfill, repair and
dashboards call it; the processor advances the same indicators one bar at a time with
``stocksage.indicators.incremental`` (O(1) per bar), whose output is tested equal to this function
on the whole series. Imports go one way: ``definition`` (batch ``ta``) -> ``features`` ->
``incremental`` (O(1) state) -> ``stocksage.state`` -> ``stocksage.processing`` (checked by
the import contracts in pyproject.toml, ``make lint``).

Warm-up (measured with ta 0.11): the first value appears at row index
``WARMUP_ROWS[column]`` (0-based) of a series: sma_20 19, ema_12 11, ema_26 25, rsi_14 13,
macd 25, macd_signal 33, macd_diff 33, bb_* 19, atr_14 13, obv 0. Earlier rows are NaN.
(``ta``'s ATR writes 0.0, not NaN, during its warm-up; we write NaN.)
"""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands
from ta.volume import OnBalanceVolumeIndicator

from stocksage.bars import OHLCV
from stocksage.config import STACK

__all__ = [
    "INDICATOR_COLUMNS",
    "MIN_WINDOW_BARS",
    "OUTPUT_COLUMNS",
    "WARMUP_ROWS",
    "compute_indicators",
    "recursion_decay",
]

_P = {name: int(value) for name, value in STACK.indicators.items() if name != "bb_dev"}
BB_DEV = float(STACK.indicators["bb_dev"])

INDICATOR_COLUMNS: tuple[str, ...] = STACK.indicator_columns
"""Indicator column names, in order (from stack.json)."""

_EXPECTED_COLUMNS = (
    f"sma_{_P['sma_window']}", f"ema_{_P['ema_fast']}", f"ema_{_P['ema_slow']}",
    f"rsi_{_P['rsi_window']}", "macd", "macd_signal", "macd_diff",
    "bb_mavg", "bb_high", "bb_low", "bb_pband", f"atr_{_P['atr_window']}", "obv",
)  # fmt: skip
if INDICATOR_COLUMNS != _EXPECTED_COLUMNS:
    raise ValueError(
        f"stack.json indicator_columns {list(INDICATOR_COLUMNS)} do not match the indicator "
        f"parameters; expected {list(_EXPECTED_COLUMNS)}"
    )
(SMA, EMA_FAST, EMA_SLOW, RSI, _, _, _, _, _, _, _, ATR, _) = INDICATOR_COLUMNS

WARMUP_ROWS: dict[str, int] = {
    SMA: _P["sma_window"] - 1,
    EMA_FAST: _P["ema_fast"] - 1,
    EMA_SLOW: _P["ema_slow"] - 1,
    RSI: _P["rsi_window"] - 1,
    "macd": _P["ema_slow"] - 1,
    "macd_signal": _P["ema_slow"] + _P["macd_signal"] - 2,
    "macd_diff": _P["ema_slow"] + _P["macd_signal"] - 2,
    "bb_mavg": _P["bb_window"] - 1,
    "bb_high": _P["bb_window"] - 1,
    "bb_low": _P["bb_window"] - 1,
    "bb_pband": _P["bb_window"] - 1,
    ATR: _P["atr_window"] - 1,
    "obv": 0,
}
"""0-based row of the first non-NaN value of each indicator (measured against ta 0.11)."""


def _output_columns() -> tuple[str, ...]:
    extra = tuple(name for name in STACK.features if name not in INDICATOR_COLUMNS)
    return INDICATOR_COLUMNS + extra


OUTPUT_COLUMNS: tuple[str, ...] = _output_columns()
"""Columns of every output row (``Kernel.update``, the results item): indicators, then the
features not already among them (``rsi_14`` and ``bb_pband`` are both)."""


def recursion_decay(window_bars: int) -> float:
    """Worst factor by which a recursive indicator forgets its start after ``window_bars`` bars.

    ``max((1 - 2/(span+1))^w for the EMAs, (1 - 1/n)^w for Wilder RSI/ATR)``.
    """
    factors = [
        1 - 2 / (_P["ema_fast"] + 1),
        1 - 2 / (_P["ema_slow"] + 1),
        1 - 2 / (_P["macd_signal"] + 1),
        1 - 1 / _P["rsi_window"],
        1 - 1 / _P["atr_window"],
    ]
    return max(factors) ** window_bars


def _min_window(tolerance: float = 1e-8) -> int:
    slowest = max(1 - 2 / (_P["ema_slow"] + 1), 1 - 1 / _P["rsi_window"], 1 - 1 / _P["atr_window"])
    needed = math.ceil(math.log(tolerance) / math.log(slowest))
    return max(needed, max(WARMUP_ROWS.values()) + 1)


MIN_WINDOW_BARS = _min_window()
"""Fewest bars from which a recursion seeded at their first bar is within 1e-8 (relative) of
the whole series' value: the shortest history ``streaming.seed_from_frame`` should be given."""


def compute_indicators(frame: pd.DataFrame) -> pd.DataFrame:
    """Indicators of an OHLCV series, computed once by ``ta`` over the whole frame.

    Args:
        frame: Rows in time order, float columns ``open high low close volume``, any index.

    Returns:
        float64 DataFrame, same index, columns ``INDICATOR_COLUMNS``:
        ``sma_20`` SMA(20) of close (ta.trend.SMAIndicator); ``ema_12``/``ema_26`` EMA of close
        (ta.trend.EMAIndicator, adjust=False); ``rsi_14`` RSI(14), Wilder smoothing, 0..100
        (ta.momentum.RSIIndicator); ``macd``, ``macd_signal``, ``macd_diff`` MACD(12, 26, 9) in
        price units (ta.trend.MACD); ``bb_mavg``, ``bb_high``, ``bb_low`` Bollinger(20, 2)
        in price units and ``bb_pband`` %B (0 at the low band, 1 at the high band)
        (ta.volatility.BollingerBands); ``atr_14`` ATR(14), Wilder, price units
        (ta.volatility.AverageTrueRange; all NaN for frames under 14 rows, where ta raises);
        ``obv`` on-balance volume in volume units, first row counted as +volume
        (ta.volume.OnBalanceVolumeIndicator). NaN during warm-up, see ``WARMUP_ROWS``.

    Raises:
        ValueError: when an OHLCV column is missing.
    """
    missing = [name for name in OHLCV if name not in frame.columns]
    if missing:
        raise ValueError(f"frame lacks column(s): {', '.join(missing)}")
    data = frame[list(OHLCV)].astype(np.float64).reset_index(drop=True)
    if data.empty:
        return pd.DataFrame(
            {name: pd.Series(dtype=np.float64) for name in INDICATOR_COLUMNS}, index=frame.index
        )
    close, high, low, volume = data["close"], data["high"], data["low"], data["volume"]
    macd = MACD(close, window_slow=_P["ema_slow"], window_fast=_P["ema_fast"],
                window_sign=_P["macd_signal"])  # fmt: skip
    bands = BollingerBands(close, window=_P["bb_window"], window_dev=BB_DEV)
    columns = {
        SMA: SMAIndicator(close, window=_P["sma_window"]).sma_indicator(),
        EMA_FAST: EMAIndicator(close, window=_P["ema_fast"]).ema_indicator(),
        EMA_SLOW: EMAIndicator(close, window=_P["ema_slow"]).ema_indicator(),
        RSI: RSIIndicator(close, window=_P["rsi_window"]).rsi(),
        "macd": macd.macd(),
        "macd_signal": macd.macd_signal(),
        "macd_diff": macd.macd_diff(),
        "bb_mavg": bands.bollinger_mavg(),
        "bb_high": bands.bollinger_hband(),
        "bb_low": bands.bollinger_lband(),
        "bb_pband": bands.bollinger_pband(),
        ATR: _atr(high, low, close),
        "obv": OnBalanceVolumeIndicator(close, volume).on_balance_volume(),
    }
    values = {name: np.asarray(series, dtype=np.float64) for name, series in columns.items()}
    return pd.DataFrame(values, index=frame.index)[list(INDICATOR_COLUMNS)]


def _atr(high: pd.Series, low: pd.Series, close: pd.Series) -> np.ndarray:
    window = _P["atr_window"]
    if len(close) < window:
        return np.full(len(close), np.nan)
    atr = AverageTrueRange(high, low, close, window=window).average_true_range()
    values = atr.to_numpy(dtype=np.float64, copy=True)
    values[: window - 1] = np.nan  # ta writes 0.0 before it has `window` true ranges
    return values
