"""`migrate verify`: prove the folder and the database agree, (with --rerun) that every applied file
is idempotent where it stands in the history, and (with --roundtrip) that every pending file is reversible.

The rerun does not touch the real database. It builds a scratch database on the same server (`CREATE
DATABASE migrate_verify_<hex>` from template0, with the real database's encoding and locale), applies the
applied files there one at a time, in version order, the way `apply` does (`runner.apply`), and right after
each one runs it again and compares the catalog before and after. A file that a later one supersedes (001
creates a table, 002 drops it; a function redefined later) is thus judged against the database it was
written for, not the final one. A transactional file is re-run in a transaction that is rolled back; a
file PostgreSQL refuses in a transaction is re-run outside one, which the disposable database allows.
The scratch database is dropped at the end (`DROP DATABASE ... WITH (FORCE)`), on an error or Ctrl-C too.
Cluster-wide objects a file creates (roles, tablespaces) outlive it; files create them idempotently.

The round trip works in a scratch database too: the applied files are applied first, then each pending
file in turn is applied, rolled back with its down file and applied again, the catalog compared at each
step: after the rollback it must be what it was before the file, after the second apply what the first
gave. Last, when every pending file passed, all of them are rolled back together and applied again, the
same way. The ledger's own tables are left out of the comparison.
"""

from __future__ import annotations

import contextlib
import secrets
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass, field, replace

import asyncpg

from src.migrate import catalog, runner, sql
from src.migrate.connect import connect
from src.migrate.errors import ConfigError, ConnectionFailed, MigrateError, MigrationFailed
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
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
    async with scratch_database(conn, where, note=note) as scratch:
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
            scratch = await connect(replace(where, database=name), command="verify")
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


@dataclass
class RoundtripResult:
    checked: list[str] = field(default_factory=list)
    """Pending files applied, rolled back and applied again in the scratch database without a difference."""
    problems: list[str] = field(default_factory=list)
    together: bool = False
    """Whether the pending files were also rolled back all together and applied again (more than one)."""


class _Stop(Exception):
    """The round trip cannot go on: the scratch database is no longer what the next step needs."""


async def roundtrip(
    conn: asyncpg.Connection,
    plan: Plan,
    where: ConnectionSettings,
    options: runner.Options,
    *,
    note: Callable[[str], None] | None = None,
) -> RoundtripResult:
    """Apply every file `plan` shows pending (after the applied ones), roll it back and apply it again, in
    a scratch database created through `conn` and dropped at the end, comparing the catalog at each step.
    Stops at the first difference or failure, since the files after it would be judged on a database
    their author did not mean; a pending file without a down file is a problem, and the trip goes on."""
    applied = [e.file for e in plan.entries if e.state is State.APPLIED and e.file is not None]
    pending = list(plan.to_apply)
    result = RoundtripResult()
    if not pending:
        return result
    each = replace(options, target=None, allow_out_of_order=False, transaction=TransactionMode.PER_FILE, audit=False)
    scratch_for = scratch_database(conn, where, note=note, purpose="verify --roundtrip", needs="the round trip")
    async with scratch_for as scratch:
        trip = _Trip(scratch, each, result)
        try:
            await trip.apply(applied, applied[-1] if applied else None, "when the applied files before it are applied")
            start = await trip.schema()
            for index, file in enumerate(pending):
                await trip.one(applied + pending[: index + 1], file)
            if len(pending) > 1 and not result.problems:
                await trip.together(applied + pending, pending, start)
        except _Stop:
            pass
    return result


class _Trip:
    def __init__(self, conn: asyncpg.Connection, options: runner.Options, result: RoundtripResult) -> None:
        self.conn, self.options, self.result = conn, options, result

    async def schema(self) -> catalog.Snapshot:
        return _without_ledger(await catalog.snapshot(self.conn), self.options.ledger)

    async def apply(self, files: Sequence[MigrationFile], last: MigrationFile | None, when: str) -> None:
        if last is None:
            return
        try:
            await runner.apply(self.conn, files, self.options)
        except MigrateError as exc:
            self.result.problems.append(f"{last.filename}: fails {when} in a scratch database: {_first_line(exc)}")
            raise _Stop from exc

    async def rollback(self, files: Sequence[MigrationFile], last: MigrationFile, steps: int) -> None:
        try:
            await runner.rollback(self.conn, files, self.options, steps=steps)
        except MigrateError as exc:
            self.result.problems.append(
                f"{last.filename}: its rollback fails in a scratch database: {_first_line(exc)}"
            )
            raise _Stop from exc

    def compare(self, expected: catalog.Snapshot, actual: catalog.Snapshot, what: str) -> None:
        changes = catalog.differences(expected, actual)
        if changes:
            shown = "\n  ".join(changes[:10]) + ("\n  ..." if len(changes) > 10 else "")
            self.result.problems.append(f"{what}:\n  {shown}")
            raise _Stop

    async def one(self, files: list[MigrationFile], file: MigrationFile) -> None:
        before = await self.schema()
        await self.apply(files, file, "when applied after the files before it")
        if file.down is None:
            self.result.problems.append(
                f"{file.filename}: no down script ({file.filename.removesuffix('.sql')}.down.sql), so its "
                "rollback cannot be proved; write one"
            )
            return
        applied = await self.schema()
        await self.rollback(files, file.down, 1)
        self.compare(
            before,
            await self.schema(),
            f"{file.down.filename}: rolling back {file.filename} does not "
            "give back the schema before it; after the rollback, compared with before",
        )
        await self.apply(files, file, "when applied again after its rollback")
        self.compare(
            applied,
            await self.schema(),
            f"{file.filename}: applied again after its rollback, it gives "
            "another schema than the first time; the second time, compared with the first",
        )
        self.result.checked.append(file.filename)

    async def together(self, files: list[MigrationFile], pending: list[MigrationFile], start: catalog.Snapshot) -> None:
        end = await self.schema()
        first, last = pending[0], pending[-1]
        assert first.down is not None
        await self.rollback(files, first.down, len(pending))
        self.compare(
            start,
            await self.schema(),
            f"{first.filename} .. {last.filename}: rolled back together, they "
            "do not give back the schema before them; after the rollback, compared with before",
        )
        await self.apply(files, last, "when the pending files are applied again after their rollback")
        self.compare(
            end,
            await self.schema(),
            f"{first.filename} .. {last.filename}: applied again after their "
            "rollback, they give another schema; the second time, compared with the first",
        )
        self.result.together = True


def _first_line(exc: BaseException) -> str:
    return str(exc).split("\n", 1)[0]


def _without_ledger(snapshot: catalog.Snapshot, table: LedgerTable) -> catalog.Snapshot:
    """`snapshot` without the runner's own tables (the ledger, its audit and repeatable tables), which the
    first apply or rollback creates and no rollback drops."""
    own = {table.name, table.audit.name, table.repeatable.name}
    schema = table.schema

    def ours(section: str, row: dict[str, object]) -> bool:
        if row.get("schema") != schema:
            return False
        if section == "relations":  # the audit table's identity sequence too
            return row.get("name") in own or row.get("name") == f"{table.audit.name}_id_seq"
        if section in ("columns", "constraints", "triggers"):
            return row.get("table") in own
        if section == "indexes":
            definition = str(row.get("definition", ""))
            return any(f" ON {schema}.{name} " in definition for name in own)
        return False

    return {section: [r for r in rows if not ours(section, r)] for section, rows in snapshot.items()}


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
