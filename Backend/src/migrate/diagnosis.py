"""What went wrong while applying, as one message naming the file, line, column and SQLSTATE.

The runner sends many files in one message (see `script`), so the server's error position has to be
mapped back to a file; an error without a position (a CHECK violation, a lock timeout) is found by
running the same SQL again one statement at a time, in a transaction that is always rolled back. A
lost connection is told apart from a wrong migration, and each message says what became of the work.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from src.migrate import ledger, script, sql
from src.migrate.errors import ConnectionFailed, Diagnostic, MigrateError, MigrationFailed, MigrationFileError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable

# SQLSTATE classes that mean the connection or server went away, not that the migration is wrong.
_CONNECTION_LOST_CLASSES = ("08", "57P01", "57P02", "57P03")

LOST_TRANSACTION = "The server rolls back a transaction its client lost. "
NOT_RECORDED = (
    "It runs outside a transaction, so statements that finished before the loss took effect (its statements "
    "should be idempotent); it was not recorded."
)
NOT_RECORDED_AFTER_RUN = (
    "It runs outside a transaction and its statements took effect, but it was not recorded in the ledger; "
    "run `migrate apply` again once the cause is fixed (its statements should be idempotent)."
)


def is_connection_lost(exc: BaseException) -> bool:
    """Whether `exc` means the server went away (also what a ROLLBACK or COMMIT raises then)."""
    if isinstance(exc, asyncpg.PostgresError):
        return (exc.sqlstate or "").startswith(_CONNECTION_LOST_CLASSES)
    return isinstance(exc, (asyncpg.InterfaceError, OSError))


class BatchFailed(Exception):
    """A batch's SQL failed; raised through the transaction so it rolls back before the diagnosis."""

    def __init__(self, batch: script.Batch, error: asyncpg.PostgresError) -> None:
        self.batch = batch
        self.error = error


class _NothingFailed(Exception):
    """The second run went through without an error; its transaction must still roll back."""


def label(files: Sequence[MigrationFile]) -> str:
    """The files of one batch, for a message about something that happened while it ran."""
    if len(files) > 3:
        return f"{files[0].filename} .. {files[-1].filename} ({len(files)} files sent together)"
    return ", ".join(f.filename for f in files)


def rolled_back(files: Sequence[MigrationFile], committed: Sequence[MigrationFile] = ()) -> str:
    """What a failure left of `files`, which ran in one transaction, after `committed` (the files this run
    applied and committed before that transaction)."""
    if committed:
        names = [f.filename for f in committed]
        shown = ", ".join(names) if len(names) <= 3 else f"{names[0]} .. {names[-1]} ({len(names)} files)"
        return f"{_rolled_back(files)}. Committed before it in this run, and still applied and recorded: {shown}."
    return f"{_rolled_back(files)} and the ledger is unchanged."


def _rolled_back(files: Sequence[MigrationFile]) -> str:
    if len(files) == 1:
        return f"Nothing from {files[0].filename} was applied"
    return (
        f"It ran in one transaction with the other pending files from {files[0].filename} to "
        f"{files[-1].filename} ({len(files)} files), which was rolled back: none of them was applied"
    )


def connection_lost(what: str, exc: BaseException, consequence: str) -> ConnectionFailed:
    return ConnectionFailed(
        f"{what}: lost the connection to the server while applying it ({exc.__class__.__name__}: "
        f"{exc}). {consequence} "
        "Run `migrate apply` again once the server is back."
    )


def bookkeeping_failed(
    files: Sequence[MigrationFile], exc: asyncpg.PostgresError, consequence: str, *, when: str = "after"
) -> MigrationFailed:
    """One of the runner's own statements (the ledger's rows, its checks) failed `when` `files` ran."""
    parts = [
        f"{label(files)}: the runner's own ledger statement {when} it failed: ERROR {exc.sqlstate}: {_message(exc)}",
        *_server_details(exc),
        consequence,
    ]
    return MigrationFailed("\n".join(parts), diagnostic=_diagnostic(exc, None))


