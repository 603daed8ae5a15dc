"""The operator CLI from the installed wheel, in a fresh virtual environment, outside the
repository: ``pip install 'stocksage[cli]'`` gives a working ``stocksage`` command.

The wheel is built from this checkout (``pip wheel --no-deps``) and installed with its
dependencies from the package index, as an operator would; nothing of the repository is on the
path (no ``lambdas`` package, no ``PYTHONPATH``, the working directory is a temporary one).
"""

from __future__ import annotations

import os
import subprocess
import sys
import venv
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def _run(args: list[str], cwd: Path, timeout: float = 600) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items()
           if k not in {"PYTHONPATH", "VIRTUAL_ENV", "PYTHONHOME"}}
    return subprocess.run(args, cwd=cwd, env=env, capture_output=True, text=True,
                          timeout=timeout, check=False)


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> tuple[Path, Path]:
    """(bin directory of a fresh venv with the wheel and its ``cli`` extra, a working dir)."""
    root = tmp_path_factory.mktemp("installed-cli")
    built = _run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--quiet", "-w",
                  str(root / "dist"), str(REPO)], cwd=root)
    assert built.returncode == 0, built.stderr[-2000:]
    wheel = next((root / "dist").glob("stocksage-*.whl"))
    venv.EnvBuilder(with_pip=True, clear=True).create(root / "venv")
    bin_dir = root / "venv" / "bin"
    install = _run([str(bin_dir / "python"), "-m", "pip", "install", "--quiet",
                    f"{wheel}[cli]"], cwd=root, timeout=900)
    if install.returncode != 0 and "No matching distribution" in install.stderr:
        pytest.skip(f"the package index is unreachable: {install.stderr[-300:]}")
    assert install.returncode == 0, install.stderr[-2000:]
    work = root / "elsewhere"
    work.mkdir()
    return bin_dir, work


@pytest.mark.parametrize("args", [["--help"], ["redrive", "--help"], ["repair", "--help"],
                                  ["alerts", "--help"]], ids=" ".join)
def test_installed_command_answers_help(installed, args) -> None:
    bin_dir, work = installed
    result = _run([str(bin_dir / "stocksage"), *args], cwd=work)
    assert result.returncode == 0, result.stdout + result.stderr
    assert "Usage: stocksage" in result.stdout


def test_installed_package_is_the_wheel_and_has_no_handlers(installed) -> None:
    bin_dir, work = installed
    probe = ("import importlib.util, stocksage, stocksage.cli; print(stocksage.__file__); "
             "print(importlib.util.find_spec('lambdas') is None)")
    result = _run([str(bin_dir / "python"), "-c", probe], cwd=work)
    assert result.returncode == 0, result.stderr
    location, no_handlers = result.stdout.split()
    assert Path(location).is_relative_to(bin_dir.parent) and no_handlers == "True"
