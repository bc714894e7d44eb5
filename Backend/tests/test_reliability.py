"""The reliability and security catalog's cases that cut across the runner and the data layer
(docs/reliability.md lists every case and the test that proves it).

- A distinctive password, through every error path of the CLI and the data layer: never in any output.
- Hostile strings through every repository function: stored verbatim or refused with a clear ValueError,
  and nothing else in the database changes.
- A server that accepts connections but never answers: a bounded wait and a clear error, never a hang.
"""

from __future__ import annotations

import logging
import os
import re
import socket
import subprocess
import sys
import threading
import time
import uuid
from collections.abc import Awaitable, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import text
from sqlalchemy.ext.asyncio import AsyncSession

from src.app.health import HealthApp
from src.database.config import DatabaseConfig
from src.database.errors import DatabaseTimeout
from src.database.manager import DatabaseManager
from src.database.models import Chat, Execution, Message, TelegramSession, Todo
from src.database.repositories import agents, messaging, tasks, telegram
from src.postgres.settings import ConnectionSettings, Secret
from tests.support import (
    PrivateServer,
    config_for,
    environ_without_settings,
    fetchval,
    free_port,
    http_get,
    server_dir,
    url_of,
    write_migrations,
)

PASSWORD = "Zebra-7741-distinctive"
"""Searched for in every output; distinctive enough that it can only come from a leak."""
MIGRATE = str(Path(sys.executable).parent / "migrate")


# --- a password never printed ----------------------------------------------------------------------------


@pytest.fixture(scope="module")
def scram_server(server_root: Path) -> Iterator[PrivateServer]:
    """A server of this module's own where role `app` must give its password (SCRAM), which is PASSWORD."""
    server = PrivateServer(server_dir(server_root, "scram") / "pg")
    try:
        fetchval(server.settings, f"CREATE ROLE app LOGIN PASSWORD '{PASSWORD}'")
        fetchval(server.settings, "CREATE DATABASE app OWNER app")
        server.require_passwords()
        yield server
    finally:
        server.stop()


def locations(server: PrivateServer) -> dict[str, ConnectionSettings]:
    """Ways to point at a database with PASSWORD in hand, each failing differently."""
    app = replace(server.settings, user="app", database="app", password=Secret(PASSWORD))
    return {
        "right password": app,  # then a later step fails (bad SQL, drift)
        "wrong password": replace(app, password=Secret(PASSWORD + "-wrong")),
        "unknown user": replace(app, user="nobody"),
        "unknown database": replace(app, database="nope"),
        "refused": replace(app, host="127.0.0.1", port=free_port()),
    }


def run_cli(*args: str, env: dict[str, str], timeout: float = 60) -> str:
    done = subprocess.run([MIGRATE, *args], env=env, capture_output=True, text=True, timeout=timeout, check=False)
    return done.stdout + done.stderr


def cli_env(settings: ConnectionSettings, as_url: bool, **extra: str) -> dict[str, str]:
    keep = environ_without_settings()
    if as_url:
        location = {"DATABASE_URL": url_of(settings)}
    else:
        assert settings.password is not None
        location = {
            "DB_HOST": settings.host,
            "DB_PORT": str(settings.port),
            "DB_NAME": settings.database,
            "DB_USER": settings.user,
            "DB_PASSWORD": settings.password.get_secret_value(),
        }
    return {**keep, **location, **extra}


BROKEN = {"001_ok.sql": "CREATE TABLE IF NOT EXISTS t (id int);", "002_bad.sql": "SELECT * FROM missing_table;"}

CLI_COMMANDS = [
    ("apply",),
    ("--debug", "apply"),
    ("apply", "--json"),
    ("apply", "--dry-run"),
    ("status",),
    ("status", "--json"),
    ("verify", "--rerun"),
    ("repair",),
    ("baseline", "--version", "1"),
    ("wait", "--timeout", "1"),
    ("health",),
    ("health", "--ready"),
    ("--debug", "health", "--ready"),
]


@pytest.mark.slow
@pytest.mark.parametrize("as_url", [True, False], ids=["DATABASE_URL", "DB_PASSWORD"])
def test_no_cli_command_prints_the_password_on_any_failure(
    scram_server: PrivateServer, tmp_path: Path, as_url: bool
) -> None:
    folder = write_migrations(tmp_path / "migrations", BROKEN)
    runs = [
        (f"{where}: migrate {' '.join(command)}", command, cli_env(settings, as_url, MIGRATIONS_DIR=str(folder)))
        for where, settings in locations(scram_server).items()
        for command in CLI_COMMANDS
    ]
    with ThreadPoolExecutor(max_workers=4) as pool:  # 65 processes; four at a time keeps this test short
        outputs = list(pool.map(lambda run: run_cli(*run[1], env=run[2]), runs))
    for (what, _, _), output in zip(runs, outputs, strict=True):
        assert PASSWORD not in output, f"{what} printed the password:\n{output}"
    # The sweep did reach the failures it means to: a password error, a refused port and a SQL error.
    joined = "\n".join(outputs)
    assert "password authentication failed for user 'app'" in joined
    assert "connection refused" in joined
    assert "002_bad.sql:1:15: ERROR 42P01" in joined


