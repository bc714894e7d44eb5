"""The CLI's output, pinned: text and `--json` of status, apply, apply --dry-run, verify, a failing apply,
rollback, repeatable scripts and health, compared with files in tests/golden/ after the parts that change
from run to run (times, the test database's name, timestamps, the server version, host and pid) are
replaced by placeholders.

A deliberate change of output: run `UPDATE_GOLDEN=1 pytest Backend/tests/test_golden.py` and review the diff.
"""

from __future__ import annotations

import json
import os
import re
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from src.app.cli import main
from src.postgres.settings import ConnectionSettings
from tests.support import url_of, write_migrations

GOLDEN = Path(__file__).parent / "golden"

FILES = {
    "001_create_things.sql": "CREATE TABLE IF NOT EXISTS things (id bigint PRIMARY KEY, name text NOT NULL);\n",
    "002_index_things.sql": "CREATE INDEX IF NOT EXISTS ix_things_name ON things (name);\n",
    "003_concurrent_index.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_things_id_name ON things (id, name);\n",
    "004_comment.sql": "-- Describe the table.\nCOMMENT ON TABLE things IS 'Things we keep';\n",
}
BROKEN = {
    "001_create_things.sql": FILES["001_create_things.sql"],
    "002_broken.sql": "SELECT 1;\nINSERT INTO things (id) VALUES (1);\n",
}

REVERSIBLE = {
    "001_create_things.sql": FILES["001_create_things.sql"],
    "001_create_things.down.sql": "DROP VIEW IF EXISTS thing_names;\nDROP TABLE IF EXISTS things;\n",
    "002_index_things.sql": FILES["002_index_things.sql"],
    "002_index_things.down.sql": "DROP INDEX IF EXISTS ix_things_name;\n",
    "R__things_view.sql": "CREATE OR REPLACE VIEW thing_names AS SELECT name FROM things;\n",
}

BROKEN_DOWN = {
    "001_create_things.sql": FILES["001_create_things.sql"],
    "001_create_things.down.sql": "DROP TABLE IF EXISTS things;\nDROP TABLE missing;\n",
}

_TIME = re.compile(r"\b\d+(\.\d+)? (ms|s)\b")
_STAMP = re.compile(r"\b\d{4}-\d{2}-\d{2}[ T]\d{2}:\d{2}:\d{2}(\.\d+)?(\+00:00)?")
_VERSION = re.compile(r"PostgreSQL \d+(\.\d+)?")
_JSON_VARIABLE = {
    "duration_ms",
    "elapsed_ms",
    "applied_at",
    "lock_wait_s",
    "hostname",
    "latency_ms",
    "server_version",
    "applied_by",
}
_PADDED = re.compile(r" +(<time>|<timestamp>)")


def _normalise_text(text: str, database: ConnectionSettings, folder: Path) -> str:
    text = text.replace(database.describe(), "<database>").replace(str(folder), "<migrations>")
    text = _STAMP.sub("<timestamp>", text)
    text = _TIME.sub("<time>", text)
    text = _PADDED.sub(r"  \1", text)  # the columns' padding depends on how wide the values were
    return _VERSION.sub("PostgreSQL <version>", text)


def _normalise_json(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            k: ("<variable>" if k in _JSON_VARIABLE and v is not None else _normalise_json(v)) for k, v in value.items()
        }
    if isinstance(value, list):
        return [_normalise_json(v) for v in value]
    return value


def check(name: str, actual: str) -> None:
    path = GOLDEN / name
    if os.environ.get("UPDATE_GOLDEN"):
        path.parent.mkdir(exist_ok=True)
        path.write_text(actual)
    assert path.exists(), f"{path} is missing; run with UPDATE_GOLDEN=1 to create it"
    assert actual == path.read_text()


def run(database: ConnectionSettings, folder: Path, *args: str) -> tuple[int, str, str]:
    env = {"DATABASE_URL": url_of(database), "MIGRATIONS_DIR": str(folder)}
    result = CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)
    return result.exit_code, result.stdout, result.stderr


