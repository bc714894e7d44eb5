"""Apply pending migrations: plan, lock, run the files with their ledger rows, report.

By default every pending file runs in one transaction together with the ledger rows, so a failure
anywhere leaves the database and the ledger exactly as they were (`--transaction per-file` commits
each file on its own instead). A file holding a statement PostgreSQL refuses inside a transaction
block (CREATE INDEX CONCURRENTLY, VACUUM, ...) runs statement by statement between transactions, and
is recorded after its last statement succeeds; a file that adds an enum value ends its transaction, so
later files can use the value. The runner's own statements run with its own session settings, whatever
a file SETs (see `script.GUARD`).

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
from typing import TYPE_CHECKING, Protocol

import asyncpg

from src.migrate import ledger, script
from src.migrate.errors import LockTimeout, MigrateError, MigrationFailed
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan, make_plan
from src.migrate.script import TransactionMode

if TYPE_CHECKING:
    from src.migrate import lock, sql

# Only pending work needs the parser, the lock, failure diagnosis and the index checks: they are imported
# where that work starts (`apply` past its no-op return, `_Run`), so that the common container start, with
# nothing to apply, does not load them (see docs/benchmarks.md, the no-op apply).


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

    def failed_at(self, file: MigrationFile | None, ran: Sequence[MigrationFile]) -> None:
        """The run stops at an error in `file` (None: in one of `ran`, which one is unknown). Otherwise `ran`
        are the files sent with it, before it, which ran but were rolled back with it."""


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
    from src.migrate import lock, sql

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
        enum_files = {v for v, statements in parsed.items() if script.adds_enum_value(statements)}
        run = _Run(conn, options.ledger, key, progress, parsed, ledger_ready=plan.head is not None)
        groups = script.groups(plan.to_apply, transactional, options.transaction, commit_after=enum_files)
        for in_transaction, group in groups:
            if in_transaction:
                await run.group(group)
                ends_early = group[-1].version in enum_files and group[-1] is not plan.to_apply[-1]
                if ends_early and options.transaction is TransactionMode.ALL and progress is not None:
                    progress.note(
                        f"committed after {group[-1].filename}: it adds an enum value, which PostgreSQL lets later "
                        "files use only once committed"
                    )
            else:
                await run.outside_transaction(group[0])
        return ApplyResult(plan, run.applied, waited)
    finally:
        if not conn.is_closed():
            # The lock dies with the session anyway; an error here must not hide the original one.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await lock.release(conn, key)
            # The schema changed, and a file's DEALLOCATE ALL or DISCARD ALL (not undone by a rollback) may have
            # removed the statements asyncpg keeps prepared: drop its caches, so the caller's connection works.
            await conn.reload_schema_state()


def _can_skip_parsing(files: Sequence[MigrationFile], mode: TransactionMode) -> bool:
    """Whether the files can go to the server without being parsed here first.

    Parsing first means a syntax error in the last file cannot leave the first ones applied. When every
    file plainly runs in a transaction and they all share one, the server's own parser gives the same
    guarantee (the transaction rolls back, the error has a position), and the runner skips importing
    and running pglast: most of the start-up cost of a small apply. A file that may add an enum value
    is parsed, since its transaction must commit after it (see `script.adds_enum_value`).
    """
    from src.migrate import sql

    return mode is TransactionMode.ALL and all(
        sql.plainly_transactional(f.sql) and not script.may_add_enum_value(f.sql) for f in files
    )


class _Run:
    """One apply's groups, in order, on one connection: what was applied so far, and the ledger's state."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        table: LedgerTable,
        key: int,
        progress: Progress | None,
        parsed: dict[int, list[sql.Statement]],
        *,
        ledger_ready: bool,
    ) -> None:
        self.conn = conn
        self.table = table
        self.key = key
        self.progress = progress
        self.parsed = parsed
        self.ledger_ready = ledger_ready
        """Whether the ledger is known to exist (it had rows, or this run created it)."""
        self.applied: list[Applied] = []

    async def _ensure_ledger(self) -> None:
        # Only before the first file runs: whatever a file does to the session cannot touch this.
        if not self.ledger_ready:
            await ledger.ensure(self.conn, self.table)
            self.ledger_ready = True

    async def group(self, files: Sequence[MigrationFile]) -> None:
        """Apply `files` and their ledger rows in one transaction: all of them, or none."""
        from src.migrate import diagnosis

        conn, progress = self.conn, self.progress
        if progress is not None and len(files) > 1:
            progress.transaction(files)
        batches = script.batches(files, self.table, socket.gethostname())
        committed = [a.file for a in self.applied]
        done: list[Applied] = []
        current = batches[0]
        ready = self.ledger_ready
        committing = False
        try:
            async with conn.transaction():
                # Created in the same transaction, so a first run that fails leaves no trace at all.
                await self._ensure_ledger()
                for batch in batches:
                    current = batch
                    if progress is not None:
                        progress.starting(batch.files[0], True)
                    try:
                        await conn.execute(batch.text)
                    except asyncpg.PostgresError as exc:
                        if diagnosis.is_connection_lost(exc):
                            raise
                        raise diagnosis.BatchFailed(batch, exc) from exc
                    took = await self._durations(batch, files, committed)
                    for index, file in enumerate(batch.files):
                        if index and progress is not None:
                            progress.starting(file, True)
                        result = Applied(file, took[file.version], transactional=True)
                        done.append(result)
                        if progress is not None:
                            progress.finished(result)
                committing = True
        except diagnosis.BatchFailed as failed:
            self.ledger_ready = ready  # a ledger created in the transaction went with it
            error = await diagnosis.diagnose(conn, files, batches, self.parsed, self.table, failed, committed)
            self._failed_in(failed.batch, error)
            raise error from failed.error
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            self.ledger_ready = ready
            consequence = diagnosis.rolled_back(files, committed)
            if progress is not None:
                progress.failed_at(None, files if committing else current.files)
            if not isinstance(exc, asyncpg.PostgresError) or diagnosis.is_connection_lost(exc):
                lost = diagnosis.LOST_TRANSACTION + consequence
                raise diagnosis.connection_lost(diagnosis.label(current.files), exc, lost) from exc
            if committing:
                raise diagnosis.commit_failed(files, exc, consequence) from exc
            raise diagnosis.bookkeeping_failed(current.files, exc, consequence, when="before") from exc
        except MigrateError:
            self.ledger_ready = ready
            if progress is not None:
                progress.failed_at(None, current.files)
            raise
        self.applied += done

    async def _durations(
        self, batch: script.Batch, files: Sequence[MigrationFile], committed: Sequence[MigrationFile]
    ) -> dict[int, float]:
        """The batch's ledger rows' durations, read back; a failure of this, the runner's own query, is
        reported as such (the transaction rolls back)."""
        from src.migrate import diagnosis

        versions = [f.version for f in batch.files]
        try:
            took = await ledger.durations(self.conn, self.table, versions)
        except asyncpg.PostgresError as exc:
            if diagnosis.is_connection_lost(exc):
                raise
            raise diagnosis.bookkeeping_failed(batch.files, exc, diagnosis.rolled_back(files, committed)) from exc
        missing = [f.filename for f in batch.files if f.version not in took]
        if missing:
            raise MigrationFailed(
                f"{diagnosis.label(batch.files)}: the ledger rows of {', '.join(missing)} were not written although "
                f"the batch ran without an error. {diagnosis.rolled_back(files, committed)}"
            )
        return took

    def _failed_in(self, batch: script.Batch, error: MigrateError) -> None:
        """Tell progress which file of `batch` the error is in, and which of its files ran before it."""
        if self.progress is None:
            return
        named = error.diagnostic.file if error.diagnostic is not None else None
        for index, file in enumerate(batch.files):
            if file.filename == named or (named is None and str(error).startswith(f"{file.filename}:")):
                self.progress.failed_at(file, batch.files[:index])
                return
        self.progress.failed_at(None, batch.files)

    async def outside_transaction(self, file: MigrationFile) -> None:
        """A file PostgreSQL will not run in a transaction block: statement by statement, then its row."""
        from src.migrate import diagnosis

        progress = self.progress
        if progress is not None:
            progress.starting(file, False)
        try:
            result = await self._run_outside_transaction(file, self.parsed[file.version])
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if not diagnosis.is_connection_lost(exc):
                raise
            if progress is not None:
                progress.failed_at(file, ())
            raise diagnosis.connection_lost(file.filename, exc, diagnosis.NOT_RECORDED) from exc
        except MigrateError:
            if progress is not None:
                progress.failed_at(file, ())
            raise
        self.applied.append(result)
        if progress is not None:
            progress.finished(result)

    async def _run_outside_transaction(self, file: MigrationFile, statements: list[sql.Statement]) -> Applied:
        from src.migrate import diagnosis, indexes, lock

        conn, progress = self.conn, self.progress
        await self._ensure_ledger()
        started = time.perf_counter()
        for index_name in await indexes.drop_invalid(conn, statements):
            if progress is not None:
                progress.note(
                    f"dropped INVALID index {index_name}, left by an interrupted CREATE INDEX CONCURRENTLY; "
                    "building it again"
                )
        await diagnosis.run_statements(conn, file, statements, consequence=None)
        duration_ms = (time.perf_counter() - started) * 1000
        if any(_discards_all(s) for s in statements) and not await lock.retake(conn, self.key):
            who = await lock.holder(conn, self.key)
            raise LockTimeout(
                f"{file.filename}: its DISCARD ALL released the runner's lock, and another runner took it before "
                f"this one could take it back ({who or 'holder not visible to this role'}); the file ran but was "
                "not recorded. Run `migrate apply` again once the other runner is done (the file's statements "
                "should be idempotent)."
            )
        try:
            # The file's session settings (a SET statement_timeout, SET ROLE, ...) must not apply to the checks
            # and the ledger row: they run in a transaction of their own, under script.GUARD.
            async with conn.transaction():
                await conn.execute(script.GUARD)
                await indexes.refuse_invalid(conn, file, statements)
                await ledger.record(
                    conn,
                    self.table,
                    version=file.version,
                    name=file.name,
                    checksum=file.checksum,
                    duration_ms=duration_ms,
                    transactional=False,
                )
        except asyncpg.PostgresError as exc:
            if diagnosis.is_connection_lost(exc):
                raise
            raise diagnosis.bookkeeping_failed([file], exc, diagnosis.NOT_RECORDED_AFTER_RUN) from exc
        return Applied(file, duration_ms, transactional=False)


def _discards_all(statement: sql.Statement) -> bool:
    """DISCARD ALL: it also releases the session's advisory locks, the runner's among them."""
    return statement.kind == "DiscardStmt" and getattr(statement.node.target, "name", "") == "DISCARD_ALL"
