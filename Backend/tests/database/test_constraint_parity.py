"""The pydantic Create models and the SQL migrations hold the same rules, on a real server.

Each case is a row to insert (the fields a caller gives; a field left out takes its default on both
sides). It is validated by the table's Create model AND written with raw SQL (asyncpg, in a savepoint
that is rolled back); both must accept it or both refuse it. The cases are every rule's boundary values
(`RULES`, each refusal checked to be refused by THAT rule on the server) plus generated combinations
(hypothesis, derandomized: the same cases on every run).

The tables: tasks.todos, messaging.chats, messaging.messages, telegram.sessions, and agents.executions
twice, as its two writes: the start (ExecutionStart, an INSERT to which the repository adds
status = 'running') and the finish (ExecutionFinish, the repository's UPDATE of a running execution,
writing every field of the model). That a finish's status is a final one (succeeded, failed, cancelled)
is the state machine's rule, which `finish_execution` checks (test_agents); the model and the CHECK
agree on the column's values. A rule no caller's field can reach (started_at, finished_at: the
repository writes now()) is listed with its reason instead of cases.

The domain is the values of each column's type (text, integers, aware datetimes, JSON, NULL; Python None
in a JSON column is SQL NULL, as the repositories send it). Values of another Python type (`"3"` or
`True` for a priority or a Telegram id, a naive datetime) are refused by the models alone, which are
stricter there on purpose; test_tasks, test_messaging, test_agents and test_telegram cover those.
Foreign keys are checked by the repositories (a LookupError), not by the models, so chat_id here is the
one chat there is or NULL.

`test_every_check_constraint_has_rules` holds `RULES` to the live catalog: a new CHECK (or NOT NULL
column) in a migration without a rule here, and so without a pydantic rule proved equal, fails it.
"""

from __future__ import annotations

import asyncio
import json
import math
import uuid
from dataclasses import dataclass, field
from datetime import UTC, timedelta, timezone
from typing import Any

import asyncpg
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pydantic import BaseModel, ValidationError

from src.database.manager import DatabaseManager
from src.database.schemas.agents import ExecutionFinish, ExecutionStart
from src.database.schemas.messaging import ChatCreate, MessageCreate
from src.database.schemas.tasks import TodoCreate
from src.database.schemas.telegram import TelegramSessionCreate

CHAT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
"""The one chat the cases may refer to; inserted before them."""
EXECUTION_ID = uuid.UUID("00000000-0000-4000-8000-000000000002")
"""The running execution the finish cases finish; inserted before them."""

OMIT = object()
"""In a rule's case: leave the base case's field out (it takes its default)."""


@dataclass(frozen=True)
class Refusal:
    """A boundary case the server must refuse for one reason: a CHECK constraint, a NOT NULL column, or
    a value the type cannot store (neither given)."""

    changes: dict[str, Any]
    constraint: str | None = None
    not_null: str | None = None


@dataclass(frozen=True)
class Rule:
    accepted: list[dict[str, Any]]
    refused: list[Refusal]
    reason: str = ""
    """Why a rule has no refusals: no field a caller writes can break it."""


@dataclass(frozen=True)
class Table:
    name: str
    model: type[BaseModel]
    base: dict[str, Any]
    """A valid case; rules change one field of it at a time."""
    rules: dict[str, Rule]
    """Keyed by CHECK constraint name, `not null: <column>`, or `storable: <what>` (no catalog entry)."""
    fields: dict[str, st.SearchStrategy[Any]] = field(default_factory=dict)
    """What hypothesis may put in each field (each one also may be left out)."""
    json_columns: frozenset[str] = frozenset({"metadata"})
    """Columns sent as JSON text (None as SQL NULL)."""
    fixed: dict[str, Any] = field(default_factory=dict)
    """Columns the repository adds to every INSERT of this table (not a caller's fields)."""
    finish: bool = False
    """The write is the finish of the running execution EXECUTION_ID (an UPDATE of every model field,
    a field not given written as NULL, as `finish_execution` does), not an INSERT."""
    label: str = ""

    @property
    def id(self) -> str:
        return self.label or self.name


