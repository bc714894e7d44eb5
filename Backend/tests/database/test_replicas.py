"""Read replicas: `manager.session(readonly=True)` on a real hot standby (`pg_basebackup -R` from a primary of
the tests' own, the `replicated` fixture), falling back to the primary, refusing writes, and `health()`
reporting each server and the replica's lag.

The standby is shared by the whole session: a test that stops it or pauses its replay restores it.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import AsyncIterator, Iterator

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.config import DatabaseConfig
from src.database.errors import ReadOnlySession
from src.database.manager import DatabaseManager
from src.database.models import Todo
from src.database.repositories.tasks import create_todo, get_todo
from src.postgres.settings import ConnectionSettings
from tests.conftest import Replicated
from tests.servers import PgBouncer
from tests.support import config_for, url_of

Pair = tuple[ConnectionSettings, ConnectionSettings]


async def _replayed(primary: ConnectionSettings, standby: ConnectionSettings, within: float = 30) -> None:
    """Until the standby has replayed everything the primary has written so far (async, for async tests)."""
    conn = await asyncpg.connect(**primary.asyncpg_kwargs())
    try:
        target = await conn.fetchval("SELECT pg_current_wal_lsn()::text")
    finally:
        await conn.close()
    conn = await asyncpg.connect(**standby.asyncpg_kwargs())
    try:
        deadline = time.monotonic() + within
        while not await conn.fetchval("SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", target):
            assert time.monotonic() < deadline, f"the standby did not replay up to {target}"
            await asyncio.sleep(0.05)
    finally:
        await conn.close()


async def _count_todos(settings: ConnectionSettings) -> int:
    conn = await asyncpg.connect(**settings.asyncpg_kwargs())
    try:
        return int(await conn.fetchval("SELECT count(*) FROM tasks.todos"))
    finally:
        await conn.close()


@pytest.fixture
async def pair(replicated_database: Pair) -> Pair:
    """(primary, standby) of a database with the project's migrations, replayed on the standby."""
    from src.migrate import runner
    from src.migrate.files import discover
    from tests.support import PROJECT_MIGRATIONS

    primary, standby = replicated_database
    conn = await asyncpg.connect(**primary.asyncpg_kwargs())
    try:
        await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    finally:
        await conn.close()
    await _replayed(primary, standby)
    return primary, standby


@pytest.fixture
async def manager_with_replica(pair: Pair) -> AsyncIterator[DatabaseManager]:
    primary, standby = pair
    # A generous lag limit: a replica paused by a test stays in use (one test checks the limit itself).
    config = config_for(primary, replica_urls=[url_of(standby)], replica_max_lag=60)
    async with DatabaseManager(config) as manager:
        yield manager


@pytest.fixture
def standby_stopped(replicated: Replicated, pair: Pair) -> Iterator[None]:
    replicated.standby.stop()
    try:
        yield
    finally:
        replicated.standby.start()


@pytest.fixture
def replay_paused(replicated: Replicated, pair: Pair) -> Iterator[None]:
    replicated.standby.pause_replay()
    try:
        yield
    finally:
        replicated.standby.resume_replay()


