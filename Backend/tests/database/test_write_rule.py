"""The write rule and the inputs of the tasks repository, on a real server: a repository write commits by
itself unless the caller owns the transaction; bad input is a ValueError/LookupError before any SQL."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from sqlalchemy import event, func, select

from src.database.errors import InvalidInput, NotFound
from src.database.manager import DatabaseManager
from src.database.models import Todo, TodoStatus
from src.database.repositories import create_todo, get_todos, get_todos_by_status, tasks, update_todo
from src.database.schemas.tasks import TodoCreate
from tests.database import spec_repository


async def count_todos(manager: DatabaseManager) -> int:
    """Read from a new session, so only what was committed counts."""
    async with manager.session() as session:
        return (await session.execute(select(func.count()).select_from(Todo))).scalar_one()


@contextmanager
def statements(manager: DatabaseManager) -> Iterator[list[str]]:
    """Every SQL statement sent to the server inside the block."""
    sent: list[str] = []

    def note(conn: Any, cursor: Any, statement: str, parameters: Any, context: Any, executemany: bool) -> None:
        sent.append(statement)

    event.listen(manager.engine.sync_engine, "before_cursor_execute", note)
    try:
        yield sent
    finally:
        event.remove(manager.engine.sync_engine, "before_cursor_execute", note)


async def test_the_spec_functions_run_unchanged_against_our_model(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await spec_repository.create_todo(session, Todo(title="from the spec"))
        updated = await spec_repository.update_todo(session, todo.id, {"title": "renamed", "priority": 1})
        pending = await spec_repository.get_todos_by_status(session, TodoStatus.PENDING)
    assert isinstance(todo.id, uuid.UUID)
    assert updated is not None
    assert (updated.title, updated.priority) == ("renamed", 1)
    assert [t.id for t in pending] == [todo.id]
    assert await count_todos(migrated) == 1


async def test_create_todo_takes_a_new_todo_object_and_returns_it_with_an_id(migrated: DatabaseManager) -> None:
    given = Todo(title="x")
    async with migrated.session() as session:
        returned = await create_todo(session, given)
    assert returned is given
    assert isinstance(returned.id, uuid.UUID)
    assert returned.status is TodoStatus.PENDING


async def test_create_todo_takes_a_todo_create_model(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await create_todo(session, TodoCreate(title="typed", priority=2))
    assert (todo.title, todo.priority) == ("typed", 2)


async def test_a_write_in_a_plain_session_is_stored(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await create_todo(session, {"title": "kept"})
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
    assert stored is not None
    assert stored.title == "kept"


async def test_an_exception_after_two_writes_in_a_transaction_leaves_neither(migrated: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="agent failed"):
        async with migrated.transaction() as session:
            await create_todo(session, {"title": "one"})
            await create_todo(session, {"title": "two"})
            raise RuntimeError("agent failed")
    assert await count_todos(migrated) == 0


async def test_two_writes_in_a_transaction_are_stored_together(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        await create_todo(session, {"title": "one"})
        await update_todo(session, (await create_todo(session, {"title": "two"})).id, {"priority": 1})
    assert await count_todos(migrated) == 2


async def test_a_write_after_the_caller_began_joins_that_transaction(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await session.begin()
        await create_todo(session, {"title": "joined"})
        await session.rollback()
    assert await count_todos(migrated) == 0


async def test_a_write_after_a_plain_read_still_commits(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await get_todos(session)  # autobegins a transaction nobody owns
        await create_todo(session, {"title": "after a read"})
    assert await count_todos(migrated) == 1


@pytest.mark.parametrize(
    ("todo", "message"),
    [
        ({"title": "   "}, r"todo\.title: must not be empty or only spaces"),
        ({"title": "x" * 501}, r"todo\.title: .*at most 500 characters"),
        ({"title": "t", "priority": 0}, r"todo\.priority: must be a whole number from 1 \(highest\) to 5"),
        ({"title": "t", "priority": 6}, r"todo\.priority: must be a whole number from 1 \(highest\) to 5"),
        ({"title": "t", "priority": "3"}, r"todo\.priority: must be a whole number from 1 \(highest\) to 5"),
        ({"title": "t", "metadata": [1, 2]}, r"todo\.metadata: must be a JSON object \(a dict\), not list"),
        ({"title": "a\x00b"}, r"todo\.title: contains a NUL character"),
        ({"title": "t", "owner": "me"}, r"todo\.owner: is not a field \(allowed: chat_id, .*title\)"),
        ({"titel": "t"}, r"todo\.titel: is not a field; did you mean 'title'\?"),
        ({"title": "t", "id": uuid.uuid4()}, r"todo\.id: is set by the database"),
        ({"title": "t", "status": "done"}, r"todo\.status: .*'pending', 'in_progress', 'completed' or 'cancelled'"),
    ],
)
async def test_bad_input_is_a_value_error_naming_the_field_and_the_session_stays_usable(
    migrated: DatabaseManager, todo: dict[str, Any], message: str
) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=message) as raised:
            await create_todo(session, todo)
        assert isinstance(raised.value, ValueError)
        await create_todo(session, {"title": "still works"})
    assert await count_todos(migrated) == 1


async def test_a_chat_id_of_no_chat_is_a_lookup_error_and_the_session_stays_usable(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound, match=rf"chat {missing} does not exist \(todo\.chat_id\)") as raised:
            await create_todo(session, {"title": "t", "chat_id": missing})
        assert isinstance(raised.value, LookupError)
        await create_todo(session, {"title": "still works"})
    assert await count_todos(migrated) == 1


async def test_bad_input_inside_a_transaction_keeps_the_earlier_writes(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        await create_todo(session, {"title": "earlier"})
        with pytest.raises(ValueError, match="priority"):
            await create_todo(session, {"title": "t", "priority": 9})
        with pytest.raises(LookupError):
            await create_todo(session, {"title": "t", "chat_id": uuid.uuid4()})
    assert await count_todos(migrated) == 1


async def test_a_wrong_status_listing_lists_the_valid_ones(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"\(allowed: pending, in_progress, completed, cancelled\)"):
            await get_todos_by_status(session, "done")


async def test_create_todos_stores_many_with_one_insert_in_the_order_given(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with statements(migrated) as sent:
            created = await tasks.create_todos(
                session, [{"title": "a"}, TodoCreate(title="b", priority=1), Todo(title="c")]
            )
    inserts = [s for s in sent if s.lstrip().upper().startswith("INSERT")]
    assert len(inserts) == 1
    assert [t.title for t in created] == ["a", "b", "c"]
    assert await count_todos(migrated) == 3


async def test_create_todos_names_the_bad_item_and_stores_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"todos\[1\]\.title: must not be empty"):
            await tasks.create_todos(session, [{"title": "a"}, {"title": ""}])
        with pytest.raises(LookupError, match=r"\(todos\[0\]\.chat_id\)"):
            await tasks.create_todos(session, [{"title": "a", "chat_id": uuid.uuid4()}])
    assert await count_todos(migrated) == 0


async def test_search_todos_applies_every_filter(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        wanted = await create_todo(session, {"title": "Weekly REPORT", "priority": 2})
        await create_todo(session, {"title": "weekly report", "priority": 5})  # priority out of range
        await create_todo(session, {"title": "weekly report", "priority": 2, "status": "cancelled"})
        await create_todo(session, {"title": "groceries", "priority": 2})
        page = await tasks.search_todos(
            session, {"status": {"pending", "completed"}, "priority_max": 3, "text": "report"}
        )
    assert [t.id for t in page.items] == [wanted.id]
    assert page.next_cursor is None


async def test_search_todos_treats_percent_and_underscore_literally(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        literal = await create_todo(session, {"title": "100% done"})
        await create_todo(session, {"title": "100 done"})
        page = await tasks.search_todos(session, {"text": "0%"})
    assert [t.id for t in page.items] == [literal.id]


async def test_search_todos_pages_by_keyset_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        created = [await create_todo(session, {"title": f"t{i}", "priority": 1}) for i in range(5)]
        await create_todo(session, {"title": "other", "priority": 4})
        seen: list[uuid.UUID] = []
        cursor = None
        for expected in (2, 2, 1):
            page = await tasks.search_todos(session, {"priority_max": 1}, after=cursor, limit=2)
            assert len(page.items) == expected
            seen += [t.id for t in page.items]
            cursor = page.next_cursor
    assert cursor is None
    assert seen == [t.id for t in reversed(created)]  # one commit each: distinct created_at


async def test_get_todos_is_newest_first_and_bounded(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        created = [await create_todo(session, {"title": f"t{i}"}) for i in range(3)]
        newest = await get_todos(session, limit=2)
        everything = await get_todos(session)
        for limit in (0, 1001):
            with pytest.raises(ValueError, match=r"limit: must be a whole number from 1 to 1000"):
                await get_todos(session, limit=limit)
    assert [t.id for t in newest] == [created[2].id, created[1].id]
    assert [t.id for t in everything] == [t.id for t in reversed(created)]
