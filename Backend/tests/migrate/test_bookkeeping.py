"""The runner's own statements (the ledger, its lock) are immune to what a file does to the session:
timeouts, role, search_path, prepared statements, DISCARD ALL. The file's settings still hold for the
files after it, as they would in `psql -1 -f` of the files concatenated."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from pathlib import Path

import asyncpg
import pytest

from src.migrate import lock, runner, script
from src.migrate.errors import MigrationFileError
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from src.migrate.script import TransactionMode
from src.postgres.settings import ConnectionSettings
from tests.support import write_migrations

GATE = 4242
"""An advisory lock the test holds so that the runner waits, inside a file, until the test is ready."""
GATE_SQL = f"DO $$ BEGIN WHILE NOT pg_try_advisory_xact_lock({GATE}) LOOP PERFORM pg_sleep(0.01); END LOOP; END $$;\n"
"""A file's wait for the gate (polling, so no lock_timeout a file sets applies to it)."""


async def apply(conn: asyncpg.Connection, folder: Path, **options: object) -> runner.ApplyResult:
    return await runner.apply(conn, discover(folder), runner.Options(**options))  # type: ignore[arg-type]


async def ledger(conn: asyncpg.Connection) -> list[asyncpg.Record]:
    return list(await conn.fetch("SELECT version, duration_ms, applied_by FROM public.migration_ledger ORDER BY 1"))


async def until(other: asyncpg.Connection, task: asyncio.Task[object], query: str) -> None:
    """Poll `query` on `other` until it is true or the runner's task has ended."""
    while not task.done() and not await other.fetchval(query):  # noqa: ASYNC110 (the condition is on the server)
        await asyncio.sleep(0.02)


