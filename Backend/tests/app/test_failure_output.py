"""What `migrate apply` shows when a file fails: the progress line of that file says FAILED, and `--json`
names its file, line, column, SQLSTATE, DETAIL and HINT."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner, Result

from src.app.cli import main
from tests.support import write_migrations

FILES = {
    "001_create_a.sql": "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, name text NOT NULL);\n",
    "002_create_b.sql": "CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY);\n",
    "003_bad.sql": "SELECT 1;\nINSERT INTO a (id) VALUES (1);\n",
}


def migrate(folder: Path, database_url: str, *args: str) -> Result:
    env = {"DATABASE_URL": database_url, "MIGRATIONS_DIR": str(folder)}
    return CliRunner().invoke(main, ["apply", *args], env=env, catch_exceptions=False)


def test_the_progress_line_of_the_file_the_error_is_in_says_failed(tmp_path: Path, database_url: str) -> None:
    result = migrate(write_migrations(tmp_path / "m", FILES), database_url)
    assert result.exit_code == 1
    lines = result.stdout.splitlines()
    assert lines[-3:] == ["  001_create_a.sql ... ran", "  002_create_b.sql ... ran", "  003_bad.sql FAILED"]
    assert result.stderr.startswith("migrate: error: 003_bad.sql:2:1: ERROR 23502: ")


def test_json_names_the_failing_file_line_column_and_the_servers_parts(tmp_path: Path, database_url: str) -> None:
    result = migrate(write_migrations(tmp_path / "m", FILES), database_url, "--json")
    assert result.exit_code == 1
    error = json.loads(result.stdout)["error"]
    assert {k: error[k] for k in ("file", "line", "column", "sqlstate", "detail", "hint")} == {
        "file": "003_bad.sql",
        "line": 2,
        "column": 1,
        "sqlstate": "23502",
        "detail": "Failing row contains (1, null).",
        "hint": None,
    }
    assert error["message"].startswith("003_bad.sql:2:1: ERROR 23502: ")


def test_json_of_a_server_syntax_error_keeps_its_hint(tmp_path: Path, database_url: str) -> None:
    files = {
        **FILES,
        "003_bad.sql": "SELECT * FROM ROWS FROM (generate_series(1, 2), generate_series(1, 3)) AS t(a int, b int);\n",
    }
    result = migrate(write_migrations(tmp_path / "m", files), database_url, "--json")
    assert result.exit_code == 4
    error = json.loads(result.stdout)["error"]
    assert (error["sqlstate"], error["file"], error["line"]) == ("42601", "003_bad.sql", 1)
    assert error["hint"] == "Put a separate column definition list for each function inside ROWS FROM()."
