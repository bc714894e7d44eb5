"""`migrate db`: the embedded PostgreSQL as a development server that outlives the command starting it.

The app finds it through `DATABASE_URL`: `migrate db start` prints the `export DATABASE_URL=...` line
(a unix socket, `?host=/dir&port=N`), `migrate db url` prints the URL alone, and `--write-env` writes
it into `.env`, which `DatabaseConfig` and `migrate` both read. `migrate` commands with no database
configured use the running dev server and leave it running.

Also here: how a command that started a server of its own makes sure it stops when the command is
interrupted or terminated (`ServerSignals`). No click in this module; `cli.py` prints.
"""

from __future__ import annotations

import asyncio
import contextlib
import shlex
import signal
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from types import FrameType
from typing import Any
from urllib.parse import quote

from src.postgres import embedded
from src.postgres.settings import ENV_URL, ConnectionSettings

EXIT_NOT_RUNNING = 1
"""`migrate db status` / `url`: no dev server runs on the data folder."""
EXIT_TERMINATED = 128 + signal.SIGTERM
EXIT_INTERRUPTED = 128 + signal.SIGINT


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
    """Started by `migrate db start` (stays up), rather than by a command that is still running."""

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
    recovered: list[str]


def start(data_dir: Path) -> Started:
    """Start the dev server on `data_dir`, or find it running; it keeps running after this process."""
    before = embedded.state(data_dir)
    if before.kept and before.postmaster is not None:
        return Started(_dev_server(before), already_running=True, recovered=[])
    server = embedded.start(data_dir, keep_running=True)
    after = embedded.state(server.data_dir)
    return Started(_dev_server(after), already_running=False, recovered=server.recovered)


def find(data_dir: Path) -> DevServer | None:
    """The server running on `data_dir` (kept or not), or None."""
    current = embedded.state(data_dir)
    return _dev_server(current) if current.postmaster is not None else None


def _dev_server(current: embedded.ServerState) -> DevServer:
    settings = current.settings()
    if current.postmaster is None or settings is None:
        raise embedded.EmbeddedServerError(f"the embedded PostgreSQL in {current.data_dir} did not report its socket")
    return DevServer(data_dir=current.data_dir, pid=current.postmaster.pid, settings=settings, kept=current.kept)


def stop(data_dir: Path) -> int | None:
    """Stop the server on `data_dir` cleanly; its pid, or None when it was not running."""
    return embedded.shut_down(data_dir)


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


class ServerSignals:
    """SIGINT and SIGTERM for a command that starts a server of its own, so that the server always stops.

    Python's default SIGTERM ends the process at once, leaving the server running with nobody to stop it.
    Here SIGTERM unwinds the command the way Ctrl-C does: under asyncio it cancels the command's task
    (the coroutine runs its `finally` blocks, which stop the server), elsewhere it raises
    KeyboardInterrupt. While the server starts or stops (`deferred()`), both signals are only noted, so
    neither can leave a half-started server behind or cut a clean stop short; `received` tells the caller
    afterwards. A SIGINT the process ignores (a background job) stays ignored.
    """

    def __init__(self) -> None:
        self.received: int | None = None
        self._deferring = 0
        self._task: asyncio.Task[Any] | None = None
        self._loop: asyncio.AbstractEventLoop | None = None

    @property
    def terminated(self) -> bool:
        return self.received == signal.SIGTERM

    @property
    def exit_code(self) -> int:
        return EXIT_TERMINATED if self.terminated else EXIT_INTERRUPTED

    def _on_signal(self, signum: int, frame: FrameType | None) -> None:
        self.received = self.received or signum
        if self._deferring or signum != signal.SIGTERM:
            return
        if self._task is not None and self._loop is not None and not self._task.done():
            self._task.cancel()
            self._loop.call_soon_threadsafe(lambda: None)  # wake the loop from its wait, as asyncio does for SIGINT
        else:
            raise KeyboardInterrupt

    @contextlib.contextmanager
    def active(self) -> Iterator[ServerSignals]:
        """Handle SIGTERM as described for as long as the block runs (main thread only; elsewhere a no-op)."""
        if threading.current_thread() is not threading.main_thread():
            yield self
            return
        with contextlib.suppress(RuntimeError):
            self._task = asyncio.current_task()
            self._loop = asyncio.get_running_loop()
        previous = signal.signal(signal.SIGTERM, self._on_signal)
        try:
            yield self
        finally:
            signal.signal(signal.SIGTERM, previous)

    @contextlib.contextmanager
    def deferred(self) -> Iterator[None]:
        """Only note SIGINT and SIGTERM while the block runs (starting or stopping the server)."""
        if threading.current_thread() is not threading.main_thread():
            yield
            return
        previous_int = signal.getsignal(signal.SIGINT)
        own_sigint = previous_int not in (signal.SIG_IGN, None)
        if own_sigint:
            signal.signal(signal.SIGINT, self._on_signal)
        self._deferring += 1
        try:
            yield
        finally:
            self._deferring -= 1
            if own_sigint:
                signal.signal(signal.SIGINT, previous_int)