def longest(n: int, char: str = "x") -> str:
    return char * n


TEXT = st.text(alphabet=st.characters(codec="utf-8") | st.sampled_from([" ", "\t", "\x00", "é", "🧪"]), max_size=12)
TEXT_EDGES = st.sampled_from(
    ["", " ", "   ", "\t", " a ", "a\x00b", "\ud800", longest(499), longest(500), longest(501), longest(500, "🧪")]
)
TEXT_OR_NULL = st.none() | TEXT | TEXT_EDGES
JSON_SCALARS = (
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=True, allow_infinity=True)
    | TEXT
    | st.sampled_from(["\x00", "a\x00"])
)
JSON_VALUES = st.recursive(
    JSON_SCALARS, lambda inner: st.lists(inner, max_size=3) | st.dictionaries(TEXT, inner, max_size=3), max_leaves=8
)
JSON_OR_NULL = st.none() | JSON_VALUES | st.dictionaries(TEXT, JSON_VALUES, max_size=3)
TIMES = st.none() | st.datetimes(timezones=st.sampled_from([UTC, timezone(timedelta(hours=-9, minutes=-30))]))


def status_values(valid: list[str]) -> st.SearchStrategy[Any]:
    near = [v.upper() for v in valid] + [f" {valid[0]}", f"{valid[0]} ", f"{valid[0]}\x00", "", "done"]
    return st.none() | st.sampled_from(valid + near) | TEXT


METADATA_RULE = Rule(
    accepted=[{"metadata": {}}, {"metadata": {"k": [1, None, "é", {"x": True}]}}, {"metadata": OMIT}],
    refused=[
        Refusal({"metadata": []}, constraint="metadata_is_object"),
        Refusal({"metadata": "x"}, constraint="metadata_is_object"),
        Refusal({"metadata": 1}, constraint="metadata_is_object"),
    ],
)
JSON_STORABLE = Rule(
    accepted=[{"metadata": {"k": 1e308, "big": 10**40}}],
    refused=[
        Refusal({"metadata": {"k": "a\x00"}}),
        Refusal({"metadata": {"a\x00": 1}}),
        Refusal({"metadata": {"k": math.nan}}),
        Refusal({"metadata": {"k": [math.inf]}}),
    ],
)

