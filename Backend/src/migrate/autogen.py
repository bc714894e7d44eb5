"""`migrate new NAME --from-models`: the idempotent SQL that brings the schema the migrations build to the
ORM models.

The comparison is Alembic's autogenerate (`produce_migrations`), not a differ of our own. It runs against a
scratch database on the same server (`verify.scratch_database`) where every migration file has just been
applied, so the result depends on the files alone, not on what a developer's database happens to hold.
Each of Alembic's operations is then written here as PostgreSQL that can run twice: CREATE TABLE / INDEX
IF NOT EXISTS, ADD COLUMN IF NOT EXISTS, DROP ... IF EXISTS, a constraint added only when the catalog has
none of its name, ALTER COLUMN ... SET / DROP (which are idempotent as they are), COMMENT ON.

What the comparison cannot decide is written as `-- TODO:` comments for a person to finish, with the
statement to start from commented out: a table or column in the database but in no model (dropped, or
renamed to one just added? a rename keeps the data, a drop and add loses it), a type change without an
implicit cast (it needs a USING expression only a person can write), NOT NULL on a column that may hold
NULLs, and any operation this module does not know.

Alembic is imported lazily: it is in the `models` extra, not in the runtime image.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass, field, replace
from typing import TYPE_CHECKING, Any

import asyncpg

from src.migrate import runner
from src.migrate.errors import ConfigError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.script import TransactionMode
from src.migrate.verify import scratch_database
from src.postgres.settings import ConnectionSettings

if TYPE_CHECKING:
    from sqlalchemy import Connection, MetaData, Table
    from sqlalchemy.engine import Dialect

EXTRA = "models"
PACKAGE = "agent-backend-db"
MISSING_ALEMBIC = (
    f"migrate new --from-models compares with Alembic, which is not installed; install the `{EXTRA}` extra: "
    f"pip install '{PACKAGE}[{EXTRA}]'"
)


@dataclass
class Generated:
    """The SQL that brings the migrated schema to the models."""

    statements: list[str] = field(default_factory=list)
    todos: list[str] = field(default_factory=list)
    """What a person must decide, one line each (also in the file, as `-- TODO:` comments)."""
    blocks: list[str] = field(default_factory=list)
    """The file's body: statements and TODO comments, in order."""

    @property
    def empty(self) -> bool:
        return not self.blocks

    def add(self, statement: str) -> None:
        self.statements.append(statement)
        self.blocks.append(statement)

    def todo(self, summary: str, *lines: str) -> None:
        """A decision for a person: `summary`, then `lines` (statements to start from) commented out."""
        import textwrap

        self.todos.append(summary)
        wrapped = textwrap.wrap(summary, width=100, break_long_words=False, break_on_hyphens=False)
        comment = [f"-- TODO: {wrapped[0]}", *(f"--       {line}" for line in wrapped[1:])]
        self.blocks.append("\n".join([*comment, *(f"--   {line}" for line in lines)]))

    def body(self) -> str:
        return "\n\n".join(self.blocks) + "\n"


def require_alembic() -> None:
    try:
        import alembic.autogenerate  # noqa: F401
    except ImportError:
        raise ConfigError(MISSING_ALEMBIC) from None


async def generate(
    conn: asyncpg.Connection,
    where: ConnectionSettings,
    files: Sequence[MigrationFile],
    options: runner.Options,
    metadata: MetaData,
    *,
    server_settings: dict[str, str] | None = None,
    note: Callable[[str], None] | None = None,
) -> Generated:
    """Apply `files` to a scratch database on `conn`'s server (reached through `where`) and compare it with
    `metadata`; the SQL (and TODOs) that make the one the other."""
    require_alembic()
    from sqlalchemy.ext.asyncio import create_async_engine

    each = replace(options, target=None, allow_out_of_order=False, transaction=TransactionMode.PER_FILE, audit=False)
    async with scratch_database(conn, where, note=note, purpose="new --from-models", needs="the comparison") as scratch:
        if files:
            await runner.apply(scratch, files, each)
        name = str(await scratch.fetchval("SELECT current_database()"))
        there = replace(where, database=name)

        async def connect() -> asyncpg.Connection:
            return await asyncpg.connect(**there.asyncpg_kwargs())

        engine = create_async_engine("postgresql+asyncpg://", async_creator=connect, poolclass=_null_pool())
        try:
            async with engine.connect() as connection:
                return await connection.run_sync(lambda sync: _compare(sync, metadata, options.ledger))
        finally:
            await engine.dispose()


