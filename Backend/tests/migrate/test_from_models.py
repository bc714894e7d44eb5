"""`migrate new NAME --from-models`: the SQL that brings the migrated schema to the ORM models, compared by
Alembic in a scratch database; round trips on a real server (change a model, generate, apply, compare
again: nothing left), and the TODOs for what the comparison cannot decide."""

from __future__ import annotations

import shutil
import sys
from pathlib import Path
from typing import Any

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from click.testing import CliRunner, Result
from sqlalchemy import (
    BigInteger,
    Column,
    ForeignKey,
    Identity,
    Index,
    Integer,
    MetaData,
    Table,
    Text,
    UniqueConstraint,
    text,
)
from sqlalchemy.dialects.postgresql import UUID
from sqlalchemy.ext.asyncio import create_async_engine

from src.app.cli import main
from src.database.models import Base
from src.database.models.base import NAMING_CONVENTION
from src.migrate import commands
from src.migrate.errors import MigrationFileError
from src.postgres.settings import ConnectionSettings
from tests.support import PROJECT_MIGRATIONS, url_of

SCHEMAS = {"messaging", "tasks", "agents", "telegram"}


def project_folder(tmp_path: Path) -> Path:
    folder = tmp_path / "migrations"
    folder.mkdir()
    for path in sorted(PROJECT_MIGRATIONS.glob("*.sql")):
        shutil.copy(path, folder / path.name)
    return folder


def copy_of_models() -> MetaData:
    metadata = MetaData(naming_convention=NAMING_CONVENTION)
    for table in Base.metadata.sorted_tables:
        table.to_metadata(metadata)
    return metadata


def with_labels_and_an_estimate() -> MetaData:
    """The models plus a table (a foreign key, a unique constraint, comments), a column and an index."""
    metadata = copy_of_models()
    todos = metadata.tables["tasks.todos"]
    todos.append_column(
        Column("estimate_minutes", Integer, nullable=False, server_default=text("0"), comment="Minutes it may take.")
    )
    Index("ix_todos_estimate_minutes", todos.c.estimate_minutes)
    Table(
        "labels",
        metadata,
        Column("id", BigInteger, Identity(), primary_key=True),
        Column("todo_id", UUID(as_uuid=True), ForeignKey("tasks.todos.id", ondelete="CASCADE"), nullable=False),
        Column("name", Text, nullable=False, comment="The label, as shown."),
        UniqueConstraint("todo_id", "name"),
        schema="tasks",
        comment="Labels a user puts on todos.",
    )
    return metadata


def with_changed_columns() -> MetaData:
    """The models with a column's type widened (smallint to integer), its default, nullability and comment
    changed, a self-referencing foreign key and a unique constraint on an existing table, an index gone, and
    a new schema-qualified table in a schema the migrations never made."""
    metadata = copy_of_models()
    todos = metadata.tables["tasks.todos"]
    todos.append_column(Column("parent_id", UUID(as_uuid=True), ForeignKey("tasks.todos.id", ondelete="SET NULL")))
    todos.append_constraint(UniqueConstraint("title", "chat_id"))
    todos.indexes.remove(next(i for i in todos.indexes if i.name == "ix_todos_chat_id"))
    priority = metadata.tables["tasks.todos"].c.priority
    priority.type = Integer()
    priority.server_default.arg = text("2")  # type: ignore[union-attr]
    priority.comment = "1 (highest) to 5 (lowest); 2 by default."
    metadata.tables["tasks.todos"].c.title.nullable = True
    Table("events", metadata, Column("id", BigInteger, Identity(), primary_key=True), schema="audit_log")
    return metadata


def with_a_renamed_and_a_retyped_column() -> MetaData:
    """What the comparison cannot decide: `title` renamed to `heading` (a drop and an add, to it), and
    `priority` made text (no implicit cast back: it needs USING)."""
    metadata = copy_of_models()
    todos = metadata.tables["tasks.todos"]
    title = todos.c.title
    todos._columns.remove(title)
    todos.append_column(Column("heading", Text, nullable=False))
    todos.c.priority.type = UUID()
    return metadata


def settings_for(database: ConnectionSettings, folder: Path) -> Any:
    return commands.settings(database_url=url_of(database), migrations_dir=folder)


async def drift(database: ConnectionSettings, metadata: MetaData) -> list[Any]:
    """Alembic's differences between `database` and `metadata`, as the models' drift check finds them."""
    import asyncpg

    async def connect() -> asyncpg.Connection:
        return await asyncpg.connect(**database.asyncpg_kwargs())

    def include_name(name: str | None, type_: str, parent_names: Any) -> bool:
        return name in SCHEMAS | {"audit_log"} if type_ == "schema" else name != "migration_ledger_audit"

    def differences(sync: Any) -> list[Any]:
        context = MigrationContext.configure(
            connection=sync,
            opts={
                "include_schemas": True,
                "include_name": include_name,
                "compare_type": True,
                "compare_server_default": True,
            },
        )
        return list(compare_metadata(context, metadata))

    engine = create_async_engine("postgresql+asyncpg://", async_creator=connect)
    try:
        async with engine.connect() as connection:
            return await connection.run_sync(differences)
    finally:
        await engine.dispose()