TODOS = Table(
    name="tasks.todos",
    model=TodoCreate,
    base={"title": "t"},
    rules={
        "ck_todos_title_length": Rule(
            accepted=[{"title": longest(500)}, {"title": longest(500, "é")}, {"title": longest(500, "🧪")}],
            refused=[
                Refusal({"title": longest(501)}, constraint="ck_todos_title_length"),
                Refusal({"title": longest(501, "🧪")}, constraint="ck_todos_title_length"),
            ],
        ),
        "ck_todos_title_not_blank": Rule(
            accepted=[{"title": "a"}, {"title": "\t"}, {"title": "\n"}, {"title": " a "}],
            refused=[
                Refusal({"title": ""}, constraint="ck_todos_title_not_blank"),
                Refusal({"title": "   "}, constraint="ck_todos_title_not_blank"),
            ],
        ),
        "ck_todos_status": Rule(
            accepted=[{"status": s} for s in ("pending", "in_progress", "completed", "cancelled")] + [{"status": OMIT}],
            refused=[
                Refusal({"status": "done"}, constraint="ck_todos_status"),
                Refusal({"status": "PENDING"}, constraint="ck_todos_status"),
                Refusal({"status": "pending "}, constraint="ck_todos_status"),
            ],
        ),
        "ck_todos_priority": Rule(
            accepted=[{"priority": p} for p in (1, 2, 3, 4, 5)] + [{"priority": OMIT}],
            refused=[
                Refusal({"priority": 0}, constraint="ck_todos_priority"),
                Refusal({"priority": 6}, constraint="ck_todos_priority"),
                Refusal({"priority": -32768}, constraint="ck_todos_priority"),
                Refusal({"priority": 32768}),  # past smallint: refused by the type
            ],
        ),
        "ck_todos_metadata_is_object": Rule(
            accepted=METADATA_RULE.accepted,
            refused=[Refusal(r.changes, constraint="ck_todos_metadata_is_object") for r in METADATA_RULE.refused],
        ),
        "not null: title": Rule(
            accepted=[],
            refused=[Refusal({"title": None}, not_null="title"), Refusal({"title": OMIT}, not_null="title")],
        ),
        "not null: status": Rule(accepted=[], refused=[Refusal({"status": None}, not_null="status")]),
        "not null: priority": Rule(accepted=[], refused=[Refusal({"priority": None}, not_null="priority")]),
        "not null: metadata": Rule(accepted=[], refused=[Refusal({"metadata": None}, not_null="metadata")]),
        "storable: text": Rule(
            accepted=[{"description": None}, {"description": ""}, {"description": "é" * 10_000}],
            refused=[Refusal({"title": "a\x00"}), Refusal({"description": "\x00"}), Refusal({"title": "\udc80"})],
        ),
        "storable: json": JSON_STORABLE,
    },
    fields={
        "title": TEXT_OR_NULL,
        "description": TEXT_OR_NULL,
        "status": status_values(["pending", "in_progress", "completed", "cancelled"]),
        "priority": st.none() | st.integers(-40_000, 40_000) | st.sampled_from([0, 1, 5, 6]),
        "chat_id": st.sampled_from([None, CHAT_ID]),
        "due_at": TIMES,
        "completed_at": TIMES,
        "metadata": JSON_OR_NULL,
    },
)

CHATS = Table(
    name="messaging.chats",
    model=ChatCreate,
    base={},
    rules={
        "ck_chats_title_length": Rule(
            accepted=[{"title": None}, {"title": ""}, {"title": " "}, {"title": longest(500, "🧪")}],
            refused=[Refusal({"title": longest(501)}, constraint="ck_chats_title_length")],
        ),
        "ck_chats_metadata_is_object": Rule(
            accepted=METADATA_RULE.accepted,
            refused=[Refusal(r.changes, constraint="ck_chats_metadata_is_object") for r in METADATA_RULE.refused],
        ),
        "not null: metadata": Rule(accepted=[], refused=[Refusal({"metadata": None}, not_null="metadata")]),
        "storable: text": Rule(accepted=[], refused=[Refusal({"title": "\x00"})]),
        "storable: json": JSON_STORABLE,
    },
    fields={"title": TEXT_OR_NULL, "metadata": JSON_OR_NULL},
)

MESSAGES = Table(
    name="messaging.messages",
    model=MessageCreate,
    base={"chat_id": CHAT_ID, "role": "user", "content": "c"},
    rules={
        "ck_messages_role": Rule(
            accepted=[{"role": r} for r in ("user", "assistant", "system", "tool")],
            refused=[
                Refusal({"role": "robot"}, constraint="ck_messages_role"),
                Refusal({"role": "User"}, constraint="ck_messages_role"),
                Refusal({"role": ""}, constraint="ck_messages_role"),
            ],
        ),
        "ck_messages_metadata_is_object": Rule(
            accepted=METADATA_RULE.accepted,
            refused=[Refusal(r.changes, constraint="ck_messages_metadata_is_object") for r in METADATA_RULE.refused],
        ),
        "not null: chat_id": Rule(
            accepted=[],
            refused=[Refusal({"chat_id": None}, not_null="chat_id"), Refusal({"chat_id": OMIT}, not_null="chat_id")],
        ),
        "not null: role": Rule(
            accepted=[], refused=[Refusal({"role": None}, not_null="role"), Refusal({"role": OMIT}, not_null="role")]
        ),
        "not null: content": Rule(
            accepted=[{"content": ""}, {"content": " "}],
            refused=[Refusal({"content": None}, not_null="content"), Refusal({"content": OMIT}, not_null="content")],
        ),
        "not null: metadata": Rule(accepted=[], refused=[Refusal({"metadata": None}, not_null="metadata")]),
        "storable: text": Rule(accepted=[], refused=[Refusal({"content": "a\x00"}), Refusal({"content": "\ud83d"})]),
        "storable: json": JSON_STORABLE,
    },
    fields={
        "chat_id": st.sampled_from([None, CHAT_ID]),
        "role": status_values(["user", "assistant", "system", "tool"]),
        "content": TEXT_OR_NULL,
        "metadata": JSON_OR_NULL,
    },
)

