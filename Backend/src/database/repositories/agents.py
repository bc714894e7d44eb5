"""agents.executions.

Writes follow the rule of `src.database.sessions`: they commit by themselves in a plain
`manager.session()` and join the caller's transaction inside `manager.transaction()`. An execution
finishes once: finishing it again is a StateConflict and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import BaseModel
from sqlalchemy import func, insert, inspect, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import sessions
from src.database.errors import InvalidInput, StateConflict
from src.database.models import Execution, ExecutionStatus
from src.database.repositories.paging import check_limit
from src.database.repositories.references import require_chats
from src.database.schemas import common
from src.database.schemas.agents import FINISHED, ExecutionFinish, ExecutionStart

ExecutionInput = Execution | ExecutionStart | Mapping[str, Any]
"""What `start_execution` takes: a new ORM object, an ExecutionStart, or a mapping of its fields."""
FinishInput = ExecutionFinish | Mapping[str, Any]
"""What `finish_execution` takes in place of the status: an ExecutionFinish or a mapping of its fields."""

_FINAL_VALUES = ", ".join(sorted(s.value for s in FINISHED))


def _start_fields(
    execution: ExecutionInput | str, input: Any, chat_id: uuid.UUID | str | None, metadata: Any
) -> ExecutionInput:
    """The keyword form (`start_execution(s, "planner", input=...)`) as a mapping; any other form as is."""
    if isinstance(execution, str):
        fields: dict[str, Any] = {"agent_name": execution, "chat_id": chat_id}
        if input is not None:
            fields["input"] = dict(input) if isinstance(input, Mapping) else input
        if metadata is not None:
            fields["metadata"] = dict(metadata) if isinstance(metadata, Mapping) else metadata
        return fields
    if input is not None or chat_id is not None or metadata is not None:
        raise InvalidInput("execution", "pass the execution alone, or agent_name with input=/chat_id=/metadata=")
    if isinstance(execution, Execution):
        status = inspect(execution).dict.get("status")
        if status is not None and status != ExecutionStatus.RUNNING:
            raise InvalidInput(
                "execution.status",
                f"a run starts as 'running', not {str(status)[:40]!r}; finish it with finish_execution",
            )
    return execution


async def start_execution(
    session: AsyncSession,
    execution: ExecutionInput | str,
    *,
    input: Any = None,
    chat_id: uuid.UUID | str | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Execution:
    """Record that an agent started running now (status `running`, started_at now()); committed unless
    the caller owns the transaction.

    `start_execution(session, Execution(agent_name="planner", ...))`, `start_execution(session,
    ExecutionStart(...))`, `start_execution(session, {"agent_name": ...})`, or `start_execution(session,
    "planner", input=..., chat_id=..., metadata=...)` (there None means "not given"). An Execution object
    given is the one stored and returned. InvalidInput for a blank agent_name or a bad field; NotFound
    when chat_id names no chat."""
    given = _start_fields(execution, input, chat_id, metadata)
    checked = common.creation(given, ExecutionStart, Execution, what="execution", ignore={"status"})
    values = common.attributes(checked) | {"status": ExecutionStatus.RUNNING}
    # A read, so before `write`: a missing chat must not roll back the caller's earlier work either.
    if checked.chat_id is not None:
        await require_chats(session, [checked.chat_id], field="execution.chat_id")
    async with sessions.write(session):
        if isinstance(given, Execution):
            for name, value in values.items():
                setattr(given, name, value)
            session.add(given)
            await session.flush()  # eager_defaults: one INSERT ... RETURNING fills id, started_at, timestamps
            return given
        return (await session.scalars(insert(Execution).values(**values).returning(Execution))).one()


def _finish_fields(status: object, output: Any, error: str | None) -> ExecutionFinish:
    if isinstance(status, BaseModel | Mapping):
        if output is not None or error is not None:
            raise InvalidInput(
                "execution", "pass the ExecutionFinish (or mapping) alone, or status with output=/error="
            )
        finish = common.checked(status, ExecutionFinish, what="execution")
        field = "execution.status"
    else:
        # The keyword form names the argument, as before: `status: 'done' is not one of the allowed values`.
        final = common.member(ExecutionStatus, status, "status")
        finish = common.checked({"status": final, "output": output, "error": error}, ExecutionFinish, what="execution")
        field = "status"
    if finish.status not in FINISHED:
        raise InvalidInput(field, f"{finish.status.value!r} is not a finished status", allowed=_FINAL_VALUES)
    return finish


async def finish_execution(
    session: AsyncSession,
    execution_id: uuid.UUID | str,
    status: ExecutionStatus | str | FinishInput,
    *,
    output: Any = None,
    error: str | None = None,
) -> Execution | None:
    """Set a finished status, the output or the error, and finished_at = now(), once; committed unless the
    caller owns the transaction.

    `finish_execution(session, run.id, "succeeded", output={...})`, or with an ExecutionFinish or a mapping
    of its fields in place of the status (`{"status": "failed", "error": "..."}`). None for an unknown id;
    StateConflict (naming its status) when the execution already finished, and then nothing changes;
    InvalidInput for a status that is not final or a bad field."""
    row_id = common.identifier(execution_id, "execution_id")
    finish = _finish_fields(status, output, error)
    # One statement decides: two concurrent finishes cannot both succeed (the second sees the new status).
    query = (
        update(Execution)
        .where(Execution.id == row_id, Execution.status.not_in(sorted(FINISHED)))
        .values(status=finish.status, output=finish.output, error=finish.error, finished_at=func.now())
        .returning(Execution)
    )
    async with sessions.write(session):
        # populate_existing: the session may already hold this row (e.g. created earlier in it); show the new values.
        result = await session.scalars(
            query, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        done = result.one_or_none()
        if done is not None:
            return done
        current = await session.scalar(select(Execution.status).where(Execution.id == row_id))
    if current is None:
        return None
    raise StateConflict(
        f"execution {row_id} already finished with status {ExecutionStatus(current).value!r}; it finishes once"
    )


async def list_executions_by_status(
    session: AsyncSession, status: ExecutionStatus | str, *, limit: int = 50
) -> list[Execution]:
    """Executions with `status`, most recently started first (served by ix_executions_status_started_at)."""
    query = (
        select(Execution)
        .where(Execution.status == common.member(ExecutionStatus, status, "status"))
        .order_by(Execution.started_at.desc(), Execution.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())


async def find_executions_by_metadata(
    session: AsyncSession, contains: Mapping[str, Any], *, limit: int = 50
) -> list[Execution]:
    """Executions whose metadata contains `contains` (JSONB `@>`, served by the GIN index), newest first."""
    query = (
        select(Execution)
        .where(Execution.metadata_.contains(common.json_object(contains, "contains")))
        .order_by(Execution.started_at.desc(), Execution.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())


__all__ = [
    "FINISHED",
    "ExecutionInput",
    "FinishInput",
    "find_executions_by_metadata",
    "finish_execution",
    "list_executions_by_status",
    "start_execution",
]
