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
import dataclasses
import socket
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol

import asyncpg

from src.migrate import lazy, ledger, script, session
from src.migrate.errors import (
    ConfigError,
    ConnectionFailed,
    DriftError,
    LockTimeout,
    MigrateError,
    MigrationFailed,
    MigrationFileError,
    ReadOnlyServer,
)
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan, make_plan
from src.migrate.repeatable import RepeatableEntry, due, plan_repeatables
from src.migrate.script import TransactionMode
from src.migrate.session import DEFAULT as DEFAULT_SESSION
from src.migrate.session import SessionSettings

# Only pending work needs the parser, the lock, failure diagnosis, the index checks and the audit trail:
# they load at their first use, so that the common container start, with nothing to apply, does not
# (measured: a no-op apply 5-9 ms faster, median and least of 30 alternating runs).
if TYPE_CHECKING:
    from src.migrate import audit, diagnosis, indexes, lock, pooling, sql
    from src.migrate import rollback as rollbacks
    from src.migrate.rollback import RollbackPlan, Step
else:
    audit = lazy.module("src.migrate.audit")
    diagnosis = lazy.module("src.migrate.diagnosis")
    indexes = lazy.module("src.migrate.indexes")
    lock = lazy.module("src.migrate.lock")
    pooling = lazy.module("src.migrate.pooling")
    sql = lazy.module("src.migrate.sql")
    rollbacks = lazy.module("src.migrate.rollback")


@dataclass(frozen=True)
class Options:
    ledger: LedgerTable = field(default_factory=lambda: LedgerTable.parse(ledger.DEFAULT_TABLE))
    lock_wait: float = 300.0
    """Seconds to wait for another runner's lock before giving up."""
    target: int | None = None
    allow_out_of_order: bool = False
    transaction: TransactionMode = TransactionMode.ALL
    """All pending files in one transaction, or each file in its own."""
    session: SessionSettings = DEFAULT_SESSION
    """The timeouts every transaction of the run sets (SET LOCAL), and files outside a transaction get."""
    transaction_pooled: bool = False
    """The connection is known to go through a transaction-pooling pooler (`?transaction_pooling=true`,
    DB_TRANSACTION_POOLING); otherwise the runner finds out itself when it matters (`pooling`)."""
    audit: bool = True
    """Keep a row in the audit trail (`audit`) for a run that takes the lock; off for a scratch database."""


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


LockConnector = Callable[[], Awaitable[asyncpg.Connection]]
"""Opens the second connection that holds the migration lock when the files run in several transactions."""


async def read_plan(conn: asyncpg.Connection, files: Sequence[MigrationFile], options: Options) -> Plan:
    if conn.is_in_transaction():
        rows = await ledger.read(conn, options.ledger)
    else:
        # A transaction of its own: an unnamed statement is parsed and run in two round trips, which a
        # transaction-pooling PgBouncer could otherwise send to two different server connections.
        async with conn.transaction():
            rows = await ledger.read(conn, options.ledger, abortable=True)
    return make_plan(files, rows, target=options.target, allow_out_of_order=options.allow_out_of_order)


_READ_ONLY = (
    "SELECT pg_catalog.pg_is_in_recovery(), pg_catalog.current_setting('transaction_read_only')::bool, "
    "pg_catalog.current_setting('default_transaction_read_only')::bool"
)


async def refuse_read_only(conn: asyncpg.Connection, pending: Sequence[MigrationFile]) -> None:
    """Raise ReadOnlyServer when the server will not take the pending files' writes (inside a transaction)."""
    row = (await ledger.fetch(conn, _READ_ONLY))[0]
    if row[0]:
        why = "it is a hot standby (in recovery)"
    elif row[1] or row[2]:
        why = "its transactions are read-only (default_transaction_read_only is on for this database or role)"
    else:
        return
    raise ReadOnlyServer(
        f"the server is read-only: {why}, and {len(pending)} migration(s) are pending (from "
        f"{pending[0].filename}). Migrations must run on the primary: point DATABASE_URL (or "
        "MIGRATE_DATABASE_URL, for the runner alone) at it. Nothing was applied."
    )