EXECUTION_STATUSES = ["pending", "running", "succeeded", "failed", "cancelled"]

EXECUTION_STARTS = Table(
    name="agents.executions",
    label="agents.executions (start)",
    model=ExecutionStart,
    base={"agent_name": "a"},
    fixed={"status": "running"},
    json_columns=frozenset({"metadata", "input"}),
    rules={
        "ck_executions_agent_name_not_blank": Rule(
            accepted=[{"agent_name": n} for n in ("a", "\t", "\n", " a ", longest(10_000))],
            refused=[
                Refusal({"agent_name": ""}, constraint="ck_executions_agent_name_not_blank"),
                Refusal({"agent_name": "   "}, constraint="ck_executions_agent_name_not_blank"),
            ],
        ),
        "ck_executions_metadata_is_object": Rule(
            accepted=METADATA_RULE.accepted,
            refused=[Refusal(r.changes, constraint="ck_executions_metadata_is_object") for r in METADATA_RULE.refused],
        ),
        "not null: agent_name": Rule(
            accepted=[],
            refused=[
                Refusal({"agent_name": None}, not_null="agent_name"),
                Refusal({"agent_name": OMIT}, not_null="agent_name"),
            ],
        ),
        "not null: input": Rule(
            accepted=[{"input": OMIT}, {"input": {}}, {"input": []}, {"input": "text"}, {"input": 0}, {"input": False}],
            refused=[Refusal({"input": None}, not_null="input")],
        ),
        "not null: metadata": Rule(accepted=[], refused=[Refusal({"metadata": None}, not_null="metadata")]),
        "not null: started_at": Rule(
            accepted=[{}], refused=[], reason="not a caller's field: the start writes now() (the column's default)"
        ),
        "storable: text": Rule(
            accepted=[{"agent_name": "é🧪"}],
            refused=[Refusal({"agent_name": "a\x00"}), Refusal({"agent_name": "\udc80"})],
        ),
        "storable: json": Rule(
            accepted=[*JSON_STORABLE.accepted, {"input": {"k": 1e308, "big": 10**40}}],
            refused=[
                *JSON_STORABLE.refused,
                Refusal({"input": "a\x00"}),
                Refusal({"input": [math.nan]}),
                Refusal({"input": {"\x00": 1}}),
            ],
        ),
    },
    fields={
        "agent_name": TEXT_OR_NULL,
        "input": JSON_OR_NULL,
        "chat_id": st.sampled_from([None, CHAT_ID]),
        "metadata": JSON_OR_NULL,
    },
)

