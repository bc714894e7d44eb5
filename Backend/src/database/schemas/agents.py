"""agents.executions as pydantic models: the rules of the executions migration, checked before any SQL."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from pydantic import AliasChoices, Field

from src.database.models.agents import ExecutionStatus
from src.database.schemas.common import (
    CreateModel,
    JsonNotNull,
    JsonObject,
    JsonValue,
    NonBlankText,
    ReadModel,
    Text,
)

FINISHED = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})
"""The statuses an execution ends in; it reaches one of them once."""


class ExecutionStart(CreateModel):
    """The Create model of executions: a run that starts now (`start_execution` stores it as `running`,
    started_at now()). Only `agent_name` is required."""

    agent_name: NonBlankText
    """Not empty or only spaces (ck_executions_agent_name_not_blank)."""
    input: JsonNotNull = Field(default_factory=dict)
    """What the run was given: any JSON value (NOT NULL; {} when not given)."""
    chat_id: uuid.UUID | None = None
    """The chat the run serves; it must exist (else LookupError)."""
    metadata: JsonObject = Field(default_factory=dict)


class ExecutionFinish(CreateModel):
    """How a run ended, as `finish_execution` takes it: the status, and the output (any JSON) or the
    error text. The status is checked against the column's values here; that it is a finished one
    (succeeded, failed or cancelled) is the state machine's rule, checked by `finish_execution`."""

    status: ExecutionStatus
    output: JsonValue = None
    """None: no output (SQL NULL)."""
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
