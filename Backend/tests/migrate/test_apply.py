"""`runner.apply` on a real server: each file with its ledger row, failures leave nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from src.database.connection import ConnectionSettings
from src.migrate import lock, runner
from src.migrate.errors import DriftError, LockTimeout, MigrationFailed, MigrationFileError
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from tests.support import write_migrations

GOOD = {
    "001_create_a.sql": "CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY);",
    "002_create_b.sql": "CREATE TABLE IF NOT EXISTS b (id int PRIMARY KEY);",
}


async def apply(conn: asyncpg.Connection, folder: Path, **options: object) -> runner.ApplyResult:
    return await runner.apply(conn, discover(folder), runner.Options(**options))  # type: ignore[arg-type]


async def ledger_versions(conn: asyncpg.Connection) -> list[int]:
    if not await conn.fetchval("SELECT to_regclass('public.migration_ledger') IS NOT NULL"):
        return []
    return [r["version"] for r in await conn.fetch("SELECT version FROM public.migration_ledger ORDER BY 1")]


async def table_exists(conn: asyncpg.Connection, name: str) -> bool:
    return bool(await conn.fetchval("SELECT to_regclass($1) IS NOT NULL", name))


async def test_status_of_a_fresh_database_lists_every_file_as_pending(conn: asyncpg.Connection, tmp_path: Path) -> None:
    plan = await runner.read_plan(conn, discover(write_migrations(tmp_path, GOOD)), runner.Options())
    assert [(e.version, e.state.value) for e in plan.entries] == [(1, "pending"), (2, "pending")]
    assert not await table_exists(conn, "public.migration_ledger")  # reading status creates nothing


async def test_the_ledger_records_checksum_duration_and_who(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = discover(write_migrations(tmp_path, GOOD))
    await runner.apply(conn, files, runner.Options())
    row = await conn.fetchrow("SELECT * FROM public.migration_ledger WHERE version = 1")
    assert row["name"] == "create_a"
    assert row["checksum"] == files[0].checksum
    assert row["duration_ms"] > 0
    assert row["applied_by"] == await conn.fetchval("SELECT current_user")
    assert row["hostname"]
    assert (row["kind"], row["transactional"]) == ("applied", True)


async def test_a_failing_file_leaves_neither_its_changes_nor_its_ledger_row(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            **GOOD,
            "003_half.sql": "CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\nINSERT INTO missing VALUES (1);\n",
        },
    )
    with pytest.raises(MigrationFailed):
        await apply(conn, folder)
    assert await ledger_versions(conn) == [1, 2]  # the earlier files stay applied
    assert not await table_exists(conn, "public.c")


async def test_an_error_in_the_third_of_five_statements_names_its_line_and_column(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    sql = (
        "CREATE TABLE t (id int PRIMARY KEY);\n"
        "INSERT INTO t VALUES (1);\n"
        "-- the third statement inserts a duplicate key\n"
        "INSERT INTO t VALUES (2),\n"
        "                     (1);\n"
        "INSERT INTO t VALUES (3);\n"
        "INSERT INTO t VALUES (4);\n"
    )
    folder = write_migrations(tmp_path, {"001_five.sql": sql})
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, folder)
    message = str(info.value)
    assert message.startswith("001_five.sql:4:1: ERROR 23505: duplicate key value violates unique constraint")
    assert "DETAIL: Key (id)=(1) already exists." in message
    assert "    4 | INSERT INTO t VALUES (2)," in message
    assert "Nothing from 001_five.sql was applied and the ledger is unchanged." in message
    assert info.value.sqlstate == "23505"
    assert not await table_exists(conn, "public.t")


async def test_a_server_reported_position_points_at_the_exact_column(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": "SELECT 1;\n\nSELECT nope FROM pg_class;\n"})
    with pytest.raises(MigrationFailed, match=r"^001_x\.sql:3:8: ERROR 42703: column \"nope\" does not exist"):
        await apply(conn, folder)


async def test_a_syntax_error_in_a_later_file_applies_nothing_at_all(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "CREATE TABLE c (id int;"})
    with pytest.raises(MigrationFileError, match=r"^003_bad\.sql:1:23: syntax error"):
        await apply(conn, folder)
    assert not await table_exists(conn, "public.a")
    assert await ledger_versions(conn) == []


async def test_begin_inside_a_file_is_refused_before_anything_runs(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_tx.sql": "BEGIN;\nCREATE TABLE c (id int);\nCOMMIT;\n"})
    with pytest.raises(MigrationFileError, match=r"^003_tx\.sql:1:1: BEGIN is not allowed"):
        await apply(conn, folder)
    assert await ledger_versions(conn) == []


async def test_a_concurrent_index_file_runs_outside_a_transaction_and_is_recorded(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path, {**GOOD, "003_index.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_a_id ON a (id);"}
    )
    result = await apply(conn, folder)
    assert [a.transactional for a in result.applied] == [True, True, False]
    assert await conn.fetchval("SELECT transactional FROM public.migration_ledger WHERE version = 3") is False
    assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_a_id'::regclass")


async def test_an_edited_applied_file_is_refused_and_nothing_runs(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, GOOD)
    await apply(conn, folder)
    write_migrations(
        folder,
        {
            "001_create_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
            "003_c.sql": "CREATE TABLE c (id int);",
        },
    )
    with pytest.raises(DriftError, match=r"001_create_a\.sql: edited after it was applied"):
        await apply(conn, folder)
    assert not await table_exists(conn, "public.c")
    assert await ledger_versions(conn) == [1, 2]


async def test_target_applies_up_to_that_version_only(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_c.sql": "CREATE TABLE c (id int);"})
    result = await apply(conn, folder, target=2)
    assert [a.file.version for a in result.applied] == [1, 2]
    assert await ledger_versions(conn) == [1, 2]


async def test_a_held_lock_times_out_naming_its_holder(
    conn: asyncpg.Connection, database: ConnectionSettings, tmp_path: Path
) -> None:
    holder = await asyncpg.connect(**database.asyncpg_kwargs(), server_settings={"application_name": "other-runner"})
    try:
        await holder.fetchval("SELECT pg_advisory_lock($1)", lock.lock_key(LedgerTable("public", "migration_ledger")))
        with pytest.raises(LockTimeout, match=r"held the migration lock for over 0\.3 s.*other-runner"):
            await apply(conn, write_migrations(tmp_path, GOOD), lock_wait=0.3)
    finally:
        await holder.close()
    assert await ledger_versions(conn) == []


async def test_a_runner_that_waited_for_the_lock_finds_the_work_done(
    conn: asyncpg.Connection, database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, GOOD)
    other = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        key = lock.lock_key(LedgerTable("public", "migration_ledger"))
        await other.fetchval("SELECT pg_advisory_lock($1)", key)
        waiting = asyncio.create_task(apply(conn, folder))
        await asyncio.sleep(0.3)
        await runner.apply(other, discover(folder), runner.Options())  # it already holds the (re-entrant) lock
        await other.fetchval("SELECT pg_advisory_unlock($1)", key)
        result = await waiting
    finally:
        await other.close()
    assert result.applied == []
    assert result.lock_wait_s is not None
    assert result.lock_wait_s >= 0.2
    assert await ledger_versions(conn) == [1, 2]


async def test_a_deleted_applied_file_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, GOOD)
    await apply(conn, folder)
    (folder / "001_create_a.sql").unlink()
    write_migrations(folder, {"003_c.sql": "CREATE TABLE c (id int);"})
    with pytest.raises(DriftError, match=r"001_create_a\.sql: applied on .* but the file is gone"):
        await apply(conn, folder)
    assert not await table_exists(conn, "public.c")


async def test_lock_timeout_stops_a_migration_queued_behind_a_long_transaction(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    setup = await asyncpg.connect(**database.asyncpg_kwargs())
    migrating = await asyncpg.connect(**database.asyncpg_kwargs(), server_settings={"lock_timeout": "200ms"})
    try:
        await setup.execute("CREATE TABLE busy (id int)")
        folder = write_migrations(tmp_path, {"001_alter.sql": "ALTER TABLE busy ADD COLUMN IF NOT EXISTS note text;"})
        async with setup.transaction():
            await setup.execute("SELECT * FROM busy")  # holds ACCESS SHARE until the transaction ends
            with pytest.raises(MigrationFailed, match=r"(?s)^001_alter\.sql:1:1: ERROR 55P03.*MIGRATE_LOCK_TIMEOUT"):
                await apply(migrating, folder)
        assert await ledger_versions(migrating) == []
    finally:
        await setup.close()
        await migrating.close()


async def test_an_invalid_index_left_by_a_failed_concurrent_build_is_rebuilt_on_rerun(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE IF NOT EXISTS t (x int);\nINSERT INTO t VALUES (1), (1);",
            "002_ux.sql": "CREATE UNIQUE INDEX CONCURRENTLY IF NOT EXISTS ux_t_x ON t (x);",
        },
    )
    with pytest.raises(MigrationFailed, match="23505"):
        await apply(conn, folder)
    assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_x'::regclass") is False
    await conn.execute("DELETE FROM t")  # the operator fixes the data, then reruns
    notes: list[str] = []

    class Notes:
        def lock_busy(self, holder: object) -> None: ...

        def note(self, message: str) -> None:
            notes.append(message)

        def starting(self, file: object, transactional: bool) -> None: ...

        def finished(self, applied: object) -> None: ...

    await runner.apply(conn, discover(folder), runner.Options(), Notes())
    assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_x'::regclass") is True
    assert any("dropped INVALID index ux_t_x" in n for n in notes)
    assert await ledger_versions(conn) == [1, 2]
