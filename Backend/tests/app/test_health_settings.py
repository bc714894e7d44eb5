"""Which folder and ledger /ready compares when the app that mounts HealthApp names neither: the ones
`migrate apply` would use (MIGRATIONS_DIR, MIGRATIONS_TABLE, `.env`), so the two never disagree."""

from __future__ import annotations

from pathlib import Path

import asyncpg
import pytest

from src.app.health import HealthApp
from src.database.manager import DatabaseManager
from src.migrate import runner
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from tests.support import PROJECT_MIGRATIONS, write_migrations

ONE_FILE = {"001_only.sql": "CREATE TABLE IF NOT EXISTS public.only_table (id int);\n"}


async def test_without_a_folder_ready_compares_the_folder_in_migrations_dir(
    manager: DatabaseManager, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("MIGRATIONS_DIR", str(write_migrations(tmp_path / "elsewhere", ONE_FILE)))
    answer = await HealthApp(manager).check_ready()
    assert answer.body["reasons"] == ["1 migration(s) pending (001_only.sql); run `migrate apply`"]


async def test_migrations_dir_may_come_from_the_env_file(manager: DatabaseManager, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "elsewhere", ONE_FILE)
    (tmp_path / ".env").write_text(f"MIGRATIONS_DIR={folder}\n")  # the tests run in tmp_path
    answer = await HealthApp(manager).check_ready()
    assert answer.body["reasons"] == ["1 migration(s) pending (001_only.sql); run `migrate apply`"]


async def test_a_folder_passed_in_wins_over_migrations_dir(
    manager: DatabaseManager, conn: asyncpg.Connection, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    monkeypatch.setenv("MIGRATIONS_DIR", str(write_migrations(tmp_path / "elsewhere", ONE_FILE)))
    answer = await HealthApp(manager, migrations_dir=PROJECT_MIGRATIONS).check_ready()
    assert answer.ok, answer.body


async def test_without_a_ledger_ready_reads_the_table_in_migrations_table(
    manager: DatabaseManager, conn: asyncpg.Connection, monkeypatch: pytest.MonkeyPatch
) -> None:
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options(ledger=LedgerTable("public", "our_ledger")))
    monkeypatch.setenv("MIGRATIONS_TABLE", "public.our_ledger")
    answer = await HealthApp(manager).check_ready()
    assert answer.ok, answer.body


def test_a_bad_migrations_table_is_refused_naming_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MIGRATIONS_TABLE", "no spaces.allowed")
    with pytest.raises(ValueError, match=r"MIGRATIONS_TABLE: 'no spaces\.allowed' is not a table name"):
        HealthApp()


async def test_with_nothing_set_ready_compares_the_project_migrations(
    manager: DatabaseManager, conn: asyncpg.Connection
) -> None:
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    answer = await HealthApp(manager).check_ready()
    assert answer.ok, answer.body
