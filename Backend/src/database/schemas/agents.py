"""agents.executions as pydantic models: the rules of the executions migration, checked before any SQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from src.database.models.agents import ExecutionStatus
from src.database.schemas.common import CreateModel, JsonObject, JsonValue, NonBlankText, ReadModel, Text

FINISHED = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
"""The statuses an execution ends in; it reaches one of them once."""


class ExecutionStart(CreateModel):
    """A run that starts now: only `agent_name` is required."""

    agent_name: NonBlankText
    input: JsonValue = Field(default_factory=dict)
    chat_id: uuid.UUID | None = None
    """The chat the run serves; it must exist (else LookupError)."""
    metadata: JsonObject = Field(default_factory=dict)


class ExecutionFinish(CreateModel):
    """How a run ended: its output (any JSON) or its error text."""

    output: JsonValue = None
    error: Text | None = None


class ExecutionRead(ReadModel):
    """A stored execution, e.g. as a FastAPI response body: `ExecutionRead.model_validate(execution)`."""

    id: uuid.UUID
    agent_name: str
    status: ExecutionStatus
    input: Any
    output: Any | None
    error: str | None
    chat_id: uuid.UUID | None
    started_at: datetime
    finished_at: datetime | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))


__all__ = ["FINISHED", "ExecutionFinish", "ExecutionRead", "ExecutionStart"]
