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
    down_checksum  text                SHA-256 of its down file (NNN_name.down.sql) when it was applied;
                                       NULL when it had none. Added in place to an older ledger (`upgrade`)

Beside it, `<ledger>_audit` keeps the audit trail: a row per run of a command that changes the ledger
(`src.migrate.audit`). The ledger itself never changes shape, so older and newer runners share it.

`<ledger>_repeatable` keeps one row per repeatable script (`R__name.sql`) that ran: its file name, the
checksum it ran with, when, how long, who and from which host. It is created the first time a repeatable
script runs.
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
    down_checksum: str | None = None
    """The down file's checksum when the file was applied (None: it had none, or an older ledger)."""


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
    def repeatable(self) -> LedgerTable:
        """The table of repeatable scripts beside the ledger: `<name>_repeatable`, within 63 bytes."""
        return LedgerTable(self.schema, f"{self.name[:52]}_repeatable")

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
            transactional boolean NOT NULL DEFAULT true,
            down_checksum text
        );
        COMMENT ON TABLE {table.qualified} IS
            'Migrations applied by the migrate runner (src.migrate); one row per NNN_name.sql file.';
        """
    )


async def upgrade(conn: asyncpg.Connection, table: LedgerTable) -> None:
    """Give a ledger made before down files its `down_checksum` column, in place and idempotently (a later
    call finds it). Call it holding the runner's lock; a role that may not alter the ledger gets a
    ConfigError and nothing changes."""
    import asyncpg

    if await fetchval(
        conn,
        "SELECT pg_catalog.to_regclass($1) IS NULL OR EXISTS (SELECT FROM pg_catalog.pg_attribute "
        "WHERE attrelid = pg_catalog.to_regclass($1) AND attname = 'down_checksum' AND NOT attisdropped)",
        table.qualified,
    ):
        return  # no ledger yet (`ensure` makes it with the column), or already upgraded
    try:
        await conn.execute(f"ALTER TABLE {table.qualified} ADD COLUMN IF NOT EXISTS down_checksum text")
    except asyncpg.InsufficientPrivilegeError:
        role = await conn.fetchval("SELECT current_user")
        raise ConfigError(
            f"cannot add the down_checksum column to the ledger {table}: this role ({role}) does not own it; "
            "run the command once as its owner, so the ledger can record down files. Nothing was changed"
        ) from None


async def read(conn: asyncpg.Connection, table: LedgerTable, *, abortable: bool = False) -> list[LedgerRow]:
    """All rows by version; an absent ledger reads as empty (nothing applied yet).

    The table is read directly and a missing table is told by its error (this runs at every container
    start), outside a transaction or in one that may end with it (`abortable`: the caller's transaction
    of its own, for this read alone); inside any other transaction that error would abort it, so the
    catalog is asked first.
    """
    import asyncpg

    if conn.is_in_transaction() and not abortable and not await exists(conn, table):
        return []
    try:
        rows = await fetch(
            conn,
            # to_jsonb: a ledger made before down files has no down_checksum column, and reads as NULL there.
            f"SELECT version, name, checksum, applied_at, duration_ms, applied_by, hostname, kind, transactional, "
            f"pg_catalog.to_jsonb(l) OPERATOR(pg_catalog.->>) 'down_checksum' FROM {table.qualified} AS l "
            "ORDER BY version",
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
    down_checksum: str | None = None,
) -> None:
    """One row; `down_checksum` needs the column (`upgrade`), so it is named only when given."""
    columns = "version, name, checksum, duration_ms, hostname, kind, transactional"
    values: list[object] = [version, name, checksum, duration_ms, socket.gethostname(), kind, transactional]
    if down_checksum is not None:
        columns += ", down_checksum"
        values.append(down_checksum)
    placeholders = ", ".join(f"${i}" for i in range(1, len(values) + 1))
    await fetch(conn, f"INSERT INTO {table.qualified} ({columns}) VALUES ({placeholders})", *values)


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


async def record_down(
    conn: asyncpg.Connection, table: LedgerTable, *, version: int, down_checksum: str | None
) -> tuple[dict[str, object], dict[str, object]]:
    """Record a new down-file checksum for an applied version; the row before and after (for the audit trail)."""
    import json

    rows = await fetch(
        conn,
        f"""
        WITH old AS (SELECT * FROM {table.qualified} WHERE version = $1),
             new AS (UPDATE {table.qualified} SET down_checksum = $2 WHERE version = $1 RETURNING *)
        SELECT to_jsonb(old)::text, to_jsonb(new)::text FROM old, new
        """,
        version,
        down_checksum,
    )
    return json.loads(rows[0][0]), json.loads(rows[0][1])


async def remove(conn: asyncpg.Connection, table: LedgerTable, *, version: int) -> dict[str, object] | None:
    """Delete a rolled-back version's row (in its down file's transaction); the row as it was, for the audit
    trail, or None when there was none."""
    import json

    rows = await fetch(
        conn, f"DELETE FROM {table.qualified} AS gone WHERE version = $1 RETURNING to_jsonb(gone)::text", version
    )
    return json.loads(rows[0][0]) if rows else None


@dataclass(frozen=True)
class RepeatableRow:
    filename: str
    checksum: str
    applied_at: datetime
    duration_ms: float
    applied_by: str
    hostname: str


async def read_repeatables(conn: asyncpg.Connection, table: LedgerTable) -> list[RepeatableRow]:
    """The repeatable scripts' rows by file name; none when the table is not there yet."""
    import asyncpg

    if conn.is_in_transaction() and not await exists(conn, table.repeatable):
        return []  # the missing table's error would abort the transaction (see `read`)
    try:
        rows = await fetch(
            conn,
            f"SELECT filename, checksum, applied_at, duration_ms, applied_by, hostname "
            f"FROM {table.repeatable.qualified} ORDER BY filename",
        )
    except (asyncpg.UndefinedTableError, asyncpg.InvalidSchemaNameError):
        return []
    return [RepeatableRow(*row) for row in rows]


