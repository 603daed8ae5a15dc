#!/usr/bin/env python3
"""Build the processor Lambda deployment package reproducibly.

The zip holds ``lambdas/`` and ``stocksage/`` (without ``stocksage/local``, caches and compiled
files), entries sorted, every timestamp fixed at 1980-01-01 00:00:00 and every mode 0644, so the
same sources give the same bytes and the same ``source_code_hash`` (Terraform computes it with
``filebase64sha256``). Dependencies (numpy, pandas, ta, Powertools) come from a layer.

Usage:
    python scripts/package_lambda.py [--out build/lambda/processor.zip]

Prints one JSON line: ``{"path": ..., "files": N, "bytes": N, "sha256": hex, "base64sha256": b64}``.
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import sys
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("lambdas", "stocksage")
EXCLUDED_DIRS = {"stocksage/local"}
EXCLUDED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_OUT = REPO / "build" / "lambda" / "processor.zip"


def collect(repo: Path = REPO) -> list[str]:
    """Return the sorted POSIX paths (relative to ``repo``) that go into the package."""
    files: list[str] = []
    for package in PACKAGES:
        root = repo / package
        if not root.is_dir():
            raise FileNotFoundError(f"{root} is missing: the package needs it")
        for dirpath, dirnames, filenames in os.walk(root):
            rel_dir = Path(dirpath).relative_to(repo).as_posix()
            dirnames[:] = [
                d
                for d in dirnames
                if d not in EXCLUDED_NAMES and f"{rel_dir}/{d}" not in EXCLUDED_DIRS
            ]
            for name in filenames:
                if Path(name).suffix in EXCLUDED_SUFFIXES or name.startswith("."):
                    continue
                files.append(f"{rel_dir}/{name}")
    return sorted(files)


def build(out: Path = DEFAULT_OUT, repo: Path = REPO) -> dict[str, object]:
    """Write the zip to ``out`` (atomically) and describe it."""
    files = collect(repo)
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in files:
            info = zipfile.ZipInfo(rel, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (0o100644 & 0xFFFF) << 16
            info.create_system = 3  # Unix, so the mode bits are honoured
            zf.writestr(info, (repo / rel).read_bytes())
    os.replace(tmp, out)
    data = out.read_bytes()
    digest = hashlib.sha256(data).digest()
    return {
        "path": str(out),
        "files": len(files),
        "bytes": len(data),
        "sha256": digest.hex(),
        "base64sha256": base64.b64encode(digest).decode(),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="zip to write")
    args = parser.parse_args(argv)
    try:
        print(json.dumps(build(args.out.resolve())))
    except FileNotFoundError as exc:
        print(f"package_lambda: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
