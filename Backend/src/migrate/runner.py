"""Apply pending migrations: plan, lock, run the files with their ledger rows, report.

By default every pending file runs in one transaction together with the ledger rows, so a failure
anywhere leaves the database and the ledger exactly as they were (`--transaction per-file` commits
each file on its own instead). A file holding a statement PostgreSQL refuses inside a transaction
block (CREATE INDEX CONCURRENTLY, VACUUM, ...) runs statement by statement between transactions, and
is recorded after its last statement succeeds.

Files in a transaction are sent many to a message (see `script`). What a failure means (which file,
line and column, whether the connection was lost, what was left applied) is worked out in `diagnosis`;
the INVALID indexes an interrupted CREATE INDEX CONCURRENTLY leaves are handled in `indexes`.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from src.migrate import diagnosis, indexes, ledger, lock, script, sql
from src.migrate.diagnosis import BatchFailed, is_connection_lost
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan, make_plan
from src.migrate.script import TransactionMode


@dataclass(frozen=True)
class Options:
    ledger: LedgerTable = field(default_factory=lambda: LedgerTable.parse(ledger.DEFAULT_TABLE))
    lock_wait: float = 300.0
    """Seconds to wait for another runner's lock before giving up."""
    target: int | None = None
    allow_out_of_order: bool = False
    transaction: TransactionMode = TransactionMode.ALL
    """All pending files in one transaction, or each file in its own."""


@dataclass(frozen=True)
class Applied:
    file: MigrationFile
    duration_ms: float
    transactional: bool


@dataclass
class ApplyResult:
    plan: Plan
    """The plan as read under the lock (or without it, when there was nothing to do)."""
    applied: list[Applied]
    lock_wait_s: float | None
    """Seconds spent waiting for the lock; None when nothing was pending and the lock was not taken."""

    @property
    def head(self) -> int | None:
        versions = [a.file.version for a in self.applied]
        if self.plan.head is not None:
            versions.append(self.plan.head)
        return max(versions) if versions else None


class Progress(Protocol):
    def lock_busy(self, holder: lock.Holder | None) -> None: ...

    def note(self, message: str) -> None: ...

    def transaction(self, files: Sequence[MigrationFile]) -> None:
        """Several files are about to run in one transaction: all of them are applied, or none."""

    def starting(self, file: MigrationFile, transactional: bool) -> None: ...

    def finished(self, applied: Applied) -> None: ...


async def read_plan(conn: asyncpg.Connection, files: Sequence[MigrationFile], options: Options) -> Plan:
    rows = await ledger.read(conn, options.ledger)
    return make_plan(files, rows, target=options.target, allow_out_of_order=options.allow_out_of_order)


async def apply(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    progress: Progress | None = None,
) -> ApplyResult:
    """Apply every pending file up to `options.target`; refuses drift before touching anything."""
    plan = await read_plan(conn, files, options)
    plan.raise_for_drift()
    if not plan.to_apply:
        # The common container start: nothing pending, so no lock and no write.
        return ApplyResult(plan, [], None)
    unparsed = _can_skip_parsing(plan.to_apply, options.transaction)
    parsed = {} if unparsed else {f.version: sql.parse(f) for f in plan.to_apply}
    key = lock.lock_key(options.ledger)
    waited = await lock.acquire(
        conn, key, wait=options.lock_wait, on_busy=progress.lock_busy if progress is not None else None
    )
    try:
        # Another runner may have applied some or all of it while we waited: plan again under the lock.
        plan = await read_plan(conn, files, options)
        plan.raise_for_drift()
        if not unparsed:
            for file in plan.to_apply:
                if file.version not in parsed:
                    parsed[file.version] = sql.parse(file)
        transactional = {f.version: unparsed or all(s.transactional for s in parsed[f.version]) for f in plan.to_apply}
        applied: list[Applied] = []
        for in_transaction, group in script.groups(plan.to_apply, transactional, options.transaction):
            if in_transaction:
                applied += await _apply_group(conn, group, parsed, options.ledger, progress)
            else:
                applied.append(await _apply_file(conn, group[0], parsed[group[0].version], options.ledger, progress))
        return ApplyResult(plan, applied, waited)
    finally:
        if not conn.is_closed():
            # The lock dies with the session anyway; an error here must not hide the original one.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await lock.release(conn, key)


