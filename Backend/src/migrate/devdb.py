"""The dev database: the embedded PostgreSQL as a server that outlives the command starting it.

`start` starts it on a data folder (or finds it running) and marks it to keep running; `stop` stops it,
and only it: a server some other command started on the folder (and will stop itself) is left alone. The
app finds the server through `DATABASE_URL`: `url_of` gives the URL (a unix socket, `?host=/dir&port=N`;
no password: the server trusts connections through its socket, which sits in the data folder), and
`write_env` puts it into a `.env` file, which `DatabaseConfig` and `migrate` both read. Nothing here prints
or exits; `src.app.devdb` is the `migrate db` command group.
"""

from __future__ import annotations

import shlex
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import quote

from src.postgres import embedded
from src.postgres.settings import ENV_URL, ConnectionSettings


def url_of(settings: ConnectionSettings) -> str:
    """The server as a `postgresql://` URL: libpq, asyncpg, `DatabaseConfig` and `migrate` all read it."""
    path = f"/{quote(settings.database, safe='')}"
    if settings.host.startswith("/"):
        return f"postgresql://{quote(settings.user, safe='')}@{path}?host={quote(settings.host)}&port={settings.port}"
    return f"postgresql://{quote(settings.user, safe='')}@{settings.host}:{settings.port}{path}"


def export_line(url: str) -> str:
    """A shell line setting DATABASE_URL; quoted, since the URL's `&` would otherwise end the command."""
    return f"export {ENV_URL}={shlex.quote(url)}"


@dataclass(frozen=True)
class DevServer:
    data_dir: Path
    pid: int
    settings: ConnectionSettings
    kept: bool
    """Started (or adopted) by `migrate db start`, so it stays up; else a running command started it."""

    @property
    def url(self) -> str:
        return url_of(self.settings)

    @property
    def version(self) -> str:
        return embedded.binary_version()


@dataclass(frozen=True)
class Started:
    server: DevServer
    already_running: bool
    """It was running already, kept by an earlier `migrate db start`."""
    adopted: bool
    """It was running already, started by a command still running; now it is kept running as well."""
    recovered: list[str]
    """What a dead server left in the folder and the start cleared, one sentence each."""


def start(data_dir: Path) -> Started:
    """Start the dev server on `data_dir`, or find it running; either way it keeps running after this process.

    Raises `embedded.DataDirError` when the folder cannot hold a server, `embedded.EmbeddedServerError` when
    the server does not start.
    """
    before = embedded.state(data_dir)
    if before.kept and before.postmaster is not None:
        return Started(_dev_server(before), already_running=True, adopted=False, recovered=[])
    server = embedded.start(data_dir, keep_running=True)
    after = embedded.state(server.data_dir)
    adopted = before.postmaster is not None and after.postmaster is not None and before.postmaster.pid == server.pid
    return Started(_dev_server(after), already_running=False, adopted=adopted, recovered=server.recovered)


def find(data_dir: Path) -> DevServer | None:
    """The server running on `data_dir` (kept or not), or None."""
    current = embedded.state(data_dir)
    return _dev_server(current) if current.postmaster is not None else None


def _dev_server(current: embedded.ServerState) -> DevServer:
    settings = current.settings()
    if current.postmaster is None or settings is None:
        raise embedded.EmbeddedServerError(f"the embedded PostgreSQL in {current.data_dir} did not report its socket")
    return DevServer(data_dir=current.data_dir, pid=current.postmaster.pid, settings=settings, kept=current.kept)


@dataclass(frozen=True)
class Stopped:
    pid: int | None
    """The server stopped, or None when nothing was stopped."""
    left_running: DevServer | None
    """A server runs on the folder that `migrate db start` did not start: its command stops it, not we."""


def stop(data_dir: Path) -> Stopped:
    """Stop the dev server on `data_dir` cleanly, and nothing else (see `Stopped`)."""
    current = embedded.state(data_dir)
    if current.postmaster is not None and not current.kept:
        return Stopped(pid=None, left_running=_dev_server(current))
    return Stopped(pid=embedded.shut_down(data_dir), left_running=None)


@dataclass(frozen=True)
class EnvWrite:
    path: Path
    previous: str | None
    """The DATABASE_URL the file held before, or None."""
    value: str

    @property
    def changed(self) -> bool:
        return self.previous != self.value


def write_env(path: Path, url: str) -> EnvWrite:
    """Set DATABASE_URL in the .env file at `path` (created if missing); every other line stays as it was."""
    from dotenv import dotenv_values, set_key

    previous = dotenv_values(path).get(ENV_URL) if path.is_file() else None
    if previous != url:
        # python-dotenv rewrites only the DATABASE_URL line, keeping comments, order and the file's mode.
        set_key(path, ENV_URL, url, quote_mode="always", follow_symlinks=True)
    return EnvWrite(path=path.resolve(), previous=previous, value=url)
