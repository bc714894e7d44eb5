"""`migrate verify`, `new`, `repair` and `baseline` as a user runs them, on a real server."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate import verify
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings, Secret, parse_url
from tests.support import PROJECT_MIGRATIONS, fetchval, url_of, write_migrations

STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
    "003_c.sql": "CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY);",
}


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_verify_rerun_proves_the_projects_migrations_idempotent(database_url: str) -> None:
    migrate("apply", "--database-url", database_url)
    result = migrate("verify", "--rerun", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    count = len(discover(PROJECT_MIGRATIONS))
    assert f"ok    rerun: {count} file(s) re-run where each stands in the history" in result.stdout
    assert scratch_databases(database_url) == []


def test_verify_rerun_catches_a_file_that_changes_the_catalog_when_rerun(database_url: str, tmp_path: Path) -> None:
    # An unnamed index gets a new name on every run: t_id_idx, then t_id_idx1.
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id bigint);\n"
        "-- migrate:lint-ignore create-if-not-exists\n"
        "CREATE INDEX ON t (id);"
    )
    folder = write_migrations(tmp_path, {"001_t.sql": sql})
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql: re-running it changes the catalog" in result.stdout
    assert "t_id_idx1" in result.stdout
    assert scratch_databases(database_url) == []


def test_verify_rerun_catches_a_file_that_fails_when_rerun(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path, {"001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);\nALTER TABLE t ADD COLUMN c text;"}
    )
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql:2:1: fails when re-run: ERROR 42701" in result.stdout
    assert scratch_databases(database_url) == []


SCRATCH = r"SELECT coalesce(array_agg(datname::text), '{}') FROM pg_database WHERE datname LIKE 'migrate\_verify\_%'"


def scratch_databases(url: str) -> list[str]:
    names: list[str] = fetchval(parse_url(url), SCRATCH)
    return names


def test_verify_rerun_passes_a_file_that_a_later_one_supersedes(database_url: str, tmp_path: Path) -> None:
    # Re-run on the final database, 001 would create x again and put back f's first body: it changes the
    # catalog there, but not where it stands in the history, which is what idempotent means for it.
    function = "CREATE OR REPLACE FUNCTION f() RETURNS bigint LANGUAGE sql AS $$ SELECT {} $$;"
    folder = write_migrations(
        tmp_path,
        {
            "001_x.sql": "CREATE TABLE IF NOT EXISTS x (id bigint);\n" + function.format(1),
            "002_drop.sql": "-- migrate:lint-ignore ban-drop-table\nDROP TABLE IF EXISTS x;\n" + function.format(2),
        },
    )
    assert migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder)).exit_code == 0
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "ok    rerun: 2 file(s) re-run where each stands in the history" in result.stdout
    assert scratch_databases(database_url) == []


def test_verify_rerun_re_runs_a_file_that_must_run_outside_a_transaction(database_url: str, tmp_path: Path) -> None:
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id bigint);\n"
        "-- migrate:lint-ignore create-if-not-exists\n"
        "CREATE INDEX CONCURRENTLY ON t (id);"
    )
    folder = write_migrations(tmp_path, {"001_t.sql": sql})
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql: re-running it changes the catalog" in result.stdout
    assert "t_id_idx1" in result.stdout
    assert scratch_databases(database_url) == []


def test_verify_rerun_leaves_the_real_database_alone(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id bigint);\n"
        "-- migrate:lint-ignore create-if-not-exists\n"
        "CREATE INDEX ON t (id);"
    )
    folder = write_migrations(
        tmp_path, {"001_t.sql": sql, "002_pending.sql": "CREATE TABLE IF NOT EXISTS p (id bigint);"}
    )
    migrate("apply", "--target", "1", "--database-url", url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "002_pending" not in result.stdout  # pending in the real database: not re-run
    assert fetchval(database, "SELECT count(*) FROM pg_indexes WHERE tablename = 't'") == 1
    assert fetchval(database, "SELECT to_regclass('p') IS NULL")
    assert scratch_databases(url) == []


def test_verify_rerun_names_a_file_the_history_before_it_cannot_build(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, {"001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);"})
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    fetchval(database, "CREATE TABLE made_by_hand (id bigint)")
    write_migrations(folder, {"002_uses.sql": "CREATE OR REPLACE VIEW v AS\nSELECT id FROM made_by_hand;"})
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "002_uses.sql:2:16: fails when applied to a scratch database after the files before it" in result.stdout
    assert "ERROR 42P01" in result.stdout
    assert scratch_databases(url) == []


@pytest.fixture
async def role_without_createdb(
    conn: asyncpg.Connection, database: ConnectionSettings
) -> AsyncIterator[ConnectionSettings]:
    """A login that owns nothing special: it may apply in schema public, but not create databases."""
    name = f"nocreatedb_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    await conn.execute(
        f"CREATE ROLE {name} LOGIN NOCREATEDB PASSWORD '{password}'; GRANT CREATE ON SCHEMA public TO {name};"
    )
    try:
        yield replace(database, user=name, password=Secret(password))
    finally:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        await conn.execute(f"DROP OWNED BY {name}; DROP ROLE {name}")


def test_verify_rerun_without_createdb_says_what_to_grant(
    role_without_createdb: ConnectionSettings, tmp_path: Path
) -> None:
    url = url_of(role_without_createdb)
    folder = write_migrations(tmp_path, STEPS)
    assert migrate("apply", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0
    result = migrate("verify", "--rerun", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 2
    user = role_without_createdb.user
    assert result.stderr.strip() == (
        f"migrate: error: verify --rerun: role {user} lacks the CREATEDB privilege, which the rerun needs for its "
        f"scratch database; grant it (ALTER ROLE {user} CREATEDB) or run verify --rerun as a role that has it"
    )
    assert scratch_databases(url_of(role_without_createdb)) == []


def test_verify_reports_drift_with_exit_5(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    (folder / "002_b.sql").unlink()
    result = migrate("verify", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "002_b.sql: applied on" in result.stdout


def test_new_creates_the_next_number_keeping_the_padding(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"0009_x.sql": "SELECT 1;"})
    result = migrate("new", "Add todo tags!", "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    created = folder / "0010_add_todo_tags.sql"
    assert created.is_file()
    assert "IF NOT EXISTS" in created.read_text()


def test_new_with_down_writes_a_down_file_that_rollback_refuses_until_edited(database_url: str, tmp_path: Path) -> None:
    result = migrate("new", "tags", "--down", "--migrations-dir", str(tmp_path))
    assert result.exit_code == 0, result.output
    assert sorted(p.name for p in tmp_path.iterdir()) == ["001_tags.down.sql", "001_tags.sql"]
    (tmp_path / "001_tags.sql").write_text("CREATE TABLE IF NOT EXISTS tags (id bigint);")
    assert migrate("apply", "--database-url", database_url, "--migrations-dir", str(tmp_path)).exit_code == 0
    refused = migrate("rollback", "--database-url", database_url, "--migrations-dir", str(tmp_path))
    assert refused.exit_code == 4
    assert "001_tags.down.sql: the unedited `migrate new` template" in refused.stderr
    # Written after its file was applied, the down file is an addition (the template was not recorded).
    (tmp_path / "001_tags.down.sql").write_text("DROP TABLE IF EXISTS tags;")
    assert migrate("rollback", "--database-url", database_url, "--migrations-dir", str(tmp_path)).exit_code == 0


def test_new_starts_at_001_in_an_empty_folder(tmp_path: Path) -> None:
    migrate("new", "first", "--migrations-dir", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["001_first.sql"]


def test_an_unedited_template_is_refused_by_apply(database_url: str, tmp_path: Path) -> None:
    migrate("new", "later", "--migrations-dir", str(tmp_path))
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(tmp_path))
    assert result.exit_code == 4
    assert "001_later.sql: the unedited `migrate new` template" in result.stderr


def test_repair_records_the_edited_files_checksum(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    (folder / "002_b.sql").write_text("-- reformatted\nCREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);")
    assert migrate("status", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 5
    result = migrate("repair", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "002_b.sql: recorded checksum" in result.stdout
    assert migrate("status", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0
    new_checksum = discover(folder)[1].checksum
    assert fetchval(database, "SELECT checksum FROM public.migration_ledger WHERE version = 2") == new_checksum


def test_repair_never_forgets_a_missing_file(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "never forgets an applied file" in result.stderr
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == 3


def test_baseline_records_without_running_and_apply_continues_after_it(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    result = migrate("baseline", "--version", "2", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert fetchval(database, "SELECT to_regclass('public.a') IS NULL")  # recorded, not run
    assert fetchval(database, "SELECT string_agg(kind, ',' ORDER BY version) FROM public.migration_ledger") == (
        "baseline,baseline"
    )
    applied = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert "003_c.sql" in applied.stdout
    assert "001_a.sql" not in applied.stdout


def test_baseline_refuses_a_ledger_that_has_rows(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--target", "1", "--database-url", url, "--migrations-dir", str(folder))
    result = migrate("baseline", "--version", "3", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "already has 1 row(s)" in result.stderr


@pytest.mark.parametrize("content", [b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", b"SELECT 1;\nSELECT 2;\n"])
def test_bom_and_crlf_files_apply_and_checksum_like_plain_ones(
    database: ConnectionSettings, tmp_path: Path, content: bytes
) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": content})
    assert migrate("apply", "--database-url", url_of(database), "--migrations-dir", str(folder)).exit_code == 0
    plain = write_migrations(tmp_path / "plain", {"001_x.sql": "SELECT 1;\nSELECT 2;\n"})
    assert fetchval(database, "SELECT checksum FROM public.migration_ledger") == discover(plain)[0].checksum


def test_a_non_utf8_file_exits_4_naming_it(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": b"SELECT 'caf\xe9';"})
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 4
    assert "001_x.sql:1: not valid UTF-8" in result.stderr


async def test_a_cancelled_rerun_drops_its_scratch_database(
    conn: asyncpg.Connection, database: ConnectionSettings
) -> None:
    """Ctrl-C cancels the command's task (asyncio.run does): the scratch database goes all the same, with a
    query still running on it."""

    async def busy() -> None:
        async with verify.scratch_database(conn, database) as scratch:
            await scratch.execute("SELECT pg_sleep(3600)")

    task = asyncio.create_task(busy())
    watcher = await asyncpg.connect(**database.asyncpg_kwargs())  # `conn` is the command's
    try:
        sleeping = "SELECT datname FROM pg_stat_activity WHERE query = 'SELECT pg_sleep(3600)' AND state = 'active'"
        while True:  # the server says when the query runs on the scratch database
            name = await watcher.fetchval(sleeping)
            if name is not None or task.done():
                break
            await asyncio.sleep(0.05)
        assert name is not None, task
        assert name.startswith(verify.SCRATCH_PREFIX)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert await watcher.fetchval(SCRATCH) == []
    finally:
        await watcher.close()
