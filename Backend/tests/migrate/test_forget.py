"""`migrate repair --forget N`: drop the ledger row of a deleted file, after confirmation, keeping it in the
audit trail; and ledgers made before the audit table existed. On a real server."""

from __future__ import annotations

import asyncio
import json
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate import audit, ledger
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from src.postgres.settings import ConnectionSettings, Secret
from tests.support import fetchval, url_of, write_migrations

STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
    "003_c.sql": "CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY);",
}
LEDGER = LedgerTable.parse("public.migration_ledger")

# The ledger as the runner created it before the audit table existed.
OLD_LEDGER = """
CREATE TABLE public.migration_ledger (
    version       bigint PRIMARY KEY,
    name          text NOT NULL,
    checksum      text NOT NULL,
    applied_at    timestamptz NOT NULL DEFAULT clock_timestamp(),
    duration_ms   double precision NOT NULL,
    applied_by    text NOT NULL DEFAULT current_user,
    hostname      text NOT NULL,
    kind          text NOT NULL DEFAULT 'applied' CHECK (kind IN ('applied', 'baseline')),
    transactional boolean NOT NULL DEFAULT true
);
"""


def migrate(*args: str, input: str | None = None) -> Result:
    return CliRunner().invoke(main, list(args), input=input, catch_exceptions=False)


def applied(url: str, folder: Path) -> Path:
    write_migrations(folder, STEPS)
    result = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def ledger_versions(database: ConnectionSettings) -> str | None:
    versions: str | None = fetchval(
        database, "SELECT string_agg(version::text, ',' ORDER BY version) FROM public.migration_ledger"
    )
    return versions


async def old_ledger_recording(conn: asyncpg.Connection, folder: Path) -> None:
    """An old-style ledger holding a row for every file in `folder`, as an older runner left it."""
    await conn.execute(OLD_LEDGER)
    for file in discover(folder):
        await conn.execute(
            "INSERT INTO public.migration_ledger (version, name, checksum, duration_ms, hostname) "
            "VALUES ($1, $2, $3, 1.0, 'old-host')",
            file.version,
            file.name,
            file.checksum,
        )


# forgetting