async def ensure_repeatables(conn: asyncpg.Connection, table: LedgerTable) -> None:
    """Create the repeatable scripts' table beside the ledger (and the ledger) if missing; under the lock."""
    await ensure(conn, table)
    if await exists(conn, table.repeatable):
        return
    await conn.execute(
        f"""
        CREATE TABLE IF NOT EXISTS {table.repeatable.qualified} (
            filename     text PRIMARY KEY,
            checksum     text NOT NULL,
            applied_at   timestamptz NOT NULL DEFAULT pg_catalog.clock_timestamp(),
            duration_ms  double precision NOT NULL,
            applied_by   text NOT NULL DEFAULT current_user,
            hostname     text NOT NULL
        );
        COMMENT ON TABLE {table.repeatable.qualified} IS
            'Repeatable scripts (R__name.sql) the migrate runner ran, each with the checksum it last ran with.';
        """
    )


async def record_repeatable(
    conn: asyncpg.Connection, table: LedgerTable, *, filename: str, checksum: str, duration_ms: float
) -> None:
    await fetch(
        conn,
        f"""
        INSERT INTO {table.repeatable.qualified} (filename, checksum, duration_ms, hostname) VALUES ($1, $2, $3, $4)
        ON CONFLICT (filename) DO UPDATE SET checksum = excluded.checksum, duration_ms = excluded.duration_ms,
            applied_at = pg_catalog.clock_timestamp(), applied_by = current_user, hostname = excluded.hostname
        """,
        filename,
        checksum,
        duration_ms,
        socket.gethostname(),
    )


async def forget_repeatables(conn: asyncpg.Connection, table: LedgerTable) -> None:
    """Drop every repeatable script's row, so the next `apply` runs them all again (after a rollback, whose
    down files may have dropped what they made)."""
    if await exists(conn, table.repeatable):
        await fetch(conn, f"DELETE FROM {table.repeatable.qualified}")
