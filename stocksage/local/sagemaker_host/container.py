"""The inference container contract: how a loaded model version answers a request.

A SageMaker framework container imports the model's inference program and calls its handlers;
what the program does not define falls back to the scikit-learn container's defaults::

    model = model_fn(model_dir)                                   # once per model version
    transform_fn(model, body, content_type, accept)               # when defined, else:
    output_fn(predict_fn(input_fn(body, content_type), model), accept)

Defaults: ``model_fn`` loads ``model.joblib`` (or ``model.pkl``); ``input_fn`` reads JSON, CSV
or NPY into a numpy array; ``predict_fn`` is ``model.predict``; ``output_fn`` writes JSON, CSV
or NPY by ``Accept``. ``output_fn`` may return the body or ``(body, content_type)``; an
unsupported content type raises ``UnsupportedContentType`` (the host answers a ``ModelError``
with original status 415).
"""

from __future__ import annotations

import io
import json
import types
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stocksage.local.sagemaker_host.errors import UnsupportedContentType


def default_model_fn(model_dir: str) -> Any:
    """Load ``model.joblib`` (or ``model.pkl``) from the extracted ``model.tar.gz``."""
    for name in ("model.joblib", "model.pkl"):
        path = Path(model_dir) / name
        if path.exists():
            import joblib

            return joblib.load(path)
    raise NotImplementedError(
        "the inference program defines no model_fn and the model has no model.joblib")


def default_input_fn(body: bytes, content_type: str) -> Any:
    """The request body as a numpy array: JSON (``application/json``), CSV (``text/csv``,
    one row per line) or NPY (``application/x-npy``)."""
    import numpy as np

    ctype = (content_type or "").split(";")[0].strip().lower()
    if ctype == "application/json":
        return np.array(json.loads(body))
    if ctype == "text/csv":
        text = body.decode() if isinstance(body, bytes) else body
        return np.array([[float(x) for x in line.split(",")] for line in text.splitlines()
                         if line.strip()])
    if ctype == "application/x-npy":
        return np.load(io.BytesIO(body), allow_pickle=False)
    raise UnsupportedContentType(f"Content type {content_type} is not supported by this framework")


def default_predict_fn(data: Any, model: Any) -> Any:
    """``model.predict(data)``."""
    return model.predict(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    """The prediction as the first type of ``Accept``: JSON (also for ``*/*`` or none), CSV
    or NPY; returns ``(body, content type)``."""
    accept = (accept or "application/json").split(",")[0].split(";")[0].strip().lower()
    if accept in ("application/json", "*/*", ""):
        value = prediction.tolist() if hasattr(prediction, "tolist") else prediction
        return json.dumps(value).encode(), "application/json"
    if accept == "text/csv":
        import numpy as np

        buf = io.StringIO()
        np.savetxt(buf, np.atleast_2d(np.asarray(prediction)), delimiter=",", fmt="%s")
        return buf.getvalue().encode(), "text/csv"
    if accept == "application/x-npy":
        import numpy as np

        binary = io.BytesIO()
        np.save(binary, np.asarray(prediction))
        return binary.getvalue(), "application/x-npy"
    raise UnsupportedContentType(f"Accept type {accept} is not supported by this framework")


@dataclass
class LoadedModel:
    """One model version: the program's handlers and ``model_fn``'s result.

    Attributes:
        model_name: The SageMaker model.
        version_key: Hash of the model's description and archive ETags.
        model_dir: The extracted ``model.tar.gz``.
        code_dir: The folder of the inference program (None: none).
        module: The imported program (None: defaults only).
        model: What ``model_fn`` returned.
    """

    model_name: str
    version_key: str
    model_dir: Path
    code_dir: Path | None
    module: types.ModuleType | None
    model: Any

    def handler(self, name: str,
                default: Callable[..., Any] | None = None) -> Callable[..., Any] | None:
        """The program's handler ``name`` when it defines one, else ``default``."""
        fn = getattr(self.module, name, None) if self.module else None
        return fn if callable(fn) else default

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """Answer one request: ``(body, content type)`` (the content type defaults to
        ``accept``, then JSON; a body that is neither bytes nor str is JSON-encoded).

        Raises:
            Exception: whatever a handler raises (the host answers a ``ModelError``).
        """
        transform = self.handler("transform_fn")
        if transform is not None:
            out = transform(self.model, body, content_type, accept)
        else:
            input_fn = self.handler("input_fn") or default_input_fn
            predict_fn = self.handler("predict_fn") or default_predict_fn
            output_fn = self.handler("output_fn") or default_output_fn
            out = output_fn(predict_fn(input_fn(body, content_type), self.model), accept)
        if isinstance(out, tuple) and len(out) == 2:
            payload, ctype = out
        else:
            payload, ctype = out, accept
        if isinstance(payload, str):
            payload = payload.encode()
        elif not isinstance(payload, (bytes, bytearray)):
            payload = json.dumps(payload).encode()
        return bytes(payload), ctype or "application/json"
