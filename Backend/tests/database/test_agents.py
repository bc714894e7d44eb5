"""Repository functions for agents.executions, on a migrated real database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import func, select

from src.database.errors import InvalidInput, NotFound, StateConflict
from src.database.manager import DatabaseManager
from src.database.models import Execution, ExecutionStatus
from src.database.repositories import agents, messaging


async def _count_executions(manager: DatabaseManager) -> int:
    async with manager.session() as session:
        return int(await session.scalar(select(func.count()).select_from(Execution)) or 0)


async def test_start_execution_records_a_running_run(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        run = await agents.start_execution(session, "planner", input={"goal": "x"}, metadata={"team": "a"})
    assert (run.status, run.input, run.metadata_, run.finished_at) == (
        ExecutionStatus.RUNNING,
        {"goal": "x"},
        {"team": "a"},
        None,
    )
    assert run.started_at is not None


async def test_a_blank_agent_name_is_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"execution\.agent_name: must not be empty") as caught:
            await agents.start_execution(session, "  ")
        assert caught.value.field == "execution.agent_name"
        assert await agents.list_executions_by_status(session, "running") == []  # the session is still usable


async def test_finish_execution_sets_status_output_and_finished_at(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        run = await agents.start_execution(session, "planner")
    async with migrated.transaction() as session:
        done = await agents.finish_execution(session, run.id, "succeeded", output={"plan": [1, 2]})
    assert done is not None
    assert (done.status, done.output, done.error) == (ExecutionStatus.SUCCEEDED, {"plan": [1, 2]}, None)
    assert done.finished_at is not None
    assert done.finished_at >= done.started_at


async def test_finish_execution_records_the_error_of_a_failed_run(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        run = await agents.start_execution(session, "planner")
        failed = await agents.finish_execution(session, run.id, ExecutionStatus.FAILED, error="tool timed out")
    assert failed is not None
    assert (failed.status, failed.error) == (ExecutionStatus.FAILED, "tool timed out")


async def test_finish_execution_of_an_unknown_id_is_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await agents.finish_execution(session, uuid.uuid4(), "cancelled") is None


async def test_finishing_with_a_status_that_is_not_final_is_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"status: 'running' is not a finished status") as caught:
            await agents.finish_execution(session, uuid.uuid4(), "running")
    assert caught.value.allowed == "cancelled, failed, succeeded"


async def test_an_unknown_status_lists_the_valid_ones(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match="status: 'done' is not one of the allowed values") as caught:
            await agents.finish_execution(session, uuid.uuid4(), "done")
    assert caught.value.allowed == "pending, running, succeeded, failed, cancelled"


async def test_list_executions_by_status_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        older = await agents.start_execution(session, "a")
    async with migrated.transaction() as session:
        newer = await agents.start_execution(session, "b")
        finished = await agents.start_execution(session, "c")
        await agents.finish_execution(session, finished.id, "succeeded")
    async with migrated.session() as session:
        running = await agents.list_executions_by_status(session, "running")
    assert [r.id for r in running] == [newer.id, older.id]


async def test_find_by_metadata_containment(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        match = await agents.start_execution(session, "a", metadata={"team": "red", "env": "prod", "n": 1})
        await agents.start_execution(session, "b", metadata={"team": "blue", "env": "prod"})
    async with migrated.session() as session:
        found = await agents.find_executions_by_metadata(session, {"team": "red", "env": "prod"})
        hostile = await agents.find_executions_by_metadata(session, {"team": "red' OR '1'='1"})
    assert [f.id for f in found] == [match.id]
    assert hostile == []


async def test_the_containment_query_can_use_the_gin_index(migrated: DatabaseManager) -> None:
    from sqlalchemy import text

    async with migrated.session() as session:
        await session.execute(text("SET LOCAL enable_seqscan = off"))
        plan = (
            (
                await session.execute(
                    text("EXPLAIN SELECT * FROM agents.executions WHERE metadata @> CAST(:m AS jsonb)"),
                    {"m": '{"a": 1}'},
                )
            )
            .scalars()
            .all()
        )
    assert any("ix_executions_metadata" in line for line in plan)


async def test_a_start_in_a_plain_session_is_stored(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
    async with migrated.session() as session:
        stored = await session.get(Execution, run.id)
    assert stored is not None
    assert stored.status == ExecutionStatus.RUNNING


async def test_a_finish_in_a_plain_session_is_stored(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        await agents.finish_execution(session, run.id, "succeeded", output=[1])
    async with migrated.session() as session:
        stored = await session.get(Execution, run.id)
    assert stored is not None
    assert (stored.status, stored.output) == (ExecutionStatus.SUCCEEDED, [1])


async def test_writes_in_a_transaction_that_fails_leave_nothing(migrated: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="agent crashed"):
        async with migrated.transaction() as session:
            run = await agents.start_execution(session, "planner")
            await agents.finish_execution(session, run.id, "failed", error="x")
            raise RuntimeError("agent crashed")
    assert await _count_executions(migrated) == 0


async def test_finishing_twice_is_a_state_conflict_and_changes_nothing(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        first = await agents.finish_execution(session, run.id, "succeeded", output={"n": 1})
    assert first is not None
    async with migrated.session() as session:
        with pytest.raises(StateConflict, match="already finished with status 'succeeded'"):
            await agents.finish_execution(session, run.id, "failed", error="late")
        assert await agents.list_executions_by_status(session, "succeeded") != []  # still usable
    async with migrated.session() as session:
        stored = await session.get(Execution, run.id)
    assert stored is not None
    assert (stored.status, stored.output, stored.error, stored.finished_at) == (
        ExecutionStatus.SUCCEEDED,
        {"n": 1},
        None,
        first.finished_at,
    )


async def test_a_conflict_inside_a_transaction_keeps_the_earlier_writes(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        run = await agents.start_execution(session, "planner")
        await agents.finish_execution(session, run.id, "cancelled")
        with pytest.raises(StateConflict):
            await agents.finish_execution(session, run.id, "succeeded")
        other = await agents.start_execution(session, "critic")
    async with migrated.session() as session:
        assert await session.get(Execution, run.id) is not None
        assert await session.get(Execution, other.id) is not None


async def test_a_chat_id_of_no_chat_is_not_found_and_nothing_is_stored(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound, match=f"chat {missing} does not exist \\(execution.chat_id\\)"):
            await agents.start_execution(session, "planner", chat_id=missing)
        chat = await messaging.create_chat(session)
        await session.commit()
        linked = await agents.start_execution(session, "planner", chat_id=chat.id)  # the session is still usable
    assert linked.chat_id == chat.id
    assert await _count_executions(migrated) == 1


async def test_metadata_that_is_not_an_object_names_the_field(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"execution\.metadata"):
            await agents.start_execution(session, "planner", metadata=[1, 2])  # type: ignore[arg-type]


async def test_a_run_finished_without_output_stores_sql_null(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        await agents.finish_execution(session, run.id, "cancelled")
    async with migrated.session() as session:
        is_null = await session.scalar(select(Execution.output.is_(None)).where(Execution.id == run.id))
    assert is_null is True
