"""The audit trail: one row per run of a command that changes the ledger (apply, rollback, repair, forget,
baseline), in `<ledger>_audit` beside the ledger (e.g. public.migration_ledger_audit).

Each row says who (the database role, the OS user, the host, the connection's application_name), when it
started and how long it took, what (the action, the versions it changed, a note in words, and for `repair`
and `forget` the ledger rows before and after) and the outcome: `ok`, or `failed` with the error's message.
A failed run's row is written in a transaction of its own after the failed one has rolled back, so the
failure is kept even though nothing else of the run is.

Rows are written by the runs that take the runner's lock, while they hold it: a run refused before it
(drift found on the first look, a malformed file, the lock wait running out) changed nothing and writes
none, and neither do a dry run and an `apply` that found nothing pending (every container start runs one),
before the lock or after waiting for it while another runner applied the files.

The table is created the first time a row is written. One made by an older runner (a row per repaired or
forgotten version, no outcome) is upgraded in place, once: the new columns are added, its rows kept (they
read as `ok`, their one version as `versions`). `apply` and `baseline` go on without a row when their role
may not create or upgrade the table (they say so through `note`); `repair` and `forget`, whose whole point
is a deliberate change to the ledger, refuse instead (a ConfigError, nothing changed).

Another command records itself the same way (what `rollback` does):

    async with audit.run(conn, options.ledger, "rollback", note=events.note) as trail:
        ...                                   # its work, under the lock
        trail.versions = [5, 4]               # what it changed so far (kept on failure too)
        trail.note = "rolled back 005_x.sql, 004_y.sql"
"""

from __future__ import annotations

import contextlib
import getpass
import json
import os
import socket
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import asyncpg

from src.migrate import ledger, script
from src.migrate.errors import ConfigError
from src.migrate.ledger import LedgerTable

ACTIONS = ("apply", "rollback", "repair", "forget", "baseline")
"""What a row's `action` may say."""

_DDL = """
    CREATE TABLE IF NOT EXISTS {audit} (
        id               bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at               timestamptz NOT NULL DEFAULT clock_timestamp(),
        action           text NOT NULL,
        version          bigint,
        before           jsonb,
        after            jsonb,
        done_by          text NOT NULL DEFAULT current_user,
        hostname         text NOT NULL,
        note             text NOT NULL,
        outcome          text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'failed')),
        versions         bigint[],
        duration_ms      double precision,
        os_user          text,
        application_name text,
        error            text
    );
    COMMENT ON TABLE {audit} IS
        'Runs of migrate apply, rollback, repair, forget, baseline on {ledger}: who, when, what, outcome.';
"""

_UPGRADE = """
    ALTER TABLE {audit} ALTER COLUMN version DROP NOT NULL;
    ALTER TABLE {audit}
        ADD COLUMN IF NOT EXISTS outcome text NOT NULL DEFAULT 'ok' CHECK (outcome IN ('ok', 'failed')),
        ADD COLUMN IF NOT EXISTS versions bigint[],
        ADD COLUMN IF NOT EXISTS duration_ms double precision,
        ADD COLUMN IF NOT EXISTS os_user text,
        ADD COLUMN IF NOT EXISTS application_name text,
        ADD COLUMN IF NOT EXISTS error text;
    UPDATE {audit} SET versions = ARRAY[version] WHERE versions IS NULL AND version IS NOT NULL;
    COMMENT ON TABLE {audit} IS
        'Runs of migrate apply, rollback, repair, forget, baseline on {ledger}: who, when, what, outcome.';
"""


@dataclass(frozen=True)
class AuditRow:
    id: int
    at: datetime
    """When the run started (the server's clock)."""
    action: str
    outcome: str
    """`ok` or `failed`."""
    versions: list[int]
    duration_ms: float | None
    """None for a row an older runner wrote."""
    done_by: str
    """The database role."""
    os_user: str | None
    hostname: str
    application_name: str | None
    note: str
    error: str | None
    before: Any
    after: Any


def os_user() -> str:
    """The operating-system user running the command (a container without a passwd entry: its uid)."""
    try:
        return getpass.getuser()
    except (KeyError, OSError):
        return f"uid {os.getuid()}" if hasattr(os, "getuid") else "unknown"


async def _has_columns(conn: asyncpg.Connection, table: LedgerTable) -> bool:
    return bool(
        await ledger.fetchval(
            conn,
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_attribute WHERE attrelid = pg_catalog.to_regclass($1) "
            "AND attname = 'outcome' AND NOT attisdropped)",
            table.audit.qualified,
        )
    )