async def apply(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    progress: Progress | None = None,
    *,
    lock_connection: LockConnector | None = None,
) -> ApplyResult:
    """Apply every pending file up to `options.target`; refuses drift before touching anything.

    When all of them run in one transaction, that transaction takes the lock itself. Otherwise the lock is
    held by an open transaction on a second connection that `lock_connection` opens (correct behind any
    pooler), or, without it, by a session-level lock on `conn` (correct only on a connection that is not
    pooled per transaction: a direct one, or a session-pooling PgBouncer's). A run that takes the lock
    keeps a row in the audit trail (`audit`), a failed one too.
    """
    started = time.perf_counter()
    plan = await read_plan(conn, files, options)
    plan.raise_for_drift()
    if not plan.to_apply:
        # The common container start: nothing pending, so no lock and no write.
        return ApplyResult(plan, [], None)

    unparsed = _can_skip_parsing(plan.to_apply, options.transaction)
    parsed = {} if unparsed else {f.version: sql.parse(f) for f in plan.to_apply}
    transactional = {f.version: unparsed or all(s.transactional for s in parsed[f.version]) for f in plan.to_apply}
    enum_files = {v for v, statements in parsed.items() if script.adds_enum_value(statements)}
    groups = list(script.groups(plan.to_apply, transactional, options.transaction, commit_after=enum_files))
    job = _Job(conn, files, options, progress, parsed, unparsed, started)
    try:
        if len(groups) == 1 and groups[0][0]:
            return await job.in_one_transaction(plan)
        if lock_connection is None:
            return await job.under_session_lock(plan)
        return await job.under_lock_connection(lock_connection, plan)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if diagnosis.is_connection_lost(exc):
            raise diagnosis.connection_lost(
                "before the first pending file", exc, "Nothing more was applied than the messages above say."
            ) from exc
        raise


