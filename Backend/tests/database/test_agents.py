"""Repository functions for agents.executions, on a migrated real database."""

from __future__ import annotations

import uuid
from typing import Any

import pytest
from sqlalchemy import func, select

from src.database.errors import InvalidInput, NotFound, StateConflict
from src.database.manager import DatabaseManager
from src.database.models import Execution, ExecutionStatus
from src.database.repositories import agents, messaging
from src.database.schemas.agents import ExecutionFinish, ExecutionStart
from tests.database import recording


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


# --- the three input forms ----------------------------------------------------------------------------


async def test_start_execution_takes_a_new_execution_object_and_returns_it(migrated: DatabaseManager) -> None:
    given = Execution(agent_name="planner", input=["step", 1], metadata={"team": "a"})
    async with migrated.session() as session:
        returned = await agents.start_execution(session, given)
    assert returned is given
    assert isinstance(given.id, uuid.UUID)
    assert (given.status, given.input, given.metadata_, given.output) == (
        ExecutionStatus.RUNNING,
        ["step", 1],
        {"team": "a"},
        None,
    )
    assert given.started_at is not None
    async with migrated.session() as session:
        assert await session.get(Execution, given.id) is not None  # stored by a plain session


async def test_start_execution_takes_an_execution_start_model_and_a_mapping(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        typed = await agents.start_execution(session, ExecutionStart(agent_name="typed", chat_id=chat.id))
        mapped = await agents.start_execution(session, {"agent_name": "mapped", "input": "just text"})
    assert (typed.agent_name, typed.chat_id, typed.input) == ("typed", chat.id, {})
    assert (mapped.agent_name, mapped.input, mapped.status) == ("mapped", "just text", ExecutionStatus.RUNNING)
    assert await _count_executions(migrated) == 2


async def test_an_execution_object_already_running_is_accepted_any_other_status_is_refused(
    migrated: DatabaseManager,
) -> None:
    async with migrated.session() as session:
        running = await agents.start_execution(session, Execution(agent_name="a", status=ExecutionStatus.RUNNING))
        with pytest.raises(InvalidInput, match=r"^execution\.status: a run starts as 'running', not 'succeeded'"):
            await agents.start_execution(session, Execution(agent_name="b", status="succeeded"))
    assert running.status is ExecutionStatus.RUNNING
    assert await _count_executions(migrated) == 1


@pytest.mark.parametrize(
    ("execution", "message"),
    [
        ({"agent_name": " "}, r"^execution\.agent_name: must not be empty or only spaces$"),
        ({"agent_nam": "x"}, r"^execution\.agent_nam: is not a field; did you mean 'agent_name'\? \(allowed: "),
        ({"agent_name": "x", "status": "running"}, r"^execution\.status: is not a field \(allowed: agent_name, "),
        ({"agent_name": "x", "input": None}, r"^execution\.input: cannot be null \(the column is NOT NULL\)"),
        ({"agent_name": "x", "input": {"k": float("nan")}}, r"^execution\.input: \['k'\] is nan, which JSON cannot"),
        ({"agent_name": "x", "metadata": [1]}, r"^execution\.metadata: must be a JSON object \(a dict\), not list$"),
        ({"agent_name": "x", "chat_id": "nope"}, r"^execution\.chat_id: "),
        ({"agent_name": "x", "id": uuid.uuid4()}, r"^execution\.id: is set by the database"),
        ({}, r"^execution\.agent_name: is required$"),
        (Execution(agent_name="x", output={"done": True}), r"^execution\.output: is not written from a new Execution"),
        (Execution(agent_name="x", error="early"), r"\(allowed: agent_name, chat_id, input, metadata\)$"),
        (Execution(agent_name=""), r"^execution\.agent_name: must not be empty"),
        (42, r"^execution: expected an Execution, an ExecutionStart or a mapping, not int$"),
    ],
)
async def test_bad_input_in_any_form_names_the_field_and_nothing_is_sent(
    migrated: DatabaseManager, execution: Any, message: str
) -> None:
    async with migrated.session() as session:
        with recording.sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await agents.start_execution(session, execution)
        assert sent == []
        await agents.start_execution(session, "still works")
    assert await _count_executions(migrated) == 1


async def test_an_object_already_stored_is_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        with pytest.raises(InvalidInput, match=r"^execution: is already stored"):
            await agents.start_execution(session, run)


async def test_the_execution_and_keywords_together_are_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"^execution: pass the execution alone, or agent_name with"):
            await agents.start_execution(session, {"agent_name": "a"}, metadata={"x": 1})