async def _in_recovery(manager: DatabaseManager, *, readonly: bool) -> bool:
    async with manager.session(readonly=readonly) as session:
        return bool((await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one())


async def test_a_readonly_session_reads_from_the_standby(manager_with_replica: DatabaseManager) -> None:
    assert await _in_recovery(manager_with_replica, readonly=True) is True


async def test_readonly_sessions_take_the_replicas_in_turn(pair: Pair) -> None:
    primary, standby = pair
    # Two replica entries for the one standby, told apart by the application_name each URL sets.
    urls = [f"{url_of(standby)}&application_name=replica-{n}" for n in (1, 2)]
    async with DatabaseManager(config_for(primary, replica_urls=urls)) as manager:
        seen = []
        for _ in range(4):
            async with manager.session(readonly=True) as session:
                seen.append((await session.execute(text("SELECT current_setting('application_name')"))).scalar_one())
    assert seen == ["replica-1", "replica-2", "replica-1", "replica-2"]


async def test_a_plain_session_uses_the_primary(manager_with_replica: DatabaseManager) -> None:
    assert await _in_recovery(manager_with_replica, readonly=False) is False


async def test_a_readonly_session_sees_rows_replayed_on_the_standby(
    manager_with_replica: DatabaseManager, pair: Pair
) -> None:
    async with manager_with_replica.session() as session:
        todo = await create_todo(session, {"title": "written on the primary"})
    await _replayed(*pair)
    async with manager_with_replica.session(readonly=True) as session:
        found = await get_todo(session, todo.id)
    assert found is not None
    assert found.title == "written on the primary"


async def test_reads_that_must_see_their_own_writes_use_a_plain_session(
    manager_with_replica: DatabaseManager, replay_paused: None
) -> None:
    async with manager_with_replica.transaction() as session:
        for n in range(50):
            await create_todo(session, {"title": f"just written {n}"})
    count = text("SELECT count(*) FROM tasks.todos")
    async with manager_with_replica.session(readonly=True) as session:
        assert await _in_recovery_in(session)
        on_the_replica = (await session.execute(count)).scalar_one()
    async with manager_with_replica.session() as session:
        on_the_primary = (await session.execute(count)).scalar_one()
    assert (on_the_replica, on_the_primary) == (0, 50)  # the replica trails (here: paused), the primary has them


async def _in_recovery_in(session: AsyncSession) -> bool:
    return bool((await session.execute(text("SELECT pg_is_in_recovery()"))).scalar_one())


async def test_readonly_falls_back_to_the_primary_when_the_standby_is_stopped(
    manager_with_replica: DatabaseManager, standby_stopped: None, caplog: pytest.LogCaptureFixture
) -> None:
    with caplog.at_level(logging.WARNING, logger="src.database.manager"):
        assert await _in_recovery(manager_with_replica, readonly=True) is False
        assert await _in_recovery(manager_with_replica, readonly=True) is False
    fallbacks = [r for r in caplog.records if "fall back to the primary" in r.getMessage()]
    assert len(fallbacks) == 1  # once per change, not once per session


async def test_the_fallback_session_on_the_primary_is_read_only(
    manager_with_replica: DatabaseManager, standby_stopped: None, pair: Pair
) -> None:
    with pytest.raises(ReadOnlySession, match=r"readonly=True"):
        async with manager_with_replica.session(readonly=True) as session:
            await session.execute(text("INSERT INTO tasks.todos (title) VALUES ('x')"))
    assert await _count_todos(pair[0]) == 0


async def test_an_orm_flush_in_a_readonly_session_fails_before_anything_is_sent(
    manager_with_replica: DatabaseManager, pair: Pair
) -> None:
    with pytest.raises(ReadOnlySession, match=r"manager.session\(\) or manager.transaction\(\)"):
        async with manager_with_replica.session(readonly=True) as session:
            session.add(Todo(title="not stored"))
            await session.flush()
    assert await _count_todos(pair[0]) == 0


async def test_raw_sql_writes_on_the_standby_fail_with_read_only_session(
    manager_with_replica: DatabaseManager, pair: Pair
) -> None:
    with pytest.raises(ReadOnlySession, match="the server refused a write"):
        async with manager_with_replica.session(readonly=True) as session:
            await session.execute(text("INSERT INTO tasks.todos (title) VALUES ('x')"))
    assert await _count_todos(pair[0]) == 0


async def test_a_repository_write_in_a_readonly_session_fails_with_read_only_session(
    manager_with_replica: DatabaseManager, pair: Pair
) -> None:
    with pytest.raises(ReadOnlySession, match="a repository write"):
        async with manager_with_replica.session(readonly=True) as session:
            await create_todo(session, {"title": "not stored"})
    assert await _count_todos(pair[0]) == 0


async def test_a_readonly_session_without_replicas_is_read_only_on_the_primary(pair: Pair) -> None:
    async with DatabaseManager(config_for(pair[0])) as manager:
        assert await _in_recovery(manager, readonly=True) is False
        with pytest.raises(ReadOnlySession):
            async with manager.session(readonly=True) as session:
                await session.execute(text("INSERT INTO tasks.todos (title) VALUES ('x')"))
    assert await _count_todos(pair[0]) == 0


async def test_a_readonly_session_through_transaction_pooling_is_read_only(
    pgbouncers: dict[str, PgBouncer], database: ConnectionSettings, conn: asyncpg.Connection
) -> None:
    await conn.execute("CREATE TABLE t (x int)")
    config = config_for(pgbouncers["transaction"].to(database.database), transaction_pooling=True)
    async with DatabaseManager(config) as manager:
        with pytest.raises(ReadOnlySession):
            async with manager.session(readonly=True) as session:
                await session.execute(text("INSERT INTO t VALUES (1)"))
    assert await conn.fetchval("SELECT count(*) FROM t") == 0


async def test_a_replica_further_behind_than_replica_max_lag_is_left_out(
    pair: Pair, replay_paused: None, conn_to_primary: asyncpg.Connection
) -> None:
    primary, standby = pair
    await conn_to_primary.execute("INSERT INTO tasks.todos (title) VALUES ('not replayed yet')")
    await asyncio.sleep(0.3)
    config = config_for(primary, replica_urls=[url_of(standby)], replica_max_lag=0.1)
    async with DatabaseManager(config) as manager:
        assert await _in_recovery(manager, readonly=True) is False


async def test_health_reports_the_replicas_lag(
    manager_with_replica: DatabaseManager, replay_paused: None, conn_to_primary: asyncpg.Connection
) -> None:
    await conn_to_primary.execute("INSERT INTO tasks.todos (title) VALUES ('not replayed yet')")
    deadline = time.monotonic() + 10
    while True:
        health = await manager_with_replica.health()
        (replica,) = health.replicas
        if replica.lag_s is not None and replica.lag_s > 0:
            break
        assert time.monotonic() < deadline, replica
        await asyncio.sleep(0.1)
    assert health.ok
    assert replica.ok
    assert health.as_dict()["replicas"][0]["lag_s"] > 0


async def test_health_reports_a_caught_up_replica_with_no_lag(manager_with_replica: DatabaseManager) -> None:
    (replica,) = (await manager_with_replica.health()).replicas
    assert (replica.ok, replica.lag_s, replica.error) == (True, 0.0, None)
    assert "@" in replica.server
    assert "****" not in replica.server


async def test_health_reports_a_stopped_replica_as_not_ok_and_stays_ok(
    manager_with_replica: DatabaseManager, standby_stopped: None
) -> None:
    health = await manager_with_replica.health()
    (replica,) = health.replicas
    assert health.ok is True
    assert replica.ok is False
    assert replica.error
    assert health.as_dict()["replicas"][0]["ok"] is False


async def test_health_without_replicas_reports_none(pair: Pair) -> None:
    async with DatabaseManager(config_for(pair[0])) as manager:
        health = await manager.health()
    assert (health.replicas, health.as_dict()["replicas"]) == ((), [])


@pytest.fixture
async def conn_to_primary(pair: Pair) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(**pair[0].asyncpg_kwargs())
    try:
        yield conn
    finally:
        await conn.close()


def test_a_bad_replica_url_names_database_replica_url_and_hides_the_password(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://app:s3cret@replica:5432/app,mysql://app:s3cret@other/app")
    with pytest.raises(ValidationError, match="DATABASE_REPLICA_URL: expected a postgresql:// URL") as caught:
        DatabaseConfig()
    assert "s3cret" not in str(caught.value)


def test_several_replicas_are_separated_by_commas(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_REPLICA_URL", "postgresql://app@replica1/app, postgresql://app@replica2:5433/app")
    replicas = DatabaseConfig().replicas()
    assert [(r.host, r.port) for r in replicas] == [("replica1", 5432), ("replica2", 5433)]


def test_a_replica_url_without_a_password_uses_the_primarys() -> None:
    config = DatabaseConfig(password="primary-secret", replica_urls=["postgresql://app@replica/app"])
    (replica,) = config.replicas()
    assert replica.password is not None
    assert replica.password.get_secret_value() == "primary-secret"


def test_replica_urls_never_show_in_repr() -> None:
    config = DatabaseConfig(replica_urls=["postgresql://app:s3cret@replica/app"])
    assert "s3cret" not in repr(config)


def test_replica_max_lag_comes_from_its_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_REPLICA_MAX_LAG", "0.5")
    assert DatabaseConfig().replica_max_lag == 0.5