class _Job:
    """One apply: the ways of holding the lock around the same run of groups."""

    def __init__(
        self,
        conn: asyncpg.Connection,
        files: Sequence[MigrationFile],
        options: Options,
        progress: Progress | None,
        parsed: dict[int, list[sql.Statement]],
        unparsed: bool,
        started: float,
    ) -> None:
        self.conn = conn
        self.started = started
        self.files = files
        self.options = options
        self.progress = progress
        self.parsed = parsed
        self.unparsed = unparsed
        self.key = lock.lock_key(options.ledger)

    def _on_busy(self) -> Callable[[lock.Holder | None], None] | None:
        return self.progress.lock_busy if self.progress is not None else None

    async def _replan(self) -> Plan:
        """The plan again, under the lock: another runner may have applied some or all of it meanwhile."""
        plan = await read_plan(self.conn, self.files, self.options)
        plan.raise_for_drift()
        if any(f.down_checksum is not None for f in plan.to_apply):
            await ledger.upgrade(self.conn, self.options.ledger)  # a ledger made before down files gets their column
        if not self.unparsed:
            for file in plan.to_apply:
                if file.version not in self.parsed:
                    self.parsed[file.version] = sql.parse(file)
        return plan

    def _run(self, plan: Plan, key: int | None) -> _Run:
        return _Run(
            self.conn,
            self.options,
            key,
            self.progress,
            self.parsed,
            ledger_ready=plan.head is not None,
        )

    async def in_one_transaction(self, before: Plan) -> ApplyResult:
        """Every pending file in one transaction, which takes the lock itself: one connection, and a lock
        that ends exactly with the work, under any pooler. The files run in a savepoint, so a failure is
        diagnosed while the lock is still held."""
        conn = self.conn
        committing = False
        plan: Plan | None = None
        trail: audit.Trail | None = None
        failed: BaseException | None = None
        try:
            async with lock.held(conn, self.key, wait=self.options.lock_wait, on_busy=self._on_busy()) as waited:
                await session.apply_local(conn, self.options.session)
                await refuse_read_only(conn, before.to_apply)
                plan = await self._replan()
                if not plan.to_apply:
                    return ApplyResult(plan, [], waited)
                trail = await self._trail()
                run = self._run(plan, None)
                try:
                    await run.group(plan.to_apply, nested=True)
                except Exception as exc:
                    failed = exc
                    raise
                self._note_applied(trail, run)
                if trail.enabled:
                    await trail.record_in(conn, self.options.ledger)  # commits with the files: both or neither
                committing = True
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            if isinstance(exc.__context__, MigrateError):
                # The rollback after a reported error failed too (the connection is gone): the report says more.
                raise exc.__context__ from None
            if not committing or plan is None:
                raise
            consequence = diagnosis.rolled_back(plan.to_apply)
            if self.progress is not None:
                self.progress.failed_at(None, plan.to_apply)
            if not isinstance(exc, asyncpg.PostgresError) or diagnosis.is_connection_lost(exc):
                lost = diagnosis.LOST_TRANSACTION + consequence
                raise diagnosis.connection_lost(diagnosis.label(plan.to_apply), exc, lost) from exc
            raise diagnosis.commit_failed(plan.to_apply, exc, consequence) from exc
        except BaseException as exc:
            failed = failed or exc
            raise
        finally:
            if not conn.is_closed():
                # A file's DEALLOCATE ALL (not undone by a rollback) may have removed the statements asyncpg
                # keeps prepared for the caller's connection: drop its caches, so the connection works.
                await conn.reload_schema_state()
                if failed is not None and trail is not None and trail.enabled and isinstance(failed, Exception):
                    # Written after the files' transaction rolled back, in one of its own.
                    await audit.record_failure(conn, self.options.ledger, trail, failed)
        return ApplyResult(plan, run.applied, waited)

    async def under_lock_connection(self, connect: LockConnector, before: Plan) -> ApplyResult:
        """Files in several transactions, or outside any: a second connection holds the lock in a
        transaction left open until the last file is done (and rolled back then: it wrote nothing)."""
        conn = self.conn
        outside = [f for f in before.to_apply if not self._transactional(f)]
        work_pid = await pooling.backend_pid(conn) if outside else 0
        async with conn.transaction():
            await refuse_read_only(conn, before.to_apply)
        holder = await connect()
        try:
            async with lock.held(holder, self.key, wait=self.options.lock_wait, on_busy=self._on_busy()) as waited:
                await session.apply_local(holder, self.options.session)
                pooled = bool(outside) and (
                    self.options.transaction_pooled or await pooling.transaction_pooled(conn, work_pid, holder)
                )
                plan = await self._replan()
                outside = [f for f in plan.to_apply if not self._transactional(f)]
                if pooled and outside and self.progress is not None:
                    self.progress.note(_POOLED_OUTSIDE.format(file=outside[0].filename, count=len(outside)))
                run = self._run(plan, None)
                run.lock_holder = holder
                run.transaction_pooled = pooled
                async with self._recorded(plan) as trail:
                    await self._groups(run, plan, trail)
                # The block's end commits the lock connection's transaction (it wrote nothing), ending the lock.
        finally:
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await holder.close(timeout=5)
        return ApplyResult(plan, run.applied, waited)

    async def under_session_lock(self, before: Plan) -> ApplyResult:
        """Files in several transactions on a connection the caller vouches is not pooled per transaction:
        a session-level lock on it (released at the end, and taken back after a file's DISCARD ALL)."""
        conn = self.conn
        async with conn.transaction():
            await refuse_read_only(conn, before.to_apply)
        waited = await lock.acquire(conn, self.key, wait=self.options.lock_wait, on_busy=self._on_busy())
        try:
            plan = await self._replan()
            run = self._run(plan, self.key)
            async with self._recorded(plan) as trail:
                await self._groups(run, plan, trail)
            return ApplyResult(plan, run.applied, waited)
        finally:
            if not conn.is_closed():
                # The lock dies with the session anyway; an error here must not hide the original one.
                with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                    await lock.release(conn, self.key)
                # The schema changed, and a file's DEALLOCATE ALL or DISCARD ALL (not undone by a rollback) may
                # have removed the statements asyncpg keeps prepared: drop its caches, so the connection works.
                await conn.reload_schema_state()

    def _transactional(self, file: MigrationFile) -> bool:
        return self.unparsed or all(s.transactional for s in self.parsed[file.version])

    async def _trail(self) -> audit.Trail:
        """The run's audit trail, its table made (or upgraded) under the lock; disabled, with a note, when
        this role may not, or for a scratch database (`Options.audit`)."""
        trail = audit.Trail("apply", started=self.started, enabled=self.options.audit)
        if trail.enabled:
            note = self.progress.note if self.progress is not None else None
            trail.enabled = await audit.prepare(self.conn, self.options.ledger, "apply", note=note)
        return trail

    @staticmethod
    def _note_applied(trail: audit.Trail, run: _Run) -> None:
        """What stays applied, should a later group fail."""
        trail.versions = [a.file.version for a in run.applied]
        trail.note = "applied " + ", ".join(a.file.filename for a in run.applied)

    @contextlib.asynccontextmanager
    async def _recorded(self, plan: Plan) -> AsyncIterator[audit.Trail]:
        """The audit row of a run in several transactions: `ok` after its last one, `failed` (in a transaction
        of its own) when it raises; none when nothing was left to apply."""
        trail = await self._trail() if plan.to_apply else audit.Trail("apply", enabled=False)
        try:
            yield trail
        except Exception as exc:
            if trail.enabled and not self.conn.is_closed():
                await audit.record_failure(self.conn, self.options.ledger, trail, exc)
            raise
        if trail.enabled:
            await audit.record_success(
                self.conn, self.options.ledger, trail, note=self.progress.note if self.progress else None
            )

    async def _groups(self, run: _Run, plan: Plan, trail: audit.Trail) -> None:
        options, progress = self.options, self.progress
        transactional = {f.version: self._transactional(f) for f in plan.to_apply}
        enum_files = {v for v, statements in self.parsed.items() if script.adds_enum_value(statements)}
        groups = script.groups(plan.to_apply, transactional, options.transaction, commit_after=enum_files)
        for in_transaction, group in groups:
            await run.check_lock(group[0])
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
            self._note_applied(trail, run)
        if not self.conn.is_closed():
            await self.conn.reload_schema_state()


