"""agents.executions.

Writes follow the rule of `src.database.sessions`: they commit by themselves in a plain
`manager.session()` and join the caller's transaction inside `manager.transaction()`. An execution
finishes once: finishing it again is a StateConflict and changes nothing.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from pydantic import ValidationError
from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import sessions
from src.database.errors import InvalidInput, StateConflict
from src.database.models import Execution, ExecutionStatus
from src.database.repositories.fields import checked_json
from src.database.repositories.paging import check_limit
from src.database.repositories.references import require_chats
from src.database.schemas import common
from src.database.schemas.agents import FINISHED, ExecutionFinish, ExecutionStart

_FINAL_VALUES = ", ".join(sorted(s.value for s in FINISHED))


async def start_execution(
    session: AsyncSession,
    agent_name: str,
    *,
    input: Mapping[str, Any] | None = None,
    chat_id: uuid.UUID | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Execution:
    """Record that an agent started running now (status `running`); committed unless the caller owns the
    transaction. InvalidInput for a blank agent_name or a bad field; NotFound when chat_id names no chat."""
    fields: dict[str, Any] = {"agent_name": agent_name, "chat_id": chat_id}
    if input is not None:
        fields["input"] = dict(input) if isinstance(input, Mapping) else input
    if metadata is not None:
        fields["metadata"] = dict(metadata) if isinstance(metadata, Mapping) else metadata
    checked = common.creation(fields, ExecutionStart, Execution, what="execution")
    values = common.attributes(checked) | {"status": ExecutionStatus.RUNNING}
    async with sessions.write(session):
        if checked.chat_id is not None:
            await require_chats(session, [checked.chat_id], field="execution.chat_id")
        return (await session.scalars(insert(Execution).values(**values).returning(Execution))).one()


async def finish_execution(
    session: AsyncSession,
    execution_id: uuid.UUID | str,
    status: ExecutionStatus | str,
    *,
    output: Any = None,
    error: str | None = None,
) -> Execution | None:
    """Set a finished status, the output or the error, and finished_at = now(), once; committed unless the
    caller owns the transaction. None for an unknown id; StateConflict (naming its status) when the
    execution already finished, and then nothing changes; InvalidInput for a status that is not final."""
    row_id = common.identifier(execution_id, "execution_id")
    final = common.member(ExecutionStatus, status, "status")
    if final not in FINISHED:
        raise InvalidInput("status", f"{final.value!r} is not a finished status", allowed=_FINAL_VALUES)
    try:
        finish = ExecutionFinish.model_validate({"output": output, "error": error})
    except ValidationError as exc:
        raise common.invalid(exc, "execution") from None
    # One statement decides: two concurrent finishes cannot both succeed (the second sees the new status).
    query = (
        update(Execution)
        .where(Execution.id == row_id, Execution.status.not_in(sorted(FINISHED)))
        .values(status=final, output=finish.output, error=finish.error, finished_at=func.now())
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
    if not isinstance(contains, Mapping):
        raise InvalidInput("contains", "must be a JSON object (a mapping)")
    query = (
        select(Execution)
        .where(Execution.metadata_.contains(checked_json("contains", dict(contains))))
        .order_by(Execution.started_at.desc(), Execution.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())


__all__ = [
    "FINISHED",
    "find_executions_by_metadata",
    "finish_execution",
    "list_executions_by_status",
    "start_execution",
]
