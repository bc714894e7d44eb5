"""Repository functions for tasks.todos, on a migrated real database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from src.database.manager import DatabaseManager
from src.database.models import Todo, TodoStatus
from src.database.repositories import tasks

HOSTILE = ["'); DROP TABLE tasks.todos; --", "1 OR 1=1", "Robert'); --\\", "emoji 🧪🚀 ∑", "x" * 500]


async def test_create_todo_returns_it_with_its_defaults(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "write the docs"})
    assert isinstance(todo.id, uuid.UUID)
    assert (todo.status, todo.priority, todo.metadata_) == (TodoStatus.PENDING, 3, {})
    assert todo.created_at.tzinfo is not None


async def test_create_todo_needs_a_title(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"todo\.title: is required"):
            await tasks.create_todo(session, {"priority": 1})


async def test_create_todo_refuses_unknown_fields_before_any_sql(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"todo\.owner: is not a field \(allowed: chat_id, .*title\)"):
            await tasks.create_todo(session, {"title": "t", "owner": "me"})


async def test_get_todo_finds_it_or_returns_none(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.session() as session:
        found = await tasks.get_todo(session, todo.id)
        assert found is not None
        assert found.title == "t"
        assert await tasks.get_todo(session, uuid.uuid4()) is None


async def test_get_todos_by_status_returns_only_that_status_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        first = await tasks.create_todo(session, {"title": "a"})
    async with migrated.transaction() as session:
        second = await tasks.create_todo(session, {"title": "b"})
        await tasks.create_todo(session, {"title": "c", "status": "completed"})
    async with migrated.session() as session:
        pending = await tasks.get_todos_by_status(session, TodoStatus.PENDING)
    assert [t.id for t in pending] == [second.id, first.id]


async def test_an_unknown_status_is_a_value_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(
            ValueError,
            match=r"status: 'done' is not one of the allowed values \(allowed: pending, in_progress, completed, cancel",
        ):
            await tasks.get_todos_by_status(session, "done")


async def test_update_todo_changes_the_fields_and_moves_updated_at(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.transaction() as session:
        updated = await tasks.update_todo(
            session, todo.id, {"status": "in_progress", "priority": 1, "metadata": {"k": 1}}
        )
    assert updated is not None
    assert (updated.status, updated.priority, updated.metadata_) == (TodoStatus.IN_PROGRESS, 1, {"k": 1})
    assert updated.updated_at > todo.updated_at


async def test_update_todo_returns_none_for_an_unknown_id(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await tasks.update_todo(session, uuid.uuid4(), {"title": "x"}) is None


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"id": uuid.uuid4()}, r"todo\.id: is read-only"),
        ({"created_at": None}, r"todo\.created_at: is read-only"),
        ({"title; DROP TABLE x": "t"}, r"todo\.title; DROP TABLE x: is not a field that can be updated"),
        ({}, "no fields to update"),
        ({"status": "done"}, r"todo\.status: .*'pending', 'in_progress', 'completed' or 'cancelled'"),
    ],
)
async def test_update_todo_refuses_bad_updates_clearly(
    migrated: DatabaseManager, updates: dict[str, object], message: str
) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=message):
            await tasks.update_todo(session, uuid.uuid4(), updates)


async def test_a_priority_outside_1_to_5_is_refused_before_the_database(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"todo\.priority: must be a whole number from 1 \(highest\) to 5"):
            await tasks.update_todo(session, todo.id, {"priority": 9})
        stored = await tasks.get_todo(session, todo.id)
    assert stored is not None
    assert stored.priority == 3


async def test_delete_todo_says_whether_it_deleted(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.transaction() as session:
        assert await tasks.delete_todo(session, todo.id) is True
        assert await tasks.delete_todo(session, todo.id) is False


async def test_list_todos_pages_through_everything_once_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        created = [await tasks.create_todo(session, {"title": f"t{i}"}) for i in range(5)]
    seen: list[uuid.UUID] = []
    cursor = None
    async with migrated.session() as session:
        for expected in (2, 2, 1):
            page = await tasks.list_todos(session, after=cursor, limit=2)
            assert len(page.items) == expected
            seen += [t.id for t in page.items]
            cursor = page.next_cursor
    assert cursor is None
    # One transaction gives every row the same created_at; the id breaks the tie, so order is total.
    assert sorted(seen) == sorted(t.id for t in created)
    assert len(set(seen)) == 5


async def test_a_cursor_that_was_not_issued_is_a_value_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match="not a cursor this API returned"):
            await tasks.list_todos(session, after="garbage")


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_strings_are_stored_verbatim_and_never_executed(migrated: DatabaseManager, hostile: str) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(
            session, {"title": hostile, "description": hostile, "metadata": {"note": hostile}}
        )
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
        assert stored is not None
        assert (stored.title, stored.description, stored.metadata_) == (hostile, hostile, {"note": hostile})
        assert (await session.execute(select(func.count()).select_from(Todo))).scalar_one() == 1


async def test_a_megabyte_description_is_stored_whole(migrated: DatabaseManager) -> None:
    text = "é" * 1_000_000
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "big", "description": text})
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
    assert stored is not None
    assert stored.description == text


async def test_a_nul_character_is_refused_with_a_clear_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"todo\.title: contains a NUL character"):
            await tasks.create_todo(session, {"title": "a\x00b"})


async def test_update_todo_in_the_session_that_created_it_returns_the_new_values(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
        updated = await tasks.update_todo(session, todo.id, {"title": "renamed", "status": "completed"})
    assert updated is not None
    assert (updated.title, updated.status) == ("renamed", TodoStatus.COMPLETED)