async def test_an_execution_object_joins_the_callers_transaction(migrated: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="agent crashed"):
        async with migrated.transaction() as session:
            await agents.start_execution(session, Execution(agent_name="a"))
            await agents.start_execution(session, ExecutionStart(agent_name="b"))
            raise RuntimeError("agent crashed")
    assert await _count_executions(migrated) == 0


async def test_an_execution_object_naming_no_chat_is_not_found(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound, match=rf"^chat {missing} does not exist \(execution\.chat_id\)$"):
            await agents.start_execution(session, Execution(agent_name="a", chat_id=missing))
        await agents.start_execution(session, "still works")
    assert await _count_executions(migrated) == 1


async def test_finish_execution_takes_an_execution_finish_model_or_a_mapping(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        one = await agents.start_execution(session, "a")
        two = await agents.start_execution(session, "b")
        done = await agents.finish_execution(session, one.id, ExecutionFinish(status="succeeded", output=[1]))
        failed = await agents.finish_execution(session, two.id, {"status": "failed", "error": "tool timed out"})
    assert done is not None
    assert failed is not None
    assert (done.status, done.output, done.error) == (ExecutionStatus.SUCCEEDED, [1], None)
    assert (failed.status, failed.output, failed.error) == (ExecutionStatus.FAILED, None, "tool timed out")
    async with migrated.session() as session:
        stored = await session.get(Execution, two.id)
    assert stored is not None
    assert (stored.status, stored.error) == (ExecutionStatus.FAILED, "tool timed out")


@pytest.mark.parametrize(
    ("finish", "message", "allowed"),
    [
        (
            {"status": "running"},
            r"^execution\.status: 'running' is not a finished status",
            "cancelled, failed, succeeded",
        ),
        (ExecutionFinish(status="pending"), r"^execution\.status: 'pending' is not a finished status", None),
        ({"status": "done"}, r"^execution\.status: input should be 'pending', 'running', 'succeeded'", None),
        ({"error": "x"}, r"^execution\.status: is required$", None),
        ({"status": "failed", "eror": "x"}, r"^execution\.eror: is not a field; did you mean 'error'\?", None),
        ({"status": "failed", "error": "a\x00"}, r"^execution\.error: contains a NUL character", None),
        ({"status": "succeeded", "output": {"k": "\x00"}}, r"^execution\.output: \['k'\] contains a NUL", None),
        (["succeeded"], r"^status: .*'succeeded'.* is not one of the allowed values", None),
    ],
)
async def test_a_bad_finish_names_the_field_and_changes_nothing(
    migrated: DatabaseManager, finish: Any, message: str, allowed: str | None
) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        with pytest.raises(InvalidInput, match=message) as raised:
            await agents.finish_execution(session, run.id, finish)
        if allowed is not None:
            assert raised.value.allowed == allowed
        assert [r.id for r in await agents.list_executions_by_status(session, "running")] == [run.id]


async def test_a_finish_model_and_keywords_together_are_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        with pytest.raises(InvalidInput, match=r"^execution: pass the ExecutionFinish \(or mapping\) alone"):
            await agents.finish_execution(session, run.id, {"status": "succeeded"}, output=[1])


async def test_a_finish_model_of_a_finished_run_is_a_state_conflict(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        run = await agents.start_execution(session, "planner")
        await agents.finish_execution(session, run.id, ExecutionFinish(status="cancelled"))
        with pytest.raises(StateConflict, match="already finished with status 'cancelled'"):
            await agents.finish_execution(session, run.id, {"status": "succeeded"})


async def test_find_by_metadata_refuses_what_is_not_a_json_object(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"^contains: must be a JSON object \(a dict\), not list$"):
            await agents.find_executions_by_metadata(session, [1])  # type: ignore[arg-type]
        with pytest.raises(InvalidInput, match=r"^contains: \['k'\] contains a NUL character"):
            await agents.find_executions_by_metadata(session, {"k": "\x00"})
