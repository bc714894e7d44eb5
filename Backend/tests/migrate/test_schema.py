"""The project's own migrations, applied to an empty database, build the schema the files describe."""

from __future__ import annotations

import asyncpg
import pytest

from src.migrate import catalog, runner
from src.migrate.files import discover
from tests.support import PROJECT_MIGRATIONS

TABLES = {
    ("messaging", "chats"),
    ("messaging", "messages"),
    ("tasks", "todos"),
    ("agents", "executions"),
    ("telegram", "sessions"),
}


async def migrate(conn: asyncpg.Connection) -> runner.ApplyResult:
    return await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())


async def test_every_migration_applies_to_an_empty_database(conn: asyncpg.Connection) -> None:
    result = await migrate(conn)
    files = discover(PROJECT_MIGRATIONS)
    assert [a.file.version for a in result.applied] == [f.version for f in files]
    assert await conn.fetchval("SELECT count(*) FROM public.migration_ledger") == len(files)


async def test_each_domain_gets_its_own_schema_and_tables(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    rows = await conn.fetch(
        "SELECT table_schema, table_name FROM information_schema.tables "
        "WHERE table_schema IN ('messaging', 'tasks', 'agents', 'telegram')"
    )
    assert {(r["table_schema"], r["table_name"]) for r in rows} == TABLES


@pytest.mark.parametrize(("schema", "table"), sorted(TABLES))
async def test_every_table_has_the_common_columns(conn: asyncpg.Connection, schema: str, table: str) -> None:
    await migrate(conn)
    rows = await conn.fetch(
        "SELECT column_name, data_type, is_nullable, column_default FROM information_schema.columns "
        "WHERE table_schema = $1 AND table_name = $2",
        schema,
        table,
    )
    columns = {r["column_name"]: (r["data_type"], r["is_nullable"], r["column_default"]) for r in rows}
    assert columns["id"] == ("uuid", "NO", "gen_random_uuid()")
    assert columns["created_at"] == ("timestamp with time zone", "NO", "now()")
    assert columns["updated_at"] == ("timestamp with time zone", "NO", "now()")
    assert columns["metadata"] == ("jsonb", "NO", "'{}'::jsonb")
    primary = await conn.fetchval(
        "SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = $1::regclass AND contype = 'p'",
        f"{schema}.{table}",
    )
    assert primary == "PRIMARY KEY (id)"


@pytest.mark.parametrize(("schema", "table"), sorted(TABLES))
async def test_every_table_has_a_comment(conn: asyncpg.Connection, schema: str, table: str) -> None:
    await migrate(conn)
    assert await conn.fetchval("SELECT obj_description($1::regclass, 'pg_class')", f"{schema}.{table}")


async def test_foreign_keys_say_what_happens_on_delete(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    rows = await conn.fetch(
        "SELECT conrelid::regclass::text AS tbl, confrelid::regclass::text AS ref, confdeltype::text "
        "FROM pg_constraint WHERE contype = 'f'"
    )
    actions = {r["tbl"]: (r["ref"], r["confdeltype"]) for r in rows}
    assert actions == {
        "messaging.messages": ("messaging.chats", "c"),  # cascade: messages die with their chat
        "tasks.todos": ("messaging.chats", "n"),  # set null: the rest outlive it
        "agents.executions": ("messaging.chats", "n"),
        "telegram.sessions": ("messaging.chats", "n"),
    }


@pytest.mark.parametrize(
    ("index", "definition"),
    [
        ("tasks.ix_todos_status_created_at", "(status, created_at DESC, id DESC)"),
        ("messaging.ix_messages_chat_id_created_at", "(chat_id, created_at, id)"),
        ("agents.ix_executions_status_started_at", "(status, started_at DESC, id DESC)"),
        ("agents.ix_executions_metadata", "USING gin (metadata jsonb_path_ops)"),
        ("telegram.ix_sessions_expires_at", "(expires_at) WHERE (expires_at IS NOT NULL)"),
    ],
)
async def test_indexes_serve_the_repository_queries(conn: asyncpg.Connection, index: str, definition: str) -> None:
    await migrate(conn)
    assert definition in await conn.fetchval("SELECT pg_get_indexdef($1::regclass)", index)


async def test_todo_defaults_are_pending_and_priority_3(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    row = await conn.fetchrow("INSERT INTO tasks.todos (title) VALUES ('write tests') RETURNING status, priority")
    assert (row["status"], row["priority"]) == ("pending", 3)


@pytest.mark.parametrize(
    ("columns", "values"),
    [
        ("title, status", "'t', 'done'"),
        ("title, priority", "'t', 6"),
        ("title, priority", "'t', 0"),
        ("title", "'   '"),
        ("title, metadata", "'t', '[1, 2]'"),
    ],
)
async def test_todo_constraints_refuse_bad_rows(conn: asyncpg.Connection, columns: str, values: str) -> None:
    await migrate(conn)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute(f"INSERT INTO tasks.todos ({columns}) VALUES ({values})")


async def test_todo_titles_longer_than_500_characters_are_refused(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    await conn.execute("INSERT INTO tasks.todos (title) VALUES ($1)", "x" * 500)
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("INSERT INTO tasks.todos (title) VALUES ($1)", "x" * 501)


async def test_a_message_role_outside_the_allowed_set_is_refused(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    chat = await conn.fetchval("INSERT INTO messaging.chats DEFAULT VALUES RETURNING id")
    with pytest.raises(asyncpg.CheckViolationError):
        await conn.execute("INSERT INTO messaging.messages (chat_id, role, content) VALUES ($1, 'robot', 'x')", chat)


async def test_telegram_chat_ids_are_unique(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    insert = "INSERT INTO telegram.sessions (telegram_user_id, telegram_chat_id) VALUES ($1, $2)"
    await conn.execute(insert, 1, -1001234567890)
    with pytest.raises(asyncpg.UniqueViolationError):
        await conn.execute(insert, 2, -1001234567890)


async def test_deleting_a_chat_deletes_its_messages_and_unlinks_the_rest(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    chat = await conn.fetchval("INSERT INTO messaging.chats DEFAULT VALUES RETURNING id")
    await conn.execute("INSERT INTO messaging.messages (chat_id, role, content) VALUES ($1, 'user', 'hi')", chat)
    todo = await conn.fetchval("INSERT INTO tasks.todos (title, chat_id) VALUES ('t', $1) RETURNING id", chat)
    await conn.execute("DELETE FROM messaging.chats WHERE id = $1", chat)
    assert await conn.fetchval("SELECT count(*) FROM messaging.messages") == 0
    assert await conn.fetchval("SELECT chat_id FROM tasks.todos WHERE id = $1", todo) is None


async def test_updated_at_moves_on_every_update(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    created = await conn.fetchrow("INSERT INTO tasks.todos (title) VALUES ('t') RETURNING id, updated_at")
    updated = await conn.fetchval(
        "UPDATE tasks.todos SET title = 'u' WHERE id = $1 RETURNING updated_at", created["id"]
    )
    assert updated > created["updated_at"]


async def test_a_second_apply_applies_nothing(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    again = await migrate(conn)
    assert again.applied == []
    assert again.lock_wait_s is None  # nothing pending: the lock was not even taken


async def test_rerunning_every_file_changes_nothing(conn: asyncpg.Connection) -> None:
    await migrate(conn)
    before = await catalog.snapshot(conn)
    for file in discover(PROJECT_MIGRATIONS):
        await conn.execute(file.sql)
    assert catalog.differences(before, await catalog.snapshot(conn)) == []
