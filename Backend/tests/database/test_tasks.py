"""Repository functions for tasks.todos, on a migrated real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy import func, select

from src.database.errors import InvalidInput, NotFound
from src.database.manager import DatabaseManager
from src.database.models import Chat, Todo, TodoStatus
from src.database.repositories import messaging, tasks
from src.database.schemas.tasks import TodoCreate, TodoRead, TodoSearch, TodoUpdate
from tests.database.recording import inserts, sql_statements

HOSTILE = ["'); DROP TABLE tasks.todos; --", "1 OR 1=1", "Robert'); --\\", "emoji 🧪🚀 ∑", "x" * 500]


async def stored_titles(conn: asyncpg.Connection) -> list[str]:
    """What another connection sees: only what was committed."""
    return [r["title"] for r in await conn.fetch("SELECT title FROM tasks.todos ORDER BY title")]


# --- the write rule: stored when it returns, unless the caller owns the transaction ---------------------


async def test_create_todo_takes_a_todo_object_and_returns_that_object_stored(migrated: DatabaseManager) -> None:
    todo = Todo(title="x")
    async with migrated.session() as session:
        returned = await tasks.create_todo(session, todo)
    assert returned is todo
    assert isinstance(todo.id, uuid.UUID)
    assert (todo.status, todo.priority, todo.metadata_) == (TodoStatus.PENDING, 3, {})
    assert todo.created_at.tzinfo is not None


async def test_a_todo_written_in_a_plain_session_is_there_after_the_block(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "keep me"})
    assert await conn.fetchval("SELECT title FROM tasks.todos WHERE id = $1", todo.id) == "keep me"


async def test_a_todo_object_written_in_a_plain_session_is_there_after_the_block(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        await tasks.create_todo(session, Todo(title="object"))
    assert await stored_titles(conn) == ["object"]


async def test_a_write_is_stored_when_it_returns_even_if_the_block_fails_later(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.session() as session:
            await tasks.create_todo(session, TodoCreate(title="committed"))
            raise RuntimeError("the agent crashed after the write")
    assert await stored_titles(conn) == ["committed"]


async def test_a_write_after_a_plain_read_still_commits(migrated: DatabaseManager, conn: asyncpg.Connection) -> None:
    async with migrated.session() as session:
        await tasks.get_todos(session)  # autobegins a transaction nobody owns
        await tasks.create_todo(session, {"title": "after a read"})
    assert await stored_titles(conn) == ["after a read"]


async def test_an_exception_after_two_writes_in_a_transaction_leaves_neither(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.transaction() as session:
            await tasks.create_todo(session, {"title": "one"})
            await tasks.create_todo(session, Todo(title="two"))
            raise RuntimeError("halfway")
    assert await stored_titles(conn) == []


async def test_two_writes_in_a_transaction_commit_together_at_its_end(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.transaction() as session:
        await tasks.create_todo(session, {"title": "one"})
        await tasks.create_todo(session, {"title": "two"})
        assert await stored_titles(conn) == []  # not before the block ends
    assert await stored_titles(conn) == ["one", "two"]


async def test_a_write_after_session_begin_joins_that_transaction(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        await session.begin()
        await tasks.create_todo(session, {"title": "joined"})
        await session.rollback()
    assert await stored_titles(conn) == []


async def test_a_write_inside_begin_nested_rolls_back_with_its_savepoint(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.transaction() as session:
        await tasks.create_todo(session, {"title": "outer"})
        savepoint = await session.begin_nested()
        await tasks.create_todo(session, {"title": "inner"})
        await savepoint.rollback()
    assert await stored_titles(conn) == ["outer"]


async def test_update_and_delete_in_a_plain_session_are_stored(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        keep = await tasks.create_todo(session, {"title": "keep"})
        gone = await tasks.create_todo(session, {"title": "gone"})
        await tasks.update_todo(session, keep.id, {"title": "kept"})
        await tasks.delete_todo(session, gone.id)
    assert await stored_titles(conn) == ["kept"]


async def test_a_single_write_is_one_statement(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent:
            todo = await tasks.create_todo(session, {"title": "t"})
            await tasks.update_todo(session, todo.id, {"priority": 1})
    assert len(sent) == 2


# --- bad input: a ValueError / LookupError naming the field, before any SQL, session still usable -------

BAD_TODOS: list[tuple[object, str]] = [
    ({"priority": 1}, r"todo\.title: is required"),
    ({"title": ""}, r"todo\.title: must not be empty"),
    ({"title": "   "}, r"todo\.title: must not be empty"),
    ({"title": "x" * 501}, r"todo\.title: .*at most 500 characters"),
    ({"title": None}, r"todo\.title"),
    ({"title": "a\x00b"}, r"todo\.title: contains a NUL character"),
    ({"title": "t", "description": "\x00"}, r"todo\.description: contains a NUL character"),
    ({"title": "t", "priority": 0}, r"todo\.priority: must be a whole number from 1 \(highest\) to 5"),
    ({"title": "t", "priority": 6}, r"todo\.priority: must be a whole number from 1"),
    ({"title": "t", "priority": "3"}, r"todo\.priority: must be a whole number from 1"),
    ({"title": "t", "priority": True}, r"todo\.priority: must be a whole number from 1"),
    ({"title": "t", "priority": 2.0}, r"todo\.priority: must be a whole number from 1"),
    ({"title": "t", "priority": None}, r"todo\.priority"),
    ({"title": "t", "metadata": []}, r"todo\.metadata: must be a JSON object \(a dict\), not list"),
    ({"title": "t", "metadata": "{}"}, r"todo\.metadata: must be a JSON object \(a dict\), not str"),
    ({"title": "t", "metadata": None}, r"todo\.metadata: must be a JSON object"),
    ({"title": "t", "metadata": {"a\x00": 1}}, r"todo\.metadata: .*key containing a NUL character"),
    ({"title": "t", "metadata": {"k": ["\x00"]}}, r"todo\.metadata: \['k'\]\[0\] contains a NUL character"),
    ({"title": "t", "metadata": {"k": float("nan")}}, r"todo\.metadata: .*JSON cannot hold"),
    ({"title": "t", "metadata": {"k": {1, 2}}}, r"todo\.metadata: .*set, which JSON cannot hold"),
    ({"title": "t", "status": "done"}, r"todo\.status: .*'pending', 'in_progress', 'completed' or 'cancelled'"),
    ({"title": "t", "due_at": datetime(2030, 1, 1)}, r"todo\.due_at: .*timezone"),
    ({"title": "t", "owner": "me"}, r"todo\.owner: is not a field \(allowed: chat_id, completed_at, descr"),
    ({"titel": "t"}, r"todo\.titel: is not a field; did you mean 'title'\?"),
    ({"title": "t", "id": uuid.uuid4()}, r"todo\.id: is set by the database"),
    ({"title": "t", "created_at": datetime.now(UTC)}, r"todo\.created_at: is set by the database"),
    (Todo(title=""), r"todo\.title: must not be empty"),
    (Todo(title="t", priority=9), r"todo\.priority: must be a whole number"),
    (Todo(title="t", id=uuid.uuid4()), r"todo\.id: is set by the database"),
    (["title", "t"], r"todo: expected a Todo, a TodoCreate or a mapping, not list"),
]


@pytest.mark.parametrize(("bad", "message"), BAD_TODOS)
async def test_a_bad_todo_is_a_value_error_naming_the_field_before_any_sql(
    migrated: DatabaseManager, bad: object, message: str
) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message) as raised:
            await tasks.create_todo(session, bad)  # type: ignore[arg-type]
        assert sent == []
    assert isinstance(raised.value, ValueError)


async def test_after_a_bad_input_the_session_writes_on(migrated: DatabaseManager, conn: asyncpg.Connection) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match="priority"):
            await tasks.create_todo(session, {"title": "bad", "priority": 9})
        await tasks.create_todo(session, {"title": "good"})
    assert await stored_titles(conn) == ["good"]


async def test_a_bad_input_inside_a_transaction_keeps_the_earlier_writes(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.transaction() as session:
        await tasks.create_todo(session, {"title": "before"})
        with pytest.raises(ValueError, match="title"):
            await tasks.create_todo(session, {"title": " "})
        await tasks.create_todo(session, {"title": "after"})
    assert await stored_titles(conn) == ["after", "before"]


async def test_several_bad_fields_are_named_in_one_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput) as raised:
            await tasks.create_todo(session, {"title": "", "priority": 9})
    assert {e.field for e in raised.value.errors} == {"todo.title", "todo.priority"}


async def test_a_chat_id_of_no_chat_is_a_lookup_error_naming_it(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    missing = uuid.uuid4()
    async with migrated.transaction() as session:
        await tasks.create_todo(session, {"title": "before"})
        with pytest.raises(NotFound, match=rf"chat {missing} does not exist \(todo\.chat_id\)") as raised:
            await tasks.create_todo(session, {"title": "t", "chat_id": missing})
        await tasks.create_todo(session, {"title": "after"})  # the transaction was not aborted
    assert isinstance(raised.value, LookupError)
    assert await stored_titles(conn) == ["after", "before"]


async def test_a_todo_of_an_existing_chat_is_stored_with_it(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="c")
        with sql_statements(migrated) as sent:
            todo = await tasks.create_todo(session, {"title": "t", "chat_id": chat.id})
    assert todo.chat_id == chat.id
    assert len(sent) == 2  # the chat check, then the INSERT


async def test_an_unknown_status_lists_the_valid_ones(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(
            InvalidInput,
            match=r"status: 'done' is not one of .*\(allowed: pending, in_progress, completed, cancelled\)",
        ):
            await tasks.get_todos_by_status(session, "done")


# --- reads ---------------------------------------------------------------------------------------------


async def test_get_todo_finds_it_or_returns_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.session() as session:
        found = await tasks.get_todo(session, str(todo.id))
        assert found is not None
        assert found.title == "t"
        assert await tasks.get_todo(session, uuid.uuid4()) is None


async def test_get_todo_refuses_an_id_that_is_not_a_uuid(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match="todo_id: is not a UUID"):
            await tasks.get_todo(session, "42")


async def test_get_todos_by_status_returns_only_that_status_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        first = await tasks.create_todo(session, {"title": "a"})
        second = await tasks.create_todo(session, {"title": "b"})
        await tasks.create_todo(session, {"title": "c", "status": "completed"})
        pending = await tasks.get_todos_by_status(session, TodoStatus.PENDING)
    assert [t.id for t in pending] == [second.id, first.id]


async def test_get_todos_returns_the_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        made = [await tasks.create_todo(session, {"title": f"t{i}"}) for i in range(3)]
        todos = await tasks.get_todos(session)
    assert [t.id for t in todos] == [t.id for t in reversed(made)]


async def test_get_todos_is_bounded_by_its_limit(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(session, [{"title": f"t{i}"} for i in range(5)])
        assert len(await tasks.get_todos(session, limit=2)) == 2
        for bad in (0, 1001, "10"):
            with pytest.raises(InvalidInput, match="limit: must be a whole number from 1 to 1000"):
                await tasks.get_todos(session, limit=bad)  # type: ignore[arg-type]


async def test_a_todo_reads_into_the_pydantic_read_model(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t", "metadata": {"k": [1]}})
    read = TodoRead.model_validate(todo)
    assert (read.id, read.title, read.status, read.metadata) == (todo.id, "t", TodoStatus.PENDING, {"k": [1]})
    assert read.model_dump(mode="json")["metadata"] == {"k": [1]}


# --- updates -------------------------------------------------------------------------------------------


async def test_update_todo_changes_the_fields_and_moves_updated_at(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
    async with migrated.session() as session:
        updated = await tasks.update_todo(
            session, todo.id, {"status": "in_progress", "priority": 1, "metadata": {"k": 1}}
        )
    assert updated is not None
    assert (updated.status, updated.priority, updated.metadata_) == (TodoStatus.IN_PROGRESS, 1, {"k": 1})
    assert updated.updated_at > todo.updated_at


async def test_update_todo_with_a_model_writes_only_the_fields_set(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t", "description": "d", "priority": 2})
        updated = await tasks.update_todo(session, todo.id, TodoUpdate(title="renamed"))
    assert updated is not None
    assert (updated.title, updated.description, updated.priority) == ("renamed", "d", 2)


async def test_update_todo_with_none_clears_a_nullable_field(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t", "description": "d"})
        updated = await tasks.update_todo(session, todo.id, {"description": None})
    assert updated is not None
    assert updated.description is None


async def test_update_todo_returns_none_for_an_unknown_id(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await tasks.update_todo(session, uuid.uuid4(), {"title": "x"}) is None


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"id": uuid.uuid4()}, r"todo\.id: is read-only \(allowed: chat_id, "),
        ({"created_at": None}, r"todo\.created_at: is read-only"),
        ({"title; DROP TABLE x": "t"}, r"todo\.title; DROP TABLE x: is not a field that can be updated"),
        ({"stauts": "pending"}, r"did you mean 'status'\?"),
        ({}, "no fields to update"),
        ({"status": "done"}, r"todo\.status: .*'pending', 'in_progress', 'completed' or 'cancelled'"),
        ({"title": None}, r"todo\.title: cannot be null"),
        ({"metadata": None}, r"todo\.metadata: cannot be null"),
        ({"priority": 9}, r"todo\.priority: must be a whole number from 1"),
        ({"title": "x" * 501}, r"todo\.title: .*at most 500"),
    ],
)
async def test_update_todo_refuses_bad_updates_before_any_sql(
    migrated: DatabaseManager, updates: dict[str, object], message: str
) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await tasks.update_todo(session, uuid.uuid4(), updates)
    assert sent == []


async def test_update_todo_to_a_chat_of_no_chat_is_a_lookup_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
        with pytest.raises(LookupError, match=r"todo\.chat_id"):
            await tasks.update_todo(session, todo.id, {"chat_id": uuid.uuid4()})
        assert await tasks.update_todo(session, todo.id, {"priority": 5}) is not None


async def test_update_todo_in_the_session_that_created_it_returns_the_new_values(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
        updated = await tasks.update_todo(session, todo.id, {"title": "renamed", "status": "completed"})
    assert updated is not None
    assert (updated.title, updated.status) == ("renamed", TodoStatus.COMPLETED)


async def test_delete_todo_says_whether_it_deleted(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "t"})
        assert await tasks.delete_todo(session, todo.id) is True
        assert await tasks.delete_todo(session, todo.id) is False


# --- bulk ----------------------------------------------------------------------------------------------


async def test_create_todos_stores_them_all_with_one_insert_in_the_order_given(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    items: list[Any] = [{"title": f"m{i}", "priority": 1 + i % 5} for i in range(200)]
    items += [TodoCreate(title="model"), Todo(title="object")]
    async with migrated.session() as session:
        with sql_statements(migrated) as sent:
            todos = await tasks.create_todos(session, items)
    assert len(inserts(sent)) == 1
    assert len(sent) == 1
    assert [t.title for t in todos] == [f"m{i}" for i in range(200)] + ["model", "object"]
    assert await conn.fetchval("SELECT count(*) FROM tasks.todos") == 202


async def test_create_todos_names_every_bad_item_and_stores_none(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput) as raised:
            await tasks.create_todos(session, [{"title": "ok"}, {"title": ""}, {"title": "ok"}, {"priority": 7}])
    assert sent == []
    assert [e.field for e in raised.value.errors] == ["todos[1].title", "todos[3].title", "todos[3].priority"]
    assert await stored_titles(conn) == []


async def test_create_todos_names_the_item_whose_chat_does_not_exist(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        with pytest.raises(NotFound, match=rf"chat {missing} does not exist \(todos\[2\]\.chat_id\)"):
            await tasks.create_todos(
                session, [{"title": "a", "chat_id": chat.id}, {"title": "b"}, {"title": "c", "chat_id": missing}]
            )


async def test_create_todos_of_nothing_sends_nothing(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent:
            assert await tasks.create_todos(session, []) == []
    assert sent == []


# --- search and pagination -----------------------------------------------------------------------------


async def titles_found(migrated: DatabaseManager, search: TodoSearch | dict[str, Any]) -> list[str]:
    async with migrated.session() as session:
        page = await tasks.search_todos(session, search, limit=100)
    return sorted(t.title for t in page.items)


async def test_search_todos_by_a_set_of_statuses(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        for status in TodoStatus:
            await tasks.create_todo(session, {"title": status.value, "status": status})
    assert await titles_found(migrated, {"status": {"pending", "completed"}}) == ["completed", "pending"]


async def test_search_todos_by_a_priority_range(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(session, [{"title": f"p{p}", "priority": p} for p in range(1, 6)])
    assert await titles_found(migrated, TodoSearch(priority_min=2, priority_max=4)) == ["p2", "p3", "p4"]


async def test_search_todos_created_before_and_after(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        made = [await tasks.create_todo(session, {"title": f"t{i}"}) for i in range(3)]
    middle = made[1].created_at
    assert await titles_found(migrated, {"created_after": middle}) == ["t2"]
    assert await titles_found(migrated, {"created_before": middle}) == ["t0"]


async def test_search_todos_by_text_in_the_title_or_description_ignoring_case(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(
            session,
            [{"title": "Buy MILK"}, {"title": "x", "description": "oat milk"}, {"title": "bread"}],
        )
    assert await titles_found(migrated, {"text": "milk"}) == ["Buy MILK", "x"]


@pytest.mark.parametrize(("text", "expected"), [("100%", ["100% done"]), ("a_b", ["a_b"]), ("\\", ["back\\slash"])])
async def test_search_todos_matches_like_wildcards_literally(
    migrated: DatabaseManager, text: str, expected: list[str]
) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(
            session, [{"title": t} for t in ("100% done", "1000 done", "a_b", "axb", "back\\slash", "backslash")]
        )
    assert await titles_found(migrated, {"text": text}) == expected


async def test_search_todos_by_chat(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await tasks.create_todos(session, [{"title": "in chat", "chat_id": chat.id}, {"title": "elsewhere"}])
    assert await titles_found(migrated, {"chat_id": chat.id}) == ["in chat"]


async def test_search_filters_combine_with_and(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(
            session,
            [
                {"title": "report a", "priority": 1, "status": "pending"},
                {"title": "report b", "priority": 5, "status": "pending"},
                {"title": "report c", "priority": 1, "status": "completed"},
                {"title": "other", "priority": 1, "status": "pending"},
            ],
        )
    found = await titles_found(migrated, {"text": "report", "priority_max": 2, "status": ["pending"]})
    assert found == ["report a"]


@pytest.mark.parametrize(
    ("search", "message"),
    [
        ({"status": ["done"]}, r"search\.status\.0: .*'pending'"),
        ({"priority_min": 0}, r"search\.priority_min: must be a whole number from 1"),
        ({"created_after": datetime(2030, 1, 1)}, r"search\.created_after: .*timezone"),
        ({"text": ""}, r"search\.text: .*at least 1 character"),
        ({"colour": "red"}, r"search\.colour"),
    ],
)
async def test_a_bad_search_is_a_value_error_naming_the_filter(
    migrated: DatabaseManager, search: dict[str, Any], message: str
) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=message):
            await tasks.search_todos(session, search)


async def test_search_todos_pages_through_every_match_once_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await tasks.create_todos(session, [{"title": f"t{i}", "priority": 1 + i % 2} for i in range(9)])
    seen: list[Todo] = []
    cursor = None
    pages = 0
    async with migrated.session() as session:
        while True:
            page = await tasks.search_todos(session, {"priority_max": 1}, after=cursor, limit=2)
            seen += page.items
            pages += 1
            cursor = page.next_cursor
            if cursor is None:
                break
    # One INSERT gives every row the same created_at; the id breaks the tie, so the order is total.
    assert pages == 3
    assert sorted(t.title for t in seen) == [f"t{i}" for i in range(0, 9, 2)]
    keys = [(t.created_at, t.id) for t in seen]
    assert keys == sorted(keys, reverse=True)


async def test_list_todos_pages_through_everything_once_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
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
    assert seen == [t.id for t in reversed(created)]


async def test_a_cursor_that_was_not_issued_is_a_value_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match="not a cursor this API returned"):
            await tasks.list_todos(session, after="garbage")


# --- stored verbatim -----------------------------------------------------------------------------------


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_strings_are_stored_verbatim_and_never_executed(migrated: DatabaseManager, hostile: str) -> None:
    async with migrated.session() as session:
        todo = await tasks.create_todo(
            session, {"title": hostile, "description": hostile, "metadata": {"note": hostile}}
        )
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
        assert stored is not None
        assert (stored.title, stored.description, stored.metadata_) == (hostile, hostile, {"note": hostile})
        assert (await session.execute(select(func.count()).select_from(Todo))).scalar_one() == 1
        assert (await session.execute(select(func.count()).select_from(Chat))).scalar_one() == 0


async def test_a_megabyte_description_is_stored_whole(migrated: DatabaseManager) -> None:
    text = "é" * 1_000_000
    async with migrated.session() as session:
        todo = await tasks.create_todo(session, {"title": "big", "description": text})
    async with migrated.session() as session:
        stored = await tasks.get_todo(session, todo.id)
    assert stored is not None
    assert stored.description == text