EXECUTION_FINISHES = Table(
    name="agents.executions",
    label="agents.executions (finish)",
    model=ExecutionFinish,
    base={"status": "succeeded"},
    finish=True,
    json_columns=frozenset({"output"}),
    rules={
        "ck_executions_status": Rule(
            accepted=[{"status": s} for s in EXECUTION_STATUSES],
            refused=[
                Refusal({"status": "done"}, constraint="ck_executions_status"),
                Refusal({"status": "SUCCEEDED"}, constraint="ck_executions_status"),
                Refusal({"status": "failed "}, constraint="ck_executions_status"),
                Refusal({"status": ""}, constraint="ck_executions_status"),
            ],
        ),
        "not null: status": Rule(
            accepted=[],
            refused=[Refusal({"status": None}, not_null="status"), Refusal({"status": OMIT}, not_null="status")],
        ),
        "ck_executions_finished_after_start": Rule(
            accepted=[{}],
            refused=[],
            reason="finished_at is not a caller's field: the finish writes now(), never before the start's now()",
        ),
        "storable: text": Rule(
            accepted=[{"error": None}, {"error": ""}, {"error": "é" * 10_000}],
            refused=[Refusal({"error": "\x00"}), Refusal({"error": "\ud83d"})],
        ),
        "storable: json": Rule(
            accepted=[{"output": None}, {"output": []}, {"output": "x"}, {"output": {"k": 1e308}}, {"output": 10**40}],
            refused=[Refusal({"output": {"k": "a\x00"}}), Refusal({"output": math.inf}), Refusal({"output": ["\x00"]})],
        ),
    },
    fields={"status": status_values(EXECUTION_STATUSES), "output": JSON_OR_NULL, "error": TEXT_OR_NULL},
)

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
BIGINTS = (
    st.none()
    | st.integers(2 * BIGINT_MIN, 2 * BIGINT_MAX)
    | st.sampled_from([0, -1, BIGINT_MIN, BIGINT_MAX, BIGINT_MIN - 1, BIGINT_MAX + 1])
)

TELEGRAM_SESSIONS = Table(
    name="telegram.sessions",
    model=TelegramSessionCreate,
    base={"telegram_chat_id": -1001234567890123, "telegram_user_id": 42},
    json_columns=frozenset({"metadata", "state"}),
    rules={
        "ck_sessions_state_is_object": Rule(
            accepted=[{"state": {}}, {"state": {"step": [1, None, {"x": "é"}]}}, {"state": OMIT}],
            refused=[
                Refusal({"state": []}, constraint="ck_sessions_state_is_object"),
                Refusal({"state": "x"}, constraint="ck_sessions_state_is_object"),
                Refusal({"state": 1}, constraint="ck_sessions_state_is_object"),
            ],
        ),
        "ck_sessions_metadata_is_object": Rule(
            accepted=METADATA_RULE.accepted,
            refused=[Refusal(r.changes, constraint="ck_sessions_metadata_is_object") for r in METADATA_RULE.refused],
        ),
        "not null: telegram_chat_id": Rule(
            accepted=[],
            refused=[
                Refusal({"telegram_chat_id": None}, not_null="telegram_chat_id"),
                Refusal({"telegram_chat_id": OMIT}, not_null="telegram_chat_id"),
            ],
        ),
        "not null: telegram_user_id": Rule(
            accepted=[],
            refused=[
                Refusal({"telegram_user_id": None}, not_null="telegram_user_id"),
                Refusal({"telegram_user_id": OMIT}, not_null="telegram_user_id"),
            ],
        ),
        "not null: state": Rule(accepted=[], refused=[Refusal({"state": None}, not_null="state")]),
        "not null: metadata": Rule(accepted=[], refused=[Refusal({"metadata": None}, not_null="metadata")]),
        "range: bigint": Rule(
            accepted=[
                {"telegram_chat_id": BIGINT_MIN, "telegram_user_id": BIGINT_MAX},
                {"telegram_chat_id": BIGINT_MAX, "telegram_user_id": BIGINT_MIN},
                {"telegram_chat_id": 0, "telegram_user_id": -1},
            ],
            refused=[  # past bigint: refused by the type
                Refusal({"telegram_chat_id": BIGINT_MAX + 1}),
                Refusal({"telegram_chat_id": BIGINT_MIN - 1}),
                Refusal({"telegram_user_id": BIGINT_MAX + 1}),
            ],
        ),
        "storable: json": Rule(
            accepted=[*JSON_STORABLE.accepted, {"state": {"k": 1e308, "big": 10**40}}],
            refused=[*JSON_STORABLE.refused, Refusal({"state": {"k": "\x00"}}), Refusal({"state": {"k": math.nan}})],
        ),
    },
    fields={
        "telegram_chat_id": BIGINTS,
        "telegram_user_id": BIGINTS,
        "chat_id": st.sampled_from([None, CHAT_ID]),
        "state": JSON_OR_NULL,
        "expires_at": TIMES,
        "metadata": JSON_OR_NULL,
    },
)

