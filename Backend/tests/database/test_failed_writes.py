"""When a write fails on the server, on a real one: the objects a caller holds stay readable, a chat that
disappears under a write is a NotFound naming the reference (never an IntegrityError), and the session
can be used afterwards.

The races are made deterministic with the server's own locks, not with timing: another connection
deletes the chat and holds the delete uncommitted, the repository call starts and is seen waiting on that
lock (pg_stat_activity), and only then is the delete committed.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.errors import NotFound
from src.database.manager import DatabaseManager
from src.database.models import Execution, Message, TelegramSession, Todo
from src.database.repositories import agents, messaging, tasks, telegram
from src.postgres.settings import ConnectionSettings

Write = Callable[[AsyncSession, uuid.UUID], Awaitable[Any]]


async def _update_todo_to(session: AsyncSession, chat_id: uuid.UUID) -> Any:
    todo = await tasks.create_todo(session, {"title": "moved later"})
    return await tasks.update_todo(session, todo.id, {"chat_id": chat_id})


WRITES: dict[str, tuple[Write, str]] = {
    "create_todo": (lambda s, c: tasks.create_todo(s, {"title": "t", "chat_id": c}), "todo.chat_id"),
    "create_todo(Todo)": (lambda s, c: tasks.create_todo(s, Todo(title="t", chat_id=c)), "todo.chat_id"),
    "create_todos": (
        lambda s, c: tasks.create_todos(s, [{"title": "a"}, {"title": "b", "chat_id": c}]),
        "todos[1].chat_id",
    ),
    "update_todo": (_update_todo_to, "todo.chat_id"),
    "add_message": (lambda s, c: messaging.add_message(s, c, "user", "hello"), "message.chat_id"),
    "add_messages": (lambda s, c: messaging.add_messages(s, c, [{"role": "user", "content": "x"}]), "chat_id"),
    "start_execution": (lambda s, c: agents.start_execution(s, "planner", chat_id=c), "execution.chat_id"),
    "upsert_session": (lambda s, c: telegram.upsert_session(s, 1, 2, chat_id=c), "telegram_session.chat_id"),
}

STORED = {Todo: "tasks.todos", Message: "messaging.messages", Execution: "agents.executions"}


async def _rows(manager: DatabaseManager, model: type[Any]) -> int:
    async with manager.session() as session:
        return int(await session.scalar(select(func.count()).select_from(model)) or 0)


@asynccontextmanager
async def deleted_meanwhile(
    database: ConnectionSettings, chat_id: uuid.UUID
) -> AsyncIterator[Callable[[asyncio.Future[Any]], Awaitable[None]]]:
    """Delete the chat on another connection and hold it uncommitted; the block gets `commit_when_waited_on`,
    which waits until some backend is blocked on that delete's lock, then commits the delete."""
    deleter = await asyncpg.connect(**database.asyncpg_kwargs())
    watcher = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        await deleter.execute("BEGIN")
        assert await deleter.execute("DELETE FROM messaging.chats WHERE id = $1", chat_id) == "DELETE 1"
        deleter_pid = deleter.get_server_pid()

        async def commit_when_waited_on(call: asyncio.Future[Any]) -> None:
            while not call.done():
                blocked = await watcher.fetchval(
                    "SELECT count(*) FROM pg_stat_activity WHERE $1 = ANY(pg_blocking_pids(pid))", deleter_pid
                )
                if blocked:
                    break
                await asyncio.sleep(0.01)
            await deleter.execute("COMMIT")

        yield commit_when_waited_on
    finally:
        await deleter.close()
        await watcher.close()


async def _race(database: ConnectionSettings, session: AsyncSession, chat_id: uuid.UUID, write: Write) -> Any:
    """Run `write` against a chat another connection deletes while the write is under way."""
    async with deleted_meanwhile(database, chat_id) as commit_when_waited_on:
        call = asyncio.ensure_future(write(session, chat_id))
        await commit_when_waited_on(call)
        return await call


@pytest.mark.parametrize("name", list(WRITES))
async def test_a_chat_deleted_during_a_write_is_not_found_and_the_session_stays_usable(
    migrated: DatabaseManager, database: ConnectionSettings, name: str
) -> None:
    write, field = WRITES[name]
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, {"title": "goes away"})
        earlier = await tasks.create_todo(session, {"title": "earlier"})
        with pytest.raises(NotFound) as raised:
            await _race(database, session, chat.id, write)
        assert str(raised.value) == f"chat {chat.id} does not exist ({field})"
        assert (raised.value.entity, raised.value.key, raised.value.field) == ("chat", chat.id, field)
        assert earlier.title == "earlier"  # what the caller holds is still readable
        after = await tasks.create_todo(session, {"title": "after"})  # and the session still works
    assert after.id is not None
    async with migrated.session() as session:
        titles = set((await session.scalars(select(Todo.title))).all())
    assert {"earlier", "after"} <= titles
    assert "t" not in titles
    assert "a" not in titles
    assert await _rows(migrated, Message) == 0
    assert await _rows(migrated, Execution) == 0
    assert await _rows(migrated, TelegramSession) == 0


