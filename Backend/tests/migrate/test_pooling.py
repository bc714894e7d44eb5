"""The runner behind a real PgBouncer (stock settings, session and transaction pooling) and against a
real hot standby: settings that hold inside the migrations, a lock that stays correct when successive
transactions land on different server connections, and one clear line on a read-only server."""

from __future__ import annotations

import asyncio
import os
import re
import shutil
import signal
import subprocess
import sys
import time
import uuid
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest

from src.postgres.settings import ConnectionSettings
from tests.servers import PgBouncer
from tests.support import environ_without_settings, fetchval, url_of, write_migrations

MIGRATE = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"

RECORDS_SETTINGS = {
    "001_seen.sql": (
        "CREATE TABLE IF NOT EXISTS seen AS SELECT current_setting('lock_timeout') AS lock_timeout, "
        "current_setting('statement_timeout') AS statement_timeout;"
    ),
}


def migrate(*args: str, env: dict[str, str] | None = None, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [MIGRATE, *args], env=env or environ_without_settings(), capture_output=True, text=True, timeout=timeout
    )


def through(bouncer: PgBouncer, database: ConnectionSettings) -> str:
    return url_of(bouncer.to(database.database))


def counted_files(count: int) -> dict[str, str]:
    """Files that each log themselves once in `runs`, so a file applied twice shows twice."""
    files = {"001_runs.sql": "CREATE TABLE IF NOT EXISTS runs (file text NOT NULL);\nINSERT INTO runs VALUES ('001');"}
    for n in range(2, count + 1):
        files[f"{n:03d}_t{n}.sql"] = f"CREATE TABLE IF NOT EXISTS t{n} (id int);\nINSERT INTO runs VALUES ('{n:03d}');"
    return files


def advisory_locks(database: ConnectionSettings) -> int:
    return int(
        fetchval(
            database,
            "SELECT count(*) FROM pg_locks WHERE locktype = 'advisory' "
            "AND database = (SELECT oid FROM pg_database WHERE datname = current_database())",
        )
    )


def test_apply_then_status_through_pgbouncer_with_its_stock_settings(
    pgbouncer: PgBouncer, database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, counted_files(3))
    applied = migrate("apply", "--database-url", through(pgbouncer, database), "--migrations-dir", str(folder))
    assert applied.returncode == 0, applied.stderr
    status = migrate("status", "--database-url", through(pgbouncer, database), "--migrations-dir", str(folder))
    assert status.returncode == 0, status.stderr
    assert "Traceback" not in status.stderr + applied.stderr
    again = migrate("status", "--database-url", through(pgbouncer, database), "--migrations-dir", str(folder))
    assert again.returncode == 0, again.stderr


@pytest.mark.parametrize("transaction", ["all", "per-file"])
def test_inside_a_migration_the_configured_timeouts_hold_through_pgbouncer(
    pgbouncer: PgBouncer, database: ConnectionSettings, tmp_path: Path, transaction: str
) -> None:
    folder = write_migrations(tmp_path, RECORDS_SETTINGS)
    url = through(pgbouncer, database)
    result = migrate(
        "apply", "--database-url", url, "--migrations-dir", str(folder), "--lock-timeout", "7",
        "--statement-timeout", "90", "--transaction", transaction,
    )  # fmt: skip
    assert result.returncode == 0, result.stderr
    assert fetchval(database, "SELECT lock_timeout || ' ' || statement_timeout FROM seen") == "7s 90s"


def test_the_runners_settings_do_not_stay_on_pooled_server_connections(
    pgbouncers: dict[str, PgBouncer], database: ConnectionSettings, tmp_path: Path
) -> None:
    bouncer = pgbouncers["transaction"]
    folder = write_migrations(tmp_path, RECORDS_SETTINGS)
    result = migrate("apply", "--database-url", through(bouncer, database), "--migrations-dir", str(folder))
    assert result.returncode == 0, result.stderr

    async def shown() -> str:
        conn = await asyncpg.connect(**bouncer.to(database.database).asyncpg_kwargs(), statement_cache_size=0)
        try:
            return str(await conn.fetchval("SHOW lock_timeout"))
        finally:
            await conn.close()

    assert asyncio.run(shown()) == "0"  # SET LOCAL ended with the runner's transactions


def run_appliers(count: int, url: str, folder: Path, *extra: str) -> list[tuple[int, str, str]]:
    command = [MIGRATE, "apply", "--database-url", url, "--migrations-dir", str(folder), *extra]
    env = environ_without_settings()
    runners = [
        subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        for _ in range(count)
    ]
    outcomes = []
    for runner in runners:
        out, err = runner.communicate(timeout=300)
        outcomes.append((runner.returncode, out, err))
    return outcomes


def new_database(admin: ConnectionSettings) -> ConnectionSettings:
    name = f"test_{uuid.uuid4().hex[:16]}"
    fetchval(admin, f'CREATE DATABASE "{name}"')
    return replace(admin, database=name)


