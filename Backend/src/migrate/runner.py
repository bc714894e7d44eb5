"""Apply pending migrations: plan, lock, run the files with their ledger rows, report.

By default every pending file runs in one transaction together with the ledger rows, so a failure
anywhere leaves the database and the ledger exactly as they were (`--transaction per-file` commits
each file on its own instead). A file holding a statement PostgreSQL refuses inside a transaction
block (CREATE INDEX CONCURRENTLY, VACUUM, ...) runs statement by statement between transactions, and
is recorded after its last statement succeeds.

Files in a transaction are sent many to a message (see `script`). When the server reports an error
without a position (a CHECK violation, a lock timeout), the runner finds the statement by running the
transaction's files again one statement at a time, in a transaction it always rolls back, so the
message still names the file, line and column.
"""

from __future__ import annotations

import contextlib
import socket
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from src.migrate import ledger, lock, script, sql
from src.migrate.errors import ConnectionFailed, MigrateError, MigrationFailed, MigrationFileError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan, make_plan
from src.migrate.script import TransactionMode

# SQLSTATE classes that mean the connection or server went away, not that the migration is wrong.
_CONNECTION_LOST_CLASSES = ("08", "57P01", "57P02", "57P03")


def _is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the server went away (also what a ROLLBACK or COMMIT raises then)."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "").startswith(_CONNECTION_LOST_CLASSES)
    return isinstance(exc, (asyncpg.InterfaceError, OSError))


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


class _BatchFailed(Exception):
    """A batch's SQL failed; raised through the transaction so it rolls back before the diagnosis."""

    def __init__(self, batch: script.Batch, error: asyncpg.PostgresError) -> None:
        self.batch = batch
        self.error = error


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
                    if _is_connection_lost(exc):
                        raise
                    raise _BatchFailed(batch, exc) from exc
                took = await ledger.durations(conn, table, [f.version for f in batch.files])
                for index, file in enumerate(batch.files):
                    if index and progress is not None:
                        progress.starting(file, True)
                    result = Applied(file, took[file.version], transactional=True)
                    applied.append(result)
                    if progress is not None:
                        progress.finished(result)
    except _BatchFailed as failed:
        raise await _diagnose(conn, files, batches, parsed, table, failed) from failed.error
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if not _is_connection_lost(exc):
            raise
        raise _connection_lost(_label(current.files), exc, _LOST_TRANSACTION + _rolled_back(files)) from exc
    return applied


def _label(files: Sequence[MigrationFile]) -> str:
    """The files of one batch, for a message about something that happened while it ran."""
    if len(files) > 3:
        return f"{files[0].filename} .. {files[-1].filename} ({len(files)} files sent together)"
    return ", ".join(f.filename for f in files)


_LOST_TRANSACTION = "The server rolls back a transaction its client lost. "


def _rolled_back(files: Sequence[MigrationFile]) -> str:
    if len(files) == 1:
        return f"Nothing from {files[0].filename} was applied and the ledger is unchanged."
    return (
        f"It ran in one transaction with the other pending files from {files[0].filename} to "
        f"{files[-1].filename} ({len(files)} files), which was rolled back: none of them was applied and "
        "the ledger is unchanged."
    )


class _NothingFailed(Exception):
    """The diagnosis ran everything without an error; its transaction must still roll back."""


async def _diagnose(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    batches: Sequence[script.Batch],
    parsed: dict[int, list[sql.Statement]],
    table: LedgerTable,
    failed: _BatchFailed,
) -> MigrateError:
    """The error to report for a failed batch, naming the file, line and column that caused it."""
    exc, batch = failed.error, failed.batch
    consequence = _rolled_back(files)
    position = getattr(exc, "position", None)
    located = failed.batch.locate(int(position)) if position else None
    if located is not None:
        file, offset = located
        if exc.sqlstate == "42601":
            # The server's parser found what pglast would have: report it as the malformed file it is.
            return sql.syntax_error(file, offset, str(exc.args[0] if exc.args else exc), consequence)
        return MigrationFailed(describe_sql_error(file, offset, exc, consequence), sqlstate=exc.sqlstate or "")
    try:
        for file in batch.files:
            if file.version not in parsed:
                parsed[file.version] = sql.parse(file)
    except MigrationFileError as malformed:
        return malformed
    only = [(f, s) for f in batch.files for s in parsed[f.version]]
    if len(only) == 1:
        file, statement = only[0]
        return MigrationFailed(
            describe_sql_error(file, statement.offset, exc, consequence), sqlstate=exc.sqlstate or ""
        )
    # No position, several statements: run the same SQL again, the failing batch one statement at a
    # time, so the error surfaces at its statement. Whatever happens, this transaction rolls back.
    try:
        async with conn.transaction():
            await ledger.ensure(conn, table)
            for earlier in batches[: batches.index(batch)]:
                await conn.execute(earlier.text)
            for file in batch.files:
                await _run_statements(conn, file, parsed[file.version], consequence=consequence)
            raise _NothingFailed
    except MigrationFailed as found:
        return found
    except (_NothingFailed, asyncpg.PostgresError):
        pass
    except (asyncpg.InterfaceError, OSError) as lost:
        return _connection_lost(_label(batch.files), lost, _LOST_TRANSACTION + consequence)
    parts = [f"{_label(batch.files)}: ERROR {exc.sqlstate}: {exc.args[0] if exc.args else exc}", *_server_details(exc)]
    parts.append(
        "  the server gave no position, and the error did not recur when the files ran again one statement "
        "at a time (it may depend on timing, e.g. a lock or statement timeout), so the statement is unknown"
    )
    parts.append(consequence)
    return MigrationFailed("\n".join(parts), sqlstate=exc.sqlstate or "")


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
        if not _is_connection_lost(exc):
            raise
        raise _connection_lost(file.filename, exc, _NOT_RECORDED) from exc
    if progress is not None:
        progress.finished(result)
    return result


