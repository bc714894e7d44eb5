"""tasks.todos."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import delete, insert, select, tuple_, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.models import Todo, TodoStatus
from src.database.repositories.fields import checked_updates
from src.database.repositories.paging import Page, check_limit, decode_cursor, encode_cursor

WRITABLE = ("title", "description", "status", "priority", "chat_id", "due_at", "completed_at", "metadata")


async def create_todo(session: AsyncSession, todo: Mapping[str, Any]) -> Todo:
    """Insert a todo from its fields (`title` required; the rest as in WRITABLE) and return it."""
    values = checked_updates(todo, WRITABLE, what="todo")
    if "title" not in values:
        raise ValueError("todo.title is required")
    if "status" in values:
        values["status"] = TodoStatus(values["status"])
    return (await session.scalars(insert(Todo).values(**values).returning(Todo))).one()


async def get_todo(session: AsyncSession, todo_id: uuid.UUID) -> Todo | None:
    return await session.get(Todo, todo_id)


async def get_todos_by_status(session: AsyncSession, status: TodoStatus | str, *, limit: int = 100) -> list[Todo]:
    """Todos with `status`, newest first (served by ix_todos_status_created_at)."""
    query = (
        select(Todo)
        .where(Todo.status == TodoStatus(status))
        .order_by(Todo.created_at.desc(), Todo.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())


async def update_todo(session: AsyncSession, todo_id: uuid.UUID, updates: Mapping[str, Any]) -> Todo | None:
    """One `UPDATE ... RETURNING`; None when no todo has that id. Unknown or read-only fields are a ValueError."""
    values = checked_updates(updates, WRITABLE, what="todo")
    if "status" in values:
        values["status"] = TodoStatus(values["status"])
    query = update(Todo).where(Todo.id == todo_id).values(**values).returning(Todo)
    # populate_existing: the session may already hold this row (e.g. created earlier in it); show the new values.
    result = await session.scalars(query, execution_options={"synchronize_session": False, "populate_existing": True})
    return result.one_or_none()


async def delete_todo(session: AsyncSession, todo_id: uuid.UUID) -> bool:
    """True when a todo was deleted."""
    result = await session.execute(delete(Todo).where(Todo.id == todo_id).returning(Todo.id))
    return result.first() is not None


async def list_todos(
    session: AsyncSession, *, status: TodoStatus | str | None = None, after: str | None = None, limit: int = 50
) -> Page[Todo]:
    """A page of todos, newest first, optionally of one status; pass `next_cursor` back as `after`."""
    query = select(Todo).order_by(Todo.created_at.desc(), Todo.id.desc()).limit(check_limit(limit) + 1)
    if status is not None:
        query = query.where(Todo.status == TodoStatus(status))
    if after is not None:
        created_at, row_id = decode_cursor(after)
        query = query.where(tuple_(Todo.created_at, Todo.id) < tuple_(created_at, row_id))
    rows = list((await session.scalars(query)).all())
    page, more = rows[:limit], len(rows) > limit
    return Page(page, encode_cursor(page[-1].created_at, page[-1].id) if more else None)
