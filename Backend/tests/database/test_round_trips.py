"""How many round trips each repository call costs, counted on the wire (tests/roundtrips.py).

Each call runs in its own `manager.session()` block, as agent code writes it, on a warm pool (connected, the
statement caches filled by a first call), and the block as a whole is counted: BEGIN, the statements, the
COMMIT or ROLLBACK. The numbers pin what the data layer does today; a change that saves a round trip
changes one line of ROUND_TRIPS.
"""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator, Awaitable, Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import pytest

from src.database.manager import DatabaseManager
from src.database.repositories import messaging, tasks
from src.postgres.settings import ConnectionSettings
from tests.roundtrips import RoundTripProxy
from tests.support import config_for

# One line per call: round trips of the whole `async with manager.session()` block. The calls with 1 take
# the direct path (src.database.direct): one statement in autocommit, no BEGIN/COMMIT around it.
ROUND_TRIPS = {
    "tasks.create_todo": 1,
    "tasks.get_todo": 1,
    "tasks.get_todos_by_status(limit=50)": 1,
    "tasks.update_todo": 1,
    "tasks.delete_todo": 3,
    "tasks.list_todos": 3,
    "messaging.create_chat": 3,
    "messaging.get_chat": 1,
    "messaging.add_message": 3,
    "messaging.list_messages": 3,
    "messaging.get_recent_messages": 1,
    "messaging.get_chat_with_recent_messages": 2,
    # Inside the caller's transaction a write joins it: BEGIN, the statement, COMMIT.
    "in manager.transaction(): tasks.create_todo": 3,
    "in manager.transaction(): tasks.update_todo": 3,
    # After a read of the ORM path began a transaction, a write stays in it and commits it.
    "tasks.list_todos then tasks.update_todo": 4,
    "manager.health_check": 1,
    # In a read-only session (manager.session(readonly=True)): autocommit, no BEGIN or COMMIT.
    "readonly tasks.get_todo": 1,
    "readonly tasks.get_todos_by_status(limit=50)": 1,
    "readonly messaging.list_messages": 1,
    "readonly messaging.get_recent_messages": 1,
}


@dataclass
class Seed:
    chat_id: uuid.UUID
    todo_ids: list[uuid.UUID]


@dataclass
class Counted:
    proxy: RoundTripProxy
    manager: DatabaseManager
    seed: Seed


@pytest.fixture
async def counted(database: ConnectionSettings, migrated: DatabaseManager) -> AsyncIterator[Counted]:
    """A manager whose connections go through a counting proxy, on a migrated database with a few rows."""
    conn = await asyncpg.connect(**database.asyncpg_kwargs())
    try:
        todo_ids = [
            r["id"]
            for r in await conn.fetch(
                "INSERT INTO tasks.todos (title) SELECT 'seed ' || i FROM generate_series(1, 20) i RETURNING id"
            )
        ]
        chat_id = await conn.fetchval("INSERT INTO messaging.chats (title) VALUES ('seed') RETURNING id")
        await conn.execute(
            "INSERT INTO messaging.messages (chat_id, role, content) SELECT $1, 'user', 'm' || i "
            "FROM generate_series(1, 10) i",
            chat_id,
        )
    finally:
        await conn.close()
    async with RoundTripProxy(database) as proxy:
        # No idle ping: the pool's ping after a second's idleness would add a round trip on a slow machine.
        manager = DatabaseManager(config_for(proxy.settings, pool_ping_after=3600))
        try:
            yield Counted(proxy, manager, Seed(chat_id, todo_ids))
        finally:
            await manager.close()


Call = Callable[[DatabaseManager, Seed, int], Awaitable[Any]]


def in_transaction(body: Callable[[Any, Seed, int], Awaitable[Any]]) -> Call:
    async def call(manager: DatabaseManager, seed: Seed, n: int) -> Any:
        async with manager.transaction() as session:
            return await body(session, seed, n)

    return call


async def list_then_update(session: Any, seed: Seed, n: int) -> Any:
    await tasks.list_todos(session, limit=10)
    return await tasks.update_todo(session, seed.todo_ids[n], {"priority": 4})


def in_session(body: Callable[[Any, Seed, int], Awaitable[Any]], *, readonly: bool = False) -> Call:
    async def call(manager: DatabaseManager, seed: Seed, n: int) -> Any:
        async with manager.session(readonly=readonly) as session:
            return await body(session, seed, n)

    return call