def _can_skip_parsing(files: Sequence[MigrationFile], mode: TransactionMode) -> bool:
    """Whether the files can go to the server without being parsed here first.

    Parsing first means a syntax error in the last file cannot leave the first ones applied. When every
    file plainly runs in a transaction and they all share one, the server's own parser gives the same
    guarantee (the transaction rolls back, the error has a position), and the runner skips importing
    and running pglast: most of the start-up cost of a small apply.
    """
    return mode is TransactionMode.ALL and all(sql.plainly_transactional(f.sql) for f in files)


async def _apply_group(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    parsed: dict[int, list[sql.Statement]],
    table: LedgerTable,
    progress: Progress | None,
) -> list[Applied]:
    """Apply `files` and their ledger rows in one transaction: all of them, or none."""
    if progress is not None and len(files) > 1:
        progress.transaction(files)
    batches = script.batches(files, table, socket.gethostname())
    applied: list[Applied] = []
    current = batches[0]
    try:
        async with conn.transaction():
            # Created in the same transaction, so a first run that fails leaves no trace at all.
            await ledger.ensure(conn, table)
            for batch in batches:
                current = batch
                if progress is not None:
                    progress.starting(batch.files[0], True)
                try:
                    await conn.execute(batch.text)
                except asyncpg.PostgresError as exc:
                    if is_connection_lost(exc):
                        raise
                    raise BatchFailed(batch, exc) from exc
                took = await ledger.durations(conn, table, [f.version for f in batch.files])
                for index, file in enumerate(batch.files):
                    if index and progress is not None:
                        progress.starting(file, True)
                    result = Applied(file, took[file.version], transactional=True)
                    applied.append(result)
                    if progress is not None:
                        progress.finished(result)
    except BatchFailed as failed:
        raise await diagnosis.diagnose(conn, files, batches, parsed, table, failed) from failed.error
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if not is_connection_lost(exc):
            raise
        raise diagnosis.connection_lost(
            diagnosis.label(current.files), exc, diagnosis.LOST_TRANSACTION + diagnosis.rolled_back(files)
        ) from exc
    return applied


async def _apply_file(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    table: LedgerTable,
    progress: Progress | None,
) -> Applied:
    """A file PostgreSQL will not run in a transaction block: statement by statement, then its row."""
    if progress is not None:
        progress.starting(file, False)
    try:
        result = await _apply_outside_transaction(conn, file, statements, table, progress)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if not is_connection_lost(exc):
            raise
        raise diagnosis.connection_lost(file.filename, exc, diagnosis.NOT_RECORDED) from exc
    if progress is not None:
        progress.finished(result)
    return result


async def _apply_outside_transaction(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    table: LedgerTable,
    progress: Progress | None,
) -> Applied:
    await ledger.ensure(conn, table)
    started = time.perf_counter()
    for index_name in await indexes.drop_invalid(conn, statements):
        if progress is not None:
            progress.note(
                f"dropped INVALID index {index_name}, left by an interrupted CREATE INDEX CONCURRENTLY; "
                "building it again"
            )
    await diagnosis.run_statements(conn, file, statements, consequence=None)
    await indexes.refuse_invalid(conn, file, statements)
    duration_ms = (time.perf_counter() - started) * 1000
    await ledger.record(
        conn,
        table,
        version=file.version,
        name=file.name,
        checksum=file.checksum,
        duration_ms=duration_ms,
        transactional=False,
    )
    return Applied(file, duration_ms, transactional=False)
