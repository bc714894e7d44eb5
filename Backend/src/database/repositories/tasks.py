"""tasks.todos.

Writes follow the rule of `src.database.sessions`: they commit by themselves in a plain
`manager.session()` and join the caller's transaction inside `manager.transaction()`.
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import bindparam, delete, insert, inspect, or_, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import direct, sessions
from src.database.errors import InvalidInput
from src.database.models import Todo, TodoStatus
from src.database.repositories.filters import contains_text
from src.database.repositories.objects import adopt
from src.database.repositories.paging import Page, check_limit, decode_cursor, page_of
from src.database.repositories.references import require_chats
from src.database.schemas import common
from src.database.schemas.tasks import TodoCreate, TodoSearch, TodoUpdate

TodoInput = Todo | TodoCreate | Mapping[str, Any]
"""What `create_todo` takes: a new ORM object (the spec's way), a TodoCreate, or a mapping of its fields."""

_NEWEST_FIRST = (Todo.created_at.desc(), Todo.id.desc())


@functools.cache
def _by_status() -> direct.Statement[Todo]:
    mapper = inspect(Todo)
    query = select(*direct.columns(mapper)).where(Todo.status == bindparam("status"))
    return direct.compile_statement(mapper, query.order_by(*_NEWEST_FIRST).limit(bindparam("limit")))


async def create_todo(session: AsyncSession, todo: TodoInput) -> Todo:
    """Store a new todo and return it with its id and timestamps (committed, unless the caller owns the
    transaction). InvalidInput (a ValueError) for a bad field; NotFound (a LookupError) when chat_id names
    no chat. Given a Todo object, that same object is stored and returned."""
    checked = common.creation(todo, TodoCreate, Todo, what="todo")
    # A read, so before `write`: a missing chat must not roll back the caller's earlier work either.
    if direct.usable(session, write=True):
        # One INSERT in autocommit; a missing chat is the foreign key's violation, named as NotFound.
        stored = await direct.insert_one(session, Todo, common.attributes(checked))
        return adopt(session, todo, stored) if isinstance(todo, Todo) else stored
    if checked.chat_id is not None:
        await require_chats(session, [checked.chat_id], field="todo.chat_id")
    async with sessions.write(session):
        if isinstance(todo, Todo):
            for name, value in common.attributes(checked).items():
                setattr(todo, name, value)  # the checked values (e.g. "pending" as TodoStatus.PENDING)
            session.add(todo)
            await session.flush()  # eager_defaults: one INSERT ... RETURNING fills id and timestamps
            return todo
        query = insert(Todo).values(**common.attributes(checked)).returning(Todo)
        return (await session.scalars(query)).one()


async def create_todos(session: AsyncSession, todos: Iterable[TodoInput]) -> list[Todo]:
    """Store many todos with one INSERT (one round trip, plus one to check the chats they name), in the
    order given; all or none. Errors name the item: `todos[3].title: ...`."""
    checked: list[TodoCreate] = []
    problems: list[InvalidInput] = []
    for index, item in enumerate(todos):
        try:
            checked.append(common.creation(item, TodoCreate, Todo, what=f"todos[{index}]"))
        except InvalidInput as exc:
            problems.extend(exc.errors)
    if problems:
        raise InvalidInput.combine(problems)
    if not checked:
        return []
    # Every row with every column (render_nulls keeps the None ones), so that SQLAlchemy sends them all as
    # one multi-row INSERT. The ids are made here: SQLAlchemy can keep a multi-row INSERT's RETURNING in
    # the order given only with ids it knows beforehand (else it sends one INSERT per row); these put the
    # rows back in order instead. uuid4 is what gen_random_uuid() would have made.
    rows = [
        {common.ATTRIBUTE_NAMES.get(k, k): v for k, v in c.model_dump().items()} | {"id": uuid.uuid4()} for c in checked
    ]
    referenced = [(f"todos[{i}].chat_id", c.chat_id) for i, c in enumerate(checked) if c.chat_id is not None]
    await require_chats(session, [chat_id for _, chat_id in referenced], field=[name for name, _ in referenced])
    first_field: dict[object, str] = {}
    for name, chat_id in referenced:
        first_field.setdefault(chat_id, name)
    async with sessions.write(session, fields=first_field):
        query = insert(Todo).returning(Todo).execution_options(render_nulls=True)
        stored = {todo.id: todo for todo in (await session.scalars(query, rows)).all()}
    return [stored[row["id"]] for row in rows]


async def get_todo(session: AsyncSession, todo_id: uuid.UUID | str) -> Todo | None:
    row_id = common.identifier(todo_id, "todo_id")
    if direct.usable(session, write=False):
        return await direct.get_one(session, Todo, row_id)
    return await session.get(Todo, row_id)


async def get_todos(session: AsyncSession, *, limit: int = 100) -> list[Todo]:
    """The newest todos first, at most `limit` (1 to 1000; `list_todos` pages through all of them)."""
    query = select(Todo).order_by(*_NEWEST_FIRST).limit(check_limit(limit))
    return list((await session.scalars(query)).all())


async def get_todos_by_status(session: AsyncSession, status: TodoStatus | str, *, limit: int = 100) -> list[Todo]:
    """Todos with `status`, newest first, at most `limit` (served by ix_todos_status_created_at)."""
    wanted = common.member(TodoStatus, status, "status")
    if direct.usable(session, write=False):
        return await direct.fetch(session, _by_status(), {"status": wanted, "limit": check_limit(limit)})
    query = select(Todo).where(Todo.status == wanted).order_by(*_NEWEST_FIRST).limit(check_limit(limit))
    return list((await session.scalars(query)).all())


async def update_todo(
    session: AsyncSession, todo_id: uuid.UUID | str, updates: TodoUpdate | Mapping[str, Any]
) -> Todo | None:
    """Change only the fields given, in one `UPDATE ... RETURNING`; None when no todo has that id."""
    row_id = common.identifier(todo_id, "todo_id")
    values = common.changes(updates, TodoUpdate, what="todo")
    if values and direct.usable(session, write=True):
        return await direct.update_one(session, Todo, row_id, values)
    if values.get("chat_id") is not None:
        await require_chats(session, [values["chat_id"]], field="todo.chat_id")
    async with sessions.write(session):
        query = update(Todo).where(Todo.id == row_id).values(**values).returning(Todo)
        # populate_existing: the session may already hold this row (e.g. created earlier in it); show the new values.
        result = await session.scalars(
            query, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        return result.one_or_none()


async def delete_todo(session: AsyncSession, todo_id: uuid.UUID | str) -> bool:
    """True when a todo was deleted."""
    row_id = common.identifier(todo_id, "todo_id")
    async with sessions.write(session):
        result = await session.execute(delete(Todo).where(Todo.id == row_id).returning(Todo.id))
        return result.first() is not None


async def list_todos(
    session: AsyncSession, *, status: TodoStatus | str | None = None, after: str | None = None, limit: int = 50
) -> Page[Todo]:
    """A page of todos, newest first, optionally of one status; pass `next_cursor` back as `after`."""
    search = None if status is None else TodoSearch(status=frozenset({common.member(TodoStatus, status, "status")}))
    return await search_todos(session, search, after=after, limit=limit)


async def search_todos(
    session: AsyncSession,
    search: TodoSearch | Mapping[str, Any] | None = None,
    *,
    after: str | None = None,
    limit: int = 50,
) -> Page[Todo]:
    """A page of the todos matching every filter of `search`, newest first; pass `next_cursor` back as
    `after` for the next page (keyset: as fast on page 100 as on page 1)."""
    filters = common.search(search, TodoSearch, what="search")
    query = select(Todo).order_by(*_NEWEST_FIRST).limit(check_limit(limit) + 1)
    if filters.status is not None:
        query = query.where(Todo.status.in_(sorted(filters.status)))
    if filters.priority_min is not None:
        query = query.where(Todo.priority >= filters.priority_min)
    if filters.priority_max is not None:
        query = query.where(Todo.priority <= filters.priority_max)
    if filters.created_after is not None:
        query = query.where(Todo.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Todo.created_at < filters.created_before)
    if filters.chat_id is not None:
        query = query.where(Todo.chat_id == filters.chat_id)
    if filters.text is not None:
        query = query.where(or_(contains_text(Todo.title, filters.text), contains_text(Todo.description, filters.text)))
    if after is not None:
        created_at, row_id = decode_cursor(after)
        query = query.where(tuple_(Todo.created_at, Todo.id) < tuple_(created_at, row_id))
    rows = list((await session.scalars(query)).all())
    return page_of(rows, limit)


__all__ = [
    "TodoInput",
    "create_todo",
    "create_todos",
    "delete_todo",
    "get_todo",
    "get_todos",
    "get_todos_by_status",
    "list_todos",
    "search_todos",
    "update_todo",
]