CALLS: dict[str, Call] = {
    "tasks.create_todo": in_session(lambda s, seed, n: tasks.create_todo(s, {"title": f"new {n}"})),
    "tasks.get_todo": in_session(lambda s, seed, n: tasks.get_todo(s, seed.todo_ids[n])),
    "tasks.get_todos_by_status(limit=50)": in_session(
        lambda s, seed, n: tasks.get_todos_by_status(s, "pending", limit=50)
    ),
    "tasks.update_todo": in_session(lambda s, seed, n: tasks.update_todo(s, seed.todo_ids[n], {"priority": 2})),
    "tasks.delete_todo": in_session(lambda s, seed, n: tasks.delete_todo(s, seed.todo_ids[10 + n])),
    "tasks.list_todos": in_session(lambda s, seed, n: tasks.list_todos(s, limit=10)),
    "messaging.create_chat": in_session(lambda s, seed, n: messaging.create_chat(s, {"title": f"chat {n}"})),
    "messaging.get_chat": in_session(lambda s, seed, n: messaging.get_chat(s, seed.chat_id)),
    "messaging.add_message": in_session(lambda s, seed, n: messaging.add_message(s, seed.chat_id, "user", "hi")),
    "messaging.list_messages": in_session(lambda s, seed, n: messaging.list_messages(s, seed.chat_id, limit=5)),
    "messaging.get_recent_messages": in_session(
        lambda s, seed, n: messaging.get_recent_messages(s, seed.chat_id, limit=5)
    ),
    "messaging.get_chat_with_recent_messages": in_session(
        lambda s, seed, n: messaging.get_chat_with_recent_messages(s, seed.chat_id, recent=5)
    ),
    "in manager.transaction(): tasks.create_todo": in_transaction(
        lambda s, seed, n: tasks.create_todo(s, {"title": f"joined {n}"})
    ),
    "in manager.transaction(): tasks.update_todo": in_transaction(
        lambda s, seed, n: tasks.update_todo(s, seed.todo_ids[n], {"priority": 3})
    ),
    "tasks.list_todos then tasks.update_todo": in_session(list_then_update),
    "manager.health_check": lambda manager, seed, n: manager.health_check(),
    "readonly tasks.get_todo": in_session(lambda s, seed, n: tasks.get_todo(s, seed.todo_ids[n]), readonly=True),
    "readonly tasks.get_todos_by_status(limit=50)": in_session(
        lambda s, seed, n: tasks.get_todos_by_status(s, "pending", limit=50), readonly=True
    ),
    "readonly messaging.list_messages": in_session(
        lambda s, seed, n: messaging.list_messages(s, seed.chat_id, limit=5), readonly=True
    ),
    "readonly messaging.get_recent_messages": in_session(
        lambda s, seed, n: messaging.get_recent_messages(s, seed.chat_id, limit=5), readonly=True
    ),
}


def test_every_pinned_call_is_measured() -> None:
    assert set(CALLS) == set(ROUND_TRIPS)


@pytest.mark.parametrize("name", list(ROUND_TRIPS))
async def test_round_trips_per_call(counted: Counted, name: str) -> None:
    call = CALLS[name]
    await call(counted.manager, counted.seed, 0)  # connects, and fills the statement caches
    with counted.proxy.count() as seen:
        await call(counted.manager, counted.seed, 1)
    assert (seen.round_trips, seen.connections) == (ROUND_TRIPS[name], 0), seen.messages


async def second_read(database: ConnectionSettings, **config: Any) -> Any:
    """What a read-only read costs on the wire right after an identical one, with `config` for the manager."""
    async with RoundTripProxy(database) as proxy:
        manager = DatabaseManager(config_for(proxy.settings, **config))
        try:
            read = in_session(lambda s, seed, n: tasks.get_todos_by_status(s, "pending", limit=5), readonly=True)
            seed = Seed(uuid.uuid4(), [])
            await read(manager, seed, 0)
            with proxy.count() as seen:
                await read(manager, seed, 1)
        finally:
            await manager.close()
    return seen


async def test_a_connection_idle_past_pool_ping_after_costs_one_cheap_round_trip_more(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    seen = await second_read(database, pool_ping_after=0)  # every checkout is "idle"
    assert seen.round_trips == 2, seen.messages  # the ping (one simple query), then the read


async def test_a_connection_used_a_moment_ago_costs_no_ping(
    database: ConnectionSettings, migrated: DatabaseManager
) -> None:
    seen = await second_read(database)  # the default pool_ping_after (1 s)
    assert seen.round_trips == 1, seen.messages  # the read alone
