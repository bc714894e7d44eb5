"""The pydantic Create models and the SQL migrations hold the same rules, on a real server.

Each case is a row to insert (the fields a caller gives; a field left out takes its default on both
sides). It is validated by the table's Create model AND inserted with raw SQL (asyncpg, in a savepoint
that is rolled back); both must accept it or both refuse it. The cases are every rule's boundary values
(`RULES`, each refusal checked to be refused by THAT rule on the server) plus generated combinations
(hypothesis, derandomized: the same cases on every run).

The domain is the values of each column's type (text, integers, aware datetimes, JSON, NULL). Values of
another Python type (`"3"` or `True` for a priority, a naive datetime) are refused by the models alone,
which are stricter there on purpose; test_tasks and test_messaging cover those. Foreign keys are checked
by the repositories (a LookupError), not by the models, so chat_id here is the one chat there is or NULL.

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
from src.database.schemas.messaging import ChatCreate, MessageCreate
from src.database.schemas.tasks import TodoCreate

CHAT_ID = uuid.UUID("00000000-0000-4000-8000-000000000001")
"""The one chat the cases may refer to; inserted before them."""

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

TABLES = [TODOS, CHATS, MESSAGES]


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


async def insert(conn: asyncpg.Connection, table: Table, case: dict[str, Any]) -> None:
    """The case as a raw INSERT of exactly its fields, in a savepoint that is always rolled back;
    Refused (holding the driver's or server's error) when it is not stored."""
    columns = list(case)
    params = [f"${i}::jsonb" if c == "metadata" else f"${i}" for i, c in enumerate(columns, start=1)]
    values = [json.dumps(v) if c == "metadata" and v is not None else v for c, v in case.items()]
    listed = ", ".join(columns)
    sql = (
        f"INSERT INTO {table.name} ({listed}) VALUES ({', '.join(params)})"
        if columns
        else (f"INSERT INTO {table.name} DEFAULT VALUES")
    )
    await conn.execute("SAVEPOINT parity_case")
    try:
        await conn.execute(sql, *values)
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
    return conn


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
async def test_boundary_cases_get_the_same_verdict_and_refusals_name_their_rule(
    prepared: asyncpg.Connection, table: Table
) -> None:
    for rule_name, rule in table.rules.items():
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


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
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


def _rule_constraints(table: Table) -> set[str]:
    return {name for name in table.rules if name.startswith("ck_")}


def _rule_not_nulls(table: Table) -> set[str]:
    return {name.removeprefix("not null: ") for name in table.rules if name.startswith("not null: ")}


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
async def test_every_check_constraint_has_rules(
    migrated: DatabaseManager, conn: asyncpg.Connection, table: Table
) -> None:
    schema, name = table.name.split(".")
    live = await conn.fetch(
        """
        SELECT c.conname FROM pg_constraint c
        JOIN pg_class t ON t.oid = c.conrelid JOIN pg_namespace n ON n.oid = t.relnamespace
        WHERE c.contype = 'c' AND n.nspname = $1 AND t.relname = $2
        """,
        schema,
        name,
    )
    assert {r["conname"] for r in live} == _rule_constraints(table)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
async def test_every_not_null_column_a_caller_writes_has_rules(
    migrated: DatabaseManager, conn: asyncpg.Connection, table: Table
) -> None:
    schema, name = table.name.split(".")
    live = await conn.fetch(
        """
        SELECT column_name FROM information_schema.columns
        WHERE table_schema = $1 AND table_name = $2 AND is_nullable = 'NO'
          AND column_name NOT IN ('id', 'created_at', 'updated_at')
        """,
        schema,
        name,
    )
    assert {r["column_name"] for r in live} == _rule_not_nulls(table)


@pytest.mark.parametrize("table", TABLES, ids=lambda t: t.name)
def test_the_generated_fields_are_the_models_fields(table: Table) -> None:
    assert set(table.fields) == set(table.model.model_fields)
