"""Apply pending migrations: plan, lock, run each file with its ledger row, report.

Each file runs in one transaction together with its ledger row, so a failure leaves neither. A file
holding a statement PostgreSQL refuses inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM,
...) runs statement by statement instead, and is recorded after its last statement succeeds.

Statements are sent one at a time, so a server error points at the statement, line and column that
caused it even when the server gives no position (a CHECK violation, a lock timeout).
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol

import asyncpg

from src.migrate import ledger, lock, sql
from src.migrate.errors import ConnectionFailed, MigrationFailed
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan, make_plan

# SQLSTATE classes that mean the connection or server went away, not that the migration is wrong.
_CONNECTION_LOST_CLASSES = ("08", "57P01", "57P02", "57P03")


@dataclass(frozen=True)
class Options:
    ledger: LedgerTable = field(default_factory=lambda: LedgerTable.parse(ledger.DEFAULT_TABLE))
    lock_wait: float = 300.0
    """Seconds to wait for another runner's lock before giving up."""
    target: int | None = None
    allow_out_of_order: bool = False


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
    # Parse everything first: a syntax error in the last file must not leave the first ones applied.
    parsed = {f.version: sql.parse(f) for f in plan.to_apply}
    key = lock.lock_key(options.ledger)
    waited = await lock.acquire(
        conn, key, wait=options.lock_wait, on_busy=progress.lock_busy if progress is not None else None
    )
    try:
        await ledger.ensure(conn, options.ledger)
        # Another runner may have applied some or all of it while we waited: plan again under the lock.
        plan = await read_plan(conn, files, options)
        plan.raise_for_drift()
        applied = []
        for file in plan.to_apply:
            statements = parsed.get(file.version) or sql.parse(file)
            applied.append(await _apply_file(conn, file, statements, options.ledger, progress))
        return ApplyResult(plan, applied, waited)
    finally:
        if not conn.is_closed():
            # The lock dies with the session anyway; an error here must not hide the original one.
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await lock.release(conn, key)


async def _apply_file(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    table: LedgerTable,
    progress: Progress | None,
) -> Applied:
    transactional = all(s.transactional for s in statements)
    if progress is not None:
        progress.starting(file, transactional)
    try:
        return await _apply_file_unguarded(conn, file, statements, table, progress, transactional)
    except (asyncpg.InterfaceError, OSError) as exc:
        # Also what the transaction's own ROLLBACK or COMMIT raises when the server went away mid-file.
        raise _connection_lost(file, exc, transactional) from exc
    except asyncpg.PostgresError as exc:
        if (exc.sqlstate or "").startswith(_CONNECTION_LOST_CLASSES):
            raise _connection_lost(file, exc, transactional) from exc
        raise


async def _apply_file_unguarded(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    table: LedgerTable,
    progress: Progress | None,
    transactional: bool,
) -> Applied:
    started = time.perf_counter()
    # A transactional file's statements and ledger row commit together; any other file's statements
    # commit one by one (autocommit) and its row is written after the last one succeeded.
    unit = conn.transaction() if transactional else contextlib.nullcontext()
    async with unit:
        if not transactional:
            for index_name in await _drop_invalid_indexes(conn, statements):
                if progress is not None:
                    progress.note(
                        f"dropped INVALID index {index_name}, left by an interrupted CREATE INDEX CONCURRENTLY; "
                        "building it again"
                    )
        await _run_statements(conn, file, statements, transactional=transactional)
        if not transactional:
            await _refuse_invalid_indexes(conn, file, statements)
        duration_ms = (time.perf_counter() - started) * 1000
        await ledger.record(
            conn,
            table,
            version=file.version,
            name=file.name,
            checksum=file.checksum,
            duration_ms=duration_ms,
            transactional=transactional,
        )
    result = Applied(file, duration_ms, transactional)
    if progress is not None:
        progress.finished(result)
    return result


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
    conn: asyncpg.Connection, file: MigrationFile, statements: list[sql.Statement], *, transactional: bool
) -> None:
    for index, statement in enumerate(statements):
        try:
            await conn.execute(statement.text)
        except asyncpg.PostgresError as exc:
            sqlstate = exc.sqlstate or ""
            if sqlstate.startswith(_CONNECTION_LOST_CLASSES):
                raise _connection_lost(file, exc, transactional) from exc
            raise MigrationFailed(
                describe_sql_error(file, statements, index, exc, transactional=transactional),
                sqlstate=sqlstate,
            ) from exc
        except (asyncpg.InterfaceError, OSError) as exc:
            raise _connection_lost(file, exc, transactional) from exc


def _connection_lost(file: MigrationFile, exc: BaseException, transactional: bool) -> ConnectionFailed:
    consequence = (
        "the server rolls back its unfinished transaction, so neither the file's changes nor its ledger row were kept"
        if transactional
        else "it runs outside a transaction, so statements that finished before the loss took effect "
        "(its statements should be idempotent); it was not recorded"
    )
    return ConnectionFailed(
        f"{file.filename}: lost the connection to the server while applying it ({exc.__class__.__name__}: "
        f"{exc}); {consequence}. Run `migrate apply` again once the server is back."
    )


def describe_sql_error(
    file: MigrationFile,
    statements: Sequence[sql.Statement],
    index: int,
    exc: asyncpg.PostgresError,
    *,
    transactional: bool,
) -> str:
    """`file:line:column: ERROR sqlstate: message`, the server's detail and hint, the offending line
    with a caret, and what became of the file's work."""
    statement = statements[index]
    position = getattr(exc, "position", None)
    offset = statement.offset
    if position:
        # The server counts characters from 1 within the statement we sent.
        offset += int(position) - 1
    line, column = sql.line_and_column(file.sql, offset)
    parts = [f"{file.filename}:{line}:{column}: ERROR {exc.sqlstate}: {exc.args[0] if exc.args else exc}"]
    for label in ("detail", "hint", "context"):
        value = getattr(exc, label, None)
        if value:
            parts.append(f"  {label.upper()}: {value}")
    if exc.sqlstate == "55P03":
        parts.append("  the migration waited longer than lock_timeout (MIGRATE_LOCK_TIMEOUT) for a table lock")
    elif exc.sqlstate == "57014":
        parts.append("  the statement ran longer than statement_timeout (MIGRATE_STATEMENT_TIMEOUT)")
    parts.append(sql.excerpt(file.sql, offset))
    if transactional:
        parts.append(f"Nothing from {file.filename} was applied and the ledger is unchanged.")
    else:
        done = index
        parts.append(
            f"{file.filename} runs outside a transaction (it has statements PostgreSQL refuses inside one), "
            f"so the {done} statement(s) before this one took effect; it was not recorded in the ledger. "
            "Fix it and run `migrate apply` again (its statements should be idempotent)."
        )
    return "\n".join(parts)