def run_text(name: str, database: ConnectionSettings, folder: Path, *args: str) -> int:
    code, out, err = run(database, folder, *args)
    check(
        name,
        _normalise_text(f"$ migrate {' '.join(args)}\n{out}-- stderr --\n{err}-- exit {code} --\n", database, folder),
    )
    return code


def run_json(name: str, database: ConnectionSettings, folder: Path, *args: str) -> int:
    code, out, _ = run(database, folder, *args)
    body = _normalise_json(json.loads(out))
    text = json.dumps(body, indent=2, sort_keys=True)
    check(name, _normalise_text(f"{text}\n-- exit {code} --\n", database, folder))
    return code


@pytest.fixture
def folder(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "migrations", FILES)


@pytest.fixture
def reversible(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "reversible", REVERSIBLE)


@pytest.fixture
def broken(tmp_path: Path) -> Path:
    return write_migrations(tmp_path / "broken", BROKEN)


def test_status_before_apply(database: ConnectionSettings, folder: Path) -> None:
    assert run_text("status-pending.txt", database, folder, "status") == 0
    assert run_json("status-pending.json", database, folder, "status", "--json") == 0


def test_dry_run(database: ConnectionSettings, folder: Path) -> None:
    assert run_text("apply-dry-run.txt", database, folder, "apply", "--dry-run") == 0
    assert run_json("apply-dry-run.json", database, folder, "apply", "--dry-run", "--json") == 0


def test_apply_text_then_status(database: ConnectionSettings, folder: Path) -> None:
    assert run_text("apply.txt", database, folder, "apply") == 0
    assert run_text("apply-nothing.txt", database, folder, "apply") == 0
    assert run_text("status-applied.txt", database, folder, "status") == 0
    assert run_json("status-applied.json", database, folder, "status", "--json") == 0


def test_apply_json(database: ConnectionSettings, folder: Path) -> None:
    assert run_json("apply.json", database, folder, "apply", "--json") == 0


def test_verify(database: ConnectionSettings, folder: Path) -> None:
    run(database, folder, "apply")
    # squawk flags a plain CREATE INDEX in an applied file: information, not judged.
    assert run_text("verify.txt", database, folder, "verify", "--rerun") == 0


def test_verify_all(database: ConnectionSettings, folder: Path) -> None:
    run(database, folder, "apply")
    assert run_text("verify-all.txt", database, folder, "verify", "--rerun", "--all") == 7


def test_failing_apply(database: ConnectionSettings, broken: Path) -> None:
    assert run_text("apply-failing.txt", database, broken, "apply") == 1
    assert run_json("apply-failing.json", database, broken, "apply", "--json") == 1


def test_health(database: ConnectionSettings, folder: Path) -> None:
    assert run_text("health.txt", database, folder, "health") == 0
    assert run_text("health-ready-pending.txt", database, folder, "health", "--ready") == 1


def test_repeatables_in_dry_run_apply_and_status(database: ConnectionSettings, reversible: Path) -> None:
    assert run_text("repeatable-dry-run.txt", database, reversible, "apply", "--dry-run") == 0
    assert run_text("repeatable-apply.txt", database, reversible, "apply") == 0
    assert run_text("repeatable-status.txt", database, reversible, "status") == 0
    assert run_json("repeatable-status.json", database, reversible, "status", "--json") == 0


def test_rollback(database: ConnectionSettings, reversible: Path) -> None:
    run(database, reversible, "apply")
    assert run_text("rollback-dry-run.txt", database, reversible, "rollback", "--to", "0", "--dry-run") == 0
    assert run_json("rollback-dry-run.json", database, reversible, "rollback", "--to", "0", "--dry-run", "--json") == 0
    assert run_text("rollback.txt", database, reversible, "rollback") == 0
    assert run_json("rollback.json", database, reversible, "rollback", "--json") == 0
    assert run_text("rollback-nothing.txt", database, reversible, "rollback", "--to", "0") == 0


def test_failing_rollback(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "broken-down", BROKEN_DOWN)
    run(database, folder, "apply")
    assert run_text("rollback-failing.txt", database, folder, "rollback") == 1
    assert run_json("rollback-failing.json", database, folder, "rollback", "--json") == 1