async def round_trip(database: ConnectionSettings, tmp_path: Path, metadata: MetaData) -> str:
    """Generate from `metadata`, apply, and check nothing is left to do; the generated file's text."""
    settings = settings_for(database, project_folder(tmp_path))
    made = await commands.new_from_models(settings, "from models", metadata)
    assert made.path is not None
    assert made.generated.todos == []
    await commands.apply(settings)
    assert (await commands.new_from_models(settings, "again", metadata)).path is None
    assert await drift(database, metadata) == []
    verified = await commands.verify(settings, rerun=True)
    assert verified.rerun is not None
    assert verified.rerun.problems == []  # the generated file runs twice harmlessly
    return made.path.read_text()


async def test_a_new_table_column_and_index_round_trip(database: ConnectionSettings, tmp_path: Path) -> None:
    sql = await round_trip(database, tmp_path, with_labels_and_an_estimate())
    assert "CREATE TABLE IF NOT EXISTS tasks.labels (" in sql
    assert "ALTER TABLE tasks.todos ADD COLUMN IF NOT EXISTS estimate_minutes INTEGER DEFAULT 0 NOT NULL;" in sql
    assert "CREATE INDEX IF NOT EXISTS ix_todos_estimate_minutes ON tasks.todos (estimate_minutes);" in sql
    assert "COMMENT ON TABLE tasks.labels IS 'Labels a user puts on todos.';" in sql


async def test_changed_types_defaults_nullability_comments_and_a_new_schema_round_trip(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    sql = await round_trip(database, tmp_path, with_changed_columns())
    assert "ALTER TABLE tasks.todos ALTER COLUMN priority TYPE INTEGER;" in sql
    assert "ALTER TABLE tasks.todos ALTER COLUMN priority SET DEFAULT 2;" in sql
    assert "ALTER TABLE tasks.todos ALTER COLUMN title DROP NOT NULL;" in sql
    assert "CREATE SCHEMA IF NOT EXISTS audit_log;" in sql
    assert "ALTER TABLE tasks.todos ADD CONSTRAINT uq_todos_title_chat_id UNIQUE (title, chat_id);" in sql
    assert "FOREIGN KEY(parent_id) REFERENCES tasks.todos (id) ON DELETE SET NULL;" in sql
    assert "DROP INDEX IF EXISTS tasks.ix_todos_chat_id;" in sql


async def test_what_the_comparison_cannot_decide_is_left_as_todos(database: ConnectionSettings, tmp_path: Path) -> None:
    settings = settings_for(database, project_folder(tmp_path))
    made = await commands.new_from_models(settings, "rename title", with_a_renamed_and_a_retyped_column())
    assert made.path is not None
    sql = made.path.read_text()
    todos = made.generated.todos
    assert any(t.startswith("column tasks.todos.title is in the database but in no model: drop it (or") for t in todos)
    assert any("RENAME COLUMN title TO heading, which keeps the data" in t for t in todos)
    assert "--   ALTER TABLE tasks.todos DROP COLUMN IF EXISTS title;" in sql
    assert any("changes type from SMALLINT to UUID, which PostgreSQL does not cast implicitly" in t for t in todos)
    assert "-- TODO: tasks.todos.priority changes type from SMALLINT to UUID" in sql
    assert "--   ALTER TABLE tasks.todos ALTER COLUMN priority TYPE UUID USING priority::UUID;" in sql
    assert len(made.generated.todos) >= 3


async def test_a_file_of_todos_alone_is_refused_by_apply_until_finished(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    metadata = copy_of_models()
    metadata.tables["tasks.todos"]._columns.remove(metadata.tables["tasks.todos"].c.completed_at)
    settings = settings_for(database, project_folder(tmp_path))
    made = await commands.new_from_models(settings, "drop completed_at", metadata)
    assert made.path is not None
    assert made.generated.statements == []
    with pytest.raises(MigrationFileError, match=made.path.name):
        await commands.apply(settings)


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_project_models_match_so_no_file_is_written(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = project_folder(tmp_path)
    before = sorted(p.name for p in folder.iterdir())
    result = migrate(
        "new", "nothing", "--from-models", "--database-url", url_of(database), "--migrations-dir", str(folder)
    )
    assert result.exit_code == 0, result.output
    assert result.stdout == "The models match the schema the migrations build; no file written.\n"
    assert sorted(p.name for p in folder.iterdir()) == before


def test_without_alembic_it_is_one_line_naming_the_extra(
    database: ConnectionSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setitem(sys.modules, "alembic", None)  # as on the runtime image, which has no `models` extra
    folder = project_folder(tmp_path)
    result = migrate("new", "x", "--from-models", "--database-url", url_of(database), "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert result.stderr == (
        "migrate: error: migrate new --from-models compares with Alembic, which is not installed; install the "
        "`models` extra: pip install 'agent-backend-db[models]'\n"
    )


def test_the_command_writes_the_next_file_and_says_what_is_in_it(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = project_folder(tmp_path)
    (folder / "007_telegram_sessions.sql").unlink()  # the models have telegram.sessions; the files no longer
    (folder / "007_telegram_sessions.down.sql").unlink(missing_ok=True)
    result = migrate(
        "new", "telegram", "--from-models", "--database-url", url_of(database), "--migrations-dir", str(folder)
    )
    assert result.exit_code == 0, result.output
    written = folder / "009_telegram.sql"
    assert result.stdout.startswith("Created migrations/009_telegram.sql: ")  # relative to the current folder
    assert "statement(s) from the models, 0 TODO(s) for a person." in result.stdout
    assert "CREATE TABLE IF NOT EXISTS telegram.sessions (" in written.read_text()
