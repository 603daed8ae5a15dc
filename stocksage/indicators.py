"""Technical indicators via ``ta`` 0.11, in batch and streaming (windowed) form.

Batch: ``compute_indicators(frame)`` runs ``ta`` once over an OHLCV frame.

Streaming: ``advance(state, bars)`` keeps, per symbol, only the last ``window_bars`` (600) bars
plus one number (``obv_offset``) and recomputes ``ta`` over window + new bars. The result equals
the batch run over the whole series (relative error <= 1e-6; in practice <= 1e-12) because:

- SMA(20), Bollinger(20): finite windows of 20 bars, all inside the 600-bar window. Only float
  round-off differs (pandas' running rolling sums start at another row): ~1e-15 relative for
  SMA, ~1e-12 for the bands, ~1e-9 absolute for %B.
- EMA(12), EMA(26), MACD(12, 26, 9): ``ewm(adjust=False)`` is ``y_t = (1-a) y_{t-1} + a x_t``
  with ``a = 2/(span+1)``. Starting the recursion at the window's first bar instead of the
  series' first bar changes ``y_t`` by ``(1-a)^k (y'_0 - y_0)`` after ``k`` bars. Every value
  ``advance`` emits has ``k >= window_bars`` bars of recursion behind it once the window is full
  (before that the window IS the whole series and the result is identical). The slowest
  factor is EMA(26): ``(25/27)^600 = exp(600 ln(25/27)) = exp(-46.2) = 9e-21``, i.e. 4 orders
  of magnitude under float64's 1.1e-16 unit round-off, leaving room for a 10^4 ratio between
  the start-up difference and the current value. The MACD signal EMA(9) filters a MACD whose
  error already decays like ``(25/27)^k``; a stable filter keeps that rate.
- RSI(14), ATR(14): Wilder smoothing, ``a = 1/14``: ``(13/14)^600 = exp(-44.5) = 5e-20``.
  ``ta`` seeds ATR with the mean of the first 14 true ranges of the frame it sees (and RSI
  with a zero first gain/loss): a different seed, forgotten at the same rate.
- OBV: cumulative; ``ta`` counts the first row of any frame as ``+volume``. The state carries
  ``obv_offset = OBV_full(first window bar) - volume(first window bar)``, so
  ``OBV_full = obv_offset + OBV_ta(window)`` exactly (integer volumes sum exactly in float64).

``recursion_decay(window_bars)`` returns that worst factor; ``MIN_WINDOW_BARS`` is the
smallest window whose factor is <= 1e-8 (249 bars; ``advance`` refuses smaller windows).

Warm-up (measured with ta 0.11): the first value appears at row index
``WARMUP_ROWS[column]`` (0-based) of a series: sma_20 19, ema_12 11, ema_26 25, rsi_14 13,
macd 25, macd_signal 33, macd_diff 33, bb_* 19, atr_14 13, obv 0. Earlier rows are NaN.
(``ta``'s ATR writes 0.0, not NaN, during its warm-up; we write NaN.)

Duplicate / late policy of ``advance`` (docs/DESIGN.md): bars are taken in the given (arrival)
order; a bar is accepted only when strictly newer than every bar seen for the symbol. A bar
whose time equals a bar in the state window, the state's last time, or any earlier bar of the
same call is a duplicate (even if its prices differ: first write wins); any other bar older
than the latest accepted time is late (this includes re-sent bars older than the window).
Both are dropped from the indicators; the caller counts/logs them. Because the decision only
depends on arrival order, any split of a stream into batches gives the same result.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any

import numpy as np
import pandas as pd
from ta.momentum import RSIIndicator
from ta.trend import MACD, EMAIndicator, SMAIndicator
from ta.volatility import AverageTrueRange, BollingerBands
from ta.volume import OnBalanceVolumeIndicator

from stocksage.bars import OHLCV, TIME_UNIT, Bar, bars_to_frame, format_time
from stocksage.config import STACK

__all__ = [
    "INDICATOR_COLUMNS",
    "MIN_WINDOW_BARS",
    "OUTPUT_COLUMNS",
    "WARMUP_ROWS",
    "WindowState",
    "WindowUpdate",
    "advance",
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
"""Columns of ``WindowUpdate.indicators``: indicators, then features not already among them
(``rsi_14`` and ``bb_pband`` are both)."""


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
"""Smallest ``window_bars`` accepted by ``advance`` (recursion decay <= 1e-8)."""


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


@dataclass(eq=False)
class WindowState:
    """What ``advance`` keeps per symbol between batches (stored in the window-state table).

    Attributes:
        symbol: Ticker.
        bars: The last <= window_bars accepted bars: index ``bar_time`` (UTC), float64 OHLCV.
        obv_offset: OBV of the full series minus ta's OBV of ``bars`` (volume units).
        last_bar_time: Time of the newest accepted bar (None before the first one).
        bars_seen: Accepted bars since the stream began (the full series length).
    """

    symbol: str
    bars: pd.DataFrame = field(default_factory=lambda: bars_to_frame([]))
    obv_offset: float = 0.0
    last_bar_time: datetime | None = None
    bars_seen: int = 0

    FORMAT = 1

    def to_item(self) -> dict[str, Any]:
        """Plain-typed dict for DynamoDB (str, int, float, bytes; no Decimal, no None).

        Keys: ``symbol``, ``bars`` (zlib of int64 epoch-microsecond times followed by the
        float64 open, high, low, close, volume columns, little-endian), ``bar_count``,
        ``obv_offset``, ``bars_seen``, ``format`` and, once a bar was accepted,
        ``last_bar_time`` (ISO UTC text). ~16 KB for 600 daily bars.
        """
        times = self.bars.index.as_unit(TIME_UNIT).asi8.astype("<i8")
        matrix = self.bars[list(OHLCV)].to_numpy(dtype="<f8")
        payload = times.tobytes() + np.ascontiguousarray(matrix.T).tobytes()
        item: dict[str, Any] = {
            "symbol": self.symbol,
            "bars": zlib.compress(payload, 6),
            "bar_count": len(self.bars),
            "obv_offset": float(self.obv_offset),
            "bars_seen": int(self.bars_seen),
            "format": self.FORMAT,
        }
        if self.last_bar_time is not None:
            item["last_bar_time"] = format_time(self.last_bar_time)
        return item

    @classmethod
    def from_item(cls, item: Mapping[str, Any]) -> WindowState:
        """Inverse of ``to_item``; numbers may arrive as Decimal, bytes as any buffer
        (or an object with a ``.value`` buffer, like boto3's ``Binary``).

        Raises:
            ValueError: for a missing key, unknown format or corrupt ``bars``.
        """
        try:
            if int(item["format"]) != cls.FORMAT:
                raise ValueError(f"unknown window state format {item['format']!r}")
            count = int(item["bar_count"])
            blob = item["bars"]
            blob = bytes(getattr(blob, "value", blob))
            last = item.get("last_bar_time")
            state = cls(
                symbol=str(item["symbol"]),
                bars=_decode_bars(blob, count),
                obv_offset=float(item["obv_offset"]),
                last_bar_time=None if last is None else _parse_time(str(last)),
                bars_seen=int(item["bars_seen"]),
            )
        except KeyError as err:
            raise ValueError(f"window state item lacks {err}") from None
        return state


def _decode_bars(blob: bytes, count: int) -> pd.DataFrame:
    width = 8 * (1 + len(OHLCV))
    inflater = zlib.decompressobj()
    try:
        payload = inflater.decompress(blob, count * width + 1)
    except zlib.error as err:
        raise ValueError(f"window state bars are corrupt ({err})") from None
    if len(payload) != count * width or not inflater.eof:
        raise ValueError(f"window state bars hold {len(payload)} bytes, expected {count * width}")
    times = np.frombuffer(payload, dtype="<i8", count=count)
    matrix = np.frombuffer(payload, dtype="<f8", offset=8 * count).reshape(len(OHLCV), count)
    index = pd.DatetimeIndex(
        pd.to_datetime(times, unit=TIME_UNIT, utc=True), name="bar_time"
    ).as_unit(TIME_UNIT)
    return pd.DataFrame(matrix.T.astype(np.float64), index=index, columns=list(OHLCV))


def _parse_time(text: str) -> datetime:
    moment = datetime.fromisoformat(text)
    if moment.tzinfo is None:
        raise ValueError(f"window state time {text!r} has no offset")
    return moment.astimezone(UTC)


@dataclass(eq=False)
class WindowUpdate:
    """Result of ``advance`` for one symbol and one batch.

    Attributes:
        accepted: Bars used, in time (= arrival) order.
        duplicates: Bars whose time was already seen (dropped).
        late: Bars older than the newest seen bar, not duplicates (dropped).
        indicators: One row per accepted bar, index ``bar_time`` (UTC), float64 columns
            ``OUTPUT_COLUMNS`` (indicators then features); NaN during warm-up.
        state: The state to store for the next batch.
    """

    accepted: list[Bar]
    duplicates: list[Bar]
    late: list[Bar]
    indicators: pd.DataFrame
    state: WindowState


def advance(
    state: WindowState | None, bars: Sequence[Bar], window_bars: int = STACK.window_bars
) -> WindowUpdate:
    """Feed one batch of a symbol's bars through the window (policy in the module docstring).

    Args:
        state: The symbol's stored state, or None for a new symbol.
        bars: Bars of that one symbol in arrival order (any count, may be empty).
        window_bars: Bars kept in the state (>= ``MIN_WINDOW_BARS``).

    Returns:
        WindowUpdate whose indicator rows equal ``features.enrich`` of the whole series at the
        same bars (relative error <= 1e-6, NaN exactly where the batch run is NaN).

    Raises:
        ValueError: window too small, mixed symbols, or no state and no bars.
    """
    if window_bars < MIN_WINDOW_BARS:
        raise ValueError(f"window_bars {window_bars} is below the minimum {MIN_WINDOW_BARS}")
    if state is None:
        if not bars:
            raise ValueError("advance needs a state or at least one bar to know the symbol")
        state = WindowState(symbol=bars[0].symbol)
    accepted, duplicates, late = _classify(state, bars)
    if not accepted:
        return WindowUpdate([], duplicates, late, _empty_output(), state)
    fresh = bars_to_frame(accepted)
    combined = pd.concat([state.bars, fresh]) if len(state.bars) else fresh
    output = _enriched(combined, state.obv_offset)
    start = max(len(combined) - window_bars, 0)
    new_state = WindowState(
        symbol=state.symbol,
        bars=combined.iloc[start:].copy(),
        obv_offset=float(output["obv"].iloc[start] - combined["volume"].iloc[start]),
        last_bar_time=accepted[-1].bar_time,
        bars_seen=state.bars_seen + len(accepted),
    )
    rows = output.iloc[len(combined) - len(accepted) :]
    return WindowUpdate(accepted, duplicates, late, rows, new_state)


def _classify(state: WindowState, bars: Sequence[Bar]) -> tuple[list[Bar], list[Bar], list[Bar]]:
    seen = set(state.bars.index.as_unit(TIME_UNIT).asi8.tolist())
    latest = state.last_bar_time
    if latest is not None:
        seen.add(_micros(latest))
    accepted: list[Bar] = []
    duplicates: list[Bar] = []
    late: list[Bar] = []
    for bar in bars:
        if bar.symbol != state.symbol:
            raise ValueError(f"bar of {bar.symbol} passed to the window of {state.symbol}")
        stamp = _micros(bar.bar_time)
        if stamp in seen:
            duplicates.append(bar)
        elif latest is not None and bar.bar_time < latest:
            late.append(bar)
        else:
            accepted.append(bar)
            latest = bar.bar_time
        seen.add(stamp)
    return accepted, duplicates, late


def _micros(moment: datetime) -> int:
    delta = moment - datetime(1970, 1, 1, tzinfo=UTC)
    return (delta.days * 86_400 + delta.seconds) * 1_000_000 + delta.microseconds


def _enriched(combined: pd.DataFrame, obv_offset: float) -> pd.DataFrame:
    from stocksage.features import compute_features  # features imports this module

    indicators = compute_indicators(combined)
    indicators["obv"] += obv_offset
    features = compute_features(pd.concat([combined, indicators], axis=1))
    extra = [name for name in OUTPUT_COLUMNS if name not in INDICATOR_COLUMNS]
    return pd.concat([indicators, features[extra]], axis=1)


def _empty_output() -> pd.DataFrame:
    index = pd.DatetimeIndex([], name="bar_time", dtype=f"datetime64[{TIME_UNIT}, UTC]")
    return pd.DataFrame(
        np.empty((0, len(OUTPUT_COLUMNS))), index=index, columns=list(OUTPUT_COLUMNS)
    )
