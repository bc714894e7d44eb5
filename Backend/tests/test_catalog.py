"""docs/reliability.md names the test behind every catalog case; each one named must exist."""

from __future__ import annotations

import ast
import re

import pytest

from src import PROJECT_ROOT

CATALOG = (PROJECT_ROOT / "docs" / "reliability.md").read_text()
NAMED = sorted(set(re.findall(r"`(Backend/tests/[\w/]+\.py)(?:::(\w+))?`", CATALOG)))


def test_every_catalog_case_names_a_test() -> None:
    rows = [line for line in CATALOG.splitlines() if re.match(r"\| \d+ \|", line)]
    assert len(rows) == 9
    assert all("Backend/tests/" in row for row in rows)


@pytest.mark.parametrize(("path", "name"), NAMED, ids=[f"{p}::{n}" for p, n in NAMED])
def test_each_named_test_exists(path: str, name: str) -> None:
    module = ast.parse((PROJECT_ROOT / path).read_text())
    functions = {node.name for node in ast.walk(module) if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef)}
    assert not name or name in functions, f"{path} has no test {name}"