def commit_failed(files: Sequence[MigrationFile], exc: asyncpg.PostgresError, consequence: str) -> MigrationFailed:
    """The COMMIT of the transaction of `files` failed: what is checked only then (a deferred constraint,
    a serializable transaction's conflict) gives no statement."""
    parts = [
        f"{label(files)}: the transaction failed at COMMIT: ERROR {exc.sqlstate}: {_message(exc)}",
        *_server_details(exc),
        "  checked only at COMMIT (a DEFERRABLE INITIALLY DEFERRED constraint, a serialization failure), so the "
        "server names no statement",
        consequence,
    ]
    return MigrationFailed("\n".join(parts), diagnostic=_diagnostic(exc, None))


async def diagnose(
    conn: asyncpg.Connection,
    files: Sequence[MigrationFile],
    batches: Sequence[script.Batch],
    parsed: dict[int, list[sql.Statement]],
    table: LedgerTable,
    failed: BatchFailed,
    committed: Sequence[MigrationFile] = (),
) -> MigrateError:
    """The error to report for a failed batch of `files` (one transaction, already rolled back), after
    `committed`, the files this run applied and committed before."""
    exc, batch = failed.error, failed.batch
    consequence = rolled_back(files, committed)
    position = getattr(exc, "position", None)
    located = failed.batch.locate(int(position)) if position else None
    if located is not None:
        file, offset = located
        return sql_failure(file, offset, exc, consequence)
    try:
        for file in batch.files:
            if file.version not in parsed:
                parsed[file.version] = sql.parse(file)
    except MigrationFileError as malformed:
        return malformed
    if position:
        # In the runner's statements, and every file parses: one of them ran the runner's statements into
        # an error (or the ledger itself is the problem). Name the file before the position.
        segment = batch.segment_at(int(position))
        after = [segment.file] if segment is not None else list(batch.files)
        return bookkeeping_failed(after, exc, consequence)
    only = [(f, s) for f in batch.files for s in parsed[f.version]]
    if len(only) == 1:
        file, statement = only[0]
        return sql_failure(file, statement.offset, exc, consequence)
    # No position, several statements: run the same SQL again, the failing batch one statement at a
    # time, so the error surfaces at its statement. Whatever happens, this transaction rolls back.
    try:
        async with conn.transaction():
            await ledger.ensure(conn, table)
            for earlier in batches[: batches.index(batch)]:
                await conn.execute(earlier.text)
            if batch.restores:
                await conn.execute(script.RESTORE)
            for file in batch.files:
                await run_statements(conn, file, parsed[file.version], consequence=consequence)
            raise _NothingFailed
    except (MigrationFailed, MigrationFileError) as found:
        return found
    except (_NothingFailed, asyncpg.PostgresError):
        pass
    except (asyncpg.InterfaceError, OSError) as lost:
        return connection_lost(label(batch.files), lost, LOST_TRANSACTION + consequence)
    parts = [f"{label(batch.files)}: ERROR {exc.sqlstate}: {_message(exc)}", *_server_details(exc)]
    parts.append(
        "  the server gave no position, and the error did not recur when the files ran again one statement "
        "at a time (it may depend on timing, e.g. a lock or statement timeout), so the statement is unknown"
    )
    parts.append(consequence)
    return MigrationFailed("\n".join(parts), diagnostic=_diagnostic(exc, None))


