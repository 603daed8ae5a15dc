"""SageMaker inference handlers for the next-bar direction model.

Deliberately light: numpy + joblib (+ scikit-learn to unpickle the Pipeline); no pandas, no
stocksage import, so the serving container starts fast.

Request (``Content-Type: application/json``)::

    {"features": ["ret_1", ...], "instances": [[0.01, ...], ...]}

``features`` must equal the artifact's ``metadata.json`` ``features`` (same names, same
order). ``text/csv`` is accepted too: one instance per line, values in the artifact's feature
order, optionally preceded by a header line that must equal the feature names.

Response (``application/json``)::

    {"predictions": [p_up, ...], "model_version": "..."}

plus, when the artifact carries a range model (``metadata.json`` ``range_model``, file
``range_model.joblib``; see ``stocksage.model.volatility``), ``"range_forecasts": [r, ...]``:
the forecast next-bar high-low range ``ln(high/low)`` in log-price units (0.02 = high 2 %
above low), one per instance, > 0. An artifact without it answers as before (one output).

Invalid requests raise ``InvalidInputError`` (a ``ValueError``) whose message says what is
wrong; a local host should map it to HTTP 400 (SageMaker's toolkit answers 500 with the
message in the logs).
"""

from __future__ import annotations

import io
import json
import logging
import math
import os

import joblib
import numpy as np

log = logging.getLogger(__name__)

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
JSON = "application/json"
CSV = "text/csv"
MAX_INSTANCES = 10_000


class InvalidInputError(ValueError):
    """The request body does not fit the model's input contract."""


class LoadedModel:
    """What ``model_fn`` returns: the estimator plus its metadata."""

    def __init__(self, estimator, metadata: dict):
        self.estimator = estimator
        self.metadata = metadata
        self.features = list(metadata["features"])
        self.model_version = str(metadata.get("model_version", "unknown"))
        self.range_estimator = None  # set by model_fn when the artifact has a range model


class Predictions(np.ndarray):
    """A float64 array of p_up that remembers which model version produced it."""

    model_version: str | None = None
    range_forecasts: np.ndarray | None = None

    def __array_finalize__(self, obj):
        self.model_version = getattr(obj, "model_version", None)
        self.range_forecasts = getattr(obj, "range_forecasts", None)


# The version of the model most recently loaded by ``model_fn``: output_fn falls back to it
# when a prediction does not carry its own (a module-level holder, updated in place).
_loaded = {"model_version": "unknown"}


def model_fn(model_dir: str) -> LoadedModel:
    """Load ``model.joblib`` and ``metadata.json`` from the extracted artifact."""
    with open(os.path.join(model_dir, METADATA_FILE), encoding="utf-8") as handle:
        metadata = json.load(handle)
    if not isinstance(metadata.get("features"), list) or not metadata["features"]:
        raise ValueError(f"{METADATA_FILE} in {model_dir} has no 'features' list")
    estimator = joblib.load(os.path.join(model_dir, MODEL_FILE))
    trained_with = (metadata.get("library_versions") or {}).get("scikit-learn")
    try:
        import sklearn

        if trained_with and trained_with != sklearn.__version__:
            log.warning(
                "model trained with scikit-learn %s, serving with %s",
                trained_with,
                sklearn.__version__,
            )
    except ImportError:  # pragma: no cover - the Pipeline needs sklearn anyway
        pass
    model = LoadedModel(estimator, metadata)
    range_info = metadata.get("range_model")
    if isinstance(range_info, dict) and range_info.get("file"):
        model.range_estimator = joblib.load(os.path.join(model_dir, range_info["file"]))
    _loaded["model_version"] = model.model_version
    return model


def _base_type(content_type: str | None) -> str:
    return (content_type or JSON).split(";")[0].strip().lower()


def _text(body) -> str:
    if isinstance(body, (bytes, bytearray, memoryview)):
        try:
            return bytes(body).decode("utf-8")
        except UnicodeDecodeError as exc:
            raise InvalidInputError("request body is not UTF-8") from exc
    if isinstance(body, str):
        return body
    raise InvalidInputError(f"unsupported request body type {type(body).__name__}")


def _matrix(rows, width: int | None) -> np.ndarray:
    if not isinstance(rows, list):
        raise InvalidInputError("'instances' must be a list of rows (lists of numbers)")
    if not rows:
        raise InvalidInputError("'instances' is empty")
    if len(rows) > MAX_INSTANCES:
        raise InvalidInputError(f"{len(rows)} instances exceed the limit of {MAX_INSTANCES}")
    for i, row in enumerate(rows):
        if not isinstance(row, list):
            raise InvalidInputError(f"instance {i} is not a list of numbers")
        if width is not None and len(row) != width:
            raise InvalidInputError(
                f"instance {i} has {len(row)} values; expected {width} (one per feature)"
            )
        for j, value in enumerate(row):
            if isinstance(value, bool) or not isinstance(value, (int, float)):
                raise InvalidInputError(f"instance {i} value {j} is not a number: {value!r}")
    data = np.asarray(rows, dtype=np.float64)
    bad = ~np.isfinite(data)
    if bad.any():
        i, j = map(int, np.argwhere(bad)[0])
        raise InvalidInputError(f"instance {i} value {j} is not finite ({data[i, j]})")
    return data


