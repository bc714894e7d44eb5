"""tasks.todos as pydantic models: the rules of 005_tasks_todos.sql, checked before any SQL is sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AliasChoices, BeforeValidator, Field, Strict

from src.database.models.tasks import TodoStatus
from src.database.schemas.common import (
    CreateModel,
    JsonObject,
    ReadModel,
    SearchModel,
    SearchText,
    Text,
    Timestamp,
    Title,
    UpdateModel,
)

PRIORITY_MIN, PRIORITY_MAX = 1, 5


def _priority(value: Any) -> Any:
    # One message for every way to miss (9, 0, "3", True, 2.5), naming the range; bool is an int in Python.
    if isinstance(value, bool) or not isinstance(value, int) or not PRIORITY_MIN <= value <= PRIORITY_MAX:
        raise ValueError(
            f"must be a whole number from {PRIORITY_MIN} (highest) to {PRIORITY_MAX} (lowest), not {repr(value)[:20]}"
        )
    return value


Priority = Annotated[int, BeforeValidator(_priority), Strict()]
"""1 (highest) to 5 (lowest), as ck_todos_priority; a whole number, not "3" or True."""


class TodoCreate(CreateModel):
    """A new todo: only `title` is required; the database fills in the rest."""

    title: Title
    description: Text | None = None
    status: TodoStatus = TodoStatus.PENDING
    priority: Priority = 3
    chat_id: uuid.UUID | None = None
    """The chat the todo came from; it must exist (else LookupError)."""
    due_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    metadata: JsonObject = Field(default_factory=dict)


class TodoUpdate(UpdateModel):
    """The fields to change; those not set stay as they are. `None` clears a nullable field."""

    title: Title | None = None
    description: Text | None = None
    status: TodoStatus | None = None
    priority: Priority | None = None
    chat_id: uuid.UUID | None = None
    due_at: Timestamp | None = None
    completed_at: Timestamp | None = None
    metadata: JsonObject | None = None

    not_null: ClassVar[frozenset[str]] = frozenset({"title", "status", "priority", "metadata"})


class TodoSearch(SearchModel):
    """Filters for `search_todos`, combined with AND; every one optional."""

    status: frozenset[TodoStatus] | None = None
    """Any of these statuses."""
    priority_min: Priority | None = None
    priority_max: Priority | None = None
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    text: SearchText | None = None
    """Appears in the title or description (case-insensitive)."""
    chat_id: uuid.UUID | None = None


class TodoRead(ReadModel):
    """A stored todo, e.g. as a FastAPI response body: `TodoRead.model_validate(todo)`."""

    id: uuid.UUID
    title: str
    description: str | None
    status: TodoStatus
    priority: int
    chat_id: uuid.UUID | None
    due_at: datetime | None
    completed_at: datetime | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))
