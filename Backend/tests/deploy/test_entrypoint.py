"""The container's start, without Docker: the entrypoint script itself, run against the test server, and
`migrate health`, the command a Docker HEALTHCHECK runs."""

from __future__ import annotations

import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from src import BACKEND_DIR
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import (
    PROJECT_MIGRATIONS,
    environ_without_settings,
    fetchval,
    free_port,
    http_get,
    url_of,
    write_migrations,
)

ENTRYPOINT = BACKEND_DIR / "docker-entrypoint.sh"
BIN = Path(sys.executable).parent
N = len(discover(PROJECT_MIGRATIONS))


def container_env(database_url: str, **extra: str) -> dict[str, str]:
    """What the container sees: the project's executables on PATH, the database, nothing from the shell."""
    keep = environ_without_settings()
    return {**keep, "PATH": f"{BIN}:{keep.get('PATH', '')}", "DATABASE_URL": database_url, **extra}


def wait_for(url: str, status: int, process: subprocess.Popen[str], give_up_after: float = 60) -> dict[str, object]:
    deadline = time.monotonic() + give_up_after
    while True:
        assert process.poll() is None, f"the container process exited ({process.returncode})"
        try:
            got, body = http_get(url, timeout=5)
        except OSError:
            got, body = 0, {}
        if got == status:
            return body
        assert time.monotonic() < deadline, f"{url} never answered {status} (last {got} {body})"
        time.sleep(0.2)


@pytest.fixture
def container(database_url: str) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The entrypoint with its default command, as `docker run` starts it; yields it and its base URL."""
    port = free_port()
    env = container_env(database_url, HEALTH_PORT=str(port))
    process = subprocess.Popen(
        ["sh", str(ENTRYPOINT)], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
        process.communicate(timeout=30)


def test_the_entrypoint_waits_applies_then_serves_health_and_ready(
    container: tuple[subprocess.Popen[str], str], database: ConnectionSettings
) -> None:
    process, url = container
    ready = wait_for(f"{url}/ready", 200, process)
    health = wait_for(f"{url}/health", 200, process)
    assert ready["migrations"] == {"head": N, "applied": N, "files": N}
    assert health["status"] == "ok"
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == N


def test_the_served_container_stops_cleanly_on_sigterm(container: tuple[subprocess.Popen[str], str]) -> None:
    process, url = container
    wait_for(f"{url}/health", 200, process)
    process.send_signal(signal.SIGTERM)
    output, _ = process.communicate(timeout=30)
    # uvicorn shuts down gracefully; then migrate exits 143 (the exit-code table's "terminated"), which is
    # also what a shell reports for a process a SIGTERM ended
    assert process.returncode == 143
    assert output.splitlines()[-1] == "migrate: terminated"
    lines = output.splitlines()
    assert lines[:2] == ["entrypoint: waiting for the database (up to 60 s)", lines[1]]
    assert f"Applied {N} migration(s)" in output
    assert "entrypoint: starting: migrate serve-health" in output
    assert "Application shutdown complete." in output


def run_entrypoint(env: dict[str, str], *command: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["sh", str(ENTRYPOINT), *command], env=env, capture_output=True, text=True, timeout=120, check=False
    )


def test_a_failed_migration_stops_the_container_before_the_command_runs(
    database_url: str, database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path / "migrations",
        {
            "001_notes.sql": "CREATE TABLE IF NOT EXISTS notes (id int);",
            "002_broken.sql": "ALTER TABLE notes ADD COLUMN IF NOT EXISTS body text;\nALTER TABLE nope ADD x int;",
        },
    )
    done = run_entrypoint(container_env(database_url, MIGRATIONS_DIR=str(folder)), "touch", str(tmp_path / "ran"))
    assert done.returncode == 1
    assert '002_broken.sql:2:1: ERROR 42P01: relation "nope" does not exist' in done.stderr
    assert "entrypoint: migrations failed (exit 1); not starting" in done.stderr
    assert "entrypoint: starting" not in done.stderr
    assert not (tmp_path / "ran").exists()
    # Both files ran in one transaction, rolled back: the database is exactly as before.
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL")
    assert fetchval(database, "SELECT to_regclass('public.notes') IS NULL")


def test_an_unreachable_database_stops_the_container_after_the_wait(database: ConnectionSettings) -> None:
    url = url_of(database, host="127.0.0.1", port=free_port())
    started = time.monotonic()
    done = run_entrypoint(container_env(url, MIGRATE_WAIT_TIMEOUT="1"), "true")
    assert done.returncode == 3
    assert "entrypoint: the database did not become reachable (exit 3); not starting" in done.stderr
    assert time.monotonic() - started < 30


def test_the_given_command_runs_after_the_migrations(database_url: str, tmp_path: Path) -> None:
    marker = tmp_path / "ran"
    done = run_entrypoint(container_env(database_url), "sh", "-c", f"migrate status > {marker}")
    assert done.returncode == 0, done.stderr
    assert f"{N} applied, 0 pending" in marker.read_text()


def test_migrate_on_start_0_skips_the_migrations(database_url: str, database: ConnectionSettings) -> None:
    done = run_entrypoint(container_env(database_url, MIGRATE_ON_START="0"), "true")
    assert done.returncode == 0, done.stderr
    assert "MIGRATE_ON_START=0: not applying migrations" in done.stderr
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL")


def migrate_health(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(BIN / "migrate"), "health", *args], env=env, capture_output=True, text=True, timeout=60, check=False
    )


def test_migrate_health_exits_0_when_the_database_answers(database_url: str, database: ConnectionSettings) -> None:
    done = migrate_health(container_env(database_url))
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith(f"healthy: database {database.describe()} answers (PostgreSQL ")


def test_migrate_health_ready_exits_1_naming_pending_migrations(database_url: str) -> None:
    done = migrate_health(container_env(database_url), "--ready")
    assert done.returncode == 1
    assert done.stderr.startswith(f"migrate: not ready: {N} migration(s) pending (001_create_schemas.sql")


def test_migrate_health_exits_1_not_3_when_the_database_is_unreachable(database: ConnectionSettings) -> None:
    port = free_port()
    done = migrate_health(container_env(url_of(database, host="127.0.0.1", port=port)), "--timeout", "3")
    assert done.returncode == 1  # Docker reads 0 healthy, 1 unhealthy; it reserves 2
    assert f"127.0.0.1:{port}" in done.stderr
    assert "Traceback" not in done.stderr


def test_migrate_health_exits_1_on_a_bad_setting(database_url: str) -> None:
    done = migrate_health(container_env(database_url, MIGRATIONS_TABLE="no such table!"), "--ready")
    assert done.returncode == 1
    assert "MIGRATIONS_TABLE" in done.stderr


def test_migrate_health_url_asks_the_running_server(
    container: tuple[subprocess.Popen[str], str], database_url: str
) -> None:
    process, url = container
    wait_for(f"{url}/ready", 200, process)
    health = migrate_health(container_env(database_url), "--url", url)
    ready = migrate_health(container_env(database_url), "--ready", "--url", f"{url}/health")
    assert (health.returncode, health.stdout) == (0, f"healthy: {url}/health: 200 ok\n")
    assert (ready.returncode, ready.stdout) == (0, f"ready: {url}/ready: 200 ready\n")


def test_migrate_health_url_exits_1_when_nothing_serves_there(database_url: str) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    done = migrate_health(container_env(database_url), "--url", url)
    assert done.returncode == 1
    assert done.stderr.startswith(f"migrate: not healthy: {url}/health: no answer (")
