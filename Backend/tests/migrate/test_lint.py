"""`migrate lint`: statements that fail when rerun, and squawk's unsafe-change rules, as file:line:column."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

from src.app.cli import main
from src.migrate.files import discover
from src.migrate.lint import lint
from tests.support import PROJECT_MIGRATIONS, write_migrations


def findings_for(tmp_path: Path, sql: str) -> list[str]:
    return [str(f) for f in lint(discover(write_migrations(tmp_path, {"001_x.sql": sql})))]


def test_the_projects_own_migrations_lint_clean() -> None:
    assert lint(discover(PROJECT_MIGRATIONS)) == []


@pytest.mark.parametrize(
    ("sql", "expected"),
    [
        ("CREATE TABLE t (id bigint);", "001_x.sql:1:1: create-if-not-exists: CREATE TABLE without IF NOT EXISTS"),
        ("SELECT 1;\nCREATE SCHEMA s;", "001_x.sql:2:1: create-if-not-exists: CREATE SCHEMA without IF NOT EXISTS"),
        (
            "CREATE INDEX CONCURRENTLY i ON t (id);",
            "001_x.sql:1:1: create-if-not-exists: CREATE INDEX CONCURRENTLY without IF NOT EXISTS",
        ),
        ("CREATE VIEW v AS SELECT 1;", "001_x.sql:1:1: create-if-not-exists: CREATE VIEW without OR REPLACE"),
        ("CREATE TYPE e AS ENUM ('a');", "001_x.sql:1:1: create-if-not-exists: CREATE TYPE ... AS ENUM has no IF NOT"),
        ("DROP VIEW v;", "001_x.sql:1:1: drop-if-exists: DROP VIEW without IF EXISTS"),
        (
            "ALTER TABLE t ADD COLUMN c bigint;",
            "001_x.sql:1:1: add-column-if-not-exists: ADD COLUMN without IF NOT EXISTS",
        ),
        ("ALTER TABLE t DROP COLUMN c;", "001_x.sql:1:1: drop-column-if-exists: DROP COLUMN without IF EXISTS"),
    ],
)
def test_statements_that_fail_when_rerun_are_reported(tmp_path: Path, sql: str, expected: str) -> None:
    assert any(f.startswith(expected) for f in findings_for(tmp_path, sql)), findings_for(tmp_path, sql)


def test_idempotent_forms_pass(tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id bigint);\n"
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS c text;\n"
        "CREATE OR REPLACE VIEW v AS SELECT 1;\n"
        "DROP VIEW IF EXISTS w;\n"
    )
    assert [f for f in findings_for(tmp_path, sql) if "if-" in f] == []


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE COLLATION IF NOT EXISTS ordinal (locale = 'C');",
        "CREATE OR REPLACE AGGREGATE total(integer) (sfunc = int4pl, stype = integer);",
    ],
)
def test_a_statement_that_takes_either_guard_passes_with_one(tmp_path: Path, sql: str) -> None:
    assert [f for f in findings_for(tmp_path, sql) if "create-if-not-exists" in f] == []


def test_a_statement_that_takes_either_guard_without_any_names_both(tmp_path: Path) -> None:
    (finding,) = [f for f in findings_for(tmp_path, "CREATE COLLATION c (locale = 'C');") if "create-if" in f]
    assert "without IF NOT EXISTS or OR REPLACE" in finding


def test_a_marked_statement_is_exempt_from_that_rule_only(tmp_path: Path) -> None:
    sql = "-- migrate:lint-ignore create-if-not-exists\nCREATE TABLE t (id bigint);\nCREATE TABLE u (id bigint);\n"
    own = [f for f in findings_for(tmp_path, sql) if "create-if-not-exists" in f]
    assert own == ["001_x.sql:3:1: create-if-not-exists: CREATE TABLE without IF NOT EXISTS fails when rerun"]


def test_squawk_rules_are_reported_with_one_based_positions(tmp_path: Path) -> None:
    findings = findings_for(tmp_path, "CREATE TABLE IF NOT EXISTS t (id int);\n")
    assert any(f.startswith("001_x.sql:1:") and "prefer-bigint-over-int" in f for f in findings)


def test_squawk_rules_the_runner_makes_moot_are_not_reported(tmp_path: Path) -> None:
    findings = findings_for(tmp_path, "ALTER TABLE IF EXISTS t ADD COLUMN IF NOT EXISTS c text;\n")
    assert not [f for f in findings if "require-lock-timeout" in f or "require-statement-timeout" in f]


def test_the_cli_exits_7_and_prints_each_finding(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", {"001_x.sql": "CREATE TABLE t (id bigint);"})
    result = CliRunner().invoke(main, ["lint", "--migrations-dir", str(folder)])
    assert result.exit_code == 7
    assert "001_x.sql:1:1: create-if-not-exists:" in result.stdout


def test_the_cli_says_so_when_there_are_no_findings() -> None:
    result = CliRunner().invoke(main, ["lint", "--migrations-dir", str(PROJECT_MIGRATIONS)])
    assert result.exit_code == 0, result.output
    assert result.stdout == "No findings.\n"
