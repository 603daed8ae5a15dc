"""The docs follow the tree: the README's Layout section is the generated one, and every module,
attribute and repository path that README.md, docs/*.md and the READMEs of the Terraform roots
and modules name exists."""

from __future__ import annotations

import importlib
import re
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "scripts"))

import readme_layout  # noqa: E402

DOCS = sorted({REPO / "README.md", *(REPO / "docs").glob("*.md"), *REPO.glob("*/README.md"),
               *REPO.glob("modules/*/README.md")})
MODULE_REF = re.compile(r"(?<![\w./-])((?:stocksage|lambdas)(?:\.\w+)+)")
PATH_REF = re.compile(r"(?<![\w./-])((?:stocksage|lambdas|tests|scripts|services|modules|network"
                      r"|sagemaker|docs)/[\w/.-]*\w)")


def generated(path: str) -> bool:
    """``path`` is one git ignores (made at run time, e.g. ``services/.terraform``), so its
    absence on a fresh clone is no stale reference. Asked for ``path`` and for ``path/``:
    a pattern such as ``.terraform/`` matches only a directory, which git cannot tell of a
    path that does not exist."""
    return any(subprocess.run(["git", "check-ignore", "-q", "--no-index", name], cwd=REPO,
                              check=False).returncode == 0 for name in (path, f"{path}/"))


def unresolved(reference: str) -> str | None:
    """Why the dotted ``reference`` (module, then attributes) does not resolve, or None."""
    parts = reference.split(".")
    for cut in range(len(parts), 0, -1):
        try:
            found = importlib.import_module(".".join(parts[:cut]))
        except ModuleNotFoundError:
            continue
        for attribute in parts[cut:]:
            if not hasattr(found, attribute):
                return f"{'.'.join(parts[:cut])} has no {attribute}"
            found = getattr(found, attribute)
        return None
    return "no such module"


def test_readme_layout_is_the_generated_one() -> None:
    readme = (REPO / "README.md").read_text()
    assert readme_layout.current(readme) == readme_layout.section(), \
        "README Layout is stale: run python scripts/readme_layout.py --write"


def test_every_package_is_in_the_readme_layout() -> None:
    text = readme_layout.current((REPO / "README.md").read_text())
    packages = {p.parent.name for p in (REPO / "stocksage").rglob("__init__.py")} - {"stocksage"}
    missing = [p for p in sorted(packages) if f" {p}/ " not in text]
    assert not missing


@pytest.mark.parametrize("doc", DOCS, ids=lambda p: str(p.relative_to(REPO)))
def test_named_modules_and_paths_exist(doc: Path) -> None:
    text = doc.read_text()
    problems = [f"{ref}: {why}" for ref in sorted(set(MODULE_REF.findall(text)))
                if not ref.endswith((".py", ".json"))
                and (why := unresolved(ref.rstrip("."))) is not None]
    problems += [f"{path}: no such file" for path in sorted(set(PATH_REF.findall(text)))
                 if not any(c in path for c in "*{}<>") and not (REPO / path).exists()
                 and not generated(path)]
    assert not problems, problems
