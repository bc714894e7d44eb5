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

Beside it, `<ledger>_audit` keeps the audit trail: a row per run of a command that changes the ledger
(`src.migrate.audit`). The ledger itself never changes shape, so older and newer runners share it.
"""

from __future__ import annotations

import re
import socket
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING

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
    return bool(await fetchval(conn, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", table.qualified))


async def ensure(conn: asyncpg.Connection, table: LedgerTable) -> None:
    """Create the ledger if it is missing. Call it holding the runner's lock: concurrent CREATE TABLE IF
    NOT EXISTS can still fail on the catalog's unique index."""
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


async def read(conn: asyncpg.Connection, table: LedgerTable) -> list[LedgerRow]:
    """All rows by version; an absent ledger reads as empty (nothing applied yet).

    One round trip: this runs at every container start, so the table is read directly and a missing
    table is told by its error, instead of asking the catalog first.
    """
    import asyncpg

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
    conn: asyncpg.Connection, table: LedgerTable, *, version: int, name: str, checksum: str
) -> tuple[dict[str, object], dict[str, object]]:
    """Record a new name and checksum for an applied version; the row before and after (as JSON objects,
    for the audit trail)."""
    import json

    rows = await fetch(
        conn,
        f"""
        WITH old AS (SELECT * FROM {table.qualified} WHERE version = $1),
             new AS (UPDATE {table.qualified} SET name = $2, checksum = $3 WHERE version = $1 RETURNING *)
        SELECT to_jsonb(old)::text, to_jsonb(new)::text FROM old, new
        """,
        version,
        name,
        checksum,
    )
    return json.loads(rows[0][0]), json.loads(rows[0][1])


async def forget(conn: asyncpg.Connection, table: LedgerTable, *, version: int) -> dict[str, object]:
    """Delete an applied version's row; the row as it was (a JSON object, for the audit trail)."""
    import json

    rows = await fetch(
        conn, f"DELETE FROM {table.qualified} AS gone WHERE version = $1 RETURNING to_jsonb(gone)::text", version
    )
    gone: dict[str, object] = json.loads(rows[0][0])
    return gone
