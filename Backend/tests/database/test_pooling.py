"""The data layer behind a real PgBouncer (the OS package, stock settings), in session and transaction
pooling mode: transaction_pooling turns off what breaks there, and session settings reach the server.

docs/pooling.md states what each mode supports; these tests hold it to that.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncIterator, Iterator
from pathlib import Path

import asyncpg
import pytest
from pydantic import ValidationError
from sqlalchemy import text

from src.database.config import DatabaseConfig
from src.database.errors import DatabaseTimeout
from src.database.manager import DatabaseManager
from src.database.repositories.tasks import create_todo, get_todo, list_todos, update_todo
from src.postgres.settings import ConnectionSettings, environment_fields, parse_url
from tests.conftest import TestServer as _Server  # renamed: pytest would collect a Test* name
from tests.servers import PgBouncer
from tests.support import config_for, server_dir

WORKERS = 16
OPERATIONS = 80


@pytest.fixture
async def schema(conn: asyncpg.Connection, database: ConnectionSettings) -> ConnectionSettings:
    """The test's database with the project's migrations applied (directly, not through the pooler)."""
    from src.migrate import runner
    from src.migrate.files import discover
    from tests.support import PROJECT_MIGRATIONS

    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    return database


@pytest.fixture
async def through_transaction_pooling(
    schema: ConnectionSettings, pgbouncers: dict[str, PgBouncer]
) -> AsyncIterator[DatabaseManager]:
    # One connection per worker: what is measured is the pooler, not a wait for the manager's own pool.
    config = config_for(
        pgbouncers["transaction"].to(schema.database), transaction_pooling=True, pool_size=WORKERS, max_overflow=0
    )
    async with DatabaseManager(config) as manager:
        yield manager


async def _worker(manager: DatabaseManager, worker: int, failures: list[BaseException]) -> int:
    """OPERATIONS operations, each in its own session: create, get, update, list, in turn. Returns how
    many succeeded; the failures are collected, not raised, so every worker runs to the end."""
    done = 0
    todo_id: uuid.UUID | None = None
    for step in range(OPERATIONS):
        try:
            async with manager.session() as session:
                kind = step % 4
                if kind == 0 or todo_id is None:
                    todo = await create_todo(session, {"title": f"worker {worker} step {step}"})
                    todo_id = todo.id
                elif kind == 1:
                    assert await get_todo(session, todo_id) is not None
                elif kind == 2:
                    assert await update_todo(session, todo_id, {"priority": 1 + step % 5}) is not None
                else:
                    await list_todos(session, limit=10)
            done += 1
        except Exception as exc:
            failures.append(exc)
    return done


async def _run_workers(manager: DatabaseManager) -> tuple[int, list[BaseException]]:
    failures: list[BaseException] = []
    done = await asyncio.gather(*(_worker(manager, n, failures) for n in range(WORKERS)))
    return sum(done), failures


async def test_without_the_setting_transaction_pooling_loses_operations_to_prepared_statements(
    schema: ConnectionSettings, pgbouncers: dict[str, PgBouncer]
) -> None:
    # Why the setting exists: the statements SQLAlchemy and asyncpg cache live on one server connection,
    # and the next transaction runs on another.
    config = config_for(pgbouncers["transaction"].to(schema.database))
    async with DatabaseManager(config) as manager:
        done, failures = await _run_workers(manager)
    assert done < WORKERS * OPERATIONS
    assert any("prepared statement" in str(exc) for exc in failures), [str(f) for f in failures[:3]]


async def test_with_transaction_pooling_sixteen_workers_lose_no_operation(
    through_transaction_pooling: DatabaseManager, conn: asyncpg.Connection
) -> None:
    done, failures = await _run_workers(through_transaction_pooling)
    assert failures == []
    assert done == WORKERS * OPERATIONS
    # Every create is stored: one per four steps, per worker.
    assert await conn.fetchval("SELECT count(*) FROM tasks.todos") == WORKERS * OPERATIONS // 4
    updated = await conn.fetchval("SELECT count(*) FROM tasks.todos WHERE priority <> 3")
    assert updated > 0


async def test_transaction_pooling_works_on_a_direct_connection_too(schema: ConnectionSettings) -> None:
    config = config_for(schema, transaction_pooling=True, pool_size=WORKERS, max_overflow=0)
    async with DatabaseManager(config) as manager:
        done, failures = await _run_workers(manager)
    assert (done, failures) == (WORKERS * OPERATIONS, [])


def _config_through(pgbouncer: PgBouncer, database: ConnectionSettings, **overrides: object) -> DatabaseConfig:
    return config_for(pgbouncer.to(database.database), transaction_pooling=pgbouncer.mode == "transaction", **overrides)


async def test_statement_timeout_is_in_effect_through_pgbouncer(
    pgbouncer: PgBouncer, database: ConnectionSettings
) -> None:
    async with DatabaseManager(_config_through(pgbouncer, database, statement_timeout=1.5)) as manager:
        for _ in range(3):  # each session, whichever server connection it lands on
            async with manager.session() as session:
                assert (await session.execute(text("SHOW statement_timeout"))).scalar_one() == "1500ms"


async def test_a_statement_past_statement_timeout_fails_with_database_timeout_through_pgbouncer(
    pgbouncer: PgBouncer, database: ConnectionSettings
) -> None:
    async with DatabaseManager(_config_through(pgbouncer, database, statement_timeout=0.2)) as manager:
        with pytest.raises(DatabaseTimeout, match="DB_STATEMENT_TIMEOUT") as caught:
            async with manager.session() as session:
                await session.execute(text("SELECT pg_sleep(3)"))
    assert caught.value.setting == "DB_STATEMENT_TIMEOUT"


@pytest.fixture(scope="module", params=["session", "transaction"])
def ignoring_bouncer(request: pytest.FixtureRequest, pg_server: _Server, server_root: Path) -> Iterator[PgBouncer]:
    """A PgBouncer that drops the startup parameters it does not know instead of refusing the connection."""
    folder = server_dir(server_root, f"pgbouncer-ignoring-{request.param}")
    bouncer = PgBouncer(
        pg_server.admin, folder, mode=request.param, ignore_startup_parameters="statement_timeout,extra_float_digits"
    )
    try:
        yield bouncer
    finally:
        bouncer.stop()


async def test_statement_timeout_survives_pgbouncer_ignoring_startup_parameters(
    ignoring_bouncer: PgBouncer, database: ConnectionSettings
) -> None:
    async with DatabaseManager(_config_through(ignoring_bouncer, database, statement_timeout=1.5)) as manager:
        for _ in range(3):
            async with manager.session() as session:
                assert (await session.execute(text("SHOW statement_timeout"))).scalar_one() == "1500ms"


async def test_statement_timeout_is_set_on_a_direct_connection(database: ConnectionSettings) -> None:
    async with DatabaseManager(config_for(database, statement_timeout=2)) as manager, manager.session() as session:
        assert (await session.execute(text("SHOW statement_timeout"))).scalar_one() == "2s"


async def test_statement_timeout_is_not_sent_as_a_startup_parameter() -> None:
    # PgBouncer refuses startup parameters it does not know (and drops them with ignore_startup_parameters).
    args = DatabaseConfig(statement_timeout=1).connect_args()
    assert args["server_settings"] == {"application_name": "agent-backend"}


async def test_session_pooling_needs_no_setting(pgbouncers: dict[str, PgBouncer], schema: ConnectionSettings) -> None:
    async with DatabaseManager(config_for(pgbouncers["session"].to(schema.database))) as manager:
        done, failures = await _run_workers(manager)
    assert (done, failures) == (WORKERS * OPERATIONS, [])


def test_transaction_pooling_turns_off_the_statement_caches() -> None:
    args = DatabaseConfig(transaction_pooling=True).connect_args()
    assert (args["statement_cache_size"], args["prepared_statement_cache_size"]) == (0, 0)
    assert args["prepared_statement_name_func"]() == ""  # unnamed: nothing left on the server connection


def test_without_transaction_pooling_the_caches_stay() -> None:
    args = DatabaseConfig().connect_args()
    assert "statement_cache_size" not in args
    assert "prepared_statement_cache_size" not in args


def test_the_url_parameter_turns_transaction_pooling_on() -> None:
    config = DatabaseConfig.from_url("postgresql://app@bouncer:6432/app?transaction_pooling=true")
    assert config.transaction_pooling is True


def test_asyncpgs_statement_cache_size_0_in_the_url_means_transaction_pooling() -> None:
    assert DatabaseConfig.from_url("postgresql://app@bouncer:6432/app?statement_cache_size=0").transaction_pooling


def test_another_statement_cache_size_in_the_url_is_refused_naming_the_setting() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL: statement_cache_size is accepted only as 0"):
        parse_url("postgresql://app:s3cret@bouncer/app?statement_cache_size=100")


def test_a_transaction_pooling_value_that_is_not_a_flag_is_refused() -> None:
    with pytest.raises(ValueError, match="DATABASE_URL: transaction_pooling must be true or false, not 'maybe'"):
        parse_url("postgresql://app@bouncer/app?transaction_pooling=maybe")


def test_the_environment_variable_turns_transaction_pooling_on(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TRANSACTION_POOLING", "true")
    assert DatabaseConfig().transaction_pooling is True
    assert environment_fields({"DB_TRANSACTION_POOLING": "1"})["transaction_pooling"] is True


def test_a_bad_environment_value_names_the_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_TRANSACTION_POOLING", "sometimes")
    with pytest.raises(ValueError, match="DB_TRANSACTION_POOLING: transaction_pooling must be true or false"):
        DatabaseConfig()


def test_the_url_parameter_wins_over_the_environment_variable() -> None:
    environ = {"DATABASE_URL": "postgresql://app@db/app?transaction_pooling=false", "DB_TRANSACTION_POOLING": "true"}
    assert environment_fields(environ)["transaction_pooling"] is False


def test_the_runner_sees_the_same_flag() -> None:
    assert parse_url("postgresql://app@bouncer/app?statement_cache_size=0").transaction_pooling is True
    assert DatabaseConfig(transaction_pooling=True).connection_settings().transaction_pooling is True


def test_a_keyword_value_that_is_not_a_flag_names_the_field() -> None:
    with pytest.raises(ValidationError, match="transaction_pooling"):
        DatabaseConfig(transaction_pooling="sometimes")
