"""Contents of the model artifact (``model.tar.gz``) and how to write, read and pack it.

``model.tar.gz`` (the tarred ``SM_MODEL_DIR``) holds, at its root:

* ``model.joblib``: the fitted scikit-learn Pipeline (built-ins only);
* ``metadata.json``: ``features`` (ordered, = ``STACK.features`` at training time),
  ``model_version``, ``model_type``, ``hyperparameters``, ``symbols``, ``data_range``
  (``first_bar_time`` / ``last_bar_time`` ISO UTC), ``rows``, ``trained_at``,
  ``library_versions``, ``metrics`` (holdout summary: model and baseline scores, margins,
  ``beats_baselines``, ``verdict``), ``schema_version``;
* ``metrics.json``: the full walk-forward report (per fold, holdout, bootstrap settings).

``sagemaker/inference.py`` reads the same file names without importing this module.
"""

from __future__ import annotations

import io
import json
import platform
import tarfile
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, TypeAlias

if TYPE_CHECKING:
    import numpy as np

#: A point in time ``pandas.Timestamp`` accepts (``pandas.Timestamp`` is a ``datetime``).
TimeLike: TypeAlias = "str | datetime | np.datetime64"

MODEL_FILE = "model.joblib"
METADATA_FILE = "metadata.json"
METRICS_FILE = "metrics.json"
SCHEMA_VERSION = 1


def library_versions() -> dict[str, str]:
    import joblib
    import numpy
    import pandas
    import sklearn

    versions = {
        "python": platform.python_version(),
        "scikit-learn": sklearn.__version__,
        "numpy": numpy.__version__,
        "pandas": pandas.__version__,
        "joblib": joblib.__version__,
    }
    try:
        from importlib.metadata import version

        versions["ta"] = version("ta")
    except Exception:  # noqa: BLE001 - ta is optional for reading artifacts
        versions["ta"] = "not installed"
    return versions


def iso(ts: TimeLike) -> str:
    """ISO-8601 UTC with a ``Z`` suffix."""
    import pandas as pd

    t = pd.Timestamp(ts)
    t = t.tz_localize("UTC") if t.tzinfo is None else t.tz_convert("UTC")
    return t.strftime("%Y-%m-%dT%H:%M:%SZ")


def build_metadata(
    *,
    features: Iterable[str],
    model_version: str,
    model_type: str,
    hyperparameters: dict[str, Any],
    symbols: Iterable[str],
    first_bar_time: TimeLike,
    last_bar_time: TimeLike,
    rows: int,
    metrics_summary: dict[str, Any],
    trained_at: datetime | None = None,
) -> dict[str, Any]:
    """The ``metadata.json`` document."""
    trained_at = trained_at or datetime.now(UTC)
    return {
        "schema_version": SCHEMA_VERSION,
        "model_version": str(model_version),
        "model_type": model_type,
        "features": list(features),
        "target": "up = close[t+1] > close[t]; prediction = P(up)",
        "hyperparameters": hyperparameters,
        "symbols": sorted(symbols),
        "data_range": {"first_bar_time": iso(first_bar_time), "last_bar_time": iso(last_bar_time)},
        "rows": int(rows),
        "trained_at": iso(trained_at),
        "library_versions": library_versions(),
        "metrics": metrics_summary,
    }


def _json_default(value: object) -> object:
    import numpy as np

    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, (datetime,)):
        return iso(value)
    raise TypeError(f"not JSON serialisable: {type(value).__name__}")


def dumps(document: Any) -> str:
    """JSON with NaN written as null (strict JSON for other languages)."""
    import math

    def clean(v: Any) -> Any:
        if isinstance(v, float) and not math.isfinite(v):
            return None
        if isinstance(v, dict):
            return {k: clean(x) for k, x in v.items()}
        if isinstance(v, (list, tuple)):
            return [clean(x) for x in v]
        return v

    return json.dumps(
        clean(json.loads(json.dumps(document, default=_json_default))),
        indent=2,
        sort_keys=False,
        allow_nan=False,
    )