@pytest.fixture
async def other(database: ConnectionSettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        yield connection
    finally:
        await connection.close()


async def ledger_write_waits_on_a_held_ledger_lock(
    conn: asyncpg.Connection, other: asyncpg.Connection, folder: Path, **options: object
) -> runner.ApplyResult:
    """Run `apply`; once a file waits at the gate, take the ledger's lock, open the gate, and hold the lock
    half a second after the runner starts waiting for it (longer than the timeouts the files set)."""
    await other.fetchval("SELECT pg_advisory_lock($1)", GATE)
    task = asyncio.create_task(apply(conn, folder, **options))
    await until(
        other,
        task,
        "SELECT EXISTS (SELECT FROM pg_stat_activity WHERE pid <> pg_backend_pid() AND state = 'active' "
        f"AND query LIKE '%pg_try_advisory_xact_lock({GATE})%')",
    )
    async with other.transaction():
        # SHARE: it blocks the ledger row's INSERT, not the read of the ledger the runner's transaction made.
        await other.execute("LOCK TABLE public.migration_ledger IN SHARE MODE")
        await other.fetchval("SELECT pg_advisory_unlock($1)", GATE)
        await until(
            other,
            task,
            "SELECT EXISTS (SELECT FROM pg_locks WHERE relation = 'public.migration_ledger'::regclass AND NOT granted)",
        )
        await asyncio.sleep(0.5)
    return await task


async def test_a_files_statement_timeout_does_not_cancel_the_ledger_write(
    conn: asyncpg.Connection, other: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    await apply(conn, folder)
    write_migrations(folder, {"002_short.sql": GATE_SQL + "SET LOCAL statement_timeout = '200ms';\n"})
    await ledger_write_waits_on_a_held_ledger_lock(conn, other, folder)
    assert [r["version"] for r in await ledger(conn)] == [1, 2]


async def test_an_earlier_files_session_lock_timeout_does_not_stop_the_ledger_write(
    conn: asyncpg.Connection, other: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "CREATE TABLE a (id int);"})
    await apply(conn, folder)
    write_migrations(
        folder,
        {"002_impatient.sql": "SET lock_timeout = '100ms';\n", "003_gate.sql": GATE_SQL},
    )
    await ledger_write_waits_on_a_held_ledger_lock(conn, other, folder, transaction=TransactionMode.PER_FILE)
    assert [r["version"] for r in await ledger(conn)] == [1, 2, 3]
    assert await conn.fetchval("SHOW lock_timeout") == "100ms"  # the file's own setting still holds after it


async def test_set_role_in_a_file_does_not_change_who_writes_the_ledger(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    role = f"owner_{uuid.uuid4().hex[:8]}"
    await conn.execute(f'CREATE ROLE "{role}" NOLOGIN; GRANT CREATE ON SCHEMA public TO "{role}"')
    try:
        folder = write_migrations(
            tmp_path,
            {
                "001_as_owner.sql": f'SET ROLE "{role}";\nCREATE TABLE owned (id int);\n',
                "002_still_owner.sql": "CREATE TABLE owned_too (id int);\n",
            },
        )
        await apply(conn, folder)
        assert await conn.fetchval("SELECT current_user") == role  # the file's SET ROLE holds after it, as in psql
        await conn.execute("RESET ROLE")
        me = await conn.fetchval("SELECT session_user")
        assert [r["applied_by"] for r in await ledger(conn)] == [me, me]
        owners = await conn.fetch("SELECT tableowner FROM pg_tables WHERE tablename LIKE 'owned%'")
        assert {r[0] for r in owners} == {role}
    finally:
        await conn.execute(f'RESET ROLE; DROP OWNED BY "{role}"; DROP ROLE "{role}"')


async def test_a_function_shadowing_pg_catalog_on_the_search_path_does_not_change_the_durations(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    shadow = (
        "CREATE SCHEMA shadow;\n"
        "CREATE FUNCTION shadow.clock_timestamp() RETURNS timestamptz LANGUAGE sql\n"
        "    AS $$ SELECT '2000-01-01'::timestamptz $$;\n"
        "SET search_path = shadow, pg_catalog, public;\n"
    )
    folder = write_migrations(tmp_path, {"001_shadow.sql": shadow, "002_t.sql": "CREATE TABLE t (id int);"})
    await apply(conn, folder)
    assert all(0 <= r["duration_ms"] < 60_000 for r in await ledger(conn))


async def test_a_files_search_path_still_holds_for_the_files_of_the_next_batch(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = {"001_schema.sql": "CREATE SCHEMA app;\nSET LOCAL search_path = app, public;\n"}
    count = script.BATCH_FILES + 2
    files.update({f"{i:03d}_t{i}.sql": f"CREATE TABLE t{i} (n int);" for i in range(2, count + 1)})
    await apply(conn, write_migrations(tmp_path, files))
    assert await conn.fetchval(f"SELECT to_regclass('app.t{count}') IS NOT NULL")


async def test_deallocate_all_in_a_file_does_not_break_the_runners_later_queries(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_a.sql": "CREATE TABLE a (id int);",
            "002_deallocate.sql": "DEALLOCATE ALL;",
            "003_b.sql": "CREATE TABLE b (id int);",
        },
    )
    await apply(conn, folder, transaction=TransactionMode.PER_FILE)
    assert [r["version"] for r in await ledger(conn)] == [1, 2, 3]


async def test_the_callers_connection_still_works_after_a_files_deallocate_all(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    query = "SELECT count(*) FROM pg_class"
    await conn.fetchval(query)  # asyncpg now keeps it as a named prepared statement
    await apply(conn, write_migrations(tmp_path, {"001_deallocate.sql": "DEALLOCATE ALL;"}))
    assert await conn.fetchval(query) > 0


DISCARD = {
    "001_a.sql": "CREATE TABLE a (id int);",
    "002_discard.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_a ON a (id);\nDISCARD ALL;\n",
}


async def test_discard_all_in_a_file_run_outside_a_transaction_is_applied_and_recorded(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await apply(conn, write_migrations(tmp_path, {**DISCARD, "003_b.sql": "CREATE TABLE b (id int);"}))
    assert [r["version"] for r in await ledger(conn)] == [1, 2, 3]


async def test_the_runner_holds_its_lock_again_after_a_files_discard_all(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    key = lock.lock_key(LedgerTable.parse("public.migration_ledger"))
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    check = (
        "DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_locks WHERE locktype = 'advisory' AND pid = pg_backend_pid() "
        f"AND classid = {unsigned >> 32}::bigint::oid AND objid = {unsigned & 0xFFFFFFFF}::bigint::oid) THEN "
        "RAISE EXCEPTION 'the runner lost its lock'; END IF; END $$;"
    )
    await apply(conn, write_migrations(tmp_path, {**DISCARD, "003_check.sql": check}))
    assert [r["version"] for r in await ledger(conn)] == [1, 2, 3]


async def test_a_file_that_runs_on_into_the_runners_statements_is_refused_and_nothing_is_applied(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # The dollar quote opened in 001 is closed in 002: sent together, it would swallow the runner's statements.
    folder = write_migrations(tmp_path, {"001_open.sql": "SELECT $$", "002_close.sql": "$$;"})
    with pytest.raises(MigrationFileError, match=r"^001_open\.sql:1:8: ERROR 42601: unterminated dollar-quoted string"):
        await apply(conn, folder)
    assert not await conn.fetchval("SELECT to_regclass('public.migration_ledger') IS NOT NULL")