_POOLED_OUTSIDE = (
    "this connection goes through a pooler in transaction mode (PgBouncer pool_mode = transaction), and "
    "{file} ({count} pending file(s) in all) runs outside a transaction: there each statement may run on "
    "another server connection, so the runner SETs its lock_timeout and statement_timeout right before each "
    "statement and RESETs them right after, which the pooler usually, not always, sends to the same one. "
    "For a guarantee, point MIGRATE_DATABASE_URL at the server itself or at a session-pooling PgBouncer."
)


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
        options: Options,
        key: int | None,
        progress: Progress | None,
        parsed: dict[int, list[sql.Statement]],
        *,
        ledger_ready: bool,
    ) -> None:
        self.conn = conn
        self.table = options.ledger
        self.session = options.session
        self.guard = script.guard(options.session.values())
        self.key = key
        """The session-level lock's key when `conn` holds it (it must be taken back after a DISCARD ALL)."""
        self.lock_holder: asyncpg.Connection | None = None
        """The connection whose open transaction holds the lock, when it is not `conn`."""
        self.transaction_pooled = False
        """`conn` is pooled per transaction: settings go with each statement outside a transaction."""
        self.progress = progress
        self.parsed = parsed
        self.ledger_ready = ledger_ready
        """Whether the ledger is known to exist (it had rows, or this run created it)."""
        self.applied: list[Applied] = []

    async def check_lock(self, file: MigrationFile) -> None:
        """Before each group: the lock connection still holds its transaction (if the server ended it, the lock
        is gone and another runner may start), or stop here."""
        if self.lock_holder is None:
            return
        try:
            await self.lock_holder.execute("SELECT 1")
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            done = f"{len(self.applied)} file(s) were applied and committed before it" if self.applied else ""
            raise LockTimeout(
                f"{file.filename}: the connection holding the migration lock was lost ({exc.__class__.__name__}: "
                f"{exc}), so the run stopped before this file; {done or 'nothing was applied'}. Run `migrate "
                "apply` again."
            ) from exc

    async def _ensure_ledger(self) -> None:
        # Only before the first file runs: whatever a file does to the session cannot touch this.
        if not self.ledger_ready:
            await ledger.ensure(self.conn, self.table)
            self.ledger_ready = True

    async def group(self, files: Sequence[MigrationFile], *, nested: bool = False) -> None:
        """Apply `files` and their ledger rows in one transaction: all of them, or none. `nested`: in a
        savepoint of the caller's transaction, which has the runner's settings and commits."""
        conn, progress = self.conn, self.progress
        if progress is not None and len(files) > 1:
            progress.transaction(files)
        batches = script.batches(files, self.table, socket.gethostname(), self.guard)
        committed = [a.file for a in self.applied]
        done: list[Applied] = []
        current = batches[0]
        ready = self.ledger_ready
        committing = False
        try:
            async with conn.transaction():
                if not nested:
                    await session.apply_local(conn, self.session)
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
        from src.migrate import diagnosis, lock

        conn, progress = self.conn, self.progress
        if not self.ledger_ready:
            async with conn.transaction():
                await session.apply_local(conn, self.session)
                await self._ensure_ledger()
        around: tuple[str, str] | None = None
        if self.transaction_pooled:
            # Each statement may get another server connection: the settings go with each one, and are taken
            # off again so the pooled connection is not left with them.
            around = (self.session.set_session(), self.session.reset_session())
        else:
            # Session-level, for the statements that run outside a transaction, on this connection only.
            await session.apply_session(conn, self.session)
        started = time.perf_counter()
        for index_name in await indexes.drop_invalid(conn, statements):
            if progress is not None:
                progress.note(
                    f"dropped INVALID index {index_name}, left by an interrupted CREATE INDEX CONCURRENTLY; "
                    "building it again"
                )
        await diagnosis.run_statements(conn, file, statements, consequence=None, around=around)
        duration_ms = (time.perf_counter() - started) * 1000
        discarded = any(_discards_all(s) for s in statements)
        if discarded and self.key is not None and not await lock.retake(conn, self.key):
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
                await conn.execute(self.guard)
                await indexes.refuse_invalid(conn, file, statements)
                await ledger.record(
                    conn,
                    self.table,
                    version=file.version,
                    name=file.name,
                    checksum=file.checksum,
                    duration_ms=duration_ms,
                    transactional=False,
                    down_checksum=file.down_checksum,
                )
        except asyncpg.PostgresError as exc:
            if diagnosis.is_connection_lost(exc):
                raise
            raise diagnosis.bookkeeping_failed([file], exc, diagnosis.NOT_RECORDED_AFTER_RUN) from exc
        return Applied(file, duration_ms, transactional=False)