async def run_statements(
    conn: asyncpg.Connection,
    file: MigrationFile,
    statements: list[sql.Statement],
    *,
    consequence: str | None,
    around: tuple[str, str] | None = None,
) -> None:
    """One statement per message, so a failure is located exactly. `consequence` says what a failure
    leaves behind; None means the file runs outside a transaction, so the statements before the failing
    one took effect. `around`: SQL sent right before and right after each statement (its settings)."""
    for index, statement in enumerate(statements):
        try:
            if around is not None:
                await conn.execute(around[0])
            await conn.execute(statement.text)
            if around is not None:
                await conn.execute(around[1])
        except (asyncpg.InterfaceError, OSError) as exc:
            raise connection_lost(file.filename, exc, _lost(consequence)) from exc
        except asyncpg.PostgresError as exc:
            if is_connection_lost(exc):
                raise connection_lost(file.filename, exc, _lost(consequence)) from exc
            position = getattr(exc, "position", None)
            # The server counts characters from 1 within the statement we sent.
            offset = statement.offset + (int(position) - 1 if position else 0)
            if consequence is None:
                consequence = (
                    f"{file.filename} runs outside a transaction (it has statements PostgreSQL refuses inside one), "
                    f"so the {index} statement(s) before this one took effect; it was not recorded in the ledger. "
                    "Fix it and run `migrate apply` again (its statements should be idempotent)."
                )
            raise sql_failure(file, offset, exc, consequence) from exc


def _lost(consequence: str | None) -> str:
    return NOT_RECORDED if consequence is None else LOST_TRANSACTION + consequence


def _server_details(exc: asyncpg.PostgresError) -> list[str]:
    parts = []
    for name in ("detail", "hint", "context"):
        value = getattr(exc, name, None)
        if value:
            parts.append(f"  {name.upper()}: {value}")
    if exc.sqlstate == "55P03":
        parts.append("  the migration waited longer than lock_timeout (MIGRATE_LOCK_TIMEOUT) for a table lock")
    elif exc.sqlstate == "57014":
        parts.append("  the statement ran longer than statement_timeout (MIGRATE_STATEMENT_TIMEOUT)")
    elif exc.sqlstate == "55P04":
        parts.append(
            "  the runner commits after each file that adds an enum value: use the new value in a later file "
            "than the one that adds it"
        )
    elif exc.sqlstate == "55006" and "pending trigger events" in _message(exc):
        parts.append(
            "  an earlier file in this transaction left deferred constraint checks (DEFERRABLE INITIALLY "
            "DEFERRED) pending, and this statement cannot run while they are: end that file with SET "
            "CONSTRAINTS ALL IMMEDIATE, or apply with --transaction per-file"
        )
    return parts


def _message(exc: asyncpg.PostgresError) -> str:
    return str(exc.args[0] if exc.args else exc)


def _diagnostic(
    exc: asyncpg.PostgresError, file: MigrationFile | None, line: int | None = None, column: int | None = None
) -> Diagnostic:
    def part(name: str) -> str | None:
        value = getattr(exc, name, None)
        return str(value) if value else None

    return Diagnostic(
        exc.sqlstate or "",
        _message(exc),
        file.filename if file is not None else None,
        line,
        column,
        detail=part("detail"),
        hint=part("hint"),
        context=part("context"),
    )


def sql_failure(file: MigrationFile, offset: int, exc: asyncpg.PostgresError, consequence: str) -> MigrateError:
    """The error for `exc`, raised by the statement at `offset` of `file`: a syntax error (42601) makes the
    file malformed (exit 4, as when pglast finds one), anything else a failed migration (exit 1)."""
    line, column = sql.line_and_column(file.sql, offset)
    message = describe_sql_error(file, offset, exc, consequence)
    found = _diagnostic(exc, file, line, column)
    if exc.sqlstate == sql.SYNTAX_ERROR:
        return MigrationFileError(message, diagnostic=found)
    return MigrationFailed(message, diagnostic=found)


def describe_sql_error(file: MigrationFile, offset: int, exc: asyncpg.PostgresError, consequence: str) -> str:
    """`file:line:column: ERROR sqlstate: message`, the server's detail and hint, the offending line
    with a caret, and what became of the work (`consequence`)."""
    line, column = sql.line_and_column(file.sql, offset)
    parts = [f"{file.filename}:{line}:{column}: ERROR {exc.sqlstate}: {_message(exc)}"]
    parts += _server_details(exc)
    parts.append(sql.excerpt(file.sql, offset))
    parts.append(consequence)
    return "\n".join(parts)
