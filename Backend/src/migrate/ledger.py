"""The ledger table: one row per applied migration. Create it, read it, write it.

Columns (documented in docs/migrations.md):
    version        bigint primary key  the file's number
    name           text                the file's description (`create_schemas` for 001_create_schemas.sql)
    checksum       text                SHA-256 of the file's normalised text when it was applied
    applied_at     timestamptz         when it was recorded (the end of its transaction)
    duration_ms    double precision    how long its SQL took (the server measures it); 0 for a baseline row
    applied_by     text                the database role that applied it
    hostname       text                the host the runner ran on
    kind           text                'applied' (its SQL ran) or 'baseline' (recorded without running)
    transactional  boolean             whether it ran inside a transaction with its ledger row

Beside it, `<ledger>_audit` (e.g. public.migration_ledger_audit) keeps one row per deliberate change
`migrate repair` made to the ledger: the action ('forget', 'repair'), the version, the ledger row before
and after (jsonb), who, from which host, when, and a note. `ensure(..., audit=True)` creates it the first
time a repair needs it, beside a ledger old or new (the ledger itself never changes shape).
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

from src.migrate.errors import ConfigError

if TYPE_CHECKING:
    import asyncpg

DEFAULT_TABLE = "public.migration_ledger"
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,62}$")


@dataclass(frozen=True)
class LedgerRow:
    version: int
    name: str
    checksum: str
    applied_at: datetime
    duration_ms: float
    applied_by: str
    hostname: str
    kind: str
    transactional: bool


@dataclass(frozen=True)
class LedgerTable:
    schema: str
    name: str

    @classmethod
    def parse(cls, text: str) -> LedgerTable:
        """`schema.table` or `table` (in `public`); plain identifiers only, so quoting is never ambiguous."""
        parts = text.strip().split(".")
        if len(parts) == 1:
            parts = ["public", *parts]
        if len(parts) != 2 or not all(_IDENTIFIER.match(p) for p in parts):
            raise ValueError(
                f"MIGRATIONS_TABLE: {text!r} is not a table name; use schema.table with letters, digits "
                "and '_' (e.g. public.migration_ledger)"
            )
        return cls(parts[0], parts[1])

    @property
    def qualified(self) -> str:
        return f'"{self.schema}"."{self.name}"'

    @property
    def audit(self) -> LedgerTable:
        """The audit table beside the ledger: `<name>_audit`, the name cut to stay within 63 bytes."""
        return LedgerTable(self.schema, f"{self.name[:57]}_audit")

    def __str__(self) -> str:
        return f"{self.schema}.{self.name}"


async def fetch(conn: asyncpg.Connection, query: str, *args: object) -> list[asyncpg.Record]:
    """Rows of one of the runner's own queries, through the unnamed prepared statement.

    asyncpg caches named prepared statements, and a migration's `DEALLOCATE ALL` or `DISCARD ALL` removes
    them behind its back; the unnamed one is parsed anew each time, so nothing a file does can remove it.
    """
    statement = await conn.prepare(query, name="")
    return list(await statement.fetch(*args))


async def fetchval(conn: asyncpg.Connection, query: str, *args: object) -> object:
    rows = await fetch(conn, query, *args)
    return rows[0][0] if rows else None


async def exists(conn: asyncpg.Connection, table: LedgerTable) -> bool:
    # pg_class read with the statement's snapshot, not to_regclass: inside a transaction that began before
    # another runner created the ledger, to_regclass answers from a cache that has not seen it yet.
    return bool(
        await fetchval(
            conn,
            "SELECT EXISTS (SELECT FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace "
            "WHERE n.nspname = $1 AND c.relname = $2)",
            table.schema,
            table.name,
        )
    )


async def ensure(conn: asyncpg.Connection, table: LedgerTable, *, audit: bool = False) -> None:
    """Create the ledger if it is missing; with `audit`, its audit table too. Call it holding the runner's
    lock: concurrent CREATE TABLE IF NOT EXISTS can still fail on the catalog's unique index.

    The audit table is made only when a change needs recording (`repair`), so `apply` leaves exactly the
    ledger behind, as before it existed; a ledger made without it is upgraded in place here, idempotently
    (later calls find it). A role that may not create it gets a ConfigError and nothing changes.
    """
    if audit:
        await ensure(conn, table)
        await _ensure_audit(conn, table)
        return
    if await exists(conn, table):
        return
    if await fetchval(conn, "SELECT pg_catalog.to_regnamespace($1) IS NULL", f'"{table.schema}"'):
        # Only when missing: CREATE SCHEMA checks the CREATE privilege even with IF NOT EXISTS.
        await conn.execute(f'CREATE SCHEMA IF NOT EXISTS "{table.schema}"')
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table.qualified} (
            version       bigint PRIMARY KEY,
            name          text NOT NULL,
            checksum      text NOT NULL,
            applied_at    timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
            duration_ms   double precision NOT NULL,
            applied_by    text NOT NULL DEFAULT current_user,
            hostname      text NOT NULL,
            kind          text NOT NULL DEFAULT 'applied' CHECK (kind IN ('applied', 'baseline')),
            transactional boolean NOT NULL DEFAULT true
        );
        COMMENT ON TABLE {table.qualified} IS
            'Migrations applied by the migrate runner (src.migrate); one row per NNN_name.sql file.';
        """
    )


