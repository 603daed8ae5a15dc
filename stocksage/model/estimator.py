"""The model: a small scikit-learn Pipeline over ``STACK.features``.

Only scikit-learn built-ins are used, so ``model.joblib`` unpickles in the serving container
with scikit-learn + joblib + numpy and nothing from stocksage.

* ``logreg`` (default): ``StandardScaler`` + L2 ``LogisticRegression``. ``C`` is the inverse
  regularisation strength; the default 0.001 shrinks hard toward the base rate, which is what
  walk-forward evaluation on the demo daily data preferred (C in {0.0003..1}; larger C and
  ``hgb`` had worse holdout log loss: daily direction is close to a coin flip).
* ``hgb``: a shallow, heavily regularised ``HistGradientBoostingClassifier`` (significantly
  worse than the majority baseline on the demo data; kept for experiments).
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import numpy.typing as npt
from sklearn.ensemble import HistGradientBoostingClassifier
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler

MODEL_TYPES: tuple[str, ...] = ("logreg", "hgb")


class Classifier(Protocol):
    """What the evaluation needs of a model: scikit-learn's ``fit`` and ``predict_proba``."""

    def fit(self, X: npt.NDArray[np.float64], y: npt.NDArray[Any]) -> object: ...

    def predict_proba(self, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]: ...


def make_model(
    model_type: str = "logreg",
    *,
    c: float = 0.001,
    seed: int = 0,
    hgb_iter: int = 100,
    hgb_learning_rate: float = 0.05,
    hgb_leaf_nodes: int = 8,
    hgb_min_leaf: int = 200,
) -> Pipeline:
    """A fresh, unfitted estimator with ``predict_proba``.

    Raises:
        ValueError: for an unknown ``model_type``.
    """
    if model_type == "logreg":
        return Pipeline(
            [
                ("scale", StandardScaler()),
                ("clf", LogisticRegression(C=float(c), max_iter=1000)),
            ]
        )
    if model_type == "hgb":
        return Pipeline(
            [
                (
                    "clf",
                    HistGradientBoostingClassifier(
                        max_iter=int(hgb_iter),
                        learning_rate=float(hgb_learning_rate),
                        max_leaf_nodes=int(hgb_leaf_nodes),
                        min_samples_leaf=int(hgb_min_leaf),
                        l2_regularization=1.0,
                        early_stopping=False,
                        random_state=int(seed),
                    ),
                ),
            ]
        )
    raise ValueError(f"unknown model type {model_type!r}; expected one of {MODEL_TYPES}")


def positive_proba(model: Classifier, X: npt.NDArray[np.float64]) -> npt.NDArray[np.float64]:
    """P(up) column of ``predict_proba`` (class 1), whatever the class order."""
    proba = model.predict_proba(X)
    classes = list(getattr(model, "classes_", [0, 1]))
    if 1 in classes:
        return proba[:, classes.index(1)]
    return np.zeros(proba.shape[0])
