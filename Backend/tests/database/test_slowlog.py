"""DB_SLOW_STATEMENT_MS: statements over the threshold are logged with their duration and SQL, never their
parameter values; on a real server (pg_sleep)."""

from __future__ import annotations

import logging

import pytest
from sqlalchemy import text

from src.database.config import DatabaseConfig
from src.database.errors import DatabaseTimeout
from src.database.manager import DatabaseManager
from src.postgres.settings import ConnectionSettings
from tests.support import config_for

SECRET = "s3cret-parameter-value"


def slow_records(caplog: pytest.LogCaptureFixture) -> list[logging.LogRecord]:
    return [r for r in caplog.records if r.name == "src.database.slow"]


async def test_a_statement_over_the_threshold_is_logged_with_its_duration(
    database: ConnectionSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="src.database.slow")
    async with DatabaseManager(config_for(database, slow_statement_ms=100)) as manager, manager.session() as session:
        await session.execute(text("SELECT pg_sleep(0.2)"))
    [record] = slow_records(caplog)
    assert record.levelno == logging.WARNING
    assert record.duration_ms >= 200  # type: ignore[attr-defined]
    assert "SELECT pg_sleep(0.2)" in record.getMessage()
    assert "DB_SLOW_STATEMENT_MS 100" in record.getMessage()


async def test_a_fast_statement_is_not_logged(database: ConnectionSettings, caplog: pytest.LogCaptureFixture) -> None:
    caplog.set_level(logging.DEBUG, logger="src.database.slow")
    async with DatabaseManager(config_for(database, slow_statement_ms=1000)) as manager, manager.session() as session:
        await session.execute(text("SELECT 1"))
    assert slow_records(caplog) == []


async def test_parameter_values_are_never_logged(
    database: ConnectionSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="src.database.slow")
    async with DatabaseManager(config_for(database, slow_statement_ms=50)) as manager, manager.session() as session:
        await session.execute(text("SELECT pg_sleep(0.1), CAST(:secret AS text)"), {"secret": SECRET})
    [record] = slow_records(caplog)
    assert "pg_sleep(0.1)" in record.getMessage()
    assert SECRET not in caplog.text
    assert SECRET not in repr(record.__dict__)


async def test_a_slow_statement_that_fails_is_logged_as_failed(
    database: ConnectionSettings, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.WARNING, logger="src.database.slow")
    config = config_for(database, slow_statement_ms=50, command_timeout=0.3)
    async with DatabaseManager(config) as manager:
        with pytest.raises(DatabaseTimeout):
            async with manager.session() as session:
                await session.execute(text("SELECT pg_sleep(5)"))
    [record] = slow_records(caplog)
    assert record.getMessage().startswith("slow statement (failed): ")
    assert record.failed  # type: ignore[attr-defined]


def test_the_threshold_comes_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_SLOW_STATEMENT_MS", "250")
    assert DatabaseConfig().slow_statement_ms == 250


def test_unset_logs_nothing_and_a_negative_threshold_is_refused() -> None:
    assert DatabaseConfig().slow_statement_ms is None
    with pytest.raises(ValueError, match=r"DB_SLOW_STATEMENT_MS|slow_statement_ms"):
        DatabaseConfig(slow_statement_ms=-1)
