"""Walk-forward (time-ordered) splits of a pooled multi-symbol training frame.

The cut points are calendar bars shared by every symbol: the distinct ``bar_time`` values of
the pooled frame are cut into a first training span of ``min_train_bars`` dates followed by
``n_folds`` consecutive validation windows. For the validation window that starts at date
``U[a]``:

* validation rows: ``U[a] <= bar_time <= U[b - 1]`` (every symbol, same dates);
* training rows: ``bar_time <= U[a - 1 - embargo_bars]`` (expanding, or the last
  ``train_bars`` dates of that span when rolling) **and** ``label_time < U[a]``, i.e. the
  label of a training row (the close of its next bar) is known strictly before the first
  validation bar. The embargo leaves ``embargo_bars`` dates unused between training and
  validation, and the ``label_time`` purge catches symbols whose next bar comes later than
  the calendar's next date (gaps, halts, different trading calendars).

Example:
    >>> folds = walk_forward_splits(frame["bar_time"], frame["label_time"], n_folds=5,
    ...                             min_train_bars=500)
    >>> for fold in folds:
    ...     model.fit(X[fold.train], y[fold.train]); p = model.predict_proba(X[fold.valid])
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import TypeAlias

import numpy as np
import numpy.typing as npt
import pandas as pd

#: Per-row times in any form ``pandas.to_datetime`` accepts (tz-aware or naive UTC).
Times: TypeAlias = "pd.Series | pd.DatetimeIndex | npt.NDArray[np.generic] | Sequence[object]"


@dataclass(frozen=True)
class Fold:
    """One walk-forward fold: positional row indices and the dates that bound them."""

    number: int
    train: np.ndarray
    valid: np.ndarray
    train_start: pd.Timestamp
    train_end: pd.Timestamp
    valid_start: pd.Timestamp
    valid_end: pd.Timestamp

    def describe(self) -> dict[str, object]:
        return {
            "fold": self.number,
            "train_start": self.train_start.isoformat(),
            "train_end": self.train_end.isoformat(),
            "valid_start": self.valid_start.isoformat(),
            "valid_end": self.valid_end.isoformat(),
            "train_rows": int(self.train.size),
            "valid_rows": int(self.valid.size),
        }


def _times(values: Times) -> npt.NDArray[np.int64]:
    index = pd.DatetimeIndex(pd.to_datetime(values, utc=True))
    return index.as_unit("ns").asi8


def walk_forward_splits(
    bar_time: Times,
    label_time: Times | None = None,
    *,
    n_folds: int = 5,
    min_train_bars: int = 500,
    embargo_bars: int = 1,
    train_bars: int | None = None,
) -> list[Fold]:
    """Time-ordered folds over pooled rows.

    Args:
        bar_time: Per-row bar time (any order; tz-aware or naive UTC).
        label_time: Per-row time of the bar whose close defines the label (next bar of the
            same symbol). ``None`` means "the next calendar date" (only the embargo applies).
        n_folds: Number of validation windows (equal numbers of dates, the last one takes the
            remainder).
        min_train_bars: Distinct dates in the first training span (before its embargo).
        embargo_bars: Distinct dates skipped between the last training date and the first
            validation date (>= 1 keeps a training label off the validation features).
        train_bars: ``None`` = expanding window; otherwise a rolling window of this many
            distinct dates.

    Raises:
        ValueError: when there are too few dates for the requested folds.
    """
    if n_folds < 1:
        raise ValueError("n_folds must be >= 1")
    if embargo_bars < 0:
        raise ValueError("embargo_bars must be >= 0")
    if min_train_bars < 1:
        raise ValueError("min_train_bars must be >= 1")
    times = _times(bar_time)
    labels = _times(label_time) if label_time is not None else None
    if labels is not None and labels.shape != times.shape:
        raise ValueError("bar_time and label_time differ in length")
    uniq = np.unique(times)
    first_valid = min_train_bars + embargo_bars
    n_valid_dates = uniq.size - first_valid
    if n_valid_dates < n_folds:
        raise ValueError(
            f"{uniq.size} distinct bar times are too few for min_train_bars={min_train_bars}, "
            f"embargo_bars={embargo_bars} and {n_folds} validation windows"
        )
    size = n_valid_dates // n_folds
    folds: list[Fold] = []
    for k in range(n_folds):
        a = first_valid + k * size
        b = uniq.size if k == n_folds - 1 else a + size
        last_train = a - 1 - embargo_bars
        first_train = 0 if train_bars is None else max(0, last_train - train_bars + 1)
        valid_start, valid_end = uniq[a], uniq[b - 1]
        train_mask = (times >= uniq[first_train]) & (times <= uniq[last_train])
        if labels is not None:
            train_mask &= labels < valid_start
        valid_mask = (times >= valid_start) & (times <= valid_end)
        train = np.flatnonzero(train_mask)
        valid = np.flatnonzero(valid_mask)
        ts = pd.Timestamp
        folds.append(
            Fold(
                number=k,
                train=train,
                valid=valid,
                train_start=ts(uniq[first_train], tz="UTC"),
                train_end=ts(times[train].max() if train.size else uniq[last_train], tz="UTC"),
                valid_start=ts(valid_start, tz="UTC"),
                valid_end=ts(valid_end, tz="UTC"),
            )
        )
    return folds
