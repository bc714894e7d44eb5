"""`runner.apply` on a real server: each file with its ledger row, failures leave nothing behind."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest

from src.migrate import ledger, lock, runner, script
from src.migrate.errors import DriftError, LockTimeout, MigrationFailed, MigrationFileError
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from src.migrate.script import TransactionMode
from src.postgres.settings import ConnectionSettings
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


HALF = "CREATE TABLE c (id int);\nINSERT INTO c VALUES (1);\nINSERT INTO missing VALUES (1);\n"


async def test_by_default_a_failing_file_rolls_back_every_pending_file(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_half.sql": HALF})
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, folder)
    assert await ledger_versions(conn) == []
    assert not any([await table_exists(conn, t) for t in ("public.a", "public.b", "public.c")])
    assert str(info.value).startswith('003_half.sql:3:13: ERROR 42P01: relation "missing" does not exist')
    assert str(info.value).endswith(
        "It ran in one transaction with the other pending files from 001_create_a.sql to 003_half.sql (3 files), "
        "which was rolled back: none of them was applied and the ledger is unchanged."
    )


async def test_per_file_transactions_keep_the_files_before_a_failing_one(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_half.sql": HALF})
    with pytest.raises(
        MigrationFailed,
        match=r"Nothing from 003_half\.sql was applied\. Committed before it in this run, and still applied and "
        r"recorded: 001_create_a\.sql, 002_create_b\.sql\.$",
    ):
        await apply(conn, folder, transaction=TransactionMode.PER_FILE)
    assert await ledger_versions(conn) == [1, 2]
    assert not await table_exists(conn, "public.c")


async def test_an_error_without_a_position_in_a_later_file_names_that_file_and_line(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # A CHECK violation carries no position: the runner finds the statement by running the files again.
    check = "CREATE TABLE c (n int CHECK (n > 0));\nINSERT INTO c VALUES (1);\nINSERT INTO c VALUES (-1);\n"
    folder = write_migrations(tmp_path, {**GOOD, "003_check.sql": check})
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, folder)
    assert str(info.value).startswith('003_check.sql:3:1: ERROR 23514: new row for relation "c" violates check')
    assert "    3 | INSERT INTO c VALUES (-1);" in str(info.value)
    assert info.value.sqlstate == "23514"
    assert await ledger_versions(conn) == []
    assert not await table_exists(conn, "public.a")


async def test_an_error_in_a_file_of_a_later_batch_is_found_and_nothing_is_kept(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    count = script.BATCH_FILES + 20
    files = {f"{i:03d}_t{i}.sql": f"CREATE TABLE IF NOT EXISTS t{i} (n int CHECK (n > 0));" for i in range(1, count)}
    files[f"{count:03d}_bad.sql"] = f"INSERT INTO t1 VALUES (1);\nINSERT INTO t{count - 1} VALUES (0);\n"
    with pytest.raises(MigrationFailed, match=rf"^{count:03d}_bad\.sql:2:1: ERROR 23514: "):
        await apply(conn, write_migrations(tmp_path, files))
    assert await ledger_versions(conn) == []
    assert not await table_exists(conn, "public.t1")


async def test_an_error_that_does_not_recur_names_its_files_and_keeps_nothing(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # Sequences ignore rollback, so this file fails on its first run only.
    await conn.execute("CREATE SEQUENCE once")
    flaky = "CREATE TABLE c (id int);\nSELECT 1 / (nextval('once') - 1);\n"
    folder = write_migrations(tmp_path, {**GOOD, "003_flaky.sql": flaky})
    with pytest.raises(MigrationFailed) as info:
        await apply(conn, folder)
    message = str(info.value)
    assert message.startswith("001_create_a.sql, 002_create_b.sql, 003_flaky.sql: ERROR 22012: division by zero")
    assert "the error did not recur when the files ran again one statement at a time" in message
    assert await ledger_versions(conn) == []
    assert not await table_exists(conn, "public.c")


async def test_each_file_of_a_batch_records_its_own_duration(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_slow.sql": "SELECT pg_sleep(0.3);", "004_d.sql": "SELECT 1;"})
    result = await apply(conn, folder)
    took = {a.file.version: a.duration_ms for a in result.applied}
    assert took[3] >= 300
    assert max(took[1], took[2], took[4]) < 300
    rows = dict(await conn.fetch("SELECT version, duration_ms FROM public.migration_ledger"))
    assert rows == took


async def test_a_file_that_changes_datestyle_and_timezone_does_not_upset_the_durations(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            **GOOD,
            "003_settings.sql": "SET datestyle = 'SQL, DMY';\nSET TimeZone = 'Pacific/Kiritimati';",
            "004_d.sql": "SELECT 1;",
        },
    )
    result = await apply(conn, folder)
    assert all(0 <= a.duration_ms < 5000 for a in result.applied)


async def test_a_concurrent_index_file_commits_the_transaction_before_it(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            **GOOD,
            "003_index.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_a_id ON a (id);",
            "004_c.sql": "CREATE TABLE IF NOT EXISTS c (id int);",
            "005_bad.sql": "INSERT INTO missing VALUES (1);",
        },
    )
    with pytest.raises(MigrationFailed, match=r"from 004_c\.sql to 005_bad\.sql \(2 files\), which was rolled back"):
        await apply(conn, folder)
    assert await ledger_versions(conn) == [1, 2, 3]
    assert not await table_exists(conn, "public.c")


async def test_a_name_or_host_with_quotes_and_backslashes_is_recorded_verbatim(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await conn.execute("SET standard_conforming_strings = off")
    folder = write_migrations(tmp_path, {"001_it-s_fine.sql": "SELECT 1;"})
    files = discover(folder)
    batch = script.batches(files, LedgerTable.parse("public.migration_ledger"), "host'with\\back\\slash")
    await ledger.ensure(conn, LedgerTable.parse("public.migration_ledger"))
    async with conn.transaction():
        await conn.execute(batch[0].text)
    row = await conn.fetchrow("SELECT name, hostname FROM public.migration_ledger")
    assert (row["name"], row["hostname"]) == ("it-s_fine", "host'with\\back\\slash")


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
    with pytest.raises(MigrationFileError, match=r"^003_bad\.sql:1:23: ERROR 42601: syntax error"):
        await apply(conn, folder)
    assert not await table_exists(conn, "public.a")
    assert await ledger_versions(conn) == []


async def test_a_failed_first_run_leaves_not_even_the_ledger_table(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "INSERT INTO missing VALUES (1);"})
    with pytest.raises(MigrationFailed):
        await apply(conn, folder)
    assert not await table_exists(conn, "public.migration_ledger")


async def test_a_syntax_error_in_a_later_file_applies_nothing_with_per_file_transactions(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**GOOD, "003_bad.sql": "CREATE TABLE c (id int;"})
    with pytest.raises(MigrationFileError, match=r"^003_bad\.sql:1:23: ERROR 42601: syntax error"):
        await apply(conn, folder, transaction=TransactionMode.PER_FILE)
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

        def transaction(self, files: object) -> None: ...

        def starting(self, file: object, transactional: bool) -> None: ...

        def finished(self, applied: object) -> None: ...

        def failed_at(self, file: object, ran: object) -> None: ...

    await runner.apply(conn, discover(folder), runner.Options(), Notes())
    assert await conn.fetchval("SELECT indisvalid FROM pg_index WHERE indexrelid = 'ux_t_x'::regclass") is True
    assert any("dropped INVALID index ux_t_x" in n for n in notes)
    assert await ledger_versions(conn) == [1, 2]