TABLES = [TODOS, CHATS, MESSAGES, EXECUTION_STARTS, EXECUTION_FINISHES, TELEGRAM_SESSIONS]
TABLE_NAMES = sorted({t.name for t in TABLES})


def case_of(table: Table, changes: dict[str, Any]) -> dict[str, Any]:
    case = dict(table.base)
    for name, value in changes.items():
        if value is OMIT:
            case.pop(name, None)
        else:
            case[name] = value
    return case


def model_accepts(table: Table, case: dict[str, Any]) -> bool:
    try:
        table.model.model_validate(case)
    except ValidationError:
        return False
    return True


class Refused(Exception):
    def __init__(self, error: BaseException) -> None:
        self.error = error


def _statement(table: Table, case: dict[str, Any]) -> tuple[str, list[Any]]:
    """The SQL the repository would send for `case`, and its parameters."""
    row = {name: case.get(name) for name in table.model.model_fields} if table.finish else case | table.fixed
    columns = list(row)
    params = [f"${i}::jsonb" if c in table.json_columns else f"${i}" for i, c in enumerate(columns, start=1)]
    values = [json.dumps(v) if c in table.json_columns and v is not None else v for c, v in row.items()]
    if table.finish:
        sets = ", ".join(f"{c} = {p}" for c, p in zip(columns, params, strict=True))
        sql = f"UPDATE {table.name} SET {sets}, finished_at = now() WHERE id = ${len(columns) + 1}"
        return sql, [*values, EXECUTION_ID]
    if not columns:
        return f"INSERT INTO {table.name} DEFAULT VALUES", []
    return f"INSERT INTO {table.name} ({', '.join(columns)}) VALUES ({', '.join(params)})", values


async def insert(conn: asyncpg.Connection, table: Table, case: dict[str, Any]) -> None:
    """The case as raw SQL (an INSERT of exactly its fields, or the finish's UPDATE), in a savepoint
    that is always rolled back; Refused (holding the driver's or server's error) when it is not stored."""
    await conn.execute("SAVEPOINT parity_case")
    try:
        sql, values = _statement(table, case)
        status = await conn.execute(sql, *values)
        assert status in ("INSERT 0 1", "UPDATE 1"), status
    except (asyncpg.PostgresError, asyncpg.InterfaceError, ValueError, TypeError, OverflowError) as exc:
        raise Refused(exc) from exc
    finally:
        await conn.execute("ROLLBACK TO SAVEPOINT parity_case")


async def sql_accepts(conn: asyncpg.Connection, table: Table, case: dict[str, Any]) -> bool:
    try:
        await insert(conn, table, case)
    except Refused:
        return False
    return True


