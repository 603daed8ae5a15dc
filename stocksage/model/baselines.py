"""Naive next-bar direction forecasts that any model must beat.

* ``majority``: the training-fold up-rate for every row (the best constant forecast).
* ``persistence``: last-move persistence, smoothed. The hard rule "p_up = 1 if the last
  return was positive else 0" has unbounded log loss, so the probability is the training-fold
  frequency of an up bar after an up bar (resp. after a flat/down bar), with a Beta(1, 1)
  prior (Laplace smoothing). Its ranking equals the hard rule's whenever momentum holds in
  the training fold.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import numpy.typing as npt

if TYPE_CHECKING:
    import pandas as pd

BASELINES: tuple[str, ...] = ("majority", "persistence")


def majority_proba(y_train: npt.ArrayLike, n_valid: int) -> npt.NDArray[np.float64]:
    """Training up-rate repeated ``n_valid`` times."""
    y = np.asarray(y_train, dtype=float)
    rate = float(y.mean()) if y.size else 0.5
    return np.full(int(n_valid), rate)


def persistence_proba(
    last_ret_train: npt.ArrayLike,
    y_train: npt.ArrayLike,
    last_ret_valid: npt.ArrayLike,
    prior: float = 1.0,
) -> npt.NDArray[np.float64]:
    """P(up | sign of the last return) estimated on the training fold (Laplace-smoothed)."""
    lr_t = np.asarray(last_ret_train, dtype=float)
    y = np.asarray(y_train, dtype=float)
    lr_v = np.asarray(last_ret_valid, dtype=float)
    up_t = lr_t > 0
    p_after_up = (y[up_t].sum() + prior) / (up_t.sum() + 2 * prior)
    p_after_down = (y[~up_t].sum() + prior) / ((~up_t).sum() + 2 * prior)
    return np.where(lr_v > 0, p_after_up, p_after_down)


def baseline_probabilities(
    train: pd.DataFrame, valid: pd.DataFrame
) -> dict[str, npt.NDArray[np.float64]]:
    """Every baseline's p_up on ``valid`` fitted on ``train`` (frames with ``up``, ``last_ret``)."""
    return {
        "majority": majority_proba(train["up"].to_numpy(), len(valid)),
        "persistence": persistence_proba(
            train["last_ret"].to_numpy(), train["up"].to_numpy(), valid["last_ret"].to_numpy()
        ),
    }
