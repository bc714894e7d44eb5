"""The direct path (src.database.direct): the hot repository calls run one statement straight on a pooled
connection and still hand back the session's own ORM objects, with the same results as the ORM path.

Round trips are pinned in test_round_trips.py; here, what a caller can see: objects that behave as loaded
ones, writes stored when the call returns, errors named as before, the slow-statement log, a dead
connection replaced, and a tracer on the engine still seeing every statement.
"""

from __future__ import annotations

import logging
import uuid

import asyncpg
import pytest
from sqlalchemy import event, inspect, select

from src.database import direct
from src.database.errors import ConnectionLost, NotFound, ReadOnlySession
from src.database.manager import DatabaseManager
from src.database.models import Todo, TodoStatus
from src.database.repositories import messaging, tasks
from src.postgres.settings import ConnectionSettings
from tests.support import config_for


async def stored_title(database: ConnectionSettings, todo_id: uuid.UUID) -> str | None:
    conn = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        title: str | None = await conn.fetchval("SELECT title FROM tasks.todos WHERE id = $1", todo_id)
        return title
    finally:
        await conn.close()


async def test_a_plain_session_takes_the_direct_path_and_a_transaction_does_not(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert direct.usable(session, write=True)
    async with migrated.session(readonly=True) as session:
        assert direct.usable(session, write=False)
        assert not direct.usable(session, write=True)
    async with migrated.transaction() as session:
        assert not direct.usable(session, write=True)
        assert not direct.usable(session, write=False)


async def test_an_object_read_directly_is_persistent_in_the_session(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        created = await tasks.create_todo(session, {"title": "read me", "metadata": {"k": [1, 2]}})
    async with migrated.session() as session:
        todo = await tasks.get_todo(session, created.id)
        assert todo is not None
        state = inspect(todo)
        assert state.persistent
        assert todo in session
        assert not state.modified
        assert state.unloaded & {c.key for c in inspect(Todo).column_attrs} == set()
        assert (todo.title, todo.status, todo.metadata_) == ("read me", TodoStatus.PENDING, {"k": [1, 2]})


async def test_a_change_to_a_directly_read_object_is_stored_by_commit(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    async with migrated.session() as session:
        created = await tasks.create_todo(session, {"title": "before"})
    async with migrated.session() as session:
        todo = await tasks.get_todo(session, created.id)
        assert todo is not None
        todo.title = "after"
        await session.commit()
    assert await stored_title(database, created.id) == "after"


async def test_the_same_row_twice_in_a_session_is_the_same_object(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        created = await tasks.create_todo(session, {"title": "once", "status": "in_progress"})
        again = await tasks.get_todo(session, created.id)
        listed = await tasks.get_todos_by_status(session, "in_progress")
    assert again is created
    assert any(item is created for item in listed)


async def test_an_update_refreshes_the_object_the_session_holds(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "old"})
        first_update = todo.updated_at
        updated = await tasks.update_todo(session, todo.id, {"title": "new", "priority": 1})
    assert updated is todo
    assert (todo.title, todo.priority) == ("new", 1)
    assert todo.updated_at >= first_update


async def test_a_direct_write_is_stored_when_the_call_returns_even_if_the_block_fails(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.session() as session:
            todo = await tasks.create_todo(session, {"title": "kept"})
            raise RuntimeError("the agent failed after the write")
    assert await stored_title(database, todo.id) == "kept"


async def test_writes_in_a_transaction_still_roll_back_together(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.transaction() as session:
            todo = await tasks.create_todo(session, {"title": "undone"})
            raise RuntimeError("abort")
    assert await stored_title(database, todo.id) is None


async def test_an_object_added_by_hand_is_flushed_before_a_read_sees_the_table(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        session.add(Todo(title="pending by hand", status=TodoStatus.CANCELLED))
        assert not direct.usable(session, write=False)  # the ORM path flushes it first, as autoflush does
        listed = await tasks.get_todos_by_status(session, "cancelled")
        assert "pending by hand" in [t.title for t in listed]


async def test_a_missing_chat_is_not_found_naming_the_field(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound) as caught:
            await tasks.create_todo(session, {"title": "orphan", "chat_id": missing})
        assert "todo.chat_id" in str(caught.value)
        assert str(missing) in str(caught.value)
        still = await tasks.create_todo(session, {"title": "the session is still usable"})
    assert still.id is not None


async def test_a_write_in_a_readonly_session_is_refused(migrated: DatabaseManager) -> None:
    async with migrated.session(readonly=True) as session:
        with pytest.raises(ReadOnlySession):
            await tasks.create_todo(session, {"title": "nope"})


async def test_recent_messages_come_in_the_order_they_were_added(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, {"title": "order"})
        await messaging.add_messages(session, chat.id, [{"role": "user", "content": f"m{i}"} for i in range(8)])
    async with migrated.session(readonly=True) as session:
        recent = await messaging.get_recent_messages(session, chat.id, limit=3)
        loaded = await messaging.get_chat_with_recent_messages(session, chat.id, recent=3)
    assert [m.content for m in recent] == ["m5", "m6", "m7"]
    assert loaded is not None
    assert loaded.messages == recent


async def test_a_tracer_on_the_engine_sees_every_statement(migrated: DatabaseManager) -> None:
    seen: list[str] = []

    def record(conn: object, cursor: object, statement: str, *rest: object) -> None:
        seen.append(statement)

    event.listen(migrated.engine.sync_engine, "before_cursor_execute", record)
    try:
        async with migrated.session() as session:
            todo = await tasks.create_todo(session, {"title": "traced"})
            await tasks.get_todo(session, todo.id)
    finally:
        event.remove(migrated.engine.sync_engine, "before_cursor_execute", record)
    assert any(s.startswith("INSERT INTO tasks.todos") for s in seen), seen


async def test_the_slow_statement_log_covers_direct_statements(
    database: ConnectionSettings, migrated: DatabaseManager, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="src.database.slow")
    async with DatabaseManager(config_for(database, slow_statement_ms=0)) as manager, manager.session() as session:
        assert direct.usable(session, write=True)
        await tasks.create_todo(session, {"title": "secret title"})
    [record] = [r for r in caplog.records if r.name == "src.database.slow"]
    assert "INSERT INTO tasks.todos" in record.getMessage()
    assert "secret title" not in caplog.text


async def test_a_connection_killed_under_a_call_is_named_and_replaced(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "survives"})
    killer = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await killer.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity "
            "WHERE datname = current_database() AND pid <> pg_backend_pid()"
        )
    finally:
        await killer.close()
    # Used a moment ago, so the pool trusts it without a ping: the call meets the dead connection.
    with pytest.raises(ConnectionLost):
        async with migrated.session() as session:
            await tasks.get_todo(session, todo.id)
    async with migrated.session() as session:
        again = await tasks.get_todo(session, todo.id)
    assert again is not None
    assert again.title == "survives"


async def test_the_direct_path_and_the_orm_path_load_the_same_values(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        created = await tasks.create_todo(session, {"title": "same", "priority": 5, "metadata": {"a": None}})
    async with migrated.session() as session:
        fast = await tasks.get_todo(session, created.id)
    async with migrated.transaction() as session:
        orm = (await session.scalars(select(Todo).where(Todo.id == created.id))).one()
    columns = [c.key for c in inspect(Todo).column_attrs]
    assert fast is not None
    assert {k: getattr(fast, k) for k in columns} == {k: getattr(orm, k) for k in columns}
