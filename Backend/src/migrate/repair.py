"""Deliberate changes to the ledger: `repair` (accept the files as they are now), `forget` (drop the rows
of deleted files: after a squash, or a file removed on purpose) and `baseline` (adopt a database whose
schema was built some other way). None runs any migration SQL. Each run keeps a row in the audit trail
(`audit`), written with the change it describes: `repair` and `forget` refuse when it cannot be."""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import asyncpg

from src.migrate import audit, ledger, session
from src.migrate.errors import ConfigError, DriftError, MigrationFileError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerRow, LedgerTable
from src.migrate.plan import Entry, Plan, State, make_plan
from src.migrate.runner import LockConnector, Options, locked

VersionRange = tuple[int, int]
"""Versions `low` to `high`, both included (one version: `(n, n)`)."""


@dataclass(frozen=True)
class Repaired:
    file: MigrationFile
    old_name: str
    old_checksum: str
    old_down_checksum: str | None = None
    down: bool = False
    """The down file was what changed (its checksum was `old_down_checksum`; name and checksum stand)."""


async def repair(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    *,
    lock_connection: LockConnector | None = None,
) -> list[Repaired]:
    """Record the current name and checksum of every applied file that was edited or renamed.

    Missing files are not forgotten (that would hide a real loss): they stay an error until restored, or
    until `forget` is asked for them by version. Every change keeps an audit row.
    """
    started = time.perf_counter()
    async with locked(conn, options, None, lock_connection):  # noqa: SIM117 (the row is written under the lock)
        async with audit.run(conn, options.ledger, "repair", required=True, started=started) as trail:
            plan = make_plan(files, await ledger.read(conn, options.ledger), allow_out_of_order=True)
            missing = [e for e in plan.entries if e.state is State.MISSING]
            if missing:
                raise DriftError(
                    "\n".join(p for e in missing if (p := e.problem()))
                    + "\nrepair records edits and renames and never forgets an applied file unasked; nothing was "
                    "changed. If a file was deleted on purpose (a squash), `migrate repair --forget N` drops its row"
                )
            changed = [e for e in plan.entries if e.state in (State.EDITED, State.RENAMED, State.DOWN_EDITED)]
            trail.note = "migrate repair: nothing to repair"
            repaired = []
            async with conn.transaction():
                await session.apply_local(conn, options.session)
                trail.before, trail.after = [], []
                for entry in changed:
                    assert entry.file is not None
                    assert entry.row is not None
                    if entry.state is State.DOWN_EDITED:
                        before, after = await ledger.record_down(
                            conn, options.ledger, version=entry.version, down_checksum=entry.file.down_checksum
                        )
                        repaired.append(
                            Repaired(entry.file, entry.row.name, entry.row.checksum, entry.row.down_checksum, down=True)
                        )
                    else:
                        before, after = await ledger.update(
                            conn,
                            options.ledger,
                            version=entry.version,
                            name=entry.file.name,
                            checksum=entry.file.checksum,
                        )
                        repaired.append(Repaired(entry.file, entry.row.name, entry.row.checksum))
                    trail.before.append(before)
                    trail.after.append(after)
                    trail.versions.append(entry.version)
                if changed:
                    trail.note = "migrate repair: accepted " + ", ".join(
                        f"{e.file.filename} as it is now ({e.state.value})" for e in changed if e.file is not None
                    )
                else:
                    trail.before = trail.after = None
                await trail.record_in(conn, options.ledger)  # with the change: both or neither
            return repaired


def _shown(ranges: Sequence[VersionRange]) -> str:
    return ", ".join(str(low) if low == high else f"{low}-{high}" for low, high in ranges)


