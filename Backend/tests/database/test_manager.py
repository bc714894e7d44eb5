"""DatabaseManager on a real server: sessions, transactions, health, recovery and shutdown."""

from __future__ import annotations

import asyncio
import signal
import time

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.config import DatabaseConfig
from src.database.errors import DatabaseTimeout, ManagerClosed, PoolExhausted, SessionClosed
from src.database.manager import DatabaseManager
from src.database.models.messaging import Chat
from tests.support import PrivateServer, config_for, server_processes

SECRET = "Pa55-distinctive"


async def make_table(manager: DatabaseManager) -> None:
    async with manager.transaction() as session:
        await session.execute(text("CREATE TABLE notes (body text)"))


async def count_notes(manager: DatabaseManager) -> int:
    async with manager.session() as session:
        return int((await session.execute(text("SELECT count(*) FROM notes"))).scalar_one())


async def test_a_session_is_an_async_session_on_the_server(manager: DatabaseManager) -> None:
    async with manager.session() as session:
        assert isinstance(session, AsyncSession)
        assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


async def test_an_exception_in_a_session_rolls_back_and_propagates(manager: DatabaseManager) -> None:
    await make_table(manager)
    with pytest.raises(RuntimeError, match="boom"):
        async with manager.session() as session:
            await session.execute(text("INSERT INTO notes VALUES ('x')"))
            await session.flush()
            raise RuntimeError("boom")
    assert await count_notes(manager) == 0


async def test_work_a_session_does_not_commit_is_rolled_back(manager: DatabaseManager) -> None:
    await make_table(manager)
    async with manager.session() as session:
        await session.execute(text("INSERT INTO notes VALUES ('x')"))
    assert await count_notes(manager) == 0


async def test_a_transaction_commits_on_success(manager: DatabaseManager) -> None:
    await make_table(manager)
    async with manager.transaction() as session:
        await session.execute(text("INSERT INTO notes VALUES ('x')"))
    assert await count_notes(manager) == 1


async def test_a_transaction_rolls_back_on_error(manager: DatabaseManager) -> None:
    await make_table(manager)
    with pytest.raises(ValueError, match="nope"):
        async with manager.transaction() as session:
            await session.execute(text("INSERT INTO notes VALUES ('x')"))
            raise ValueError("nope")
    assert await count_notes(manager) == 0


async def test_sessions_return_their_connections_to_the_pool(manager: DatabaseManager) -> None:
    for _ in range(3):
        async with manager.session() as session:
            await session.execute(text("SELECT 1"))
    assert (await manager.health()).pool["checked_out"] == 0


async def test_health_reports_ok_latency_version_and_pool(manager: DatabaseManager) -> None:
    health = await manager.health()
    assert health.ok
    assert health.error is None
    assert health.latency_ms > 0
    assert health.server_version is not None
    assert health.server_version[0].isdigit()
    assert set(health.pool) == {"size", "checked_out", "overflow"}
    assert await manager.health_check() is True


async def test_health_check_is_false_and_quick_when_the_server_is_down() -> None:
    config = DatabaseConfig(host="127.0.0.1", port=1, password=SECRET, health_check_timeout=2)
    async with DatabaseManager(config) as manager:
        started = time.monotonic()
        health = await manager.health()
        assert await manager.health_check() is False
    assert time.monotonic() - started < 5
    assert not health.ok
    assert health.error is not None
    assert "connection refused" in health.error
    assert SECRET not in health.error


async def test_health_check_is_bounded_when_the_pool_is_exhausted(db_config: DatabaseConfig) -> None:
    config = db_config.model_copy(update={"pool_size": 1, "max_overflow": 0, "health_check_timeout": 0.3})
    async with DatabaseManager(config) as manager, manager.session() as busy:
        await busy.execute(text("SELECT 1"))  # holds the only connection
        started = time.monotonic()
        health = await manager.health()
        elapsed = time.monotonic() - started
    assert not health.ok
    assert health.error is not None
    assert health.error.startswith("pool exhausted: all 1 connections in use, none free within 0.3 s")
    assert "DB_POOL_TIMEOUT" in health.error
    assert elapsed < 1.5


async def test_health_says_the_pool_is_exhausted_when_the_pool_wait_times_out_first(
    db_config: DatabaseConfig,
) -> None:
    config = db_config.model_copy(
        update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.2, "health_check_timeout": 2.0}
    )
    async with DatabaseManager(config) as manager, manager.session() as busy:
        await busy.execute(text("SELECT 1"))
        health = await manager.health()
    assert not health.ok
    assert health.error is not None
    assert health.error.startswith("pool exhausted: all 1 connections in use, none free within 0.2 s")


async def test_health_reports_the_servers_full_version_with_its_real_minor(manager: DatabaseManager) -> None:
    async with manager.session() as session:
        shown = str((await session.execute(text("SHOW server_version"))).scalar_one())
    health = await manager.health()
    assert health.server_version == shown.split()[0]  # asyncpg's ServerVersion would give "16.0" for 16.4


async def test_many_parallel_health_checks_share_the_pool(manager: DatabaseManager) -> None:
    results = await asyncio.gather(*(manager.health_check() for _ in range(50)))
    assert all(results)
    assert (await manager.health()).pool["size"] <= manager.config.pool_size


async def test_the_password_never_shows_in_the_managers_repr_or_engine_url() -> None:
    manager = DatabaseManager(DatabaseConfig(password=SECRET))  # creating the engine connects to nothing
    assert SECRET not in repr(manager)
    assert SECRET not in str(manager.engine.url)
    assert SECRET not in repr(manager.engine)
    await manager.close()