async def ensure(conn: asyncpg.Connection, table: LedgerTable) -> None:
    """Create `table`'s audit table, or upgrade an older one in place; later calls find it done. Call it
    holding the runner's lock, outside a transaction. A role that may not is a ConfigError."""
    audit = table.audit
    try:
        if await ledger.exists(conn, audit):
            if await _has_columns(conn, table):
                return
            async with conn.transaction():
                for name in await _action_checks(conn, audit):
                    # An older table allowed two actions only; the list is in the docs now, not a constraint.
                    await conn.execute(f'ALTER TABLE {audit.qualified} DROP CONSTRAINT IF EXISTS "{name}"')
                await conn.execute(_UPGRADE.format(audit=audit.qualified, ledger=table))
            return
        if await ledger.fetchval(conn, "SELECT pg_catalog.to_regnamespace($1) IS NULL", f'"{table.schema}"'):
            await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
        await conn.execute(_DDL.format(audit=audit.qualified, ledger=table))
    except asyncpg.InsufficientPrivilegeError:
        role = await conn.fetchval("SELECT current_user")
        raise ConfigError(
            f"cannot create the audit table {audit}: this role ({role}) may not create or alter tables in "
            f"schema {table.schema}; run the command once as a role that may, so every change to the ledger "
            "keeps its audit row. Nothing was changed"
        ) from None


async def _action_checks(conn: asyncpg.Connection, audit: LedgerTable) -> list[str]:
    rows = await ledger.fetch(
        conn,
        "SELECT conname::text FROM pg_catalog.pg_constraint WHERE conrelid = pg_catalog.to_regclass($1) "
        "AND contype = 'c' AND pg_catalog.pg_get_constraintdef(oid) LIKE '%action%'",
        audit.qualified,
    )
    return [row[0] for row in rows]


async def record(
    conn: asyncpg.Connection,
    table: LedgerTable,
    *,
    action: str,
    duration_ms: float,
    versions: Sequence[int] = (),
    note: str = "",
    outcome: str = "ok",
    error: str | None = None,
    before: Any = None,
    after: Any = None,
) -> None:
    """Write one audit row (the table must exist: `ensure`). `at` is the server's clock minus `duration_ms`,
    so it is when the run started. In the caller's transaction if there is one."""
    if action not in ACTIONS:
        raise ValueError(f"audit action {action!r}: expected one of {', '.join(ACTIONS)}")
    await ledger.fetch(
        conn,
        f"INSERT INTO {table.audit.qualified} (at, action, versions, duration_ms, outcome, error, note, before, "
        "after, hostname, os_user, application_name) "
        "VALUES (pg_catalog.clock_timestamp() - $3::double precision * interval '1 millisecond', $1, $2, $3, $4, "
        "$5, $6, $7::jsonb, $8::jsonb, $9, $10, pg_catalog.current_setting('application_name'))",
        action,
        list(versions),
        duration_ms,
        outcome,
        error,
        note,
        None if before is None else json.dumps(before, default=str),
        None if after is None else json.dumps(after, default=str),
        socket.gethostname(),
        os_user(),
    )


@dataclass
class Trail:
    """What a run records about itself, filled in as it goes (see `run`)."""

    action: str
    started: float = field(default_factory=time.perf_counter)
    versions: list[int] = field(default_factory=list)
    note: str = ""
    before: Any = None
    after: Any = None
    enabled: bool = True
    """False when the table could not be had (`run(..., required=False)`): nothing is written."""
    written: bool = False

    def elapsed_ms(self) -> float:
        return (time.perf_counter() - self.started) * 1000

    async def record_in(self, conn: asyncpg.Connection, table: LedgerTable) -> None:
        """Write the `ok` row now, in the caller's transaction, so it commits with the change it describes."""
        if self.enabled:
            await record(conn, table, **self._fields(), outcome="ok")
        self.written = True

    def _fields(self) -> dict[str, Any]:
        return {
            "action": self.action,
            "duration_ms": self.elapsed_ms(),
            "versions": self.versions,
            "note": self.note,
            "before": self.before,
            "after": self.after,
        }


