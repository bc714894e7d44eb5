"""A failed apply names the file the error is in, as progress and as the error, with every part of what
the server or pglast said: SQLSTATE, message, DETAIL, HINT, file:line:column."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import asyncpg
import pytest

from src.migrate import commands, runner, script
from src.migrate.errors import Exit, MigrationFailed, MigrationFileError
from src.migrate.files import MigrationFile, discover
from src.migrate.runner import Applied
from tests.support import write_migrations

GOOD = {
    "001_create_a.sql": "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY, name text NOT NULL);",
    "002_create_b.sql": "CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY);",
}
# The server rejects this for syntax after pglast accepted it (the check is in parse analysis), with a HINT.
ROWS_FROM = "SELECT 1;\nSELECT * FROM ROWS FROM (generate_series(1, 2), generate_series(1, 3)) AS t(a int, b int);\n"


class Recorder(commands.Events):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def starting(self, file: MigrationFile, transactional: bool) -> None:
        self.seen.append(f"start {file.filename}")

    def finished(self, applied: Applied) -> None:
        self.seen.append(f"done {applied.file.filename}")

    def failed_at(self, file: MigrationFile | None, ran: Sequence[MigrationFile]) -> None:
        self.seen.append(f"failed {file.filename if file else None} after {[f.filename for f in ran]}")


async def apply(conn: asyncpg.Connection, folder: Path, events: Recorder | None = None) -> runner.ApplyResult:
    return await runner.apply(conn, discover(folder), runner.Options(), events)


async def test_progress_marks_the_file_the_error_is_in_not_the_first_of_its_batch(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "SELECT 1;\nINSERT INTO a (id) VALUES (1);\n"})
    events = Recorder()
    with pytest.raises(MigrationFailed):
        await apply(conn, folder, events)
    assert events.seen == [
        "start 001_create_a.sql",
        "failed 003_bad.sql after ['001_create_a.sql', '002_create_b.sql']",
    ]


async def test_progress_marks_the_failing_file_of_a_later_batch(conn: asyncpg.Connection, tmp_path: Path) -> None:
    count = script.BATCH_FILES + 5
    files = {f"{i:03d}_t{i}.sql": f"CREATE TABLE IF NOT EXISTS t{i} (n int);" for i in range(1, count)}
    files[f"{count:03d}_bad.sql"] = "SELECT * FROM missing;"
    events = Recorder()
    with pytest.raises(MigrationFailed):
        await apply(conn, write_migrations(tmp_path, files), events)
    second_batch = [f"{i:03d}_t{i}.sql" for i in range(script.BATCH_FILES + 1, count)]
    assert events.seen[-2:] == [f"start {second_batch[0]}", f"failed {count:03d}_bad.sql after {second_batch}"]


async def test_the_error_carries_the_failing_file_line_and_column(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "SELECT 1;\nINSERT INTO a (id) VALUES (1);\n"})
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, folder)
    found = info.value.diagnostic
    assert found is not None
    assert (found.file, found.line, found.column, found.sqlstate) == ("003_bad.sql", 2, 1, "23502")
    assert found.detail == "Failing row contains (1, null)."


async def test_a_syntax_error_the_server_finds_keeps_its_sqlstate_and_hint(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_rows_from.sql": ROWS_FROM})
    with pytest.raises(MigrationFileError) as info:
        await apply(conn, folder)
    message = str(info.value)
    assert message.startswith(
        "003_rows_from.sql:2:77: ERROR 42601: ROWS FROM() with multiple functions cannot have a column definition list"
    )
    assert "  HINT: Put a separate column definition list for each function inside ROWS FROM()." in message
    assert info.value.exit_code is Exit.MALFORMED_FILE
    found = info.value.diagnostic
    assert found is not None
    assert (found.sqlstate, found.file, found.line, found.column) == ("42601", "003_rows_from.sql", 2, 77)
    assert found.hint == "Put a separate column definition list for each function inside ROWS FROM()."


async def test_a_syntax_error_pglast_finds_has_sqlstate_42601(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "CREATE TABLE c (id int;"})
    with pytest.raises(MigrationFileError) as info:
        await apply(conn, folder)
    assert str(info.value).startswith("003_bad.sql:1:23: ERROR 42601: syntax error at or near")
    found = info.value.diagnostic
    assert found is not None
    assert (found.sqlstate, found.file, found.line, found.column) == ("42601", "003_bad.sql", 1, 23)


async def test_a_deferred_constraint_failing_at_commit_is_one_error_and_nothing_is_applied(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = {
        "001_tables.sql": "CREATE TABLE p (id int PRIMARY KEY);\n"
        "CREATE TABLE c (p int REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n",
        "002_orphan.sql": "INSERT INTO c VALUES (1);\n",
    }
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, write_migrations(tmp_path, files))
    assert str(info.value).startswith(
        "001_tables.sql, 002_orphan.sql: the transaction failed at COMMIT: ERROR 23503: insert or update on table"
    )
    assert '  DETAIL: Key (p)=(1) is not present in table "p".' in str(info.value)
    assert info.value.sqlstate == "23503"
    assert not await conn.fetchval("SELECT to_regclass('public.p') IS NOT NULL")


async def test_a_new_enum_value_used_in_the_file_that_adds_it_says_to_use_it_in_a_later_file(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await conn.execute("CREATE TYPE mood AS ENUM ('sad')")
    same = "ALTER TYPE mood ADD VALUE 'happy';\nSELECT 'happy'::mood;\n"
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, write_migrations(tmp_path, {"001_add_and_use.sql": same}))
    assert str(info.value).startswith('001_add_and_use.sql:2:8: ERROR 55P04: unsafe use of new value "happy"')
    assert "  HINT: New enum values must be committed before they can be used." in str(info.value)
    assert "use the new value in a later file than the one that adds it" in str(info.value)


async def test_pending_deferred_checks_from_an_earlier_file_are_explained(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = {
        "001_tree.sql": (
            "CREATE TABLE IF NOT EXISTS tree (id int PRIMARY KEY, parent int REFERENCES tree DEFERRABLE "
            "INITIALLY DEFERRED);\nINSERT INTO tree VALUES (1, 1) ON CONFLICT DO NOTHING;\n"
        ),
        "002_note.sql": "ALTER TABLE tree ADD COLUMN IF NOT EXISTS note text;\n",
    }
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, write_migrations(tmp_path, files))
    assert "ERROR 55006" in str(info.value)
    assert "end that file with SET CONSTRAINTS ALL IMMEDIATE, or apply with --transaction per-file" in str(info.value)
