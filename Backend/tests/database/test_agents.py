"""Repository functions for agents.executions, on a migrated real database."""

from __future__ import annotations

import uuid

import pytest

from src.database.manager import DatabaseManager
from src.database.models import ExecutionStatus
from src.database.repositories import agents


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
        with pytest.raises(ValueError, match="must not be blank"):
            await agents.start_execution(session, "  ")


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
        with pytest.raises(ValueError, match="'running' is not a finished status"):
            await agents.finish_execution(session, uuid.uuid4(), "running")


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