_NOT_RECORDED = (
    "It runs outside a transaction, so statements that finished before the loss took effect (its statements "
    "should be idempotent); it was not recorded."
)


async def _apply_outside_transaction(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    table: LedgerTable,
    progress: Progress | None,
) -> Applied:
    await ledger.ensure(conn, table)
    started = time.perf_counter()
    for index_name in await _drop_invalid_indexes(conn, statements):
        if progress is not None:
            progress.note(
                f"dropped INVALID index {index_name}, left by an interrupted CREATE INDEX CONCURRENTLY; "
                "building it again"
            )
    await _run_statements(conn, file, statements, consequence=None)
    await _refuse_invalid_indexes(conn, file, statements)
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


def _concurrent_index_targets(statements: Sequence[sql.Statement]) -> list[tuple[str, str]]:
    """(table as written, index name) for each named CREATE INDEX CONCURRENTLY."""
    targets = []
    for statement in statements:
        node = statement.node
        if type(node).__name__ == "IndexStmt" and node.concurrent and node.idxname:
            relation = node.relation
            table = f'"{relation.schemaname}"."{relation.relname}"' if relation.schemaname else f'"{relation.relname}"'
            targets.append((table, node.idxname))
    return targets


_INVALID_INDEX = """
    SELECT i.indexrelid::regclass::text FROM pg_index i JOIN pg_class c ON c.oid = i.indexrelid
    WHERE i.indrelid = to_regclass($1) AND c.relname = $2 AND NOT i.indisvalid
"""


async def _drop_invalid_indexes(conn: asyncpg.Connection, statements: Sequence[sql.Statement]) -> list[str]:
    """Drop INVALID indexes a failed earlier run of these statements left; `IF NOT EXISTS` would skip them.

    We hold the runner's lock, so no other runner is building them now.
    """
    dropped = []
    for table, index in _concurrent_index_targets(statements):
        name = await conn.fetchval(_INVALID_INDEX, table, index)
        if name is not None:
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            dropped.append(str(name))
    return dropped


async def _refuse_invalid_indexes(
    conn: asyncpg.Connection, file: MigrationFile, statements: Sequence[sql.Statement]
) -> None:
    for table, index in _concurrent_index_targets(statements):
        name = await conn.fetchval(_INVALID_INDEX, table, index)
        if name is not None:
            raise MigrationFailed(
                f"{file.filename}: index {name} is INVALID after CREATE INDEX CONCURRENTLY (another session may "
                "be building it, or it was left invalid outside the runner); drop it with "
                f"DROP INDEX CONCURRENTLY {name} and run `migrate apply` again. The file was not recorded."
            )


async def _run_statements(
    conn: asyncpg.Connection, file: MigrationFile, statements: list[sql.Statement], *, consequence: str | None
) -> None:
    """One statement per message. `consequence` says what a failure leaves behind; None means the file
    runs outside a transaction, so the statements before the failing one took effect."""
    for index, statement in enumerate(statements):
        try:
            await conn.execute(statement.text)
        except (asyncpg.InterfaceError, OSError) as exc:
            raise _connection_lost(file.filename, exc, _lost(consequence)) from exc
        except asyncpg.PostgresError as exc:
            if _is_connection_lost(exc):
                raise _connection_lost(file.filename, exc, _lost(consequence)) from exc
            sqlstate = exc.sqlstate or ""
            position = getattr(exc, "position", None)
            # The server counts characters from 1 within the statement we sent.
            offset = statement.offset + (int(position) - 1 if position else 0)
            if consequence is None:
                consequence = (
                    f"{file.filename} runs outside a transaction (it has statements PostgreSQL refuses inside one), "
                    f"so the {index} statement(s) before this one took effect; it was not recorded in the ledger. "
                    "Fix it and run `migrate apply` again (its statements should be idempotent)."
                )
            raise MigrationFailed(describe_sql_error(file, offset, exc, consequence), sqlstate=sqlstate) from exc


def _lost(consequence: str | None) -> str:
    return _NOT_RECORDED if consequence is None else _LOST_TRANSACTION + consequence


def _connection_lost(what: str, exc: BaseException, consequence: str) -> ConnectionFailed:
    return ConnectionFailed(
        f"{what}: lost the connection to the server while applying it ({exc.__class__.__name__}: "
        f"{exc}). {consequence} "
        "Run `migrate apply` again once the server is back."
    )


def _server_details(exc: asyncpg.PostgresError) -> list[str]:
    parts = []
    for label in ("detail", "hint", "context"):
        value = getattr(exc, label, None)
        if value:
            parts.append(f"  {label.upper()}: {value}")
    if exc.sqlstate == "55P03":
        parts.append("  the migration waited longer than lock_timeout (MIGRATE_LOCK_TIMEOUT) for a table lock")
    elif exc.sqlstate == "57014":
        parts.append("  the statement ran longer than statement_timeout (MIGRATE_STATEMENT_TIMEOUT)")
    return parts


def describe_sql_error(file: MigrationFile, offset: int, exc: asyncpg.PostgresError, consequence: str) -> str:
    """`file:line:column: ERROR sqlstate: message`, the server's detail and hint, the offending line
    with a caret, and what became of the work (`consequence`)."""
    line, column = sql.line_and_column(file.sql, offset)
    parts = [f"{file.filename}:{line}:{column}: ERROR {exc.sqlstate}: {exc.args[0] if exc.args else exc}"]
    parts += _server_details(exc)
    parts.append(sql.excerpt(file.sql, offset))
    parts.append(consequence)
    return "\n".join(parts)
