"""Real neighbours of the test server: a PgBouncer in front of it and a hot standby behind a primary.

Both are the real programs, started by the suite: PgBouncer is the OS package (`make test` installs it
when it is missing), the standby is made by `pg_basebackup -R` from a primary of the tests' own and runs
on the embedded server's binaries.
"""

from __future__ import annotations

import os
import pwd
import shutil
import signal
import subprocess
import time
from pathlib import Path

from src.postgres import embedded
from src.postgres.settings import ConnectionSettings
from tests.support import PrivateServer, fetchval, free_port

PGBOUNCER_CANDIDATES = ("pgbouncer", "/usr/sbin/pgbouncer", "/usr/bin/pgbouncer")


def pgbouncer_binary() -> str:
    for candidate in PGBOUNCER_CANDIDATES:
        found = shutil.which(candidate)
        if found:
            return found
    raise RuntimeError(
        "PgBouncer is not installed: `make test` installs it (apt-get install pgbouncer, as root); "
        "the pooler tests need the real program and are never skipped"
    )


def _run_as() -> str | None:
    """PgBouncer refuses to run as root; as root it runs as the embedded server's system user (or nobody)."""
    if os.geteuid() != 0:
        return None
    for name in ("embedded_postgres", "nobody"):
        try:
            pwd.getpwnam(name)
        except KeyError:
            continue
        return name
    return None


class PgBouncer:
    """A PgBouncer process on 127.0.0.1 in front of `server`, in `mode` (session or transaction pooling),
    with its stock settings otherwise: no `ignore_startup_parameters`, no prepared-statement support."""

    def __init__(
        self, server: ConnectionSettings, folder: Path, *, mode: str, pool_size: int = 20, **settings: str
    ) -> None:
        """`settings`: more lines for the `[pgbouncer]` section (`ignore_startup_parameters="..."`)."""
        self.mode = mode
        self.port = free_port()
        folder.mkdir(parents=True, exist_ok=True)
        folder.chmod(0o777)
        self.folder = folder
        target = f"host={server.host} port={server.port}"
        auth = folder / "users.txt"
        # The server's password, for PgBouncer's own login to it (a container's server asks for one; the
        # embedded one trusts loopback). Clients log in to PgBouncer with auth_type trust.
        secret = server.password.get_secret_value().replace('"', '""') if server.password else ""
        auth.write_text(f'"{server.user}" "{secret}"\n')
        config = folder / "pgbouncer.ini"
        config.write_text(
            "[databases]\n"
            f"* = {target}\n"
            "[pgbouncer]\n"
            "listen_addr = 127.0.0.1\n"
            f"listen_port = {self.port}\n"
            "unix_socket_dir =\n"
            "auth_type = trust\n"
            f"auth_file = {auth}\n"
            f"pool_mode = {mode}\n"
            f"default_pool_size = {pool_size}\n"
            "max_client_conn = 500\n"
            "server_login_retry = 1\n"
            f"logfile = {folder / 'pgbouncer.log'}\n"
            f"pidfile = {folder / 'pgbouncer.pid'}\n"
            + "".join(f"{name} = {value}\n" for name, value in settings.items())
        )
        for path in (auth, config):
            path.chmod(0o644)
        command = [pgbouncer_binary(), "-q", str(config)]
        user = _run_as()
        if user is not None:
            command[1:1] = ["-u", user]
        self.process = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
        self.settings = ConnectionSettings(
            host="127.0.0.1", port=self.port, database=server.database, user=server.user, password=server.password
        )
        self._wait_until_listening()

    def _wait_until_listening(self) -> None:
        import socket

        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                _, err = self.process.communicate()
                raise RuntimeError(f"PgBouncer exited at start: {err.decode(errors='replace').strip()}")
            with socket.socket() as sock:
                if sock.connect_ex(("127.0.0.1", self.port)) == 0:
                    return
            time.sleep(0.05)
        raise RuntimeError(f"PgBouncer did not listen on 127.0.0.1:{self.port} within 10 s")

    def to(self, database: str) -> ConnectionSettings:
        """This PgBouncer's address for one database of the server behind it."""
        from dataclasses import replace

        return replace(self.settings, database=database)

    def log(self) -> str:
        path = self.folder / "pgbouncer.log"
        return path.read_text(errors="replace") if path.exists() else ""

    def stop(self) -> None:
        if self.process.poll() is None:
            self.process.send_signal(signal.SIGINT)  # immediate shutdown
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        if self.process.stderr is not None:
            self.process.stderr.close()


class Standby:
    """A hot standby of `primary` (a PrivateServer): `pg_basebackup -R` into a new folder, then started on
    its own socket and port with the embedded server's binaries. Streams from the primary until stopped."""

    def __init__(self, primary: PrivateServer, folder: Path) -> None:
        self.primary = primary
        self.data_dir = folder / "standby"
        bin_dir = embedded._bin_dir()
        owner = primary.server.data_dir.stat().st_uid
        folder.chmod(0o755)
        self._user: int | None = owner if os.geteuid() == 0 and owner != 0 else None
        if self._user is not None:
            os.chown(folder, owner, -1)
        where = primary.settings
        subprocess.run(
            [
                str(bin_dir / "pg_basebackup"),
                "-D",
                str(self.data_dir),
                "-R",
                "-X",
                "stream",
                "-c",
                "fast",
                "-h",
                where.host,
                "-p",
                str(where.port),
                "-U",
                where.user,
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )
        self.port = free_port()
        self.socket_dir = folder / "socket"
        self.socket_dir.mkdir()
        if self._user is not None:
            os.chown(self.socket_dir, owner, -1)
        self._pg_ctl = [str(bin_dir / "pg_ctl"), "-D", str(self.data_dir), "-w"]
        self._log = log = folder / "standby.log"
        subprocess.run(
            [
                *self._pg_ctl,
                "-l",
                str(log),
                "-o",
                f"-h '' -k {self.socket_dir} -p {self.port} -c hot_standby_feedback=on",
                "start",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )
        self.settings = ConnectionSettings(
            host=str(self.socket_dir), port=self.port, database=where.database, user=where.user
        )

    def to(self, database: str) -> ConnectionSettings:
        from dataclasses import replace

        return replace(self.settings, database=database)

    def wait_for_replay(self, timeout: float = 30) -> None:
        """Until the standby has replayed everything the primary has written so far."""
        target = fetchval(self.primary.settings, "SELECT pg_current_wal_lsn()::text")
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if fetchval(self.settings, "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target):
                return
            time.sleep(0.05)
        raise TimeoutError(f"the standby did not replay up to {target} within {timeout} s")

    def pause_replay(self) -> None:
        fetchval(self.settings, "SELECT pg_wal_replay_pause()")

    def resume_replay(self) -> None:
        fetchval(self.settings, "SELECT pg_wal_replay_resume()")

    def stop(self, mode: str = "fast") -> None:
        subprocess.run([*self._pg_ctl, "-m", mode, "stop"], capture_output=True, user=self._user)

    def start(self) -> None:
        # With a log file: otherwise the server would hold pg_ctl's captured stdout open, and run() wait for ever.
        subprocess.run(
            [
                *self._pg_ctl,
                "-l",
                str(self._log),
                "-o",
                f"-h '' -k {self.socket_dir} -p {self.port} -c hot_standby_feedback=on",
                "start",
            ],
            check=True,
            capture_output=True,
            user=self._user,
        )
