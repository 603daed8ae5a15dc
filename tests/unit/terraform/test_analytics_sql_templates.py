"""services/sql/*.sql without an emulator: placeholders, Athena dialect, data sets.

The queries are run on data in tests/integration/test_analytics_sql.py; here each template is
checked the way Terraform renders it (``templatefile`` with the keys of
``local.analytics_sql_vars``) and parsed in the Athena (Trino) dialect with sqlglot.
"""

from __future__ import annotations

import re
import string
from pathlib import Path

import pytest
import sqlglot
from sqlglot import exp

REPO = Path(__file__).resolve().parents[3]
SQL = sorted((REPO / "services" / "sql").glob("*.sql"))
ANALYTICS_TF = (REPO / "services" / "analytics.tf").read_text()


def _sql_vars() -> set[str]:
    block = re.search(r"analytics_sql_vars = \{(.*?)\n  \}", ANALYTICS_TF, re.DOTALL)
    assert block, "local.analytics_sql_vars not found in analytics.tf"
    return set(re.findall(r"^\s*([a-z_]+)\s*=", block.group(1), re.MULTILINE))


def _render(path: Path) -> str:
    values = {name: f"x_{name}" for name in _sql_vars()}
    values["result_columns"] = '"symbol", "bar_time", "close", "prob_up"'
    return string.Template(path.read_text()).substitute(values)


def test_the_data_sets_have_their_queries():
    data_sets = re.search(r"quicksight_data_sets\s*=\s*\[(.*?)\]", ANALYTICS_TF).group(1)
    names = re.findall(r'"([a-z_]+)"', data_sets)
    assert sorted(names) == sorted(p.stem for p in SQL)


@pytest.mark.parametrize("path", SQL, ids=lambda p: p.name)
def test_template_uses_only_terraform_placeholders_and_parses_as_athena(path):
    text = path.read_text()
    placeholders = set(re.findall(r"\$\{([^}]*)\}", text))
    assert placeholders <= _sql_vars(), "only ${name} of local.analytics_sql_vars"
    assert "%{" not in text  # no template directives: Python renders the same text
    tree = sqlglot.parse_one(_render(path), read="athena")
    assert isinstance(tree, exp.Select)
    tables = {t.name for t in tree.find_all(exp.Table)}
    assert tables <= {"results", "bars", "alerts"}
    for table in tree.find_all(exp.Table):
        assert table.catalog and table.db, "fully qualified: catalog.database.table"