@pytest.mark.slow
@pytest.mark.parametrize("transaction", ["all", "per-file"])
def test_eight_appliers_at_once_through_pgbouncer_apply_each_file_once_ten_times_over(
    pgbouncer: PgBouncer, database: ConnectionSettings, tmp_path: Path, transaction: str
) -> None:
    folder = write_migrations(tmp_path, counted_files(6))
    admin = replace(database, database="postgres")
    for attempt in range(10):
        target = new_database(admin)
        try:
            outcomes = run_appliers(8, through(pgbouncer, target), folder, "--transaction", transaction)
            assert [code for code, _, _ in outcomes] == [0] * 8, (attempt, [err for _, _, err in outcomes if err])
            assert fetchval(target, "SELECT string_agg(file, ',' ORDER BY file) FROM runs") == "001,002,003,004,005,006"
            assert fetchval(target, "SELECT count(*) FROM migration_ledger") == 6
            assert advisory_locks(target) == 0
        finally:
            fetchval(admin, f'DROP DATABASE IF EXISTS "{target.database}" WITH (FORCE)')


@pytest.mark.slow
def test_sixteen_appliers_with_an_index_built_concurrently_through_pgbouncer(
    pgbouncer: PgBouncer, database: ConnectionSettings, tmp_path: Path
) -> None:
    files = counted_files(4)
    files["005_index.sql"] = "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_runs_file ON runs (file);"
    folder = write_migrations(tmp_path, files)
    outcomes = run_appliers(16, through(pgbouncer, database), folder)
    assert [code for code, _, _ in outcomes] == [0] * 16, [err for _, _, err in outcomes if err]
    assert fetchval(database, "SELECT string_agg(file, ',' ORDER BY file) FROM runs") == "001,002,003,004"
    assert fetchval(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'ix_runs_file'::regclass")
    applied_lines = sum(len(re.findall(r"\.sql( \(outside a transaction\))? \.\.\. ", out)) for _, out, _ in outcomes)
    assert applied_lines == 5
    assert advisory_locks(database) == 0


@pytest.mark.slow
def test_a_killed_lock_holder_behind_pgbouncer_leaves_no_lock_and_the_next_runner_applies(
    pgbouncer: PgBouncer, database: ConnectionSettings, tmp_path: Path
) -> None:
    slow = write_migrations(
        tmp_path / "slow", {"001_slow.sql": "CREATE TABLE IF NOT EXISTS a (id int);\nSELECT pg_sleep(60);"}
    )
    url = through(pgbouncer, database)
    first = subprocess.Popen(
        [MIGRATE, "apply", "--database-url", url, "--migrations-dir", str(slow)],
        env=environ_without_settings(),
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    try:
        deadline = time.monotonic() + 30
        while advisory_locks(database) == 0:
            assert time.monotonic() < deadline, "the first runner never took the lock"
            time.sleep(0.05)
        os.kill(first.pid, signal.SIGKILL)
        first.wait(10)
    finally:
        if first.poll() is None:
            first.kill()
    fast = write_migrations(tmp_path / "fast", {"001_slow.sql": "CREATE TABLE IF NOT EXISTS a (id int);"})
    started = time.monotonic()
    result = migrate("apply", "--database-url", url, "--migrations-dir", str(fast), "--lock-wait", "20")
    assert result.returncode == 0, result.stderr
    assert "holds the migration lock" not in result.stdout + result.stderr
    assert time.monotonic() - started < 15
    assert advisory_locks(database) == 0


def test_migrate_database_url_is_where_the_runner_goes_when_set(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, counted_files(2))
    env = environ_without_settings(
        DATABASE_URL="postgresql://nobody@127.0.0.1:1/nowhere", MIGRATE_DATABASE_URL=url_of(database)
    )
    result = migrate("apply", "--migrations-dir", str(folder), env=env)
    assert result.returncode == 0, result.stderr
    assert fetchval(database, "SELECT count(*) FROM migration_ledger") == 2


def test_apply_with_files_pending_on_a_hot_standby_exits_10_in_one_line(
    replicated_database: tuple[ConnectionSettings, ConnectionSettings], tmp_path: Path
) -> None:
    _, standby = replicated_database
    folder = write_migrations(tmp_path, counted_files(2))
    result = migrate("apply", "--database-url", url_of(standby), "--migrations-dir", str(folder))
    assert result.returncode == 10, result.stderr
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert "read-only" in lines[0]
    assert "hot standby" in lines[0]
    assert "primary" in lines[0]
    assert "Traceback" not in result.stderr


def test_status_on_a_hot_standby_reads_the_ledger_replayed_from_the_primary(
    replicated_database: tuple[ConnectionSettings, ConnectionSettings], tmp_path: Path, replicated: object
) -> None:
    primary, standby = replicated_database
    folder = write_migrations(tmp_path, counted_files(2))
    assert migrate("apply", "--database-url", url_of(primary), "--migrations-dir", str(folder)).returncode == 0
    replicated.standby.wait_for_replay()  # type: ignore[attr-defined]
    result = migrate("apply", "--database-url", url_of(standby), "--migrations-dir", str(folder))
    assert result.returncode == 0, result.stderr  # nothing pending: nothing to write
    status = migrate("status", "--database-url", url_of(standby), "--migrations-dir", str(folder))
    assert status.returncode == 0, status.stderr
