"""Layout checks of ``stocksage/`` that import-linter's contracts do not express (``make lint``).

1. No import cycle between modules, a package's ``__init__`` included (grimp's import graph,
   every import counted: module level, inside functions and under ``TYPE_CHECKING``).
2. No module imports its own package's ``__init__`` (``from stocksage.alerts import X`` inside
   ``stocksage/alerts/``): it couples a module to the re-exports of the package that contains
   it, and a re-export of that module closes a cycle.
3. No two modules share a file name (``__init__.py`` and ``__main__.py`` aside), so a name
   says which room it is in.

The import contracts between packages (layers, no boto3 in the domain, no ``lambdas`` in the
package) are in ``pyproject.toml`` (``[tool.importlinter]``, run by ``lint-imports``).

Usage: ``python scripts/check_layout.py [PACKAGE_DIR]``; exit 1 with one line per problem.
"""

from __future__ import annotations

import argparse
import ast
import sys
from collections import defaultdict
from collections.abc import Iterable
from pathlib import Path

import grimp

REPO = Path(__file__).resolve().parents[1]
EXEMPT_NAMES = frozenset({"__init__.py", "__main__.py"})


def module_name(path: Path, root: Path) -> str:
    """``stocksage/alerts/rules.py`` -> ``stocksage.alerts.rules`` (``__init__`` -> package)."""
    parts = list(path.relative_to(root.parent).with_suffix("").parts)
    if parts[-1] == "__init__":
        parts.pop()
    return ".".join(parts)


def duplicate_names(root: Path) -> list[str]:
    """One line per file name used by more than one module under ``root``."""
    by_name: dict[str, list[str]] = defaultdict(list)
    for path in sorted(root.rglob("*.py")):
        if path.name not in EXEMPT_NAMES:
            by_name[path.name].append(str(path.relative_to(root.parent)))
    return [f"file name {name} is used by {', '.join(paths)}"
            for name, paths in sorted(by_name.items()) if len(paths) > 1]


def own_package_imports(root: Path) -> list[str]:
    """One line per ``from <own package> import ...`` of a module inside that package."""
    problems = []
    for path in sorted(root.rglob("*.py")):
        name = module_name(path, root)
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if not isinstance(node, ast.ImportFrom) or node.level or not node.module:
                continue
            target = root.parent.joinpath(*node.module.split(".")) / "__init__.py"
            if target.exists() and name.startswith(node.module + ".") and \
                    path.name != "__init__.py":
                problems.append(f"{path.relative_to(root.parent)}:{node.lineno} imports its own "
                                f"package {node.module} (import the submodule instead)")
    return problems


def import_cycles(package: str) -> list[list[str]]:
    """Strongly connected components (> 1 module) of ``package``'s import graph."""
    graph = grimp.build_graph(package)
    edges = {m: set(graph.find_modules_directly_imported_by(m)) for m in graph.modules}
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    cycles: list[list[str]] = []

    def visit(start: str) -> None:  # iterative Tarjan: no recursion limit
        work = [(start, iter(sorted(edges.get(start, ()))))]
        index[start] = low[start] = len(index)
        stack.append(start)
        on_stack.add(start)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = len(index)
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(edges.get(child, ())))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    cycles.append(sorted(component))

    for module in sorted(edges):
        if module not in index:
            visit(module)
    return cycles


def problems(root: Path) -> Iterable[str]:
    """Every layout problem of the package at ``root``."""
    yield from duplicate_names(root)
    yield from own_package_imports(root)
    for cycle in import_cycles(root.name):
        yield "import cycle: " + " <-> ".join(cycle)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("package_dir", nargs="?", type=Path, default=REPO / "stocksage")
    root = parser.parse_args(argv).package_dir.resolve()
    sys.path.insert(0, str(root.parent))
    found = list(problems(root))
    for line in found:
        print(line)
    if not found:
        print(f"layout of {root.name}/: no cycle, no own-package import, unique module names")
    return 1 if found else 0


if __name__ == "__main__":
    sys.exit(main())