@contextlib.asynccontextmanager
async def run(
    conn: asyncpg.Connection,
    table: LedgerTable,
    action: str,
    *,
    required: bool = False,
    started: float | None = None,
    note: Callable[[str], None] | None = None,
) -> AsyncIterator[Trail]:
    """Record the run of `action` that happens in the block, holding the runner's lock: `ok` when the block
    ends (unless `Trail.record_in` wrote it already), `failed` with the error when it raises one (the error
    goes on; a failure to write its row is passed over, the error saying more). Not for an interrupt
    (Ctrl-C): the connection is in no state to be trusted then.

    `required`: a role that may not create the audit table is a ConfigError before the block runs;
    otherwise the block runs unrecorded and `note` is told. `started`: a `time.perf_counter()` value when
    the run began before the block (default: now).
    """
    trail = Trail(action, started=time.perf_counter() if started is None else started)
    try:
        await ensure(conn, table)
    except ConfigError as exc:
        if required:
            raise
        trail.enabled = False
        if note is not None:
            note(f"this {action} is not in the audit trail: {exc}".replace(". Nothing was changed", ""))
    try:
        yield trail
    except Exception as exc:
        if trail.enabled and not conn.is_closed():
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await _write(conn, table, trail, error=str(exc) or type(exc).__name__)
        raise
    if trail.enabled and not trail.written:
        try:
            await _write(conn, table, trail)
        except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
            # The run's work is committed; the row is what is lost, and the user is told.
            if note is not None:
                note(f"this {action} is not in the audit trail: writing its row failed: {exc}")


async def _write(conn: asyncpg.Connection, table: LedgerTable, trail: Trail, *, error: str | None = None) -> None:
    """The run's row in a transaction of its own (after a failed one rolled back), under GUARD: a role or
    search_path that a file SET on the session does not apply to it."""
    fields = trail._fields()
    async with conn.transaction():
        await conn.execute(script.GUARD)
        await record(conn, table, **fields, outcome="ok" if error is None else "failed", error=error)
    trail.written = True


async def read(conn: asyncpg.Connection, table: LedgerTable, *, limit: int | None = None) -> list[AuditRow]:
    """The audit rows, newest first (`limit` of them); none when the table does not exist yet."""
    if not await ledger.exists(conn, table.audit):
        return []
    upgraded = await _has_columns(conn, table)
    # A table an older runner made (not upgraded until the next recorded run) reads with the defaults.
    columns = (
        "id, at, action, outcome, coalesce(versions, ARRAY[version]::bigint[]), duration_ms, done_by, os_user, "
        "hostname, application_name, note, error, before::text, after::text"
        if upgraded
        else "id, at, action, 'ok', ARRAY[version]::bigint[], NULL::float8, done_by, NULL, hostname, NULL, note, "
        "NULL, before::text, after::text"
    )
    rows = await ledger.fetch(conn, f"SELECT {columns} FROM {table.audit.qualified} ORDER BY id DESC LIMIT $1", limit)
    return [_row(row) for row in rows]


def _row(row: asyncpg.Record) -> AuditRow:
    before, after = (None if row[i] is None else json.loads(row[i]) for i in (12, 13))
    return AuditRow(
        id=row[0],
        at=row[1],
        action=row[2],
        outcome=row[3],
        versions=list(row[4] or []),
        duration_ms=row[5],
        done_by=row[6],
        os_user=row[7],
        hostname=row[8],
        application_name=row[9],
        note=row[10],
        error=row[11],
        before=before,
        after=after,
    )


async def prepare(
    conn: asyncpg.Connection, table: LedgerTable, action: str, *, note: Callable[[str], None] | None = None
) -> bool:
    """Make or upgrade the audit table for a run holding the lock (in a savepoint when `conn` is in a
    transaction, so a refusal leaves that transaction usable); False, with a note, when this role may not."""
    try:
        if conn.is_in_transaction():
            async with conn.transaction():
                await ensure(conn, table)
        else:
            await ensure(conn, table)
    except (ConfigError, asyncpg.InsufficientPrivilegeError, asyncpg.InFailedSQLTransactionError) as exc:
        if note is not None:
            why = (
                str(exc)
                if isinstance(exc, ConfigError)
                else f"cannot create the audit table {table.audit}: this role may not create or alter tables in "
                f"schema {table.schema}"
            )
            note(f"this {action} is not in the audit trail: {why}".replace(". Nothing was changed", ""))
        return False
    return True


async def record_failure(conn: asyncpg.Connection, table: LedgerTable, trail: Trail, error: BaseException) -> None:
    """The failed run's row, in a transaction of its own after the run's rolled back (whose work may have
    included making the table: it is made again). A failure to write it is passed over: the run's own
    error, being raised, says more."""
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError, ConfigError):
        await ensure(conn, table)
        await _write(conn, table, trail, error=str(error) or type(error).__name__)


async def record_success(
    conn: asyncpg.Connection, table: LedgerTable, trail: Trail, *, note: Callable[[str], None] | None = None
) -> None:
    """The `ok` row of a run whose work is committed; if writing it fails, the user is told."""
    try:
        await _write(conn, table, trail)
    except (asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if note is not None:
            note(f"this {trail.action} is not in the audit trail: writing its row failed: {exc}")