@pytest.mark.parametrize("name", ["create_todo", "add_message", "start_execution", "upsert_session"])
async def test_a_chat_deleted_during_a_write_in_a_transaction_keeps_the_earlier_writes(
    migrated: DatabaseManager, database: ConnectionSettings, name: str
) -> None:
    write, field = WRITES[name]
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
    async with migrated.transaction() as session:
        earlier = await tasks.create_todo(session, {"title": "earlier"})
        with pytest.raises(NotFound, match=rf"\({field}\)"):
            await _race(database, session, chat.id, write)
        later = await tasks.create_todo(session, {"title": "later"})
    async with migrated.session() as session:
        assert await session.get(Todo, earlier.id) is not None
        assert await session.get(Todo, later.id) is not None


async def test_a_foreign_key_violation_at_a_write_is_a_not_found_naming_the_reference(
    migrated: DatabaseManager,
) -> None:
    """The repositories check references first; an object the caller added to the session themselves is
    flushed by the next write, and its foreign-key violation is named the same way."""
    missing = uuid.uuid4()
    async with migrated.session() as session:
        earlier = await tasks.create_todo(session, {"title": "earlier"})
        session.add(Todo(title="added by hand", chat_id=missing))
        with pytest.raises(NotFound) as raised:
            await tasks.create_todo(session, {"title": "the write that flushes it"})
        assert str(raised.value) == f"chat {missing} does not exist (todo.chat_id)"
        assert raised.value.__cause__ is None
        assert raised.value.__suppress_context__
        assert earlier.title == "earlier"
        await tasks.create_todo(session, {"title": "after"})
    async with migrated.session() as session:
        titles = set((await session.scalars(select(Todo.title))).all())
    assert titles == {"earlier", "after"}


async def test_a_foreign_key_violation_inside_a_transaction_says_the_transaction_must_end(
    migrated: DatabaseManager,
) -> None:
    missing = uuid.uuid4()
    with pytest.raises(NotFound) as raised:
        async with migrated.transaction() as session:
            await tasks.create_todo(session, {"title": "earlier"})
            session.add(Todo(title="added by hand", chat_id=missing))
            await tasks.create_todo(session, {"title": "the write that flushes it"})
    assert str(raised.value) == (
        f"chat {missing} does not exist (todo.chat_id); the database aborted the transaction: "
        "leave the transaction() block and retry"
    )
    async with migrated.session() as session:
        assert (await session.scalars(select(Todo.title))).all() == []  # the block rolled back as a whole


async def test_the_named_foreign_keys_are_every_foreign_key_of_the_schema(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    from src.database.foreign_keys import FOREIGN_KEYS

    live = await conn.fetch(
        """
        SELECT c.conname, n.nspname || '.' || t.relname AS tbl, a.attname
        FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        JOIN pg_attribute a ON a.attrelid = c.conrelid AND a.attnum = ANY(c.conkey)
        WHERE c.contype = 'f' AND n.nspname <> 'public'
        """
    )
    assert {r["conname"] for r in live} == set(FOREIGN_KEYS)
    for row in live:
        assert FOREIGN_KEYS[row["conname"]].field.endswith("." + row["attname"])


async def test_objects_stay_readable_after_a_failed_write_rolls_back(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, {"title": "kept"})
        todo = await tasks.create_todo(session, {"title": "kept", "chat_id": chat.id})
        loaded = await tasks.get_todo(session, todo.id)
        assert loaded is todo
        todo.title = "changed, never flushed"
        session.add(Todo(title="by hand", chat_id=uuid.uuid4()))
        with pytest.raises(NotFound):
            await tasks.create_todo(session, {"title": "fails"})
        # No lazy load (it would raise MissingGreenlet): the loaded values are kept, the unflushed change undone.
        assert (chat.title, todo.title, todo.chat_id, todo.priority) == ("kept", "kept", chat.id, 3)
        assert todo not in session.dirty
        again = await tasks.get_todo(session, todo.id)
    assert again is todo


async def test_objects_stay_readable_after_an_exception_ends_a_session_block(migrated: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="agent crashed"):
        async with migrated.session() as session:
            todo = await tasks.create_todo(session, {"title": "stored"})
            chat = await messaging.get_chat_with_recent_messages(
                session, (await messaging.create_chat(session)).id, recent=5
            )
            raise RuntimeError("agent crashed")
    assert todo.title == "stored"  # stored, and readable after the rollback and the end of the block
    assert chat is not None
    assert chat.messages == []


async def test_objects_of_a_transaction_that_rolled_back_keep_their_last_values(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "before"})
    with pytest.raises(RuntimeError, match="agent crashed"):
        async with migrated.transaction() as session:
            changed = await tasks.update_todo(session, todo.id, {"title": "rolled back"})
            new = await tasks.create_todo(session, Todo(title="never stored"))
            raise RuntimeError("agent crashed")
    # Readable, with the values they last had; what the transaction wrote is not stored.
    assert changed is not None
    assert (changed.title, new.title) == ("rolled back", "never stored")
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
        assert stored is not None
        assert stored.title == "before"
        assert await session.get(Todo, new.id) is None