def forgettable(plan: Plan, ranges: Sequence[VersionRange], table: LedgerTable) -> list[LedgerRow]:
    """The ledger rows `ranges` name, when every one of them is a deleted file's; else a ConfigError
    saying why nothing can be forgotten. A version in a range with no ledger row is passed over."""
    chosen = [e for e in plan.entries if e.row is not None and any(lo <= e.version <= hi for lo, hi in ranges)]
    for low, high in ranges:
        if not any(low <= e.version <= high for e in chosen):
            which = f"version {low}" if low == high else f"any version from {low} to {high}"
            raise ConfigError(f"--forget {_shown([(low, high)])}: the ledger {table} has no row for {which}")
    present: list[Entry] = [e for e in chosen if e.file is not None]
    if present:
        raise ConfigError(
            f"--forget {_shown(ranges)}: {', '.join(e.label for e in present)} "
            f"{'is' if len(present) == 1 else 'are'} still in the migrations folder; "
            "forget only removes the row of a deleted file (delete the file first; to accept an edited or "
            "renamed file, run `migrate repair` without --forget). Nothing was changed"
        )
    return [e.row for e in chosen if e.row is not None]


@dataclass(frozen=True)
class Forgotten:
    row: LedgerRow
    """The ledger row as it was (now kept in the audit table)."""

    @property
    def label(self) -> str:
        return f"{self.row.version:03d}_{self.row.name}.sql"


async def forget(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    ranges: Sequence[VersionRange],
    confirm: Callable[[list[LedgerRow]], bool] | None = None,
    *,
    lock_connection: LockConnector | None = None,
) -> list[Forgotten]:
    """Delete the ledger rows of the deleted files `ranges` name, each kept in an audit row.

    `confirm` is asked with the rows before anything changes (None: confirmed); it is asked without the
    lock held, so a person thinking it over blocks no deploy. Under the lock the rows are read again and
    must be the same, or nothing is changed.
    """
    async with conn.transaction():
        rows = forgettable(
            make_plan(files, await ledger.read(conn, options.ledger), allow_out_of_order=True), ranges, options.ledger
        )
    if confirm is not None and not confirm(rows):
        raise ConfigError("not confirmed; nothing was changed (--yes confirms without asking)")
    started = time.perf_counter()
    async with locked(conn, options, None, lock_connection):
        async with audit.run(conn, options.ledger, "forget", required=True, started=started) as trail:
            trail.note = f"migrate repair --forget {_shown(ranges)}"
            again = make_plan(files, await ledger.read(conn, options.ledger), allow_out_of_order=True)
            if forgettable(again, ranges, options.ledger) != rows:
                raise DriftError("the ledger changed while the command waited; nothing was changed, run it again")
            async with conn.transaction():
                await session.apply_local(conn, options.session)
                trail.before = [await ledger.forget(conn, options.ledger, version=row.version) for row in rows]
                trail.versions = [row.version for row in rows]
                trail.note = "migrate repair --forget: " + ", ".join(
                    f"{Forgotten(row).label} is gone from the migrations folder" for row in rows
                )
                await trail.record_in(conn, options.ledger)  # with the change: both or neither
        return [Forgotten(row) for row in rows]


async def baseline(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    version: int,
    note: Callable[[str], None] | None = None,
    *,
    lock_connection: LockConnector | None = None,
) -> list[MigrationFile]:
    """Record every file up to `version` as applied (kind 'baseline') without running it.

    Only for a ledger that is empty: adopting a database the runner has never touched.
    """
    adopted = [f for f in files if f.version <= version]
    if not adopted:
        raise MigrationFileError(f"no migration file is numbered {version} or below; nothing to baseline")
    started = time.perf_counter()
    async with locked(conn, options, None, lock_connection):
        async with audit.run(conn, options.ledger, "baseline", started=started, note=note) as trail:
            trail.note = f"migrate baseline --version {version}"
            await ledger.ensure(conn, options.ledger)
            rows = await ledger.read(conn, options.ledger)
            if rows:
                raise DriftError(
                    f"the ledger {options.ledger} already has {len(rows)} row(s) (up to version "
                    f"{rows[-1].version}); baseline only adopts a database the runner has never applied to"
                )
            async with conn.transaction():
                await session.apply_local(conn, options.session)
                for file in adopted:
                    await ledger.record(
                        conn,
                        options.ledger,
                        version=file.version,
                        name=file.name,
                        checksum=file.checksum,
                        duration_ms=0.0,
                        kind="baseline",
                        down_checksum=file.down_checksum,
                    )
                trail.versions = [f.version for f in adopted]
                trail.note = f"migrate baseline --version {version}: {len(adopted)} file(s) recorded, not run"
                await trail.record_in(conn, options.ledger)
        return adopted