def _null_pool() -> Any:
    from sqlalchemy.pool import NullPool

    return NullPool


def _compare(conn: Connection, metadata: MetaData, ledger: LedgerTable) -> Generated:
    from alembic.autogenerate import produce_migrations
    from alembic.migration import MigrationContext

    schemas = {table.schema for table in metadata.tables.values()}
    runner_tables = {ledger.name, ledger.audit.name}

    def include_name(name: str | None, type_: str, parent_names: dict[str, Any]) -> bool:
        if type_ == "schema":
            return name in schemas
        if type_ == "table":
            schema = parent_names.get("schema_name") or "public"
            return not (schema == ledger.schema and name in runner_tables)
        return True

    context = MigrationContext.configure(
        connection=conn,
        opts={
            "include_schemas": True,
            "include_name": include_name,
            "compare_type": True,
            "compare_server_default": True,
            "target_metadata": metadata,
        },
    )
    script = produce_migrations(context, metadata)
    writer = _Writer(conn, metadata)
    upgrade = script.upgrade_ops
    assert upgrade is not None
    for op in _flatten(upgrade.ops):
        writer.write(op)
    return writer.out


def _flatten(operations: Sequence[Any]) -> Iterator[Any]:
    from alembic.operations import ops

    for op in operations:
        if isinstance(op, ops.ModifyTableOps):
            yield from _flatten(op.ops)
        else:
            yield op


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