def test_forget_with_yes_drops_the_row_of_a_deleted_file(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--forget", "3", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "003_c.sql: ledger row forgotten" in result.stdout
    assert ledger_versions(database) == "1,2"
    assert migrate("status", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0


def test_forget_keeps_the_row_in_an_audit_row(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    checksum = discover(folder)[2].checksum
    (folder / "003_c.sql").unlink()
    migrate("repair", "--forget", "3", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    kept = fetchval(
        database,
        "SELECT json_build_object('action', action, 'versions', versions, 'before', before, 'after', after, "
        "'note', note, 'by', done_by) FROM public.migration_ledger_audit WHERE action = 'forget'",
    )
    row = json.loads(kept)
    assert (row["action"], row["versions"], row["after"]) == ("forget", [3], None)
    assert (row["before"][0]["name"], row["before"][0]["checksum"]) == ("c", checksum)
    assert "003_c.sql is gone from the migrations folder" in row["note"]
    assert row["by"] == database.user


def test_forget_asks_first_and_yes_forgets(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--forget", "3", "--database-url", url, "--migrations-dir", str(folder), input="y\n")
    assert result.exit_code == 0, result.output
    assert "003_c.sql  applied" in result.stderr
    assert "Forget these rows? [y/N]" in result.stderr
    assert ledger_versions(database) == "1,2"


def test_forget_answered_no_changes_nothing(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--forget", "3", "--database-url", url, "--migrations-dir", str(folder), input="n\n")
    assert result.exit_code == 2
    assert "migrate: error: not confirmed; nothing was changed (--yes confirms without asking)" in result.stderr
    assert ledger_versions(database) == "1,2,3"


def test_forget_with_no_answer_changes_nothing(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--forget", "3", "--database-url", url, "--migrations-dir", str(folder), input="")
    assert result.exit_code == 2
    assert "not confirmed; nothing was changed" in result.stderr
    assert ledger_versions(database) == "1,2,3"


def test_forget_refuses_while_the_file_still_exists(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    result = migrate("repair", "--forget", "2", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert "--forget 2: 002_b.sql is still in the migrations folder; forget only removes the row of a deleted" in (
        result.stderr
    )
    assert ledger_versions(database) == "1,2,3"


def test_forget_refuses_a_version_the_ledger_has_no_row_for(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    result = migrate("repair", "--forget", "7", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert "--forget 7: the ledger public.migration_ledger has no row for version 7" in result.stderr


def test_forget_a_range_drops_every_deleted_file_in_it(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "001_a.sql").unlink()
    (folder / "002_b.sql").unlink()
    result = migrate("repair", "--forget", "1-2", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "Forgot 2 ledger row(s)." in result.stdout
    assert ledger_versions(database) == "3"


def test_a_range_with_one_file_still_present_forgets_nothing(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    (folder / "001_a.sql").unlink()
    result = migrate("repair", "--forget", "1-2", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert "002_b.sql is still in the migrations folder" in result.stderr
    assert ledger_versions(database) == "1,2,3"


def test_repairing_an_edit_keeps_an_audit_row_with_both_checksums(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied(url, tmp_path)
    before = discover(folder)[1].checksum
    (folder / "002_b.sql").write_text("-- reformatted\n" + STEPS["002_b.sql"])
    assert migrate("repair", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0
    kept = fetchval(
        database,
        "SELECT json_build_object('action', action, 'before', before->0->>'checksum', "
        "'after', after->0->>'checksum') FROM public.migration_ledger_audit WHERE action = 'repair'",
    )
    assert json.loads(kept) == {"action": "repair", "before": before, "after": discover(folder)[1].checksum}


# an old ledger, made before the audit table


async def test_ensure_adds_the_audit_table_to_an_old_ledger_and_keeps_its_rows(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await old_ledger_recording(conn, write_migrations(tmp_path, STEPS))
    await audit.ensure(conn, LEDGER)
    assert await conn.fetchval("SELECT to_regclass('public.migration_ledger_audit') IS NOT NULL")
    assert [r.version for r in await ledger.read(conn, LEDGER)] == [1, 2, 3]


async def test_ensure_on_an_upgraded_ledger_changes_nothing(conn: asyncpg.Connection, tmp_path: Path) -> None:
    await old_ledger_recording(conn, write_migrations(tmp_path, STEPS))
    await audit.ensure(conn, LEDGER)
    tables = (
        "SELECT array_agg(relname::text ORDER BY relname) FROM pg_class WHERE relkind = 'r' AND relname LIKE 'mig%'"
    )
    before = await conn.fetchval(tables)
    await audit.ensure(conn, LEDGER)
    assert await conn.fetchval(tables) == before == ["migration_ledger", "migration_ledger_audit"]


async def test_apply_on_an_old_ledger_continues_from_it_and_adds_the_audit_table(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    from src.migrate import runner

    folder = write_migrations(tmp_path, STEPS)
    await old_ledger_recording(conn, folder)
    write_migrations(folder, {"004_d.sql": "CREATE TABLE IF NOT EXISTS d (id bigint PRIMARY KEY);"})
    result = await runner.apply(conn, discover(folder), runner.Options())
    assert [a.file.version for a in result.applied] == [4]
    assert [r.version for r in await ledger.read(conn, LEDGER)] == [1, 2, 3, 4]
    assert [(r.action, r.versions) for r in await audit.read(conn, LEDGER)] == [("apply", [4])]


def test_forget_on_an_old_ledger_adds_the_audit_table_first(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, STEPS)

    async def make_old_ledger() -> None:
        conn = await asyncpg.connect(**database.asyncpg_kwargs())
        try:
            await old_ledger_recording(conn, folder)
        finally:
            await conn.close()

    asyncio.run(make_old_ledger())
    (folder / "003_c.sql").unlink()
    url = url_of(database)
    result = migrate("repair", "--forget", "3", "--yes", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger_audit WHERE action = 'forget'") == 1


@pytest.fixture
async def runner_without_create(
    conn: asyncpg.Connection, database: ConnectionSettings
) -> AsyncIterator[ConnectionSettings]:
    """A login that may read and write an old ledger in schema `led`, but not create tables there."""
    name = f"runner_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    await conn.execute(
        f"CREATE SCHEMA led; CREATE ROLE {name} LOGIN PASSWORD '{password}'; GRANT USAGE ON SCHEMA led TO {name};"
        + OLD_LEDGER.replace("public.", "led.")
        + f"GRANT SELECT, INSERT, UPDATE, DELETE ON led.migration_ledger TO {name};"
    )
    try:
        yield replace(database, user=name, password=Secret(password))
    finally:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        await conn.execute(f"DROP SCHEMA led CASCADE; DROP OWNED BY {name}; DROP ROLE {name}")


def test_a_role_that_may_not_create_tables_still_applies_on_an_old_ledger(
    runner_without_create: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": "SELECT 1;"})
    url = url_of(runner_without_create)
    result = migrate(
        "apply", "--ledger-table", "led.migration_ledger", "--database-url", url, "--migrations-dir", str(folder)
    )
    assert result.exit_code == 0, result.output
    assert fetchval(runner_without_create, "SELECT to_regclass('led.migration_ledger_audit') IS NULL")
    assert "this apply is not in the audit trail: cannot create the audit table led.migration_ledger_audit" in (
        result.stderr
    )


def test_forget_without_an_audit_table_it_may_create_changes_nothing(
    runner_without_create: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": "SELECT 1;", "002_y.sql": "SELECT 2;"})
    url = url_of(runner_without_create)
    options = ("--ledger-table", "led.migration_ledger", "--database-url", url, "--migrations-dir", str(folder))
    assert migrate("apply", *options).exit_code == 0
    (folder / "002_y.sql").unlink()
    result = migrate("repair", "--forget", "2", "--yes", *options)
    assert result.exit_code == 2
    assert "cannot create the audit table led.migration_ledger_audit: this role (runner_" in result.stderr
    assert fetchval(runner_without_create, "SELECT count(*) FROM led.migration_ledger") == 2
