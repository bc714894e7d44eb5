"""`migrate verify`: prove the folder and the database agree, and (with --rerun) that every applied file
is idempotent where it stands in the history.

The rerun does not touch the real database. It builds a scratch database on the same server (`CREATE
DATABASE migrate_verify_<hex>` from template0, with the real database's encoding and locale), applies the
applied files there one at a time, in version order, the way `apply` does (`runner.apply`), and right after
each one runs it again and compares the catalog before and after. A file that a later one supersedes (001
creates a table, 002 drops it; a function redefined later) is thus judged against the database it was
written for, not the final one. A transactional file is re-run in a transaction that is rolled back; a
file PostgreSQL refuses in a transaction is re-run outside one, which the disposable database allows.
The scratch database is dropped at the end (`DROP DATABASE ... WITH (FORCE)`), on an error or Ctrl-C too.
Cluster-wide objects a file creates (roles, tablespaces) outlive it; files create them idempotently.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

import asyncpg

from src.migrate import catalog, runner, sql
from src.migrate.connect import connect
from src.migrate.errors import ConfigError, ConnectionFailed, MigrationFailed
from src.migrate.files import MigrationFile
from src.migrate.plan import Plan, State
from src.migrate.script import TransactionMode
from src.postgres.settings import ConnectionSettings

SCRATCH_PREFIX = "migrate_verify_"
"""Every scratch database's name starts with this, followed by 16 random hex digits."""


@dataclass
class RerunResult:
    checked: list[str] = field(default_factory=list)
    """Files applied to the scratch database and re-run there (whether or not the re-run found a problem)."""
    problems: list[str] = field(default_factory=list)


class _RollBack(Exception):
    """Raised inside the transaction to discard everything the rerun did."""


async def rerun(
    conn: asyncpg.Connection,
    plan: Plan,
    where: ConnectionSettings,
    options: runner.Options,
    *,
    server_settings: dict[str, str] | None = None,
    note: Callable[[str], None] | None = None,
) -> RerunResult:
    """Re-run every file `plan` shows applied, each where it stands in the history, in a scratch database
    created through `conn` (connected to `where`) and dropped at the end. `options` gives the ledger table
    and lock wait the scratch apply uses; `note` hears of a scratch database that could not be dropped.
    Raises ConfigError when the role may not create databases."""
    applied = [e.file for e in plan.entries if e.state is State.APPLIED and e.file is not None]
    result = RerunResult()
    if not applied:
        return result
    each = replace(options, target=None, allow_out_of_order=False, transaction=TransactionMode.PER_FILE, audit=False)
    async with scratch_database(conn, where, server_settings=server_settings, note=note) as scratch:
        for index, file in enumerate(applied):
            try:
                await runner.apply(scratch, applied[: index + 1], each)
            except MigrationFailed as exc:
                result.problems.append(_cannot_build(file, exc))
                break  # the later files were written for a database this one did not give
            problem = await rerun_one(scratch, file)
            if problem:
                result.problems.append(problem)
            result.checked.append(file.filename)
    return result


def _cannot_build(file: MigrationFile, exc: MigrationFailed) -> str:
    d = exc.diagnostic
    where = f"{d.file}:{d.line}:{d.column}" if d is not None and d.file and d.line else file.filename
    error = f"ERROR {d.sqlstate}: {d.message}" if d is not None else str(exc)
    return (
        f"{where}: fails when applied to a scratch database after the files before it (so it was not re-run, "
        f"nor the files after it): {error}"
    )


async def rerun_one(
    conn: asyncpg.Connection, file: MigrationFile, statements: Sequence[sql.Statement] | None = None
) -> str | None:
    """Run `file`, just applied on `conn`, again; the problem found (fails, or changes the catalog), or None.
    A transactional file runs in a transaction that is rolled back; any other one runs outside a transaction
    and keeps its effect, so use this outside a transaction only on a database that may change."""
    if statements is None:
        statements = sql.parse(file)
    if all(s.transactional for s in statements):
        outcome: str | None = None
        try:
            async with conn.transaction():
                outcome = await _run_and_compare(conn, file, statements)
                raise _RollBack
        except _RollBack:
            pass
    else:
        outcome = await _run_and_compare(conn, file, statements)
    # A file's DEALLOCATE ALL or DISCARD ALL removed the statements asyncpg keeps prepared (as after apply).
    await conn.reload_schema_state()
    return outcome