@pytest.fixture
async def prepared(migrated: DatabaseManager, conn: asyncpg.Connection) -> asyncpg.Connection:
    """A connection inside a transaction that holds the one chat the cases refer to."""
    await conn.execute("BEGIN")
    await conn.execute("INSERT INTO messaging.chats (id) VALUES ($1)", CHAT_ID)
    await conn.execute(
        "INSERT INTO agents.executions (id, agent_name, status) VALUES ($1, 'parity', 'running')", EXECUTION_ID
    )
    return conn


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.id)
async def test_boundary_cases_get_the_same_verdict_and_refusals_name_their_rule(
    prepared: asyncpg.Connection, table: Table
) -> None:
    for rule_name, rule in table.rules.items():
        assert rule.refused or rule.reason, f"{rule_name}: a rule with no refusal must say why"
        for changes in rule.accepted:
            case = case_of(table, changes)
            assert model_accepts(table, case), f"{rule_name}: the model refuses {changes}"
            assert await sql_accepts(prepared, table, case), f"{rule_name}: SQL refuses {changes}"
        for refusal in rule.refused:
            case = case_of(table, refusal.changes)
            assert not model_accepts(table, case), f"{rule_name}: the model accepts {refusal.changes}"
            with pytest.raises(Refused) as refused:
                await insert(prepared, table, case)
            error = refused.value.error
            if refusal.constraint is not None:
                assert isinstance(error, asyncpg.CheckViolationError), (rule_name, error)
                assert error.constraint_name == refusal.constraint
            if refusal.not_null is not None:
                assert isinstance(error, asyncpg.NotNullViolationError), (rule_name, error)
                assert error.column_name == refusal.not_null


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.id)
async def test_generated_cases_get_the_same_verdict_from_the_model_and_the_server(
    prepared: asyncpg.Connection, table: Table
) -> None:
    loop = asyncio.get_running_loop()
    disagreements: list[str] = []

    @settings(
        max_examples=250,
        derandomize=True,
        database=None,
        deadline=None,
        suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
    )
    @given(case=st.fixed_dictionaries({}, optional=table.fields))
    def check(case: dict[str, Any]) -> None:
        # Hypothesis drives a synchronous function; the server work runs on the test's own event loop.
        in_sql = asyncio.run_coroutine_threadsafe(sql_accepts(prepared, table, case), loop).result(timeout=30)
        in_model = model_accepts(table, case)
        if in_model != in_sql:
            disagreements.append(f"model {'accepts' if in_model else 'refuses'}, SQL the opposite: {case!r:.300}")
        assert in_model == in_sql

    await asyncio.to_thread(check)
    assert disagreements == []


def _rules_of(name: str) -> set[str]:
    return {rule for table in TABLES if table.name == name for rule in table.rules}


def _rule_constraints(name: str) -> set[str]:
    return {rule for rule in _rules_of(name) if rule.startswith("ck_")}


def _rule_not_nulls(name: str) -> set[str]:
    return {rule.removeprefix("not null: ") for rule in _rules_of(name) if rule.startswith("not null: ")}


def test_every_table_of_the_schema_is_here() -> None:
    from src.database.models import Base

    assert sorted(Base.metadata.tables) == TABLE_NAMES


@pytest.mark.parametrize("table_name", TABLE_NAMES)
async def test_every_check_constraint_has_rules(
    migrated: DatabaseManager, conn: asyncpg.Connection, table_name: str
) -> None:
    schema, name = table_name.split(".")
    live = await conn.fetch(
        """
        SELECT c.conname FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'c' AND n.nspname = $1 AND t.relname = $2
        """,
        schema,
        name,
    )
    assert {r["conname"] for r in live} == _rule_constraints(table_name)


@pytest.mark.parametrize("table_name", TABLE_NAMES)
async def test_every_not_null_column_a_caller_writes_has_rules(
    migrated: DatabaseManager, conn: asyncpg.Connection, table_name: str
) -> None:
    schema, name = table_name.split(".")
    live = await conn.fetch(
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = $2 AND is_nullable = 'NO'
          AND column_name NOT IN ('id', 'created_at', 'updated_at')
        """,
        schema,
        name,
    )
    assert {r["column_name"] for r in live} == _rule_not_nulls(table_name)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.id)
def test_the_generated_fields_are_the_models_fields(table: Table) -> None:
    assert set(table.fields) == set(table.model.model_fields)
