"""INVALID indexes left by an interrupted CREATE INDEX CONCURRENTLY, for the files that build them.

`IF NOT EXISTS` skips an index that exists but is INVALID, so rerunning such a file would record a
migration whose index is unusable. Before a file runs, an INVALID index it builds is dropped (we hold
the runner's lock, so no other runner is building it); after it runs, one still INVALID fails the file.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from src.migrate import ledger, sql
from src.migrate.errors import MigrationFailed
from src.migrate.files import MigrationFile

_INVALID_INDEX = """
    SELECT i.indexrelid::pg_catalog.regclass::pg_catalog.text
    FROM pg_catalog.pg_index i JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) i.indexrelid
    WHERE i.indrelid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1)
      AND c.relname OPERATOR(pg_catalog.=) $2 AND NOT i.indisvalid
"""


def concurrent_targets(statements: Sequence[sql.Statement]) -> list[tuple[str, str]]:
    """(table as written, index name) for each named CREATE INDEX CONCURRENTLY."""
    targets = []
    for statement in statements:
        node = statement.node
        if type(node).__name__ == "IndexStmt" and node.concurrent and node.idxname:
            relation = node.relation
            table = f'"{relation.schemaname}"."{relation.relname}"' if relation.schemaname else f'"{relation.relname}"'
            targets.append((table, node.idxname))
    return targets


async def drop_invalid(conn: asyncpg.Connection, statements: Sequence[sql.Statement]) -> list[str]:
    """Drop the INVALID indexes an earlier, failed run of these statements left; returns their names."""
    dropped = []
    for table, index in concurrent_targets(statements):
        name = await ledger.fetchval(conn, _INVALID_INDEX, table, index)
        if name is not None:
            await conn.execute(f"DROP INDEX CONCURRENTLY IF EXISTS {name}")
            dropped.append(str(name))
    return dropped


async def refuse_invalid(conn: asyncpg.Connection, file: MigrationFile, statements: Sequence[sql.Statement]) -> None:
    """MigrationFailed when an index the file built concurrently is INVALID after it ran."""
    for table, index in concurrent_targets(statements):
        name = await ledger.fetchval(conn, _INVALID_INDEX, table, index)
        if name is not None:
            raise MigrationFailed(
                f"{file.filename}: index {name} is INVALID after CREATE INDEX CONCURRENTLY (another session may "
                "be building it, or it was left invalid outside the runner); drop it with "
                f"DROP INDEX CONCURRENTLY {name} and run `migrate apply` again. The file was not recorded."
            )
