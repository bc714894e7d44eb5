"""The ORM models and the SQL migrations describe the same schema, in both directions."""

from __future__ import annotations

from typing import Any

import asyncpg
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext
from sqlalchemy import Connection

from src.database.manager import DatabaseManager
from src.database.models import Base
from src.migrate import runner
from src.migrate.files import discover
from tests.support import PROJECT_MIGRATIONS

SCHEMAS = {"messaging", "tasks", "agents", "telegram"}


def _include_name(name: str | None, type_: str, parent_names: Any) -> bool:
    if type_ == "schema":
        return name in SCHEMAS
    return True


def _differences(sync_conn: Connection) -> list[Any]:
    context = MigrationContext.configure(
        connection=sync_conn,
        opts={
            "include_schemas": True,
            "include_name": _include_name,
            "compare_type": True,
            "compare_server_default": True,
        },
    )
    return list(compare_metadata(context, Base.metadata))


async def test_models_and_migrations_describe_the_same_schema(
    conn: asyncpg.Connection, manager: DatabaseManager
) -> None:
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    async with manager.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    assert differences == []


async def test_the_comparison_notices_a_difference(conn: asyncpg.Connection, manager: DatabaseManager) -> None:
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    await conn.execute("ALTER TABLE tasks.todos ADD COLUMN stray text")
    await conn.execute("DROP INDEX tasks.ix_todos_chat_id")
    async with manager.engine.connect() as connection:
        differences = await connection.run_sync(_differences)
    kinds = {d[0] if isinstance(d, tuple) else d[0][0] for d in differences}
    assert {"remove_column", "add_index"} <= kinds