def write_artifact(
    model_dir: str | Path, model: Any, metadata: dict[str, Any], metrics: dict[str, Any]
) -> dict[str, Path]:
    """Write ``model.joblib``, ``metadata.json`` and ``metrics.json`` into ``model_dir``."""
    import joblib

    model_dir = Path(model_dir)
    model_dir.mkdir(parents=True, exist_ok=True)
    paths = {
        "model": model_dir / MODEL_FILE,
        "metadata": model_dir / METADATA_FILE,
        "metrics": model_dir / METRICS_FILE,
    }
    joblib.dump(model, paths["model"])
    paths["metadata"].write_text(dumps(metadata) + "\n")
    paths["metrics"].write_text(dumps(metrics) + "\n")
    return paths


@dataclass
class Artifact:
    model: Any
    metadata: dict
    metrics: dict | None


def read_artifact(model_dir: str | Path) -> Artifact:
    """Load an extracted artifact directory."""
    import joblib

    model_dir = Path(model_dir)
    metadata = json.loads((model_dir / METADATA_FILE).read_text())
    metrics_path = model_dir / METRICS_FILE
    metrics = json.loads(metrics_path.read_text()) if metrics_path.exists() else None
    return Artifact(joblib.load(model_dir / MODEL_FILE), metadata, metrics)


def _normalise(info: tarfile.TarInfo, mtime: int) -> tarfile.TarInfo:
    info.uid = info.gid = 0
    info.uname = info.gname = ""
    info.mtime = mtime
    info.mode = 0o755 if info.isdir() else 0o644
    return info


def tar_files(entries: Iterable[tuple[str, str | Path]], *, mtime: int = 0) -> bytes:
    """Reproducible ``.tar.gz`` of ``(arcname, path)`` pairs (sorted by arcname).

    Owners, permissions and mtimes are normalised and the gzip header has no timestamp or
    name, so the same file contents always give the same bytes.
    """
    import gzip

    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for arcname, path in sorted(entries, key=lambda e: e[0]):
            data = Path(path).read_bytes()
            info = tarfile.TarInfo(arcname)
            info.size = len(data)
            _normalise(info, mtime)
            tar.addfile(info, io.BytesIO(data))
    out = io.BytesIO()
    with gzip.GzipFile(fileobj=out, mode="wb", mtime=0, filename="") as gz:
        gz.write(raw.getvalue())
    return out.getvalue()


def tar_directory(
    src: str | Path, *, mtime: int = 0, exclude: Callable[[str], bool] | None = None
) -> bytes:
    """Reproducible ``.tar.gz`` of ``src``'s files (arcnames relative to ``src``)."""
    src = Path(src)
    entries: list[tuple[str, str | Path]] = []
    for path in src.rglob("*"):
        rel = path.relative_to(src).as_posix()
        if path.is_file() and not (exclude and exclude(rel)):
            entries.append((rel, path))
    return tar_files(entries, mtime=mtime)


def pack_model_dir(model_dir: str | Path, dest: str | Path | None = None) -> bytes:
    """``model.tar.gz`` bytes of ``model_dir`` (written to ``dest`` too when given)."""
    data = tar_directory(model_dir)
    if dest is not None:
        Path(dest).write_bytes(data)
    return data


def extract_tar(data: bytes, dest: str | Path) -> Path:
    """Safely extract a ``.tar.gz`` (no absolute paths, no ``..``, no links)."""
    dest = Path(dest)
    dest.mkdir(parents=True, exist_ok=True)
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:*") as tar:
        for member in tar.getmembers():
            name = Path(member.name)
            if name.is_absolute() or ".." in name.parts or not (member.isfile() or member.isdir()):
                raise ValueError(f"refusing unsafe archive member {member.name!r}")
        if hasattr(tarfile, "data_filter"):
            tar.extractall(dest, filter="data")
        else:  # Python < 3.11.4 (older framework images)
            tar.extractall(dest)
    return dest
