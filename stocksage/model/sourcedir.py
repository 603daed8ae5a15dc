"""Build ``sourcedir.tar.gz``, the SageMaker submit directory of training and hosting.

Layout of the archive (root)::

    train.py  inference.py  requirements.txt  stocksage/...   (no stocksage/local)

``sagemaker_submit_directory`` (training hyperparameter) and ``SAGEMAKER_SUBMIT_DIRECTORY``
(model environment) point at ``s3://<bucket>/code/sourcedir.tar.gz``; ``sagemaker_program`` /
``SAGEMAKER_PROGRAM`` name ``train.py`` / ``inference.py``. The bytes are reproducible: same
files -> same archive (sorted entries, fixed mtimes/owners, no gzip timestamp).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from stocksage.model.artifact import tar_files

SOURCEDIR_KEY = "code/sourcedir.tar.gz"
TRAIN_PROGRAM = "train.py"
INFERENCE_PROGRAM = "inference.py"
_TOP_LEVEL = ("train.py", "inference.py", "requirements.txt")
_EXCLUDED_DIRS = ("local", "__pycache__")


def repo_root() -> Path:
    """The checkout that holds ``stocksage/`` and ``sagemaker/``."""
    import stocksage

    return Path(stocksage.__file__).resolve().parent.parent


def sourcedir_entries(root: str | Path | None = None) -> list[tuple[str, Path]]:
    """``(arcname, path)`` of every file that goes into the bundle."""
    root = Path(root) if root else repo_root()
    entries: list[tuple[str, Path]] = []
    for name in _TOP_LEVEL:
        path = root / "sagemaker" / name
        if not path.is_file():
            raise FileNotFoundError(f"missing {path}")
        entries.append((name, path))
    package = root / "stocksage"
    for path in sorted(package.rglob("*")):
        if not path.is_file():
            continue
        rel = path.relative_to(package)
        if rel.parts[0] in _EXCLUDED_DIRS or "__pycache__" in rel.parts:
            continue
        if path.suffix in (".pyc", ".pyo") or any(p.startswith(".") for p in rel.parts):
            continue
        entries.append(("stocksage/" + rel.as_posix(), path))
    return entries


def build_sourcedir(root: str | Path | None = None, dest: str | Path | None = None) -> bytes:
    """The ``sourcedir.tar.gz`` bytes (also written to ``dest`` when given)."""
    data = tar_files(sourcedir_entries(root))
    if dest is not None:
        Path(dest).parent.mkdir(parents=True, exist_ok=True)
        Path(dest).write_bytes(data)
    return data


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()
