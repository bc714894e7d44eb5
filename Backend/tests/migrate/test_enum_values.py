"""A file that adds an enum value ends its transaction: PostgreSQL refuses a new value in the transaction
that added it (55P04), so in the one-transaction default a later file could not use it otherwise."""

from __future__ import annotations

import json
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from src.app.cli import main
from src.migrate import runner
from src.migrate.errors import MigrationFailed
from src.migrate.files import discover
from src.migrate.script import TransactionMode
from tests.support import write_migrations

ENUM = {
    "001_mood.sql": "CREATE TYPE mood AS ENUM ('sad', 'ok');\nCREATE TABLE person (name text, current mood);\n",
    "002_add_happy.sql": "ALTER TYPE mood ADD VALUE IF NOT EXISTS 'happy';\n",
    "003_use_happy.sql": "INSERT INTO person VALUES ('ann', 'happy');\n",
}


class Notes:
    def __init__(self) -> None:
        self.notes: list[str] = []
        self.transactions: list[list[str]] = []

    def lock_busy(self, holder: object) -> None: ...

    def note(self, message: str) -> None:
        self.notes.append(message)

    def transaction(self, files: object) -> None:
        self.transactions.append([f.filename for f in files])  # type: ignore[attr-defined]

    def starting(self, file: object, transactional: bool) -> None: ...

    def finished(self, applied: object) -> None: ...

    def failed_at(self, file: object, ran: object) -> None: ...


async def ledger_versions(conn: asyncpg.Connection) -> list[int]:
    return [r[0] for r in await conn.fetch("SELECT version FROM public.migration_ledger ORDER BY 1")]


async def apply_on_existing_type(
    conn: asyncpg.Connection, tmp_path: Path, files: dict[str, str], progress: Notes | None = None, **options: object
) -> runner.ApplyResult:
    """Apply 001 (the type) first, then `files`: a value added to a type created in the same transaction may
    be used in it, so the type must exist before."""
    folder = write_migrations(tmp_path, {"001_mood.sql": files["001_mood.sql"]})
    await runner.apply(conn, discover(folder), runner.Options(**options))  # type: ignore[arg-type]
    write_migrations(folder, files)
    return await runner.apply(conn, discover(folder), runner.Options(**options), progress)  # type: ignore[arg-type]


async def test_a_value_added_in_one_file_can_be_used_in_the_next(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await apply_on_existing_type(conn, tmp_path, ENUM)
    assert await conn.fetchval("SELECT current::text FROM person") == "happy"
    assert await ledger_versions(conn) == [1, 2, 3]


async def test_a_value_added_is_found_when_the_files_are_parsed_first_too(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # A block comment makes the runner parse every file with pglast before sending anything.
    files = {**ENUM, "003_use_happy.sql": "/* now use it */\n" + ENUM["003_use_happy.sql"]}
    await apply_on_existing_type(conn, tmp_path, files)
    assert await conn.fetchval("SELECT current::text FROM person") == "happy"


async def test_the_transaction_commits_after_the_file_and_progress_says_why(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = {**ENUM, "004_more.sql": "INSERT INTO person VALUES ('bob', 'ok');\n"}
    notes = Notes()
    await apply_on_existing_type(conn, tmp_path, files, notes)
    assert notes.transactions == [["003_use_happy.sql", "004_more.sql"]]
    assert notes.notes == [
        "committed after 002_add_happy.sql: it adds an enum value, which PostgreSQL lets later files use only "
        "once committed"
    ]


async def test_a_later_failure_keeps_what_was_committed_before_it_and_says_so(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = {**ENUM, "004_bad.sql": "INSERT INTO missing VALUES (1);\n"}
    with pytest.raises(MigrationFailed) as info:
        await apply_on_existing_type(conn, tmp_path, files)
    assert await ledger_versions(conn) == [1, 2]
    assert str(info.value).endswith(
        "It ran in one transaction with the other pending files from 003_use_happy.sql to 004_bad.sql (2 files), "
        "which was rolled back: none of them was applied. Committed before it in this run, and still applied "
        "and recorded: 002_add_happy.sql."
    )


async def test_per_file_mode_needs_no_extra_commit(conn: asyncpg.Connection, tmp_path: Path) -> None:
    notes = Notes()
    await apply_on_existing_type(conn, tmp_path, ENUM, notes, transaction=TransactionMode.PER_FILE)
    assert notes.notes == []
    assert await ledger_versions(conn) == [1, 2, 3]


def test_the_dry_run_says_where_the_transaction_commits(tmp_path: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "MIGRATIONS_DIR": str(write_migrations(tmp_path / "m", ENUM))}
    result = CliRunner().invoke(main, ["apply", "--dry-run"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert (
        "-- 001_mood.sql, 002_add_happy.sql: in one transaction, all 2 files or none; it commits after "
        "002_add_happy.sql, which adds an enum value (later files can use it only once committed)"
    ) in result.stdout
    assert "-- 003_use_happy.sql: in a transaction of its own" in result.stdout


def test_the_json_dry_run_marks_the_file_that_adds_an_enum_value(tmp_path: Path, database_url: str) -> None:
    env = {"DATABASE_URL": database_url, "MIGRATIONS_DIR": str(write_migrations(tmp_path / "m", ENUM))}
    result = CliRunner().invoke(main, ["apply", "--dry-run", "--json"], env=env, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    would = json.loads(result.stdout)["would_apply"]
    assert [(f["file"], f["adds_enum_value"]) for f in would] == [
        ("001_mood.sql", False),
        ("002_add_happy.sql", True),
        ("003_use_happy.sql", False),
    ]