async def _ensure_audit(conn: asyncpg.Connection, table: LedgerTable) -> None:
    import asyncpg

    if await exists(conn, table.audit):
        return
    try:
        await conn.execute(_AUDIT_DDL.format(audit=table.audit.qualified, ledger=table))
    except asyncpg.InsufficientPrivilegeError:
        role = await conn.fetchval("SELECT current_user")
        raise ConfigError(
            f"cannot create the audit table {table.audit}: this role ({role}) may not create tables in "
            f"schema {table.schema}; run the command once as a role that may, so every change to the ledger "
            "keeps its audit row. Nothing was changed"
        ) from None


_AUDIT_DDL = """
    CREATE TABLE IF NOT EXISTS {audit} (
        id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
        at        timestamptz NOT NULL DEFAULT clock_timestamp(),
        action    text NOT NULL CHECK (action IN ('forget', 'repair')),
        version   bigint NOT NULL,
        before    jsonb,
        after     jsonb,
        done_by   text NOT NULL DEFAULT current_user,
        hostname  text NOT NULL,
        note      text NOT NULL
    );
    COMMENT ON TABLE {audit} IS
        'Deliberate changes `migrate repair` made to {ledger}: the row before and after, who, when, why.';
"""


async def read(conn: asyncpg.Connection, table: LedgerTable) -> list[LedgerRow]:
    """All rows by version; an absent ledger reads as empty (nothing applied yet).

    Outside a transaction the table is read directly and a missing table is told by its error (this runs
    at every container start); inside one that error would abort the transaction, so the catalog is asked
    first.
    """
    import asyncpg

    if conn.is_in_transaction() and not await exists(conn, table):
        return []
    try:
        rows = await fetch(
            conn,
            f"SELECT version, name, checksum, applied_at, duration_ms, applied_by, hostname, kind, transactional "
            f"FROM {table.qualified} ORDER BY version",
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return []
    # Positional: the SELECT lists the columns in the dataclass's order.
    return [LedgerRow(*row) for row in rows]


async def record(
    conn: asyncpg.Connection,
    table: LedgerTable,
    *,
    version: int,
    name: str,
    checksum: str,
    duration_ms: float,
    kind: str = "applied",
    transactional: bool = True,
) -> None:
    await fetch(
        conn,
        f"INSERT INTO {table.qualified} (version, name, checksum, duration_ms, hostname, kind, transactional) "
        "VALUES ($1, $2, $3, $4, $5, $6, $7)",
        version,
        name,
        checksum,
        duration_ms,
        socket.gethostname(),
        kind,
        transactional,
    )


async def durations(conn: asyncpg.Connection, table: LedgerTable, versions: list[int]) -> dict[int, float]:
    """duration_ms of the given versions' rows (written by the server, see `script`)."""
    rows = await fetch(
        conn,
        f"SELECT version, duration_ms FROM {table.qualified} WHERE version OPERATOR(pg_catalog.=) ANY($1)",
        versions,
    )
    return {row[0]: row[1] for row in rows}


async def update(
    conn: asyncpg.Connection, table: LedgerTable, *, version: int, name: str, checksum: str, note: str
) -> None:
    """Record a new name and checksum for an applied version, with an audit row holding the row before
    and after (one statement: both happen or neither)."""
    await fetch(
        conn,
        f"""
        WITH old AS (SELECT * FROM {table.qualified} WHERE version = $1),
             new AS (UPDATE {table.qualified} SET name = $2, checksum = $3 WHERE version = $1 RETURNING *)
        INSERT INTO {table.audit.qualified} (action, version, before, after, hostname, note)
        SELECT 'repair', old.version, to_jsonb(old), to_jsonb(new), $4, $5 FROM old, new
        """,
        version,
        name,
        checksum,
        socket.gethostname(),
        note,
    )


async def forget(conn: asyncpg.Connection, table: LedgerTable, *, version: int, note: str) -> None:
    """Delete an applied version's row, keeping it in an audit row (one statement: both or neither)."""
    await fetch(
        conn,
        f"""
        WITH gone AS (DELETE FROM {table.qualified} WHERE version = $1 RETURNING *)
        INSERT INTO {table.audit.qualified} (action, version, before, hostname, note)
        SELECT 'forget', gone.version, to_jsonb(gone), $2, $3 FROM gone
        """,
        version,
        socket.gethostname(),
        note,
    )
