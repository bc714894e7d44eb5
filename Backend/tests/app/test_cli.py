"""The `migrate` command as a user runs it: output, exit codes, and one clear line per expected error."""

from __future__ import annotations

import asyncio
import json
import shutil
import subprocess
import sys
from pathlib import Path
from subprocess import PIPE

from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import (
    PROJECT_MIGRATIONS,
    environ_without_settings,
    fetchval,
    server_dir,
    url_of,
    write_migrations,
)

PROJECT_FILES = discover(PROJECT_MIGRATIONS)
MIGRATE_EXE = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"


def migrate(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def test_apply_prints_one_line_per_file_and_a_summary(database_url: str) -> None:
    result = migrate("apply", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    for file in PROJECT_FILES:
        assert f"  {file.filename} ... " in result.stdout
    assert f"Applied {len(PROJECT_FILES)} migration(s) in " in result.stdout
    assert f"database is at version {PROJECT_FILES[-1].version:03d}" in result.stdout


def test_a_second_apply_says_there_is_nothing_to_do(database_url: str) -> None:
    migrate("apply", "--database-url", database_url)
    result = migrate("apply", "--database-url", database_url)
    assert result.exit_code == 0
    assert "Nothing to apply" in result.stdout


def test_status_before_apply_shows_every_file_pending(database_url: str) -> None:
    result = migrate("status", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert f"0 applied, {len(PROJECT_FILES)} pending; database is at version none" in result.stdout
    assert result.stdout.count(" pending ") == len(PROJECT_FILES)


def test_status_after_apply_shows_every_file_applied(database_url: str) -> None:
    migrate("apply", "--database-url", database_url)
    result = migrate("status", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert f"{len(PROJECT_FILES)} applied, 0 pending" in result.stdout
    assert result.stdout.count(" applied ") == len(PROJECT_FILES)


def test_status_json_lists_each_migration(database_url: str) -> None:
    migrate("apply", "--database-url", database_url)
    result = migrate("status", "--json", "--database-url", database_url)
    report = json.loads(result.stdout)
    assert report["head"] == PROJECT_FILES[-1].version
    assert [m["state"] for m in report["migrations"]] == ["applied"] * len(PROJECT_FILES)
    assert report["problems"] == []


def test_apply_json_lists_what_was_applied(database_url: str) -> None:
    result = migrate("apply", "--json", "--database-url", database_url)
    report = json.loads(result.stdout)
    assert [a["version"] for a in report["applied"]] == [f.version for f in PROJECT_FILES]
    assert report["head"] == PROJECT_FILES[-1].version


def test_dry_run_shows_the_sql_and_changes_nothing(database: ConnectionSettings) -> None:
    result = migrate("apply", "--dry-run", "--database-url", url_of(database))
    assert result.exit_code == 0, result.output
    assert "CREATE SCHEMA IF NOT EXISTS messaging;" in result.stdout
    assert fetchval(database, "SELECT to_regnamespace('messaging') IS NULL")
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL")


def test_a_failing_migration_exits_1_naming_file_and_line_without_traceback(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path / "m", {"001_ok.sql": "SELECT 1;", "002_bad.sql": "SELECT 1;\nSELECT * FROM nowhere;"}
    )
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 1
    assert 'migrate: error: 002_bad.sql:2:15: ERROR 42P01: relation "nowhere" does not exist' in result.stderr
    assert "Traceback" not in result.output


def test_an_edited_applied_file_makes_status_exit_5(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", {"001_ok.sql": "SELECT 1;"})
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    (folder / "001_ok.sql").write_text("SELECT 2;")
    result = migrate("status", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "!edited" in result.stdout
    assert "001_ok.sql: edited after it was applied" in result.stderr


def test_a_missing_migrations_folder_exits_2(database_url: str, tmp_path: Path) -> None:
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(tmp_path / "nope"))
    assert result.exit_code == 2
    assert "does not exist; set --migrations-dir or MIGRATIONS_DIR" in result.stderr


def test_a_bad_setting_exits_2_naming_it() -> None:
    result = migrate("status", env={"DB_HOST": "localhost", "DB_PORT": "many"})
    assert result.exit_code == 2
    assert result.stderr.startswith("migrate: error: DB_PORT: the port must be a whole number")


def test_a_server_that_is_down_exits_3_with_one_line() -> None:
    result = migrate("apply", "--database-url", "postgresql://postgres:pw-distinctive@127.0.0.1:1/db")
    assert result.exit_code == 3
    assert result.stderr == (
        "migrate: error: cannot connect to postgres@127.0.0.1:1/db: connection refused; is PostgreSQL running "
        "there? (check DB_HOST and DB_PORT, or DATABASE_URL)\n"
    )
    assert "pw-distinctive" not in result.output


def test_an_unknown_database_exits_3_naming_it(database: ConnectionSettings) -> None:
    result = migrate("status", "--database-url", url_of(database, database="no_such_db"))
    assert result.exit_code == 3
    assert "database 'no_such_db' does not exist; create it, or fix DB_NAME" in result.stderr


def test_db_settings_from_the_environment_are_used(database: ConnectionSettings) -> None:
    env = {
        "DB_HOST": database.host,
        "DB_PORT": str(database.port),
        "DB_NAME": database.database,
        "DB_USER": database.user,
    }
    if database.password is not None:  # a server that asks for one (TEST_POSTGRES=docker)
        env["DB_PASSWORD"] = database.password.get_secret_value()
    result = migrate("status", env=env)
    assert result.exit_code == 0, result.output
    assert f"Database    {database.describe()}" in result.stdout


def test_debug_shows_the_traceback() -> None:
    result = migrate("--debug", "apply", "--database-url", "postgresql://u@127.0.0.1:1/db")
    assert result.exit_code == 3
    assert "Traceback" in result.stderr


def test_with_nothing_configured_the_embedded_server_is_used_and_keeps_its_data(server_root: Path) -> None:
    executable = MIGRATE_EXE
    env = environ_without_settings()
    env["EMBEDDED_PGDATA"] = str(server_dir(server_root, "cli") / "pgdata")
    applied = subprocess.run([executable, "apply"], env=env, capture_output=True, text=True, timeout=120)
    assert applied.returncode == 0, applied.stderr
    assert "no database configured (DATABASE_URL or DB_*), using embedded PostgreSQL" in applied.stderr
    assert f"Applied {len(PROJECT_FILES)} migration(s)" in applied.stdout
    status = subprocess.run([executable, "status"], env=env, capture_output=True, text=True, timeout=120)
    assert status.returncode == 0, status.stderr
    assert f"{len(PROJECT_FILES)} applied, 0 pending" in status.stdout


async def test_apply_exits_6_naming_the_holder_when_the_lock_wait_runs_out(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    import asyncpg

    from src.migrate.ledger import LedgerTable
    from src.migrate.lock import lock_key

    holder = await asyncpg.connect(**database.asyncpg_kwargs(), server_settings={"application_name": "deploy-7"})
    try:
        await holder.fetchval("SELECT pg_advisory_lock($1)", lock_key(LedgerTable("public", "migration_ledger")))
        command = [MIGRATE_EXE, "apply", "--lock-wait", "0.5", "--database-url", url_of(database)]
        done = await asyncio.create_subprocess_exec(*command, stdout=PIPE, stderr=PIPE, env=environ_without_settings())
        _, stderr = await done.communicate()
    finally:
        await holder.close()
    assert done.returncode == 6
    assert "Waiting for the migration lock held by pid" in stderr.decode()
    assert "(deploy-7" in stderr.decode().splitlines()[-1]


def test_wait_returns_once_the_server_accepts_connections(database_url: str) -> None:
    result = migrate("wait", "--timeout", "5", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "accepts connections" in result.stdout


def test_wait_gives_up_after_its_timeout_with_exit_3() -> None:
    import time

    started = time.monotonic()
    result = migrate("wait", "--timeout", "1.5", "--database-url", "postgresql://u@127.0.0.1:1/db")
    assert result.exit_code == 3
    assert "connection refused" in result.stderr
    assert "gave up after" in result.stderr
    assert time.monotonic() - started < 10


def test_bad_file_names_are_refused_before_connecting(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", {"001_a.sql": "SELECT 1;", "01_b.sql": "SELECT 2;"})
    # The URL points at nothing: exit 4 (not 3) shows the files were judged before any connection attempt.
    result = migrate("apply", "--database-url", "postgresql://u@127.0.0.1:1/db", "--migrations-dir", str(folder))
    assert result.exit_code == 4
    assert "01_b.sql: not a valid migration name" in result.stderr


def test_apply_says_the_pending_files_run_in_one_transaction(database_url: str) -> None:
    result = migrate("apply", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert f"one transaction, {len(PROJECT_FILES)} files: all are applied or none" in result.stdout


def test_apply_per_file_commits_each_file_on_its_own(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path, {"001_a.sql": "CREATE TABLE a (id int);", "002_bad.sql": "INSERT INTO missing VALUES (1);"}
    )
    env = {"MIGRATE_TRANSACTION": "per-file"}
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder), env=env)
    assert result.exit_code == 1
    assert "Nothing from 002_bad.sql was applied" in result.stderr
    assert "one transaction" not in result.stdout
    status = migrate("status", "--database-url", database_url, "--migrations-dir", str(folder))
    assert "1 applied, 1 pending" in status.stdout


def test_an_unknown_transaction_mode_is_a_setting_error(database_url: str) -> None:
    result = migrate("apply", "--database-url", database_url, env={"MIGRATE_TRANSACTION": "sometimes"})
    assert result.exit_code == 2
    assert result.stderr.strip() == (
        "migrate: error: MIGRATE_TRANSACTION: expected 'all' or 'per-file', not 'sometimes'"
    )


def test_dry_run_shows_how_the_files_would_be_grouped_into_transactions(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id int);",
            "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id int);",
            "003_ix.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_a ON a (id);",
        },
    )
    result = migrate("apply", "--dry-run", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "-- 001_a.sql, 002_b.sql: in one transaction, all 2 files or none" in result.stdout
    assert "-- 003_ix.sql: outside a transaction, statement by statement" in result.stdout