@pytest.mark.slow
def test_a_malformed_database_url_is_named_without_repeating_it() -> None:
    env = cli_env(ConnectionSettings(host="h", port=1, database="d", user="u"), True)
    for url in (
        f"postgresql://u:{PASSWORD}@host:notaport/db",
        f"mysql://u:{PASSWORD}@host/db",
        f"postgresql://u:{PASSWORD}@host:99999/db",
    ):
        output = run_cli("status", env={**env, "DATABASE_URL": url})
        assert "DATABASE_URL" in output
        assert PASSWORD not in output


@pytest.mark.slow
def test_the_health_server_never_serves_or_logs_the_password(scram_server: PrivateServer) -> None:
    port = free_port()
    wrong = locations(scram_server)["wrong password"]
    env = cli_env(wrong, False, HEALTH_PORT=str(port))
    server = subprocess.Popen(
        [MIGRATE, "serve-health", "--access-log"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True
    )
    try:
        bodies: list[tuple[int, dict[str, Any]]] = []
        deadline = time.monotonic() + 30
        while not bodies:
            try:
                bodies = [http_get(f"http://127.0.0.1:{port}{route}") for route in ("/health", "/ready")]
            except OSError:
                assert time.monotonic() < deadline, "the health server did not start"
                time.sleep(0.2)
    finally:
        server.terminate()
        output, _ = server.communicate(timeout=30)
    assert [status for status, _ in bodies] == [503, 503]
    assert "password authentication failed for user 'app'" in str(bodies)
    assert PASSWORD not in str(bodies)
    assert PASSWORD not in output


@pytest.mark.slow
async def test_no_data_layer_error_repr_or_log_carries_the_password(
    scram_server: PrivateServer, caplog: pytest.LogCaptureFixture
) -> None:
    caplog.set_level(logging.DEBUG)
    seen: list[str] = []
    for settings in locations(scram_server).values():
        config = config_for(settings, echo=True, health_check_timeout=5)
        seen += [repr(config), str(config), config.describe(), str(config.sqlalchemy_url()), config.model_dump_json()]
        async with DatabaseManager(config) as manager:
            seen += [repr(manager), str(manager.engine.url), repr(manager.engine)]
            health = await manager.health()
            seen.append(str(health.as_dict()))
            seen.append(str((await HealthApp(manager).check_ready()).body))
            try:
                async with manager.session() as session:
                    await session.execute(text("SELECT * FROM missing_table"))
            except Exception as exc:  # every failure is what this test collects
                seen += [str(exc), repr(exc), repr(exc.__cause__), str(exc.__cause__)]
    try:
        DatabaseConfig(password=PASSWORD, port="not a port")
    except ValueError as exc:
        seen.append(str(exc))
    seen.append(caplog.text)
    assert any("password authentication failed for user 'app'" in s for s in seen)
    assert any('relation "missing_table" does not exist' in s for s in seen)
    leaks = [s for s in seen if PASSWORD in s]
    assert leaks == []


# --- hostile input ---------------------------------------------------------------------------------------

HOSTILE = {
    "sql comment": "'); DROP TABLE tasks.todos; --",
    "tautology": "1 OR 1=1",
    "dollar quotes": "$$; DROP SCHEMA messaging CASCADE; $$",
    "backslashes": "\\'; \\\\ \\x00 \\n",
    "emoji and bidi": "🧪🚀 ∑ \u202eevil\u202c 家",
    "line separators": "a\u2028b\u2029c\r\nd",
    "NUL": "a\x00b",
    "1 MB": "é" * 1_000_000,
    "501 characters": "x" * 501,
}

Writer = Callable[[AsyncSession, str], Awaitable[Any]]
"""Stores the value somewhere through repository functions and returns what the database then holds."""


async def _todo(session: AsyncSession, title: str = "t", **more: Any) -> Todo:
    return await tasks.create_todo(session, {"title": title, **more})


async def _reread(session: AsyncSession, model: type[Any], row_id: uuid.UUID, attribute: str) -> Any:
    """The value as stored: a fresh SELECT, not the session's copy."""
    session.expire_all()
    return getattr(await session.get(model, row_id), attribute)


async def create_chat_title(s: AsyncSession, v: str) -> Any:
    return await _reread(s, Chat, (await messaging.create_chat(s, title=v)).id, "title")


async def create_chat_metadata(s: AsyncSession, v: str) -> Any:
    return (await _reread(s, Chat, (await messaging.create_chat(s, metadata={v: v})).id, "metadata_"))[v]


async def add_message_content(s: AsyncSession, v: str) -> Any:
    chat = await messaging.create_chat(s)
    return await _reread(s, Message, (await messaging.add_message(s, chat.id, "user", v)).id, "content")


async def add_message_metadata(s: AsyncSession, v: str) -> Any:
    chat = await messaging.create_chat(s)
    message = await messaging.add_message(s, chat.id, "user", "x", metadata={"note": v})
    return (await _reread(s, Message, message.id, "metadata_"))["note"]


async def create_todo_title(s: AsyncSession, v: str) -> Any:
    return await _reread(s, Todo, (await _todo(s, v)).id, "title")


async def create_todo_description(s: AsyncSession, v: str) -> Any:
    return await _reread(s, Todo, (await _todo(s, description=v)).id, "description")


async def update_todo_title(s: AsyncSession, v: str) -> Any:
    todo = await _todo(s)
    await tasks.update_todo(s, todo.id, {"title": v})
    return await _reread(s, Todo, todo.id, "title")


async def update_todo_metadata(s: AsyncSession, v: str) -> Any:
    todo = await _todo(s)
    await tasks.update_todo(s, todo.id, {"metadata": {"tags": [v]}})
    return (await _reread(s, Todo, todo.id, "metadata_"))["tags"][0]


async def start_execution_agent_name(s: AsyncSession, v: str) -> Any:
    return await _reread(s, Execution, (await agents.start_execution(s, v)).id, "agent_name")


async def start_execution_input(s: AsyncSession, v: str) -> Any:
    run = await agents.start_execution(s, "a", input={"prompt": v})
    return (await _reread(s, Execution, run.id, "input"))["prompt"]


async def finish_execution_error(s: AsyncSession, v: str) -> Any:
    run = await agents.start_execution(s, "a")
    await agents.finish_execution(s, run.id, "failed", error=v)
    return await _reread(s, Execution, run.id, "error")


async def finish_execution_output(s: AsyncSession, v: str) -> Any:
    run = await agents.start_execution(s, "a")
    await agents.finish_execution(s, run.id, "succeeded", output=[v])
    return (await _reread(s, Execution, run.id, "output"))[0]


async def find_executions_by_metadata_filter(s: AsyncSession, v: str) -> Any:
    run = await agents.start_execution(s, "a", metadata={"k": v})
    found = await agents.find_executions_by_metadata(s, {"k": v})
    assert [e.id for e in found] == [run.id]
    return (await _reread(s, Execution, run.id, "metadata_"))["k"]


async def upsert_session_state(s: AsyncSession, v: str) -> Any:
    chat_number = uuid.uuid4().int % 2**62
    await telegram.upsert_session(s, chat_number, 1, state={"step": v})
    await telegram.upsert_session(s, chat_number, 1, state={"step": v, "again": True})
    stored = await telegram.get_session(s, chat_number)
    assert stored is not None
    return (await _reread(s, TelegramSession, stored.id, "state"))["step"]


WRITERS: list[Writer] = [
    create_chat_title,
    create_chat_metadata,
    add_message_content,
    add_message_metadata,
    create_todo_title,
    create_todo_description,
    update_todo_title,
    update_todo_metadata,
    start_execution_agent_name,
    start_execution_input,
    finish_execution_error,
    finish_execution_output,
    find_executions_by_metadata_filter,
    upsert_session_state,
]

LOOKUPS: list[Callable[[AsyncSession, str], Awaitable[Any]]] = [
    lambda s, v: tasks.get_todos_by_status(s, v),
    lambda s, v: tasks.list_todos(s, status=v),
    lambda s, v: tasks.list_todos(s, after=v),
    lambda s, v: messaging.list_messages(s, uuid.uuid4(), after=v),
    lambda s, v: messaging.add_message(s, uuid.uuid4(), v, "x"),
    lambda s, v: agents.list_executions_by_status(s, v),
    lambda s, v: agents.finish_execution(s, uuid.uuid4(), v),
]

TABLES = ("messaging.chats", "messaging.messages", "tasks.todos", "agents.executions", "telegram.sessions")


async def row_counts(manager: DatabaseManager) -> dict[str, int]:
    async with manager.session() as session:
        return {t: int((await session.execute(text(f"SELECT count(*) FROM {t}"))).scalar_one()) for t in TABLES}


@pytest.fixture
async def seeded(migrated: DatabaseManager) -> DatabaseManager:
    """The migrated database with a row in every table, so 'nothing else changed' has something to lose."""
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session, title="seed")
        await messaging.add_message(session, chat.id, "user", "seed")
        await _todo(session, "seed", chat_id=chat.id)
        await agents.start_execution(session, "seed", chat_id=chat.id)
        await telegram.upsert_session(session, 42, 42, chat_id=chat.id)
    return migrated


