#!/usr/bin/env python3
"""Build the processor Lambda deployment package, and its dependency layer, reproducibly.

Function zip (default): ``lambdas/`` and ``stocksage/`` (without ``stocksage/local``, caches and
compiled files), entries sorted, every timestamp fixed at 1980-01-01 00:00:00 and every mode
0644, so the same sources give the same bytes and the same ``source_code_hash`` (Terraform
computes it with ``filebase64sha256``).

Layer zip (``--layer``): the exact pins of ``requirements/processor-layer.txt`` (numpy, pandas,
ta, Powertools) installed for the Lambda platform (``manylinux_2_28``/``manylinux2014``
x86_64, CPython 3.12, binary wheels only; ``ta`` is pure Python and is built into a wheel
first) under ``python/``, pruned (test suites, ``__pycache__``, the AWS SDK the runtime already
has), zipped the same reproducible way. Needs PyPI (or a configured index). It fails when the
unzipped layer plus the function would exceed Lambda's 250 MB limit. Why a self-built layer
rather than the AWS SDK for pandas managed layer: docs/PACKAGING.md.

Usage:
    python scripts/package_lambda.py [--out build/lambda/processor.zip]
    python scripts/package_lambda.py --layer [--out build/lambda/processor-layer.zip]

Prints one JSON line: ``{"path": ..., "files": N, "bytes": N, "sha256": hex, "base64sha256": b64}``
(``--layer`` adds ``unzipped_bytes`` and ``packages``).
"""

from __future__ import annotations

import argparse
import base64
import hashlib
import json
import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
PACKAGES = ("lambdas", "stocksage")
EXCLUDED_DIRS = {"stocksage/local"}
EXCLUDED_NAMES = {"__pycache__", ".pytest_cache", ".mypy_cache", ".ruff_cache"}
EXCLUDED_SUFFIXES = {".pyc", ".pyo"}
FIXED_TIME = (1980, 1, 1, 0, 0, 0)
DEFAULT_OUT = REPO / "build" / "lambda" / "processor.zip"
DEFAULT_LAYER_OUT = REPO / "build" / "lambda" / "processor-layer.zip"
LAYER_REQUIREMENTS = REPO / "requirements" / "processor-layer.txt"

#: Lambda's limit on the unzipped function plus all its layers.
UNZIPPED_LIMIT_BYTES = 250 * 1024 * 1024
#: Platform of the python3.12 runtime (Amazon Linux 2023, glibc 2.34), x86_64.
LAYER_PLATFORMS = ("manylinux_2_28_x86_64", "manylinux2014_x86_64")
LAYER_PYTHON = "3.12"
#: Provided by the Lambda runtime; bundling them would add ~35 MB (docs/PACKAGING.md).
RUNTIME_PROVIDED = ("boto3", "botocore", "s3transfer")
#: Never needed at run time.
PRUNED_DIR_NAMES = {"__pycache__", "tests", "testing"}
PRUNED_KEEP = {"numpy/testing", "pandas/_testing"}  # imported by the libraries themselves


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