def _discards_all(statement: sql.Statement) -> bool:
    """DISCARD ALL: it also releases the session's advisory locks, the runner's among them."""
    return statement.kind == "DiscardStmt" and getattr(statement.node.target, "name", "") == "DISCARD_ALL"


@dataclass
class RollbackResult:
    plan: RollbackPlan
    """What was to be undone, as chosen under the lock (or without it, when there was nothing to do)."""
    rolled_back: list[Applied]
    """The down files that ran, newest first (`Applied.file` is the down file)."""
    lock_wait_s: float | None

    @property
    def head(self) -> int | None:
        return self.plan.head


async def rollback(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    options: Options,
    *,
    to: int | None = None,
    steps: int | None = None,
    progress: Progress | None = None,
    lock_connection: LockConnector | None = None,
) -> RollbackResult:
    """Undo applied files newest first by running their down files (`rollback.choose` picks them and refuses
    a missing file or down file, before anything runs). Each down file runs in a transaction of its own
    together with the deletion of its ledger row (a down file PostgreSQL refuses in a transaction runs
    statement by statement, then its row goes), under the runner's lock, as `apply` takes it. The run keeps
    a row in the audit trail, a failed one too."""
    started = time.perf_counter()
    chosen = rollbacks.choose(await read_plan(conn, files, options), to=to, steps=steps)
    if not chosen.steps:
        return RollbackResult(chosen, [], None)
    parsed = {s.down.version: sql.parse(s.down) for s in chosen.steps}  # a malformed down file: nothing runs
    done: list[Applied] = []
    async with locked(conn, options, progress, lock_connection) as waited:
        again = rollbacks.choose(await read_plan(conn, files, options), to=to, steps=steps)
        if [s.row for s in again.steps] != [s.row for s in chosen.steps]:
            raise DriftError("the ledger changed while rollback waited for the lock; nothing was changed, run it again")
        trail_for = audit.run(
            conn, options.ledger, "rollback", started=started, note=progress.note if progress is not None else None
        )
        async with trail_for as trail:
            await _roll_back(conn, options, chosen, parsed, done, progress, trail)
        return RollbackResult(chosen, done, waited)


