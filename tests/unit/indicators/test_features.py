"""Features: definitions, scale-free, no look-ahead, and the same values batch or streamed."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stocksage.bars import OHLCV
from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.indicators.definition import INDICATOR_COLUMNS, compute_indicators
from stocksage.indicators.features import FEATURES, compute_features, enrich


def test_enrich_columns_and_index() -> None:
    frame = load_bars("TSLA")
    result = enrich(frame)
    extra = [name for name in STACK.features if name not in INDICATOR_COLUMNS]
    assert list(result.columns) == [*OHLCV, *INDICATOR_COLUMNS, *extra]
    assert result.index.equals(frame.index)
    assert (result.dtypes == np.float64).all()
    features = compute_features(result)
    assert tuple(features.columns) == FEATURES == STACK.features
    assert features.index.equals(frame.index)


def test_definitions() -> None:
    frame = enrich(load_bars("MSFT").iloc[:400])
    got = compute_features(frame)
    close, volume = frame["close"], frame["volume"]
    mean20 = volume.rolling(20).mean()
    want = pd.DataFrame(
        {
            "ret_1": close / close.shift(1) - 1,
            "ret_5": close / close.shift(5) - 1,
            "rsi_14": frame["rsi_14"],
            "macd_diff_norm": frame["macd_diff"] / close,
            "bb_pband": frame["bb_pband"],
            "atr_norm": frame["atr_14"] / close,
            "ema_gap": frame["ema_12"] / frame["ema_26"] - 1,
            "sma_gap": close / frame["sma_20"] - 1,
            "volume_ratio": volume / mean20 - 1,
        }
    )[list(FEATURES)]
    pd.testing.assert_frame_equal(got, want, rtol=1e-12)
    first_valid = {name: int(got[name].first_valid_index() is not None and
                             np.flatnonzero(got[name].notna())[0])
                   for name in FEATURES}  # fmt: skip
    assert first_valid == {
        "ret_1": 1, "ret_5": 5, "rsi_14": 13, "macd_diff_norm": 33, "bb_pband": 19,
        "atr_norm": 13, "ema_gap": 25, "sma_gap": 19, "volume_ratio": 19,
    }  # fmt: skip


def test_scale_free() -> None:
    frame = load_bars("IBM").iloc[:300]
    scaled = frame.copy()
    scaled[["open", "high", "low", "close"]] *= 37.5
    scaled["volume"] *= 1000
    a, b = compute_features(enrich(frame)), compute_features(enrich(scaled))
    pd.testing.assert_frame_equal(a, b, rtol=1e-9, atol=1e-12)


@pytest.mark.parametrize("symbol", ["AAPL", "BTC-USD"])
def test_no_look_ahead(symbol: str) -> None:
    frame = load_bars(symbol).iloc[:900]
    full = enrich(frame)
    for cut in (1, 2, 6, 14, 20, 34, 35, 250, 899):
        pd.testing.assert_frame_equal(enrich(frame.iloc[:cut]), full.iloc[:cut])


def test_volume_ratio_nan_when_mean_volume_is_zero() -> None:
    frame = load_bars("TSLA").iloc[:60].copy()
    frame.iloc[10:40, frame.columns.get_loc("volume")] = 0.0
    ratio = compute_features(enrich(frame))["volume_ratio"]
    assert (ratio.iloc[20:29] == -1.0).all()  # zero volume, some volume in the 20-bar mean
    assert ratio.iloc[29:40].isna().all()  # 20-bar windows made only of zero volumes
    assert ratio.iloc[40:].notna().all()
    assert ratio.iloc[40] > 10  # first traded bar after the quiet stretch


def test_btc_zero_volume_bars_do_not_break_features() -> None:
    features = compute_features(enrich(load_bars("BTC-USD")))
    finite = np.isfinite(features.iloc[40:].drop(columns="volume_ratio").to_numpy())
    assert finite.all()
    assert not np.isinf(features.to_numpy()).any()


def test_infinite_ratios_become_nan() -> None:
    frame = load_bars("TSLA").iloc[:30].copy()
    frame.iloc[3, :4] = 0.0  # a zero close
    features = compute_features(enrich(frame))
    assert not np.isinf(features.to_numpy()).any()
    assert np.isnan(features["ret_1"].iloc[4]) and np.isnan(features["ret_5"].iloc[8])


def test_missing_indicator_columns() -> None:
    frame = load_bars("TSLA").iloc[:30]
    with pytest.raises(ValueError, match="rsi_14"):
        compute_features(pd.concat([frame, compute_indicators(frame).drop(columns="rsi_14")],
                                   axis=1))  # fmt: skip
