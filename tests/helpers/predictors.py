"""The logistic stand-in model: ``P(up) = 1 / (1 + exp(-50 * ret_1))``.

Deterministic and monotone in the last return, so probability rules and predictions have
real, reproducible values without a trained model. (``stocksage.adapters.memory.MemoryPredictor`` is
the in-memory port of the domain tests, with outages and range forecasts.)
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from stocksage.processing import Prediction


def logistic_prob_up(ret_1: Any) -> Any:
    """``1 / (1 + exp(-50 * ret_1))`` of a float, array or Series (NaN stays NaN)."""
    return 1 / (1 + np.exp(-50 * ret_1))


class LogisticOfReturn:
    """A ``Predictor`` answering ``logistic_prob_up`` of each row's ``ret_1``."""

    version = "unit-v1"

    def predict(self, feature_names: Sequence[str], rows: Sequence[Sequence[float]]
                ) -> Prediction:
        index = list(feature_names).index("ret_1")
        return Prediction([float(logistic_prob_up(row[index])) for row in rows], self.version)