async def _roll_back(
    conn: asyncpg.Connection,
    options: Options,
    chosen: RollbackPlan,
    parsed: dict[int, list[sql.Statement]],
    done: list[Applied],
    progress: Progress | None,
    trail: audit.Trail,
) -> None:
    """The down files of `chosen`, newest first, under the lock, each step noted in `trail`."""
    for step in chosen.steps:
        statements = parsed[step.down.version]
        in_transaction = all(s.transactional for s in statements)
        if progress is not None:
            progress.starting(step.down, in_transaction)
        try:
            try:
                took = await _undo(conn, options.ledger, step, statements, in_transaction, done, options.session)
            except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                stays = f"{step.file.filename} stays applied in the ledger.{_undone_before(done)}"
                raise _unexpected(step.down, exc, stays, "rollback") from exc
        except MigrateError:
            if progress is not None:
                progress.failed_at(step.down, ())
            raise
        result = Applied(step.down, took, in_transaction)
        done.append(result)
        trail.versions.append(step.file.version)
        trail.before = [*(trail.before or []), dataclasses.asdict(step.row)]  # the rows as they were
        trail.note = "rolled back " + ", ".join(step.file.filename for step in chosen.steps[: len(done)])
        if progress is not None:
            progress.finished(result)


@contextlib.asynccontextmanager
async def locked(
    conn: asyncpg.Connection, options: Options, progress: Progress | None, lock_connection: LockConnector | None
) -> AsyncIterator[float]:
    """The migration lock for work on `conn` in several transactions: held by an open transaction on a
    connection `lock_connection` opens (right behind any pooler), or else a session-level lock on `conn`.
    Yields the seconds waited."""
    key = lock.lock_key(options.ledger)
    on_busy = progress.lock_busy if progress is not None else None
    try:
        if lock_connection is None:
            waited = await lock.acquire(conn, key, wait=options.lock_wait, on_busy=on_busy)
            try:
                yield waited
            finally:
                if not conn.is_closed():
                    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                        await lock.release(conn, key)
            return
        holder = await lock_connection()
        try:
            async with lock.held(holder, key, wait=options.lock_wait, on_busy=on_busy) as waited:
                await session.apply_local(holder, options.session)
                yield waited
        finally:
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await holder.close(timeout=5)
    finally:
        if not conn.is_closed():
            # A file's DEALLOCATE ALL or DISCARD ALL may have removed the statements asyncpg keeps prepared.
            await conn.reload_schema_state()


