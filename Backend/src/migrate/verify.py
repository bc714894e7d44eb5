"""`migrate verify`: prove the folder and the database agree, and (with --rerun) that every applied file
is idempotent: each is run again inside a transaction that is rolled back, and the catalog must not change.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field

import asyncpg

from src.migrate import catalog, sql
from src.migrate.files import MigrationFile
from src.migrate.plan import Plan, State


@dataclass
class RerunResult:
    checked: list[str] = field(default_factory=list)
    skipped: list[str] = field(default_factory=list)
    """Files that cannot run inside a transaction, so cannot be re-run safely here."""
    problems: list[str] = field(default_factory=list)


class _RollBack(Exception):
    """Raised inside the transaction to discard everything the rerun did."""


async def rerun(conn: asyncpg.Connection, plan: Plan) -> RerunResult:
    result = RerunResult()
    for entry in plan.entries:
        if entry.state is not State.APPLIED or entry.file is None:
            continue
        file: MigrationFile = entry.file
        statements = sql.parse(file)
        if not all(s.transactional for s in statements):
            result.skipped.append(file.filename)
            continue
        problem = await _rerun_one(conn, file, statements)
        if problem:
            result.problems.append(problem)
        result.checked.append(file.filename)
    return result


async def _rerun_one(conn: asyncpg.Connection, file: MigrationFile, statements: Sequence[sql.Statement]) -> str | None:
    outcome: str | None = None
    try:
        async with conn.transaction():
            before = await catalog.snapshot(conn)
            for statement in statements:
                try:
                    await conn.execute(statement.text)
                except asyncpg.PostgresError as exc:
                    line, column = sql.line_and_column(file.sql, statement.offset)
                    outcome = f"{file.filename}:{line}:{column}: fails when re-run: ERROR {exc.sqlstate}: {exc}"
                    raise _RollBack from None
            changes = catalog.differences(before, await catalog.snapshot(conn))
            if changes:
                shown = "\n  ".join(changes[:10]) + ("\n  ..." if len(changes) > 10 else "")
                outcome = f"{file.filename}: re-running it changes the catalog:\n  {shown}"
            raise _RollBack
    except _RollBack:
        pass
    return outcome


async def invalid_indexes(conn: asyncpg.Connection) -> list[str]:
    """INVALID indexes anywhere in user schemas (what an interrupted CREATE INDEX CONCURRENTLY leaves)."""
    rows = await conn.fetch(
        """
        SELECT i.indexrelid::regclass::text AS name FROM pg_index i
        JOIN pg_class c ON c.oid = i.indexrelid JOIN pg_namespace n ON n.oid = c.relnamespace
        WHERE NOT i.indisvalid AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1
        """
    )
    return [r["name"] for r in rows]
