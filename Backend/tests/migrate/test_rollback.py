"""`migrate rollback` on a real server: down files run newest first, each with its ledger row's deletion,
and every refusal happens before anything changes."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate import ledger, lock, runner
from src.migrate.errors import DriftError, LockTimeout, MigrationFailed, NoDownScript
from src.migrate.files import MigrationFile, discover
from src.migrate.ledger import LedgerTable
from src.postgres.settings import ConnectionSettings
from tests.support import fetchval, url_of, write_migrations

FILES = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "001_a.down.sql": "DROP TABLE IF EXISTS a;",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
    "002_b.down.sql": "DROP TABLE IF EXISTS b;",
    "003_c.sql": "CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY);",
    "003_c.down.sql": "DROP TABLE IF EXISTS c;",
}


async def applied(conn: asyncpg.Connection) -> list[int]:
    return [r["version"] for r in await conn.fetch("SELECT version FROM public.migration_ledger ORDER BY 1")]


async def tables(conn: asyncpg.Connection) -> list[str]:
    rows = await conn.fetch(
        "SELECT tablename FROM pg_tables WHERE schemaname = 'public' AND tablename NOT LIKE 'migration_ledger%'"
    )
    return sorted(r["tablename"] for r in rows)


async def applied_folder(conn: asyncpg.Connection, folder: Path) -> list[MigrationFile]:
    files = discover(folder)
    await runner.apply(conn, files, runner.Options())
    return files


async def test_rollback_undoes_the_last_applied_file_and_deletes_its_ledger_row(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    result = await runner.rollback(conn, files, runner.Options())
    assert [a.file.filename for a in result.rolled_back] == ["003_c.down.sql"]
    assert result.head == 2
    assert await applied(conn) == [1, 2]
    assert await tables(conn) == ["a", "b"]


async def test_rollback_to_n_undoes_every_file_above_n_newest_first(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    result = await runner.rollback(conn, files, runner.Options(), to=1)
    assert [a.file.filename for a in result.rolled_back] == ["003_c.down.sql", "002_b.down.sql"]
    assert await applied(conn) == [1]
    assert await tables(conn) == ["a"]


async def test_rollback_steps_undoes_the_last_k(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    await runner.rollback(conn, files, runner.Options(), steps=3)
    assert await applied(conn) == []
    assert await tables(conn) == []


async def test_steps_beyond_the_applied_files_is_refused(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    with pytest.raises(Exception, match=r"--steps 4: only 3 migration\(s\) are applied; nothing was changed"):
        await runner.rollback(conn, files, runner.Options(), steps=4)
    assert await applied(conn) == [1, 2, 3]


async def test_a_file_on_the_way_without_a_down_script_refuses_before_anything_runs(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {k: v for k, v in FILES.items() if k != "002_b.down.sql"})
    files = await applied_folder(conn, folder)
    with pytest.raises(NoDownScript, match=r"cannot roll back 002_b\.sql: no down script \(002_b\.down\.sql\)"):
        await runner.rollback(conn, files, runner.Options(), to=0)
    assert await applied(conn) == [1, 2, 3]
    assert await tables(conn) == ["a", "b", "c"]  # 003's down file, newer, did not run either


async def test_an_applied_file_gone_from_the_folder_refuses_naming_it(conn: asyncpg.Connection, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    await applied_folder(conn, folder)
    (folder / "003_c.sql").unlink()
    (folder / "003_c.down.sql").unlink()
    with pytest.raises(DriftError, match=r"cannot roll back 003_c\.sql: applied, but the file is gone"):
        await runner.rollback(conn, discover(folder), runner.Options())
    assert await applied(conn) == [1, 2, 3]


async def test_a_failing_down_file_rolls_back_its_transaction_and_its_file_stays_applied(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    failing = "DROP TABLE IF EXISTS b;\nDROP TABLE not_there;\n"
    files = await applied_folder(conn, write_migrations(tmp_path, {**FILES, "002_b.down.sql": failing}))
    with pytest.raises(MigrationFailed) as info:
        await runner.rollback(conn, files, runner.Options(), to=0)
    message = str(info.value)
    assert message.startswith('002_b.down.sql:2:1: ERROR 42P01: table "not_there" does not exist')
    assert message.endswith(
        "Nothing from 002_b.down.sql took effect (its transaction was rolled back) and 002_b.sql stays applied in "
        "the ledger. Rolled back before it in this run, and no longer applied: 003_c.sql."
    )
    assert await applied(conn) == [1, 2]
    assert await tables(conn) == ["a", "b"]


async def test_a_down_file_outside_a_transaction_runs_statement_by_statement(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path,
        {
            **FILES,
            "004_ix.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_a ON a (id);",
            "004_ix.down.sql": "DROP INDEX CONCURRENTLY IF EXISTS ix_a;",
        },
    )
    files = await applied_folder(conn, folder)
    result = await runner.rollback(conn, files, runner.Options())
    assert [(a.file.filename, a.transactional) for a in result.rolled_back] == [("004_ix.down.sql", False)]
    assert await conn.fetchval("SELECT to_regclass('public.ix_a')") is None
    assert await applied(conn) == [1, 2, 3]


async def test_rollback_waits_for_the_lock_apply_takes(
    conn: asyncpg.Connection, database: ConnectionSettings, tmp_path: Path
) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    other = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await other.fetchval("SELECT pg_advisory_lock($1)", lock.lock_key(LedgerTable.parse("public.migration_ledger")))
        with pytest.raises(LockTimeout):
            await runner.rollback(conn, files, runner.Options(lock_wait=0.3))
    finally:
        await other.close()
    assert await applied(conn) == [1, 2, 3]


async def test_the_ledger_records_the_down_files_checksum(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    recorded = await conn.fetchval("SELECT down_checksum FROM public.migration_ledger WHERE version = 2")
    assert recorded == files[1].down_checksum


async def test_a_ledger_made_before_down_files_is_upgraded_in_place(conn: asyncpg.Connection, tmp_path: Path) -> None:
    old = {k: v for k, v in FILES.items() if k.startswith(("001", "002")) and ".down." not in k}
    await applied_folder(conn, write_migrations(tmp_path / "old", old))
    await conn.execute("ALTER TABLE public.migration_ledger DROP COLUMN down_checksum")  # as an older runner made it
    files = await applied_folder(conn, write_migrations(tmp_path / "new", FILES))
    rows = await conn.fetch("SELECT version, down_checksum FROM public.migration_ledger ORDER BY 1")
    assert [(r["version"], r["down_checksum"]) for r in rows] == [(1, None), (2, None), (3, files[2].down_checksum)]
    # Down files added after their files were applied are what rollback runs (the ledger recorded none).
    await runner.rollback(conn, files, runner.Options(), to=0)
    assert await tables(conn) == []


def migrate(database: ConnectionSettings, folder: Path, *args: str) -> Result:
    env = {"DATABASE_URL": url_of(database), "MIGRATIONS_DIR": str(folder)}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_an_edited_down_file_is_drift_until_restored_or_repaired(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    (folder / "003_c.down.sql").write_text("DROP TABLE IF EXISTS c CASCADE;")
    status = migrate(database, folder, "status")
    assert status.exit_code == 5
    assert "!down edited  003_c.sql" in status.stdout
    assert "003_c.down.sql: edited after 003_c.sql was applied" in status.stderr
    refused = migrate(database, folder, "rollback")
    assert refused.exit_code == 5
    assert "rollback runs a down file only as it was when its file was applied" in refused.stderr
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == 3
    assert migrate(database, folder, "repair").exit_code == 0
    assert migrate(database, folder, "rollback").exit_code == 0
    assert fetchval(database, "SELECT to_regclass('public.c')") is None


def test_the_cli_refuses_a_missing_down_script_with_exit_11(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {k: v for k, v in FILES.items() if k != "003_c.down.sql"})
    assert migrate(database, folder, "apply").exit_code == 0
    result = migrate(database, folder, "rollback")
    assert result.exit_code == 11
    assert result.stderr == (
        "migrate: error: cannot roll back 003_c.sql: no down script (003_c.down.sql); write one beside each file, "
        "or roll back fewer files (--to N). Nothing was changed\n"
    )


def test_the_cli_dry_run_shows_the_down_files_and_changes_nothing(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    result = migrate(database, folder, "rollback", "--to", "1", "--dry-run")
    assert result.exit_code == 0, result.output
    assert result.stdout == (
        "Dry run: would roll back 2 migration(s), newest first, to version 001; nothing was changed.\n"
        "\n-- 003_c.down.sql: undoes 003_c.sql, in a transaction of its own, with its ledger row's deletion "
        "(1 statement(s))\nDROP TABLE IF EXISTS c;\n"
        "\n-- 002_b.down.sql: undoes 002_b.sql, in a transaction of its own, with its ledger row's deletion "
        "(1 statement(s))\nDROP TABLE IF EXISTS b;\n"
    )
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == 3


def test_the_cli_rolls_back_and_reports_the_version(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    result = migrate(database, folder, "rollback", "--steps", "2")
    assert result.exit_code == 0, result.output
    assert "  003_c.down.sql ... " in result.stdout
    assert "Rolled back 2 migration(s) in " in result.stdout
    assert result.stdout.rstrip().endswith("database is at version 001.")


def test_to_and_steps_together_are_refused(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    result = migrate(database, folder, "rollback", "--to", "1", "--steps", "1")
    assert result.exit_code == 2
    assert "--to and --steps: give one of them" in result.stderr


def test_apply_still_applies_despite_an_edited_down_file(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {k: v for k, v in FILES.items() if not k.startswith("003")})
    assert migrate(database, folder, "apply").exit_code == 0
    (folder / "002_b.down.sql").write_text("DROP TABLE IF EXISTS b CASCADE;")
    write_migrations(folder, {k: v for k, v in FILES.items() if k.startswith("003")})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 0, result.output
    assert fetchval(database, "SELECT max(version) FROM public.migration_ledger") == 3


async def test_upgrading_the_ledger_twice_changes_nothing_the_second_time(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await applied_folder(conn, write_migrations(tmp_path, {"001_a.sql": FILES["001_a.sql"]}))
    await conn.execute("ALTER TABLE public.migration_ledger DROP COLUMN down_checksum")
    table = LedgerTable.parse("public.migration_ledger")
    await ledger.upgrade(conn, table)
    await ledger.upgrade(conn, table)
    columns = await conn.fetchval(
        "SELECT count(*) FROM pg_attribute "
        "WHERE attrelid = 'public.migration_ledger'::regclass AND attname = 'down_checksum'"
    )
    assert columns == 1


async def test_each_undone_row_is_kept_in_the_audit_table(conn: asyncpg.Connection, tmp_path: Path) -> None:
    files = await applied_folder(conn, write_migrations(tmp_path, FILES))
    await runner.rollback(conn, files, runner.Options())
    row = await conn.fetchrow(
        "SELECT versions, note, before->0->>'checksum' AS checksum FROM public.migration_ledger_audit "
        "WHERE action = 'rollback'"
    )
    assert (row["versions"], row["note"]) == ([3], "rolled back 003_c.sql")
    assert row["checksum"] == files[2].checksum


async def test_a_down_file_whose_commit_fails_is_one_message_and_changes_nothing(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    deferred = (
        "CREATE TABLE IF NOT EXISTS p (id bigint PRIMARY KEY);\n"
        "CREATE TABLE IF NOT EXISTS k (p_id bigint REFERENCES p DEFERRABLE INITIALLY DEFERRED);\n"
        "INSERT INTO p VALUES (1) ON CONFLICT DO NOTHING;\n"
        "INSERT INTO k VALUES (1);"
    )
    folder = write_migrations(
        tmp_path, {"001_p.sql": deferred, "002_x.sql": "SELECT 1;", "002_x.down.sql": "DELETE FROM p;"}
    )
    files = await applied_folder(conn, folder)
    with pytest.raises(MigrationFailed) as info:
        await runner.rollback(conn, files, runner.Options())
    assert str(info.value).startswith("002_x.down.sql: the transaction failed at COMMIT: ERROR 23503")
    assert str(info.value).endswith("002_x.sql stays applied in the ledger.")
    assert await applied(conn) == [1, 2]
    assert await conn.fetchval("SELECT count(*) FROM p") == 1