async def test_close_disposes_the_pool_and_a_session_afterwards_is_manager_closed(manager: DatabaseManager) -> None:
    assert await manager.health_check()
    await manager.close()
    assert manager.engine.pool.checkedin() == 0  # type: ignore[attr-defined]
    for opening in (manager.session, manager.transaction):
        with pytest.raises(ManagerClosed, match=r"closed \(await manager\.close\(\)\); make a new DatabaseManager"):
            async with opening():
                pass
    assert manager.engine.pool.checkedin() == 0  # type: ignore[attr-defined]  # no connection was opened


async def test_health_after_close_is_not_ok_and_says_why(manager: DatabaseManager) -> None:
    await manager.close()
    health = await manager.health()
    assert (health.ok, health.error) == (False, "this DatabaseManager is closed (await manager.close())")
    assert await manager.health_check() is False


async def test_close_twice_is_harmless(manager: DatabaseManager) -> None:
    assert await manager.health_check()
    await manager.close()
    await manager.close()
    assert manager.engine.pool.checkedout() == 0  # type: ignore[attr-defined]
    with pytest.raises(ManagerClosed):
        async with manager.session():
            pass


async def test_a_session_open_when_the_manager_closes_finishes_its_work(manager: DatabaseManager) -> None:
    await make_table(manager)
    async with manager.session() as session:
        await manager.close()
        await session.execute(text("INSERT INTO notes VALUES ('written after close() began')"))
        await session.commit()
        assert (await session.execute(text("SELECT count(*) FROM notes"))).scalar_one() == 1
    assert manager.engine.pool.checkedin() == 0  # type: ignore[attr-defined]  # its connection was closed, not pooled


def checked_out(manager: DatabaseManager) -> int:
    return int(manager.engine.pool.checkedout())  # type: ignore[attr-defined]


async def test_a_session_executing_after_its_block_raises_session_closed(manager: DatabaseManager) -> None:
    async with manager.session() as session:
        await session.execute(text("SELECT 1"))
    with pytest.raises(SessionClosed, match=r"manager\.session"):
        await session.execute(text("SELECT 1"))
    assert checked_out(manager) == 0


async def test_a_session_getting_a_row_after_its_block_raises_session_closed(manager: DatabaseManager) -> None:
    async with manager.session() as session:
        pass
    with pytest.raises(SessionClosed):
        await session.get(Chat, 1)
    assert checked_out(manager) == 0


async def test_a_session_committing_after_its_block_raises_session_closed(manager: DatabaseManager) -> None:
    async with manager.transaction() as session:
        await session.execute(text("SELECT 1"))
    with pytest.raises(SessionClosed):
        await session.commit()
    assert checked_out(manager) == 0


@pytest.mark.slow
async def test_the_first_session_after_a_server_restart_succeeds(private_server: PrivateServer) -> None:
    async with DatabaseManager(config_for(private_server.settings)) as manager:
        assert await manager.health_check()  # a pooled connection now exists
        await asyncio.to_thread(private_server.stop_immediately)
        assert not await manager.health_check()
        await asyncio.to_thread(private_server.start_again)
        async with manager.session() as session:
            assert (await session.execute(text("SELECT 1"))).scalar_one() == 1


@pytest.mark.slow
async def test_health_check_answers_within_its_timeout_while_the_server_is_frozen(
    private_server: PrivateServer,
) -> None:
    config = config_for(private_server.settings, health_check_timeout=0.5)
    async with DatabaseManager(config) as manager:
        assert await manager.health_check()
        frozen = server_processes(private_server)
        for process in frozen:
            process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            health = await manager.health()
            elapsed = time.monotonic() - started
        finally:
            for process in frozen:
                process.send_signal(signal.SIGCONT)
        assert not health.ok
        assert health.error == "no answer within 0.5 s (DB_HEALTH_CHECK_TIMEOUT)"
        assert elapsed < 2
        await asyncio.sleep(0.1)
        assert await manager.health_check()  # and it recovers once the server runs again


async def test_a_session_waiting_past_the_pool_timeout_raises_pool_exhausted(db_config: DatabaseConfig) -> None:
    config = db_config.model_copy(update={"pool_size": 1, "max_overflow": 0, "pool_timeout": 0.5})
    async with DatabaseManager(config) as manager, manager.session() as busy:
        await busy.execute(text("SELECT 1"))  # holds the only connection
        with pytest.raises(PoolExhausted, match="DB_POOL_TIMEOUT") as info:
            async with manager.session() as session:
                await session.execute(text("SELECT 1"))
    assert info.value.setting == "DB_POOL_TIMEOUT"


@pytest.mark.slow
async def test_a_query_to_a_frozen_server_raises_database_timeout_naming_the_setting(
    private_server: PrivateServer,
) -> None:
    config = config_for(private_server.settings, command_timeout=1.0)
    async with DatabaseManager(config) as manager:
        async with manager.session() as session:
            await session.execute(text("SELECT 1"))  # a pooled connection exists before the freeze
        frozen = server_processes(private_server)
        for process in frozen:
            process.send_signal(signal.SIGSTOP)
        try:
            started = time.monotonic()
            with pytest.raises(DatabaseTimeout, match="DB_COMMAND_TIMEOUT") as info:
                async with manager.session() as session:
                    await session.execute(text("SELECT 1"))
            elapsed = time.monotonic() - started
        finally:
            for process in frozen:
                process.send_signal(signal.SIGCONT)
    assert info.value.setting == "DB_COMMAND_TIMEOUT"
    assert elapsed < 3