class _Writer:
    """Alembic's operations as idempotent PostgreSQL, into `out`."""

    def __init__(self, conn: Connection, metadata: MetaData) -> None:
        self.conn = conn
        self.metadata = metadata
        self.dialect: Dialect = conn.dialect
        self.quote = self.dialect.identifier_preparer.quote
        self.out = Generated()
        self.schemas_made: set[str] = set()
        self.added: dict[tuple[str | None, str], list[str]] = {}
        """Columns added so far, by table: a column dropped from the same table may be one of them renamed."""
        self.created_tables: list[str] = []

    def table_name(self, schema: str | None, name: str) -> str:
        return f"{self.quote(schema)}.{self.quote(name)}" if schema else self.quote(name)

    def compiled(self, element: Any) -> str:
        text = str(element.compile(dialect=self.dialect)).strip().replace("\t", "    ")
        return "\n".join(line.rstrip() for line in text.splitlines())

    def model_table(self, schema: str | None, name: str) -> Table | None:
        return self.metadata.tables.get(f"{schema}.{name}" if schema else name)

    def write(self, op: Any) -> None:
        from alembic.operations import ops

        handlers: list[tuple[type[Any], Callable[[Any], None]]] = [
            (ops.CreateTableOp, self.create_table),
            (ops.DropTableOp, self.drop_table),
            (ops.AddColumnOp, self.add_column),
            (ops.DropColumnOp, self.drop_column),
            (ops.AlterColumnOp, self.alter_column),
            (ops.CreateIndexOp, self.create_index),
            (ops.DropIndexOp, self.drop_index),
            (ops.AddConstraintOp, self.add_constraint),
            (ops.DropConstraintOp, self.drop_constraint),
            (ops.CreateTableCommentOp, self.table_comment),
            (ops.DropTableCommentOp, self.table_comment),
        ]
        for kind, handler in handlers:
            if isinstance(op, kind):
                handler(op)
                return
        self.out.todo(f"a change this generator cannot write as SQL; write it by hand: {op!r}")

    # tables

    def create_schema(self, schema: str | None) -> None:
        if schema is None or schema in self.schemas_made:
            return
        self.schemas_made.add(schema)
        if not self.dialect.has_schema(self.conn, schema):
            self.out.add(f"CREATE SCHEMA IF NOT EXISTS {self.quote(schema)};")

    def create_table(self, op: Any) -> None:
        from sqlalchemy.schema import CreateTable

        model = self.model_table(op.schema, op.table_name)
        table = model if model is not None else op.to_table()
        self.create_schema(table.schema)
        name = self.table_name(table.schema, table.name)
        self.created_tables.append(name)
        self.out.add(self.compiled(CreateTable(table, if_not_exists=True)) + ";")
        if table.comment:
            self.out.add(f"COMMENT ON TABLE {name} IS {_literal(table.comment)};")
        for column in table.columns:
            if column.comment:
                self.out.add(f"COMMENT ON COLUMN {name}.{self.quote(column.name)} IS {_literal(column.comment)};")
            self.check_type(column.type, f"{name}.{column.name}")

    def drop_table(self, op: Any) -> None:
        name = self.table_name(op.schema, op.table_name)
        created = (
            f" (or was it renamed to {', '.join(self.created_tables)}, created above?)" if self.created_tables else ""
        )
        self.out.todo(
            f"table {name} is in the database but in no model: drop it{created}; a drop loses its rows, a rename "
            "(ALTER TABLE ... RENAME TO, instead of the CREATE TABLE) keeps them",
            f"DROP TABLE IF EXISTS {name};",
        )

    def table_comment(self, op: Any) -> None:
        name = self.table_name(op.schema, op.table_name)
        comment = getattr(op, "comment", None)
        self.out.add(f"COMMENT ON TABLE {name} IS {_literal(comment) if comment else 'NULL'};")

    # columns

    def add_column(self, op: Any) -> None:
        from sqlalchemy.schema import CreateColumn

        column = op.column
        name = self.table_name(op.schema, op.table_name)
        spec = self.compiled(CreateColumn(column))
        if not column.nullable and column.server_default is None and not column.primary_key:
            self.out.todo(
                f"{name}.{column.name} is NOT NULL without a default: adding it fails on a table that has rows; "
                "give it a server_default, or add it nullable, fill it, then SET NOT NULL"
            )
        self.out.add(f"ALTER TABLE {name} ADD COLUMN IF NOT EXISTS {spec};")
        if column.comment:
            self.out.add(f"COMMENT ON COLUMN {name}.{self.quote(column.name)} IS {_literal(column.comment)};")
        self.added.setdefault((op.schema, op.table_name), []).append(column.name)
        self.check_type(column.type, f"{name}.{column.name}")

    def drop_column(self, op: Any) -> None:
        name = self.table_name(op.schema, op.table_name)
        column = op.column_name
        added = self.added.get((op.schema, op.table_name), [])
        renamed = ""
        if added:
            to = self.quote(added[0]) if len(added) == 1 else "..."
            renamed = (
                f" (or was it renamed to {' or '.join(added)}, added above? then replace that ADD COLUMN with "
                f"ALTER TABLE {name} RENAME COLUMN {self.quote(column)} TO {to}, which keeps the data)"
            )
        self.out.todo(
            f"column {name}.{column} is in the database but in no model: drop it{renamed}; a drop loses its data",
            f"ALTER TABLE {name} DROP COLUMN IF EXISTS {self.quote(column)};",
        )

    def alter_column(self, op: Any) -> None:
        name = self.table_name(op.schema, op.table_name)
        column = self.quote(op.column_name)
        alter = f"ALTER TABLE {name} ALTER COLUMN {column}"
        if op.modify_type is not None:
            self.alter_type(op, name, column, alter)
        if op.modify_nullable is True:
            self.out.add(f"{alter} DROP NOT NULL;")
        elif op.modify_nullable is False:
            self.out.todo(
                f"{name}.{op.column_name} becomes NOT NULL: SET NOT NULL fails while a row holds NULL there; fill "
                "those rows first (an UPDATE above the statement below) if there can be any"
            )
            self.out.add(f"{alter} SET NOT NULL;")
        if op.modify_server_default is not False:
            default = op.modify_server_default
            if default is None:
                self.out.add(f"{alter} DROP DEFAULT;")
            else:
                self.out.add(f"{alter} SET DEFAULT {self.default_sql(default)};")
        if op.modify_comment is not False:
            comment = op.modify_comment
            self.out.add(f"COMMENT ON COLUMN {name}.{column} IS {_literal(comment) if comment else 'NULL'};")

    def alter_type(self, op: Any, name: str, column: str, alter: str) -> None:
        new = self.compiled(op.modify_type)
        old = self.compiled(op.existing_type) if op.existing_type is not None else "its current type"
        if op.existing_type is not None and self.implicit_cast(old, new):
            self.out.add(f"{alter} TYPE {new};")
            return
        self.out.todo(
            f"{name}.{op.column_name} changes type from {old} to {new}, which PostgreSQL does not cast implicitly: "
            "write how each value converts (USING), or move the data by hand",
            f"{alter} TYPE {new} USING {column}::{new};",
        )

    def implicit_cast(self, old: str, new: str) -> bool:
        """Whether PostgreSQL converts `old` to `new` by itself (the same base type, or an implicit or
        assignment cast), so ALTER COLUMN ... TYPE needs no USING."""
        from sqlalchemy import text

        query = text(
            "SELECT to_regtype(:old) = to_regtype(:new) OR EXISTS (SELECT FROM pg_catalog.pg_cast "
            "WHERE castsource = to_regtype(:old) AND casttarget = to_regtype(:new) AND castcontext IN ('i', 'a'))"
        )
        with contextlib.suppress(Exception):
            return bool(self.conn.execute(query, {"old": old, "new": new}).scalar())
        return False

    def default_sql(self, default: Any) -> str:
        from sqlalchemy.sql.elements import TextClause
        from sqlalchemy.sql.schema import DefaultClause

        if isinstance(default, DefaultClause):
            default = default.arg
        if isinstance(default, str):
            return _literal(default)
        if isinstance(default, TextClause):
            return default.text
        return str(default.compile(dialect=self.dialect, compile_kwargs={"literal_binds": True}))

    def check_type(self, type_: Any, where: str) -> None:
        """A native enum type must exist before a column uses it; CREATE TYPE has no IF NOT EXISTS."""
        from sqlalchemy import Enum

        if isinstance(type_, Enum) and type_.native_enum:
            self.out.todo(
                f"{where} uses the PostgreSQL enum type {type_.name}: create it first, guarded (a DO block that "
                "checks pg_type), above the statement that uses it",
                f"CREATE TYPE {type_.name} AS ENUM ({', '.join(_literal(str(e)) for e in type_.enums)});",
            )

    # indexes and constraints

    def create_index(self, op: Any) -> None:
        from sqlalchemy.schema import CreateIndex

        table = self.model_table(op.schema, op.table_name)
        index = next((i for i in table.indexes if i.name == op.index_name), None) if table is not None else None
        self.out.add(self.compiled(CreateIndex(index or op.to_index(), if_not_exists=True)) + ";")

    def drop_index(self, op: Any) -> None:
        self.out.add(f"DROP INDEX IF EXISTS {self.table_name(op.schema, op.index_name)};")

    def add_constraint(self, op: Any) -> None:
        from sqlalchemy.schema import AddConstraint

        # A foreign key's op names its table as the source (`source_table`; the schema among its `kw`).
        schema = getattr(op, "schema", None) or getattr(op, "kw", {}).get("source_schema")
        table_name = getattr(op, "table_name", None) or op.source_table
        table = self.model_table(schema, table_name)
        found = [c for c in table.constraints if c.name == op.constraint_name] if table is not None else []
        constraint = found[0] if found else op.to_constraint()
        name = self.table_name(schema, table_name)
        if not constraint.name:
            self.out.todo(f"a constraint on {name} without a name: name it in the model (the naming convention)")
            return
        statement = self.compiled(AddConstraint(constraint))
        named = _literal(str(constraint.name))
        # ADD CONSTRAINT has no IF NOT EXISTS: add it only when the table has no constraint of that name.
        self.out.add(
            "DO $$\nBEGIN\n"
            f"    IF NOT EXISTS (SELECT FROM pg_catalog.pg_constraint WHERE conname = {named}\n"
            f"                   AND conrelid = {_literal(name)}::regclass) THEN\n"
            f"        {statement};\n"
            "    END IF;\nEND\n$$;"
        )

    def drop_constraint(self, op: Any) -> None:
        name = self.table_name(op.schema, op.table_name)
        self.out.add(f"ALTER TABLE {name} DROP CONSTRAINT IF EXISTS {self.quote(op.constraint_name)};")


def file_text(filename: str, generated: Generated) -> str:
    """The migration file: what it is, how to finish it, then the SQL."""
    from src.migrate.files import TEMPLATE_MARKER

    todos = (
        f"-- {len(generated.todos)} TODO(s) below need a person: resolve each, then delete its lines.\n"
        if generated.todos
        else "-- Nothing was left for a person to decide; review it all the same.\n"
    )
    if not generated.statements:
        # Only TODOs: as a file of comments it would apply as an empty migration. The template's marker makes
        # `apply` refuse it until a person writes a statement (or deletes the marker on purpose).
        todos += f"-- While it holds no statement, `migrate apply` refuses it: {TEMPLATE_MARKER}\n"
    return (
        f"-- {filename}: generated by `migrate new --from-models` from the ORM models, to bring the schema\n"
        "-- the migrations build to them (compared by Alembic's autogenerate on a scratch database).\n"
        "-- Every statement is written to run twice harmlessly. Review it before applying: `migrate lint`,\n"
        "-- `migrate apply`, then `migrate new --from-models` again should find nothing left to do.\n"
        f"{todos}\n" + generated.body()
    )