def write_zip(out: Path, base: Path, files: list[str]) -> dict[str, object]:
    """Zip ``files`` (POSIX paths relative to ``base``) reproducibly into ``out``; describe it."""
    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = out.with_suffix(".zip.tmp")
    with zipfile.ZipFile(tmp, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for rel in sorted(files):
            info = zipfile.ZipInfo(rel, date_time=FIXED_TIME)
            info.compress_type = zipfile.ZIP_DEFLATED
            mode = 0o100755 if os.access(base / rel, os.X_OK) and rel.endswith(".so") else 0o100644
            info.external_attr = (mode & 0xFFFF) << 16
            info.create_system = 3  # Unix, so the mode bits are honoured
            zf.writestr(info, (base / rel).read_bytes())
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


def build(out: Path = DEFAULT_OUT, repo: Path = REPO) -> dict[str, object]:
    """Write the function zip to ``out`` (atomically) and describe it."""
    return write_zip(out, repo, collect(repo))


def read_requirements(path: Path = LAYER_REQUIREMENTS) -> list[str]:
    """Requirement lines of ``path`` (comments and blanks dropped); each must be pinned with ==."""
    reqs = []
    for raw in path.read_text().splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        if "==" not in line:
            raise ValueError(f"{path.name}: {line!r} is not pinned with ==")
        reqs.append(line)
    return reqs


def prune_layer(site: Path) -> None:
    """Drop what the runtime never needs: test suites, bytecode caches, the runtime's SDK."""
    for name in RUNTIME_PROVIDED:
        shutil.rmtree(site / name, ignore_errors=True)
        for info in site.glob(f"{name}-*.dist-info"):
            shutil.rmtree(info)
    for dirpath, dirnames, _ in os.walk(site, topdown=True):
        rel = Path(dirpath).relative_to(site).as_posix()
        for d in list(dirnames):
            if d in PRUNED_DIR_NAMES and f"{rel}/{d}".lstrip("./") not in PRUNED_KEEP:
                shutil.rmtree(Path(dirpath) / d)
                dirnames.remove(d)
    for pyc in site.rglob("*.py[co]"):
        pyc.unlink()


def _pip(*args: str) -> None:
    cmd = [sys.executable, "-m", "pip", "--disable-pip-version-check", *args]
    result = subprocess.run(cmd, capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{' '.join(cmd)} failed:\n{result.stderr[-3000:]}")


def build_layer(out: Path = DEFAULT_LAYER_OUT, requirements: Path = LAYER_REQUIREMENTS,
                function_zip: Path | None = None) -> dict[str, object]:
    """Install the pinned requirements for the Lambda platform under python/, prune, zip."""
    reqs = read_requirements(requirements)
    with tempfile.TemporaryDirectory(prefix="stocksage-layer-") as tmp:
        root = Path(tmp) / "layer"
        site = root / "python"
        wheels = Path(tmp) / "wheels"
        # Pure-Python sdists (ta) become wheels first: --platform demands binary distributions.
        _pip("wheel", "--quiet", "--no-deps", "--no-binary", ":none:", "--prefer-binary",
             "-w", str(wheels), *reqs)
        platforms = [a for p in LAYER_PLATFORMS for a in ("--platform", p)]
        _pip("install", "--quiet", "--no-compile", "--target", str(site), *platforms,
             "--python-version", LAYER_PYTHON, "--implementation", "cp",
             "--only-binary=:all:", "--find-links", str(wheels), *reqs)
        prune_layer(site)
        files = [p.relative_to(root).as_posix() for p in root.rglob("*") if p.is_file()]
        unzipped = sum((root / f).stat().st_size for f in files)
        packages = sorted(p.name.removesuffix(".dist-info").replace("-", "==", 1)
                          for p in site.glob("*.dist-info"))
        described = write_zip(out, root, files)
    function_unzipped = 0
    if function_zip is not None and function_zip.exists():
        with zipfile.ZipFile(function_zip) as zf:
            function_unzipped = sum(i.file_size for i in zf.infolist())
    described.update(unzipped_bytes=unzipped, function_unzipped_bytes=function_unzipped,
                     limit_bytes=UNZIPPED_LIMIT_BYTES, packages=packages)
    if unzipped + function_unzipped > UNZIPPED_LIMIT_BYTES:
        raise RuntimeError(f"layer ({unzipped} B) + function ({function_unzipped} B) unzipped "
                           f"exceed Lambda's {UNZIPPED_LIMIT_BYTES} B limit")
    return described


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=None, help="zip to write")
    parser.add_argument("--layer", action="store_true",
                        help="build the dependency layer instead of the function zip")
    parser.add_argument("--requirements", type=Path, default=LAYER_REQUIREMENTS,
                        help="pinned requirements of the layer")
    args = parser.parse_args(argv)
    try:
        if args.layer:
            out = (args.out or DEFAULT_LAYER_OUT).resolve()
            print(json.dumps(build_layer(out, args.requirements.resolve(),
                                         function_zip=DEFAULT_OUT)))
        else:
            print(json.dumps(build((args.out or DEFAULT_OUT).resolve())))
    except (FileNotFoundError, ValueError, RuntimeError) as exc:
        print(f"package_lambda: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
