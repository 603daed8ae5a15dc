"""Walk-forward splits: time order, embargo, label purge, one calendar cut for all symbols."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from stocksage.model.walkforward import walk_forward_splits


def _synthetic_panel(seed: int) -> pd.DataFrame:
    """Several symbols on different, gappy business-day calendars (like real datasets)."""
    rng = np.random.default_rng(seed)
    days = pd.bdate_range("2001-01-01", periods=int(rng.integers(400, 900)), tz="UTC")
    rows = []
    for s in range(int(rng.integers(2, 6))):
        start = int(rng.integers(0, len(days) // 3))
        stop = int(rng.integers(2 * len(days) // 3, len(days) + 1))
        keep = rng.random(stop - start) > rng.uniform(0, 0.2)  # random gaps per symbol
        times = days[start:stop][keep]
        label = [*times[1:], pd.NaT]
        rows.append(
            pd.DataFrame({"symbol": f"S{s}", "bar_time": times, "label_time": label}).iloc[:-1]
        )  # the last bar has no label
    frame = pd.concat(rows).sample(frac=1.0, random_state=seed).reset_index(drop=True)
    return frame


def _check(frame: pd.DataFrame, folds, embargo: int, train_bars: int | None) -> None:
    dates = np.sort(frame["bar_time"].unique())
    times = frame["bar_time"].to_numpy()
    labels = frame["label_time"].to_numpy()
    previous_valid_end = None
    covered = []
    for fold in folds:
        train, valid = fold.train, fold.valid
        assert train.size and valid.size
        assert np.intersect1d(train, valid).size == 0
        t_train, t_valid = times[train], times[valid]
        # strictly before, with >= embargo unused calendar dates in between
        assert t_train.max() < t_valid.min()
        gap = np.searchsorted(dates, t_valid.min()) - np.searchsorted(dates, t_train.max()) - 1
        assert gap >= embargo
        # no training label is revealed at or after the first validation bar
        assert (labels[train] < t_valid.min()).all()
        # same calendar cut for every symbol: the validation set is exactly the rows in range
        in_range = np.flatnonzero((times >= t_valid.min()) & (times <= t_valid.max()))
        assert np.array_equal(np.sort(valid), in_range)
        assert fold.valid_start == pd.Timestamp(t_valid.min())
        # validation windows are consecutive and do not overlap
        if previous_valid_end is not None:
            assert t_valid.min() > previous_valid_end
            between = (dates > previous_valid_end) & (dates < t_valid.min())
            assert not between.any()
        previous_valid_end = t_valid.max()
        covered.append(valid)
        if train_bars is not None:
            span = np.searchsorted(dates, t_train.max()) - np.searchsorted(dates, t_train.min())
            assert span + 1 <= train_bars
    allv = np.concatenate(covered)
    assert np.unique(allv).size == allv.size
    assert previous_valid_end == dates[-1]


@pytest.mark.parametrize("seed", range(12))
def test_splits_have_no_overlap_or_look_ahead(seed):
    frame = _synthetic_panel(seed)
    rng = np.random.default_rng(100 + seed)
    embargo = int(rng.integers(0, 4))
    n_folds = int(rng.integers(1, 7))
    train_bars = None if seed % 2 else int(rng.integers(60, 200))
    folds = walk_forward_splits(
        frame["bar_time"],
        frame["label_time"],
        n_folds=n_folds,
        min_train_bars=100,
        embargo_bars=embargo,
        train_bars=train_bars,
    )
    assert len(folds) == n_folds
    _check(frame, folds, embargo, train_bars)


def test_label_purge_drops_rows_whose_next_bar_is_inside_validation():
    # symbol B has a gap: its bar before the cut is labelled by a bar inside validation.
    days = pd.bdate_range("2020-01-01", periods=40, tz="UTC")
    a = pd.DataFrame({"symbol": "A", "bar_time": days[:-1], "label_time": days[1:]})
    b_times = days[[*range(19), 25, 30]]
    b = pd.DataFrame({"symbol": "B", "bar_time": b_times[:-1], "label_time": b_times[1:]})
    frame = pd.concat([a, b], ignore_index=True)
    folds = walk_forward_splits(
        frame["bar_time"], frame["label_time"], n_folds=1, min_train_bars=20, embargo_bars=1
    )
    fold = folds[0]
    train = frame.iloc[fold.train]
    assert (train["label_time"] < fold.valid_start).all()
    # B's bar at days[18] (label days[25]) is purged though its own time is before the cut
    assert not ((train["symbol"] == "B") & (train["bar_time"] == days[18])).any()
    assert ((train["symbol"] == "A") & (train["bar_time"] == days[18])).any()


def test_too_few_dates_is_a_clear_error():
    days = pd.bdate_range("2020-01-01", periods=30, tz="UTC")
    with pytest.raises(ValueError, match="too few"):
        walk_forward_splits(days, None, n_folds=5, min_train_bars=28)


def test_real_pooled_frame_splits(real_training_frame):
    frame = real_training_frame
    folds = walk_forward_splits(
        frame["bar_time"], frame["label_time"], n_folds=5, min_train_bars=500
    )
    _check(frame, folds, 1, None)


@pytest.fixture(scope="module")
def real_training_frame():
    from stocksage.datasets import load_bars
    from stocksage.model.dataset import build_training_frame

    return build_training_frame({s: load_bars(s) for s in ("AAPL", "GOOG", "FB")})
