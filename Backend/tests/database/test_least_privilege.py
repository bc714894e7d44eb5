"""Least privilege: the app logs in with a role that is a member of agent_backend_app (migration 008) and
can read and write rows in the four domain schemas, and nothing else."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner

from src.app.cli import main
from src.app.health import HealthApp
from src.database.manager import DatabaseManager
from src.database.models import TodoStatus
from src.database.repositories import agents, messaging, tasks, telegram
from src.migrate import runner
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings, Secret
from tests.support import PROJECT_MIGRATIONS, PrivateServer, config_for, fetchval, url_of, write_migrations

APP_ROLE = "agent_backend_app"


@pytest.fixture
async def app_login(database: ConnectionSettings, conn: asyncpg.Connection) -> AsyncIterator[ConnectionSettings]:
    """The migrated database, and settings to log in to it as a new member of the application role."""
    await runner.apply(conn, discover(PROJECT_MIGRATIONS), runner.Options())
    name = f"app_login_{uuid.uuid4().hex[:12]}"
    password = uuid.uuid4().hex
    await conn.execute(f"CREATE ROLE {name} LOGIN PASSWORD '{password}' IN ROLE {APP_ROLE}")
    try:
        yield replace(database, user=name, password=Secret(password))
    finally:
        await conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE usename = $1", name)
        await conn.execute(f"DROP ROLE {name}")


@pytest.fixture
async def app_conn(app_login: ConnectionSettings) -> AsyncIterator[asyncpg.Connection]:
    connection = await asyncpg.connect(**app_login.asyncpg_kwargs())
    try:
        yield connection
    finally:
        await connection.close()


async def test_the_app_role_exists_and_cannot_log_in(conn: asyncpg.Connection, app_login: ConnectionSettings) -> None:
    row = await conn.fetchrow("SELECT rolcanlogin, rolsuper, rolcreaterole FROM pg_roles WHERE rolname = $1", APP_ROLE)
    assert row is not None
    assert tuple(row) == (False, False, False)


async def test_every_repository_function_works_as_the_app_login(app_login: ConnectionSettings) -> None:
    async with DatabaseManager(config_for(app_login)) as manager, manager.transaction() as session:
        chat = await messaging.create_chat(session, title="least privilege")
        await messaging.add_message(session, chat.id, "user", "hello")
        assert len((await messaging.list_messages(session, chat.id)).items) == 1
        assert await messaging.get_chat_with_recent_messages(session, chat.id) is not None
        todo = await tasks.create_todo(session, {"title": "t", "chat_id": chat.id})
        assert await tasks.update_todo(session, todo.id, {"status": "completed"}) is not None
        assert [t.id for t in await tasks.get_todos_by_status(session, TodoStatus.COMPLETED)] == [todo.id]
        assert (await tasks.list_todos(session)).items
        assert await tasks.delete_todo(session, todo.id)
        run = await agents.start_execution(session, "planner", metadata={"k": "v"})
        await agents.finish_execution(session, run.id, "succeeded", output={"ok": True})
        assert await agents.find_executions_by_metadata(session, {"k": "v"})
        await telegram.upsert_session(session, 1, 2, chat_id=chat.id)
        assert await telegram.get_session(session, 1) is not None
        await telegram.expire_sessions(session)


@pytest.mark.parametrize(
    "ddl",
    [
        "CREATE TABLE tasks.shadow (id int)",
        "CREATE TABLE public.shadow (id int)",
        "CREATE SCHEMA shadow",
        "ALTER TABLE tasks.todos ADD COLUMN shadow text",
        "DROP TABLE messaging.messages",
        "TRUNCATE agents.executions",
        "CREATE INDEX ix_shadow ON telegram.sessions (state)",
        "CREATE OR REPLACE FUNCTION public.set_updated_at() RETURNS trigger LANGUAGE sql AS 'SELECT NULL'",
        "ALTER TABLE tasks.todos DISABLE TRIGGER set_updated_at",
        "INSERT INTO public.migration_ledger (version, name, checksum, duration_ms, hostname) "
        "VALUES (999, 'x', 'x', 0, 'x')",
        "DELETE FROM public.migration_ledger",
    ],
)
async def test_the_app_login_is_refused_ddl_and_ledger_writes(app_conn: asyncpg.Connection, ddl: str) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute(ddl)


async def test_the_app_login_can_read_the_ledger_so_readiness_works(app_login: ConnectionSettings) -> None:
    async with DatabaseManager(config_for(app_login)) as manager:
        answer = await HealthApp(manager).check_ready()
    assert answer.ok, answer.body


async def test_tables_a_later_migration_creates_are_open_to_the_app_too(
    conn: asyncpg.Connection, app_conn: asyncpg.Connection, tmp_path: Path
) -> None:
    # The down files too: one gone since its file was applied would be drift.
    files = {p.name: p.read_text() for p in PROJECT_MIGRATIONS.glob("*.sql")}
    files["900_tasks_notes.sql"] = "CREATE TABLE IF NOT EXISTS tasks.notes (body text);"
    later = discover(write_migrations(tmp_path / "migrations", files))
    assert [a.file.filename for a in (await runner.apply(conn, later, runner.Options())).applied] == [
        "900_tasks_notes.sql"
    ]
    await app_conn.execute("INSERT INTO tasks.notes VALUES ('by the app')")
    assert await app_conn.fetchval("SELECT body FROM tasks.notes") == "by the app"
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("DROP TABLE tasks.notes")


@pytest.mark.slow
def test_a_runner_that_may_not_create_roles_is_told_what_to_ask_for(private_server: PrivateServer) -> None:
    fetchval(private_server.settings, "CREATE ROLE owner_only LOGIN")
    fetchval(private_server.settings, "CREATE DATABASE app OWNER owner_only")
    as_owner = url_of(private_server.settings, user="owner_only", database="app")
    refused = CliRunner().invoke(main, ["apply", "--database-url", as_owner])
    assert refused.exit_code == 1
    assert "008_application_role.sql" in refused.stderr
    assert "role agent_backend_app does not exist and owner_only may not create roles" in refused.stderr
    assert "Ask an administrator to run: CREATE ROLE agent_backend_app NOLOGIN;" in refused.stderr
    fetchval(private_server.settings, "CREATE ROLE agent_backend_app NOLOGIN")
    done = CliRunner().invoke(main, ["apply", "--database-url", as_owner])
    assert done.exit_code == 0, done.output  # once the role exists, a plain database owner can apply it all
