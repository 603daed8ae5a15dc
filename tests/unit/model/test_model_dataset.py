"""Labels and training rows: label of t uses close[t+1] only, features use bars <= t only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stocksage.config import STACK
from stocksage.datasets import load_bars
from stocksage.model.dataset import build_training_frame, label_symbol_frame

FEATURES = list(STACK.features)


@pytest.fixture(scope="module")
def tsla():
    return load_bars("TSLA")


@pytest.fixture(scope="module")
def tsla_rows(tsla):
    return label_symbol_frame("TSLA", tsla)


def test_label_is_next_close_above_this_close(tsla, tsla_rows):
    close = tsla["close"]
    pos = close.index.get_indexer(pd.DatetimeIndex(tsla_rows["bar_time"]))
    assert (pos >= 0).all()
    expected_up = (close.to_numpy()[pos + 1] > close.to_numpy()[pos]).astype(int)
    assert np.array_equal(tsla_rows["up"].to_numpy(), expected_up)
    np.testing.assert_allclose(
        tsla_rows["ret_next"], close.to_numpy()[pos + 1] / close.to_numpy()[pos] - 1
    )
    assert (pd.DatetimeIndex(tsla_rows["label_time"]) == tsla.index[pos + 1]).all()
    np.testing.assert_allclose(
        tsla_rows["last_ret"], close.to_numpy()[pos] / close.to_numpy()[pos - 1] - 1
    )


def test_last_bar_and_warm_up_rows_are_dropped(tsla, tsla_rows):
    assert tsla_rows["bar_time"].max() < tsla.index[-1]
    assert tsla_rows["bar_time"].max() == tsla.index[-2]
    assert np.isfinite(tsla_rows[FEATURES].to_numpy()).all()
    assert len(tsla_rows) < len(tsla) - 1  # warm-up rows gone
    assert list(tsla_rows.columns[3 : 3 + len(FEATURES)]) == FEATURES


def test_features_do_not_look_ahead(tsla, tsla_rows):
    # Features of bar t computed from the series truncated after t+1 (t+1 needed for the
    # label) equal those computed from the full series.
    for cut in (80, 150, 230):
        t = tsla.index[cut]
        truncated = label_symbol_frame("TSLA", tsla.iloc[: cut + 2])
        row_full = tsla_rows.loc[tsla_rows["bar_time"] == t, FEATURES].to_numpy()
        row_cut = truncated.loc[truncated["bar_time"] == t, FEATURES].to_numpy()
        np.testing.assert_allclose(row_cut, row_full, rtol=1e-9, atol=1e-12)
        assert int(truncated.loc[truncated["bar_time"] == t, "up"].iloc[0]) == int(
            tsla_rows.loc[tsla_rows["bar_time"] == t, "up"].iloc[0]
        )


def test_changing_a_future_close_only_changes_that_label(tsla):
    base = label_symbol_frame("TSLA", tsla)
    k = 120
    bumped = tsla.copy()
    bumped.iloc[k + 1, bumped.columns.get_loc("close")] *= 1.5
    bumped.iloc[k + 1, bumped.columns.get_loc("high")] *= 1.5
    other = label_symbol_frame("TSLA", bumped)
    t = tsla.index[k]
    same_time = base["bar_time"] <= t
    np.testing.assert_allclose(
        other.loc[same_time, FEATURES].to_numpy(), base.loc[same_time, FEATURES].to_numpy()
    )
    changed = (
        base.loc[same_time, "ret_next"].to_numpy() != other.loc[same_time, "ret_next"].to_numpy()
    )
    assert np.flatnonzero(changed).tolist() == [
        int(np.flatnonzero(base.loc[same_time, "bar_time"] == t)[0])
    ]


def test_pooled_frame_is_time_sorted_and_keeps_every_symbol():
    frames = {s: load_bars(s) for s in ("IBM", "FB", "TSLA")}
    pooled = build_training_frame(frames)
    assert set(pooled["symbol"]) == {"IBM", "FB", "TSLA"}
    keys = list(zip(pooled["bar_time"], pooled["symbol"], strict=True))
    assert keys == sorted(keys)
    assert not pooled.duplicated(["symbol", "bar_time"]).any()
    assert set(pooled["up"].unique()) <= {0, 1}


def test_short_symbols_are_skipped():
    frames = {"IBM": load_bars("IBM").iloc[:300], "FB": load_bars("FB").iloc[:30]}
    pooled = build_training_frame(frames)
    assert set(pooled["symbol"]) == {"IBM"}
