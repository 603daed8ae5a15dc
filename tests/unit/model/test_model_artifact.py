"""Artifact files, reproducible tarballs and the SageMaker source bundle."""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import numpy as np
import pytest

from stocksage.model.artifact import (
    extract_tar,
    pack_model_dir,
    read_artifact,
    tar_directory,
    write_artifact,
)
from stocksage.model.estimator import make_model
from stocksage.model.sourcedir import build_sourcedir, sourcedir_entries

ROOT = Path(__file__).resolve().parents[3]


def _names(data: bytes) -> list[str]:
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        return tar.getnames()


def test_write_read_and_pack_artifact(tmp_path):
    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(200, 3)), rng.integers(0, 2, 200)
    model = make_model("logreg").fit(X, y)
    meta = {"features": ["a", "b", "c"], "model_version": "v1", "x": float("nan")}
    write_artifact(tmp_path / "m", model, meta, {"n": np.int64(3)})
    art = read_artifact(tmp_path / "m")
    assert art.metadata == {"features": ["a", "b", "c"], "model_version": "v1", "x": None}
    assert art.metrics == {"n": 3}
    np.testing.assert_allclose(art.model.predict_proba(X), model.predict_proba(X))
    tar1 = pack_model_dir(tmp_path / "m", tmp_path / "model.tar.gz")
    assert sorted(_names(tar1)) == ["metadata.json", "metrics.json", "model.joblib"]
    (tmp_path / "m" / "metadata.json").touch()  # mtime change only: same bytes
    assert tar_directory(tmp_path / "m") == tar1
    out = extract_tar(tar1, tmp_path / "x")
    assert json.loads((out / "metadata.json").read_text())["model_version"] == "v1"


def test_extract_refuses_path_traversal(tmp_path):
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w:gz") as tar:
        info = tarfile.TarInfo("../evil.txt")
        info.size = 1
        tar.addfile(info, io.BytesIO(b"x"))
    with pytest.raises(ValueError, match="unsafe"):
        extract_tar(raw.getvalue(), tmp_path / "out")
    assert not (tmp_path / "evil.txt").exists()


def test_sourcedir_bundle_layout_and_reproducibility(tmp_path):
    data = build_sourcedir()
    assert build_sourcedir() == data
    names = _names(data)
    assert names == sorted(names)
    assert {
        "train.py",
        "inference.py",
        "requirements.txt",
        "stocksage/__init__.py",
        "stocksage/stack.json",
        "stocksage/model/metrics.py",
        "stocksage/model/metric_definitions.json",
        "stocksage/indicators/features.py",
    } <= set(names)
    assert not [n for n in names if n.startswith("stocksage/local/")]
    assert not [n for n in names if "__pycache__" in n or n.endswith(".pyc")]
    with tarfile.open(fileobj=io.BytesIO(data), mode="r:gz") as tar:
        for member in tar.getmembers():
            assert member.mtime == 0 and member.uid == 0 and member.mode == 0o644
    assert len(sourcedir_entries()) == len(names)
    # the bundle is self-contained: its train.py imports its own stocksage
    root = extract_tar(data, tmp_path / "src")
    code = "import runpy; runpy.run_path('train.py'); import stocksage; print(stocksage.__file__)"
    out = subprocess.run(
        [sys.executable, "-c", code],
        cwd=root,
        capture_output=True,
        text=True,
        timeout=60,
        env={"PATH": "/usr/bin:/bin"},
        check=False,
    )
    assert out.returncode == 0, out.stderr
    assert out.stdout.strip().startswith(str(root))


def test_package_script_writes_the_same_bytes(tmp_path):
    out = tmp_path / "sourcedir.tar.gz"
    proc = subprocess.run(
        [sys.executable, str(ROOT / "scripts" / "package_sourcedir.py"), "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert proc.returncode == 0, proc.stderr
    assert out.read_bytes() == build_sourcedir()
    assert "sha256" in proc.stdout