def refusal_is_expected(writer: Writer, value: str) -> str | None:
    """The ValueError message a writer must give for `value`, or None when it must store it verbatim."""
    if "\x00" in value:
        return "NUL character"
    if writer in (create_chat_title, create_todo_title, update_todo_title) and len(value) > 500:
        return "at most 500"
    return None


class _Undo(Exception):
    """Raised at the end of a transaction() block to roll back what it wrote."""


@pytest.mark.parametrize("writer", WRITERS, ids=lambda w: w.__name__)
async def test_hostile_strings_are_stored_verbatim_or_refused_and_nothing_else_changes(
    seeded: DatabaseManager, writer: Writer
) -> None:
    before = await row_counts(seeded)
    for label, value in HOSTILE.items():
        refusal = refusal_is_expected(writer, value)
        # In transaction() the writes join it, and _Undo rolls it back: each value starts from `before`.
        with pytest.raises(_Undo):
            async with seeded.transaction() as session:
                if refusal is not None:
                    with pytest.raises(ValueError, match=refusal):
                        await writer(session, value)
                else:
                    assert await writer(session, value) == value, label
                    # and the transaction is still usable afterwards
                    assert (await session.execute(text("SELECT 1"))).scalar_one() == 1
                raise _Undo
        assert await row_counts(seeded) == before, label