def _unexpected(file: MigrationFile, exc: BaseException, consequence: str, command: str) -> MigrateError:
    """A failure outside the file's statements (its statements' own errors are MigrateErrors already): a
    lost connection, or the transaction's COMMIT (a deferred constraint, a serialization failure)."""
    if not isinstance(exc, asyncpg.PostgresError) or diagnosis.is_connection_lost(exc):
        return ConnectionFailed(
            f"{file.filename}: lost the connection to the server while running it ({exc.__class__.__name__}: "
            f"{exc}). {diagnosis.LOST_TRANSACTION}{consequence} Run `migrate {command}` again once the server is back."
        )
    return diagnosis.commit_failed([file], exc, consequence)


def down_name(up: MigrationFile) -> str:
    return up.down.filename if up.down is not None else f"{up.filename.removesuffix('.sql')}.down.sql"


def _undone_before(done: Sequence[Applied]) -> str:
    if not done:
        return ""
    names = ", ".join(a.file.filename.removesuffix(".down.sql") + ".sql" for a in done)
    return f" Rolled back before it in this run, and no longer applied: {names}."


async def _undo(
    conn: asyncpg.Connection,
    table: LedgerTable,
    step: Step,
    statements: list[sql.Statement],
    in_transaction: bool,
    done: Sequence[Applied],
    settings: SessionSettings,
) -> float:
    """Run one down file and delete its file's ledger row; the milliseconds its SQL took."""
    down, up = step.down, step.file
    if in_transaction:
        consequence = (
            f"Nothing from {down.filename} took effect (its transaction was rolled back) and {up.filename} stays "
            f"applied in the ledger.{_undone_before(done)}"
        )
        async with conn.transaction():
            await session.apply_local(conn, settings)
            started = time.perf_counter()
            await diagnosis.run_statements(conn, down, statements, consequence=consequence)
            took = (time.perf_counter() - started) * 1000
            await _forget_row(conn, table, up, consequence)
        return took
    consequence = (
        f"{down.filename} runs outside a transaction (it has statements PostgreSQL refuses inside one), so the "
        f"statements before this one took effect; {up.filename} stays applied in the ledger. Fix it and run "
        f"`migrate rollback` again (its statements should be idempotent: DROP ... IF EXISTS).{_undone_before(done)}"
    )
    await session.apply_session(conn, settings)
    started = time.perf_counter()
    await diagnosis.run_statements(conn, down, statements, consequence=consequence)
    took = (time.perf_counter() - started) * 1000
    async with conn.transaction():
        await session.apply_local(conn, settings)
        await _forget_row(
            conn,
            table,
            up,
            f"Its statements took effect, but {up.filename} is still recorded as applied; delete its ledger row "
            f"once the cause is fixed, or run `migrate rollback` again.{_undone_before(done)}",
        )
    return took


async def _forget_row(conn: asyncpg.Connection, table: LedgerTable, up: MigrationFile, consequence: str) -> None:
    """The ledger side of a rollback, under `script.GUARD` (whatever the down file SET): the file's row goes,
    and so do the repeatable scripts' rows, so the next apply runs them all again (a down file may have
    dropped what they made)."""
    try:
        await conn.execute(script.GUARD)
        if await ledger.remove(conn, table, version=up.version) is None:
            gone = f"{up.filename}: its ledger row was gone when rollback came to delete it."
            raise MigrationFailed(f"{gone} {consequence}")
        await ledger.forget_repeatables(conn, table)
    except asyncpg.PostgresError as exc:
        if diagnosis.is_connection_lost(exc):
            raise
        raise diagnosis.bookkeeping_failed([up], exc, consequence) from exc


@dataclass
class RepeatablesResult:
    entries: list[RepeatableEntry]
    """Every repeatable script and row, as read under the lock (or without it, when none was due)."""
    ran: list[Applied]
    lock_wait_s: float | None