async def _run_and_compare(
    conn: asyncpg.Connection, file: MigrationFile, statements: Sequence[sql.Statement]
) -> str | None:
    before = await catalog.snapshot(conn)
    for statement in statements:
        try:
            await conn.execute(statement.text)
        except asyncpg.PostgresError as exc:
            line, column = sql.line_and_column(file.sql, statement.offset)
            return f"{file.filename}:{line}:{column}: fails when re-run: ERROR {exc.sqlstate}: {exc}"
    await conn.reload_schema_state()
    changes = catalog.differences(before, await catalog.snapshot(conn))
    if changes:
        shown = "\n  ".join(changes[:10]) + ("\n  ..." if len(changes) > 10 else "")
        return f"{file.filename}: re-running it changes the catalog:\n  {shown}"
    return None


@contextlib.asynccontextmanager
async def scratch_database(
    conn: asyncpg.Connection,
    where: ConnectionSettings,
    *,
    server_settings: dict[str, str] | None = None,
    note: Callable[[str], None] | None = None,
    purpose: str = "verify --rerun",
    needs: str = "the rerun",
) -> AsyncIterator[asyncpg.Connection]:
    """A connection to a new, empty database on `conn`'s server (from template0, with the encoding and locale
    of `conn`'s database), dropped with everything in it when the block ends, however it ends. `purpose`
    (the command) begins the messages of its errors."""
    name = SCRATCH_PREFIX + secrets.token_hex(8)
    statement, user = await _create_statement(conn, name)
    try:
        await conn.execute(statement)
    except asyncpg.InsufficientPrivilegeError:
        raise ConfigError(
            f"{purpose}: role {user} lacks the CREATEDB privilege, which {needs} needs for its scratch "
            f"database; grant it (ALTER ROLE {user} CREATEDB) or run {purpose} as a role that has it"
        ) from None
    try:
        try:
            scratch = await connect(replace(where, database=name), command="verify", server_settings=server_settings)
        except ConnectionFailed as exc:
            raise ConnectionFailed(f"{purpose}: cannot connect to its scratch database {name}: {exc}") from exc
        try:
            yield scratch
        finally:
            with contextlib.suppress(asyncpg.InterfaceError, asyncpg.PostgresError, OSError):
                await scratch.close(timeout=5)
    finally:
        await _drop(conn, where, name, note)


async def _create_statement(conn: asyncpg.Connection, name: str) -> tuple[str, str]:
    row = await conn.fetchrow(
        """
        SELECT format('CREATE DATABASE %I TEMPLATE template0 ENCODING %L LC_COLLATE %L LC_CTYPE %L',
                      $1::text, pg_encoding_to_char(encoding), datcollate, datctype) AS statement,
               format('%I', current_user) AS "user"
        FROM pg_database WHERE datname = current_database()
        """,
        name,
    )
    return row["statement"], row["user"]


async def _drop(
    conn: asyncpg.Connection, where: ConnectionSettings, name: str, note: Callable[[str], None] | None
) -> None:
    """Drop the scratch database through `conn`, or a new connection when `conn` is unusable (an interrupted
    query on it); when neither works, `note` names what is left to drop."""
    statement = f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
        if not conn.is_closed():
            await conn.execute(statement)
            return
    try:
        other = await connect(where, command="verify")
        try:
            await other.execute(statement)
        finally:
            await other.close()
    except (ConnectionFailed, asyncpg.PostgresError, asyncpg.InterfaceError, OSError) as exc:
        if note is not None:
            note(f"could not drop the scratch database {name} ({exc}); drop it with: {statement}")


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
