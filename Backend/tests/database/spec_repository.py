"""The spec's three repository functions, copied verbatim from its "SQLAlchemy ORM" section
(../shared/spec/004_7b2714104255bfc4.txt); only the imports they need are added above them.

`test_write_rule.py` runs them against our Todo model and DatabaseManager, so the spec's way of writing
a repository keeps working with the models and sessions we ship.
"""

# ruff: noqa: I001
from typing import Any
from uuid import UUID

from sqlalchemy import select, update, delete  # noqa: F401 - the spec's import line, kept whole
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.models import Todo, TodoStatus


# fmt: off
# Query with filtering
async def get_todos_by_status(
    session: AsyncSession,
    status: TodoStatus,
) -> list[Todo]:
    query = select(Todo).where(Todo.status == status).order_by(Todo.created_at.desc())
    result = await session.execute(query)
    return list(result.scalars().all())

# Insert
async def create_todo(session: AsyncSession, todo: Todo) -> Todo:
    session.add(todo)
    await session.commit()
    await session.refresh(todo)
    return todo

# Update
async def update_todo(
    session: AsyncSession,
    todo_id: UUID,
    updates: dict[str, Any],
) -> Todo | None:
    query = update(Todo).where(Todo.id == todo_id).values(**updates).returning(Todo)
    result = await session.execute(query)
    await session.commit()
    return result.scalar_one_or_none()
# fmt: on