@pytest.mark.parametrize("lookup", range(len(LOOKUPS)))
async def test_hostile_statuses_roles_and_cursors_are_refused_with_a_value_error(
    seeded: DatabaseManager, lookup: int
) -> None:
    before = await row_counts(seeded)
    for value in HOSTILE.values():
        async with seeded.session() as session:
            with pytest.raises(ValueError, match=r"\S"):
                await LOOKUPS[lookup](session, value)
    assert await row_counts(seeded) == before


# --- a server that never answers -------------------------------------------------------------------------


@pytest.fixture
def silent_server() -> Iterator[int]:
    """A TCP port that accepts connections and never says a word (a hung server, a black-holing proxy)."""
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    accepted: list[socket.socket] = []
    stop = threading.Event()

    def accept() -> None:
        listener.settimeout(0.1)
        while not stop.is_set():
            try:
                accepted.append(listener.accept()[0])
            except TimeoutError:
                continue

    thread = threading.Thread(target=accept, daemon=True)
    thread.start()
    try:
        yield int(listener.getsockname()[1])
    finally:
        stop.set()
        thread.join()
        for sock in accepted:
            sock.close()
        listener.close()


@pytest.mark.parametrize("command", [("apply",), ("status",), ("wait", "--timeout", "2"), ("health",)])
def test_a_server_that_never_answers_gives_a_bounded_wait_and_a_clear_error(
    silent_server: int, command: tuple[str, ...]
) -> None:
    url = f"postgresql://app:{PASSWORD}@127.0.0.1:{silent_server}/app"
    env = {**os.environ, "DATABASE_URL": url, "DB_CONNECT_TIMEOUT": "1"}
    started = time.monotonic()
    done = subprocess.run([MIGRATE, *command], env=env, capture_output=True, text=True, timeout=60, check=False)
    elapsed = time.monotonic() - started
    assert done.returncode == (1 if command[0] == "health" else 3)
    assert re.search(rf"127\.0\.0\.1:{silent_server}/app.*(no answer|gave no answer) within", done.stderr)
    assert "Traceback" not in done.stderr
    assert PASSWORD not in done.stdout + done.stderr
    assert elapsed < 20  # bounded by DB_CONNECT_TIMEOUT (or --timeout), not by the operating system


async def test_the_data_layer_answers_a_silent_server_within_its_timeouts(silent_server: int) -> None:
    config = DatabaseConfig(host="127.0.0.1", port=silent_server, connect_timeout=1, health_check_timeout=0.5)
    async with DatabaseManager(config) as manager:
        started = time.monotonic()
        health = await manager.health()
        health_took = time.monotonic() - started
        started = time.monotonic()
        with pytest.raises(Exception) as failure:  # noqa: PT011 (what matters is that it fails, and when)
            async with manager.session() as session:
                await session.execute(text("SELECT 1"))
        session_took = time.monotonic() - started
    assert not health.ok
    assert health.error == "no answer within 0.5 s (DB_HEALTH_CHECK_TIMEOUT)"
    assert health_took < 1.5
    assert isinstance(failure.value, DatabaseTimeout)
    assert failure.value.setting == "DB_CONNECT_TIMEOUT"
    assert session_took < 5