def input_fn(request_body, request_content_type: str | None = JSON) -> dict:
    """Parse a request into ``{"features": [...] | None, "instances": ndarray}``.

    Raises:
        InvalidInputError: on unsupported content type, malformed JSON/CSV, wrong shapes,
            non-numeric or non-finite values.
    """
    kind = _base_type(request_content_type)
    text = _text(request_body)
    if kind == JSON:
        try:
            doc = json.loads(text)
        except json.JSONDecodeError as exc:
            raise InvalidInputError(f"request body is not valid JSON: {exc}") from exc
        if not isinstance(doc, dict):
            raise InvalidInputError(
                'JSON body must be an object {"features": [...], "instances": [[...], ...]}'
            )
        if "instances" not in doc:
            raise InvalidInputError("JSON body lacks 'instances'")
        features = doc.get("features")
        if features is None:
            raise InvalidInputError("JSON body lacks 'features' (the ordered feature names)")
        if not isinstance(features, list) or not all(isinstance(f, str) for f in features):
            raise InvalidInputError("'features' must be a list of feature names")
        return {"features": features, "instances": _matrix(doc["instances"], len(features))}
    if kind == CSV:
        lines = [ln.strip() for ln in io.StringIO(text) if ln.strip()]
        if not lines:
            raise InvalidInputError("CSV body is empty")
        header = None
        first = [c.strip() for c in lines[0].split(",")]
        if any(_not_number(c) for c in first):
            header, lines = first, lines[1:]
        rows = []
        for n, line in enumerate(lines):
            cells = [c.strip() for c in line.split(",")]
            try:
                rows.append([float(c) for c in cells])
            except ValueError as exc:
                raise InvalidInputError(f"CSV row {n} has a non-numeric value: {line!r}") from exc
        width = len(header) if header else (len(rows[0]) if rows else None)
        return {"features": header, "instances": _matrix(rows, width)}
    raise InvalidInputError(
        f"unsupported content type {request_content_type!r}; use {JSON} or {CSV}"
    )


def _not_number(cell: str) -> bool:
    try:
        float(cell)
    except ValueError:
        return True
    return False


def predict_fn(data: dict, model: LoadedModel) -> Predictions:
    """P(up) for every instance, after checking the feature names and width."""
    features = data.get("features")
    X = data["instances"]
    if features is not None and list(features) != model.features:
        missing = [f for f in model.features if f not in features]
        extra = [f for f in features if f not in model.features]
        detail = []
        if missing:
            detail.append(f"missing {missing}")
        if extra:
            detail.append(f"unknown {extra}")
        if not detail:
            detail.append("same names in a different order")
        raise InvalidInputError(
            f"feature names do not match the model ({'; '.join(detail)}); expected {model.features}"
        )
    if X.ndim != 2 or X.shape[1] != len(model.features):
        raise InvalidInputError(
            f"instances have {X.shape[-1] if X.ndim else 0} columns; the model expects "
            f"{len(model.features)}: {model.features}"
        )
    proba = model.estimator.predict_proba(X)
    classes = list(getattr(model.estimator, "classes_", [0, 1]))
    column = classes.index(1) if 1 in classes else None
    p = proba[:, column] if column is not None else np.zeros(X.shape[0])
    out = np.clip(np.asarray(p, dtype=np.float64), 0.0, 1.0).view(Predictions)
    out.model_version = model.model_version
    if model.range_estimator is not None:  # forecast of ln(range) -> range (log-price units)
        out.range_forecasts = np.exp(np.asarray(model.range_estimator.predict(X),
                                                dtype=np.float64))
    return out


def output_fn(prediction, accept: str | None = JSON) -> str:
    """JSON ``{"predictions": [...], "model_version": "..."[, "range_forecasts": [...]]}``."""
    kind = _base_type(accept)
    if kind not in (JSON, "*/*"):
        raise InvalidInputError(f"unsupported accept type {accept!r}; use {JSON}")
    values = [float(v) for v in np.asarray(prediction, dtype=np.float64).ravel()]
    if any(not math.isfinite(v) for v in values):
        raise ValueError("model produced a non-finite probability")
    version = getattr(prediction, "model_version", None) or _loaded["model_version"]
    body = {"predictions": values, "model_version": version}
    ranges = getattr(prediction, "range_forecasts", None)
    if ranges is not None:
        body["range_forecasts"] = [float(v) for v in np.asarray(ranges, dtype=np.float64)]
        if any(not (math.isfinite(v) and v > 0) for v in body["range_forecasts"]):
            raise ValueError("model produced a non-finite or non-positive range forecast")
    return json.dumps(body)