async def read_repeatables(
    conn: asyncpg.Connection, scripts: Sequence[MigrationFile], options: Options
) -> list[RepeatableEntry]:
    if conn.is_in_transaction():
        return plan_repeatables(scripts, await ledger.read_repeatables(conn, options.ledger))
    async with conn.transaction():  # its round trips on one server connection, behind any pooler
        return plan_repeatables(scripts, await ledger.read_repeatables(conn, options.ledger))


async def apply_repeatables(
    conn: asyncpg.Connection,
    scripts: Sequence[MigrationFile],
    options: Options,
    progress: Progress | None = None,
    *,
    lock_connection: LockConnector | None = None,
) -> RepeatablesResult:
    """Run every repeatable script that never ran or changed since (in file-name order), each in a
    transaction of its own with its row, under the runner's lock. A failing one rolls back its own
    transaction (its row unchanged) and stops the run; the ones before it stay run."""
    entries = await read_repeatables(conn, scripts, options)
    if not due(entries):
        return RepeatablesResult(entries, [], None)
    parsed = {f.filename: repeatable_statements(f) for f in due(entries)}
    ran: list[Applied] = []
    async with locked(conn, options, progress, lock_connection) as waited:
        entries = await read_repeatables(conn, scripts, options)
        try:
            await ledger.ensure_repeatables(conn, options.ledger)
        except asyncpg.InsufficientPrivilegeError:
            raise ConfigError(
                f"cannot create {options.ledger.repeatable}, where repeatable scripts are recorded: this role may "
                f"not create tables in schema {options.ledger.schema}; run apply once as a role that may. The "
                "numbered migrations stay applied; no repeatable script ran"
            ) from None
        for file in due(entries):
            statements = parsed.get(file.filename) or repeatable_statements(file)
            if progress is not None:
                progress.starting(file, True)
            before = f" Run before it, and kept: {', '.join(a.file.filename for a in ran)}." if ran else ""
            consequence = (
                f"Nothing from {file.filename} took effect and its ledger row is unchanged; the numbered "
                f"migrations stay applied.{before}"
            )
            try:
                try:
                    took = await _run_repeatable(conn, options.ledger, file, statements, consequence, options.session)
                except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
                    raise _unexpected(file, exc, consequence, "apply") from exc
            except MigrateError:
                if progress is not None:
                    progress.failed_at(file, ())
                raise
            result = Applied(file, took, transactional=True)
            ran.append(result)
            if progress is not None:
                progress.finished(result)
        return RepeatablesResult(entries, ran, waited)


async def _run_repeatable(
    conn: asyncpg.Connection,
    table: LedgerTable,
    file: MigrationFile,
    statements: list[sql.Statement],
    consequence: str,
    settings: SessionSettings,
) -> float:
    """One repeatable script and its row, in one transaction; the milliseconds its SQL took."""
    async with conn.transaction():
        await session.apply_local(conn, settings)
        started = time.perf_counter()
        await diagnosis.run_statements(conn, file, statements, consequence=consequence)
        took = (time.perf_counter() - started) * 1000
        try:
            await conn.execute(script.GUARD)
            await ledger.record_repeatable(
                conn, table, filename=file.filename, checksum=file.checksum, duration_ms=took
            )
        except asyncpg.PostgresError as exc:
            if diagnosis.is_connection_lost(exc):
                raise
            raise diagnosis.bookkeeping_failed([file], exc, consequence) from exc
    return took


def repeatable_statements(file: MigrationFile) -> list[sql.Statement]:
    """A repeatable script's statements; refused when one cannot run in a transaction, as it must."""
    statements = sql.parse(file)
    for statement in statements:
        if not statement.transactional:
            line, column = sql.line_and_column(file.sql, statement.offset)
            raise MigrationFileError(
                f"{file.filename}:{line}:{column}: a repeatable script runs in a transaction, and PostgreSQL "
                "refuses this statement inside one; move it to a numbered migration"
            )
    return statements
