#!/usr/bin/env python3
"""Inputs/Outputs tables of each module README, from its variables.tf and outputs.tf.

    python scripts/module_docs.py            # rewrite the tables in modules/*/README.md
    python scripts/module_docs.py --check    # exit 1 when a README is out of date

Like terraform-docs (not installable offline here): the part of a README between
``<!-- BEGIN_TF_DOCS -->`` and ``<!-- END_TF_DOCS -->`` is generated; everything else
(purpose, usage example, notes) is written by hand. Requirements come from versions.tf.
"""

from __future__ import annotations

import argparse
import json
import re
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BEGIN, END = "<!-- BEGIN_TF_DOCS -->", "<!-- END_TF_DOCS -->"


def _load(path: Path) -> dict:
    import hcl2

    options = hcl2.SerializationOptions(strip_string_quotes=True, explicit_blocks=False,
                                        with_comments=False)
    with path.open() as handle:
        return hcl2.load(handle, serialization_options=options)


def _type(value: object) -> str:
    text = str(value)
    text = text[2:-1] if text.startswith("${") and text.endswith("}") else text
    return re.sub(r"\s+", " ", text)


def _default(body: dict) -> str:
    if "default" not in body:
        return "n/a"
    value = body["default"]
    if value is None:
        return "`null`"
    text = json.dumps(value) if not isinstance(value, str) else f'"{value}"'
    return f"`{text}`"


def _cell(text: str) -> str:
    return str(text).replace("|", "\\|").replace("\n", " ").strip()


def render(module: Path) -> str:
    """The generated Markdown of one module (requirements, inputs, outputs)."""
    versions = (module / "versions.tf").read_text()
    tf = re.search(r'required_version\s*=\s*"([^"]+)"', versions).group(1)
    aws = re.search(r'version\s*=\s*"([^"]+)"', versions.split("required_providers", 1)[1]).group(1)
    lines = ["## Requirements", "", "| Name | Version |", "|------|---------|",
             f"| terraform | {tf} |", f"| aws | {aws} |", "", "## Inputs", "",
             "| Name | Description | Type | Default | Required |",
             "|------|-------------|------|---------|:--------:|"]
    variables = {k: v for b in _load(module / "variables.tf").get("variable", [])
                 for k, v in b.items()}
    for name in sorted(variables, key=lambda n: ("default" in variables[n], n)):
        body = variables[name]
        lines.append(f"| {name} | {_cell(body.get('description', ''))} | "
                     f"`{_cell(_type(body.get('type', 'any')))}` | {_cell(_default(body))} | "
                     f"{'no' if 'default' in body else 'yes'} |")
    lines += ["", "## Outputs", "", "| Name | Description |", "|------|-------------|"]
    outputs = {k: v for b in _load(module / "outputs.tf").get("output", []) for k, v in b.items()}
    for name in sorted(outputs):
        lines.append(f"| {name} | {_cell(outputs[name].get('description', ''))} |")
    return "\n".join(lines)


def update(readme: Path, generated: str) -> str:
    text = readme.read_text()
    if BEGIN not in text or END not in text:
        raise ValueError(f"{readme}: no {BEGIN} ... {END} section")
    head, rest = text.split(BEGIN, 1)
    tail = rest.split(END, 1)[1]
    return f"{head}{BEGIN}\n{generated}\n{END}{tail}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true")
    args = parser.parse_args(argv)
    stale = []
    for module in sorted(p for p in (REPO / "modules").iterdir() if p.is_dir()):
        readme = module / "README.md"
        new = update(readme, render(module))
        if new != readme.read_text():
            stale.append(readme.relative_to(REPO))
            if not args.check:
                readme.write_text(new)
    if args.check and stale:
        print("out of date (run python scripts/module_docs.py):", *map(str, stale), file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
