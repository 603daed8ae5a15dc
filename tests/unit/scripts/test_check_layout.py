"""scripts/check_layout.py finds each layout problem in a package made for the test, and none in
stocksage/ (the same check ``make lint`` runs)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]
sys.path.insert(0, str(REPO / "scripts"))

import check_layout  # noqa: E402


def _package(root: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        path = root / "pkg" / name
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)
    return root / "pkg"


@pytest.fixture
def on_path(tmp_path, monkeypatch):
    monkeypatch.syspath_prepend(str(tmp_path))
    for name in [m for m in sys.modules if m == "pkg" or m.startswith("pkg.")]:
        monkeypatch.delitem(sys.modules, name)
    return tmp_path


def test_a_cycle_through_a_package_init_is_found(on_path):
    root = _package(on_path, {"__init__.py": "from pkg.a import A\n",
                              "a.py": "A = 1\nfrom pkg.sub.b import B\n",
                              "sub/__init__.py": "", "sub/b.py": "from pkg import a\nB = 2\n"})
    problems = list(check_layout.problems(root))
    assert any(p.startswith("import cycle:") and "pkg.a" in p and "pkg.sub.b" in p
               for p in problems), problems


def test_a_module_importing_its_own_package_is_found(on_path):
    root = _package(on_path, {"__init__.py": "", "alerts/__init__.py": "X = 1\n",
                              "alerts/rules.py": "from pkg.alerts import X\n"})
    assert check_layout.own_package_imports(root) == [
        "pkg/alerts/rules.py:1 imports its own package pkg.alerts (import the submodule "
        "instead)"]


def test_two_modules_with_one_file_name_are_found(on_path):
    root = _package(on_path, {"__init__.py": "", "a/__init__.py": "", "a/config.py": "",
                              "b/__init__.py": "", "b/config.py": "", "b/__main__.py": ""})
    assert check_layout.duplicate_names(root) == [
        "file name config.py is used by pkg/a/config.py, pkg/b/config.py"]


def test_stocksage_has_no_layout_problem():
    result = subprocess.run([sys.executable, str(REPO / "scripts" / "check_layout.py")],
                            capture_output=True, text=True, cwd=REPO, check=False)
    assert result.returncode == 0, result.stdout
