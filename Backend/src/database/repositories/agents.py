"""agents.executions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.models import Execution, ExecutionStatus
from src.database.repositories.fields import checked_json, no_nul
from src.database.repositories.paging import check_limit

FINISHED = frozenset({ExecutionStatus.SUCCEEDED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED})


async def start_execution(
    session: AsyncSession,
    agent_name: str,
    *,
    input: Mapping[str, Any] | None = None,
    chat_id: uuid.UUID | None = None,
    metadata: Mapping[str, Any] | None = None,
) -> Execution:
    """Record that an agent started running now (status `running`)."""
    if not agent_name.strip():
        raise ValueError("execution.agent_name must not be blank")
    values: dict[str, Any] = {
        "agent_name": no_nul("execution.agent_name", agent_name),
        "status": ExecutionStatus.RUNNING,
        "input": checked_json("execution.input", dict(input or {})),
        "chat_id": chat_id,
        "metadata_": checked_json("execution.metadata", dict(metadata or {})),
    }
    return (await session.scalars(insert(Execution).values(**values).returning(Execution))).one()


async def finish_execution(
    session: AsyncSession,
    execution_id: uuid.UUID,
    status: ExecutionStatus | str,
    *,
    output: Any = None,
    error: str | None = None,
) -> Execution | None:
    """Set a finished status, the output or the error, and finished_at = now(); None for an unknown id."""
    final = ExecutionStatus(status)
    if final not in FINISHED:
        raise ValueError(f"{final.value!r} is not a finished status; use one of {', '.join(sorted(FINISHED))}")
    if error is not None:
        no_nul("execution.error", error)
    checked_json("execution.output", output)
    query = (
        update(Execution)
        .where(Execution.id == execution_id)
        .values(status=final, output=output, error=error, finished_at=func.now())
        .returning(Execution)
    )
    # populate_existing: the session may already hold this row (e.g. created earlier in it); show the new values.
    result = await session.scalars(query, execution_options={"synchronize_session": False, "populate_existing": True})
    return result.one_or_none()


async def list_executions_by_status(
    session: AsyncSession, status: ExecutionStatus | str, *, limit: int = 50
) -> list[Execution]:
    """Executions with `status`, most recently started first (served by ix_executions_status_started_at)."""
    query = (
        select(Execution)
        .where(Execution.status == ExecutionStatus(status))
        .order_by(Execution.started_at.desc(), Execution.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())


async def find_executions_by_metadata(
    session: AsyncSession, contains: Mapping[str, Any], *, limit: int = 50
) -> list[Execution]:
    """Executions whose metadata contains `contains` (JSONB `@>`, served by the GIN index), newest first."""
    if not isinstance(contains, Mapping):
        raise ValueError("contains must be a JSON object (a mapping)")
    query = (
        select(Execution)
        .where(Execution.metadata_.contains(checked_json("contains", dict(contains))))
        .order_by(Execution.started_at.desc(), Execution.id.desc())
        .limit(check_limit(limit))
    )
    return list((await session.scalars(query)).all())
