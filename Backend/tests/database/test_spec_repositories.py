"""The spec's repository snippets (`spec_repository`, copied verbatim) one by one against our models,
manager and sessions, each checked from another connection; then OUR functions called the spec's way."""

from __future__ import annotations

from uuid import UUID

import asyncpg

from src.database.manager import DatabaseManager
from src.database.models import Todo, TodoStatus
from tests.database.spec_repository import create_todo, get_todos_by_status, update_todo


async def test_the_specs_create_todo_stores_a_todo(migrated: DatabaseManager, conn: asyncpg.Connection) -> None:
    async with migrated.session() as session:
        todo = await create_todo(session, Todo(title="from the spec"))
    assert isinstance(todo.id, UUID)
    assert (todo.status, todo.priority) == (TodoStatus.PENDING, 3)
    assert await conn.fetchval("SELECT title FROM tasks.todos WHERE id = $1", todo.id) == "from the spec"


async def test_the_specs_update_todo_changes_it(migrated: DatabaseManager, conn: asyncpg.Connection) -> None:
    async with migrated.session() as session:
        todo = await create_todo(session, Todo(title="t"))
        updated = await update_todo(session, todo.id, {"status": TodoStatus.COMPLETED, "priority": 1})
    assert updated is not None
    assert (updated.status, updated.priority) == (TodoStatus.COMPLETED, 1)
    assert await conn.fetchval("SELECT status FROM tasks.todos WHERE id = $1", todo.id) == "completed"


async def test_the_specs_get_todos_by_status_lists_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        older = await create_todo(session, Todo(title="older"))
        newer = await create_todo(session, Todo(title="newer"))
        await create_todo(session, Todo(title="done", status=TodoStatus.COMPLETED))
        found = await get_todos_by_status(session, TodoStatus.PENDING)
    assert [t.id for t in found] == [newer.id, older.id]


async def test_our_functions_import_from_where_the_spec_looks_and_work_its_way(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    from src.database.models import Todo as ModelTodo
    from src.database.repositories import create_todo, get_todos, get_todos_by_status, update_todo

    async with migrated.session() as session:
        todo = await create_todo(session, ModelTodo(title="x"))
        await update_todo(session, todo.id, {"status": "in_progress"})
    async with migrated.session() as session:
        assert [t.id for t in await get_todos(session)] == [todo.id]
        assert [t.id for t in await get_todos_by_status(session, TodoStatus.IN_PROGRESS)] == [todo.id]
    assert await conn.fetchval("SELECT status FROM tasks.todos") == "in_progress"


async def test_the_spec_snippets_and_ours_share_one_session(migrated: DatabaseManager) -> None:
    from src.database.repositories import tasks

    async with migrated.session() as session:
        mine = await tasks.create_todo(session, {"title": "ours"})
        theirs = await create_todo(session, Todo(title="spec's"))
        updated = await update_todo(session, mine.id, {"title": "ours, renamed"})
        listed = await tasks.get_todos(session)
    assert updated is not None
    assert updated.title == "ours, renamed"
    assert {t.id for t in listed} == {mine.id, theirs.id}
