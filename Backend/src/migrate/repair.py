"""Deliberate changes to the ledger: `repair` (accept the files as they are now) and `baseline` (adopt a
database whose schema was built some other way). Neither runs any migration SQL."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import asyncpg

from src.migrate import ledger, lock
from src.migrate.errors import DriftError, MigrationFileError
from src.migrate.files import MigrationFile
from src.migrate.plan import State, make_plan
from src.migrate.runner import Options


@dataclass(frozen=True)
class Repaired:
    file: MigrationFile
    old_name: str
    old_checksum: str


async def repair(conn: asyncpg.Connection, files: Sequence[MigrationFile], options: Options) -> list[Repaired]:
    """Record the current name and checksum of every applied file that was edited or renamed.

    Missing files are not forgotten (that would hide a real loss): they stay an error until restored.
    """
    key = lock.lock_key(options.ledger)
    await lock.acquire(conn, key, wait=options.lock_wait)
    try:
        plan = make_plan(files, await ledger.read(conn, options.ledger), allow_out_of_order=True)
        missing = [e for e in plan.entries if e.state is State.MISSING]
        if missing:
            raise DriftError(
                "\n".join(p for e in missing if (p := e.problem()))
                + "\nrepair records edits and renames, never forgets an applied file; nothing was changed"
            )
        repaired = []
        async with conn.transaction():
            for entry in plan.entries:
                if entry.state in (State.EDITED, State.RENAMED):
                    assert entry.file is not None
                    assert entry.row is not None
                    await ledger.update(
                        conn, options.ledger, version=entry.version, name=entry.file.name, checksum=entry.file.checksum
                    )
                    repaired.append(Repaired(entry.file, entry.row.name, entry.row.checksum))
        return repaired
    finally:
        await lock.release(conn, key)


async def baseline(
    conn: asyncpg.Connection, files: Sequence[MigrationFile], options: Options, version: int
) -> list[MigrationFile]:
    """Record every file up to `version` as applied (kind 'baseline') without running it.

    Only for a ledger that is empty: adopting a database the runner has never touched.
    """
    adopted = [f for f in files if f.version <= version]
    if not adopted:
        raise MigrationFileError(f"no migration file is numbered {version} or below; nothing to baseline")
    key = lock.lock_key(options.ledger)
    await lock.acquire(conn, key, wait=options.lock_wait)
    try:
        await ledger.ensure(conn, options.ledger)
        rows = await ledger.read(conn, options.ledger)
        if rows:
            raise DriftError(
                f"the ledger {options.ledger} already has {len(rows)} row(s) (up to version {rows[-1].version}); "
                "baseline only adopts a database the runner has never applied to"
            )
        async with conn.transaction():
            for file in adopted:
                await ledger.record(
                    conn,
                    options.ledger,
                    version=file.version,
                    name=file.name,
                    checksum=file.checksum,
                    duration_ms=0.0,
                    kind="baseline",
                )
        return adopted
    finally:
        await lock.release(conn, key)
