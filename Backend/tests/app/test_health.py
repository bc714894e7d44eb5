"""/health and /ready, served by a real uvicorn on a loopback port, against a real server."""

from __future__ import annotations

import asyncio
import json
import shutil
import signal
import socket
import time
import urllib.error
import urllib.request
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
import pytest
import uvicorn

from src.app.health import HealthApp, Receive, Scope, Send
from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from src.migrate import runner
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import PROJECT_MIGRATIONS, PrivateServer, config_for, server_processes

PROJECT_FILES = discover(PROJECT_MIGRATIONS)
N = len(PROJECT_FILES)


@dataclass(frozen=True)
class Reply:
    status: int
    body: dict[str, Any]
    raw: bytes
    seconds: float


def _get(url: str, method: str = "GET") -> Reply:
    started = time.monotonic()
    request = urllib.request.Request(url, method=method)  # noqa: S310 (a loopback URL the test built)
    try:
        with urllib.request.urlopen(request, timeout=30) as response:  # noqa: S310
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    body = json.loads(raw) if raw else {}
    return Reply(status, body, raw, time.monotonic() - started)


async def get(url: str, method: str = "GET") -> Reply:
    return await asyncio.to_thread(_get, url, method)


@asynccontextmanager
async def serving(app: Any) -> AsyncIterator[str]:
    """Run `app` under uvicorn on a free loopback port; yields its base URL; shuts it down after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", lifespan="on"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        yield f"http://127.0.0.1:{sock.getsockname()[1]}"
    finally:
        server.should_exit = True
        await task
        sock.close()


async def backend_pids(conn: asyncpg.Connection, application_name: str) -> set[int]:
    rows = await conn.fetch(
        "SELECT pid FROM pg_stat_activity WHERE application_name = $1 AND datname = current_database()",
        application_name,
    )
    return {row["pid"] for row in rows}


@pytest.fixture
def migrations(tmp_path: Path) -> Path:
    """A copy of the project's migrations that a test may edit."""
    return Path(shutil.copytree(PROJECT_MIGRATIONS, tmp_path / "migrations"))


async def apply_all(conn: asyncpg.Connection, folder: Path) -> None:
    await runner.apply(conn, discover(folder), runner.Options())


async def test_health_is_200_with_the_database_latency_while_it_answers(manager: DatabaseManager) -> None:
    async with serving(HealthApp(manager)) as url:
        reply = await get(f"{url}/health")
    assert reply.status == 200
    assert reply.body["status"] == "ok"
    assert reply.body["database"]["ok"] is True
    assert reply.body["database"]["latency_ms"] > 0
    assert reply.body["database"]["server_version"]


async def test_ready_is_503_naming_the_pending_migrations_then_200_after_apply(
    manager: DatabaseManager, conn: asyncpg.Connection, migrations: Path
) -> None:
    async with serving(HealthApp(manager, migrations_dir=migrations)) as url:
        before = await get(f"{url}/ready")
        await apply_all(conn, migrations)
        after = await get(f"{url}/ready")
    assert before.status == 503
    assert before.body["status"] == "not ready"
    assert f"{N} migration(s) pending (001_create_schemas.sql" in before.body["reasons"][0]
    assert after.status == 200
    assert after.body == {**after.body, "status": "ready", "reasons": []}
    assert after.body["migrations"] == {"head": N, "applied": N, "files": N}


async def test_ready_is_503_when_an_applied_file_was_edited(
    manager: DatabaseManager, conn: asyncpg.Connection, migrations: Path
) -> None:
    await apply_all(conn, migrations)
    async with serving(HealthApp(manager, migrations_dir=migrations)) as url:
        assert (await get(f"{url}/ready")).status == 200
        edited = migrations / "005_tasks_todos.sql"
        edited.write_text(edited.read_text() + "\n-- an afterthought\n")
        reply = await get(f"{url}/ready")
    assert reply.status == 503
    assert reply.body["reasons"][0].startswith("005_tasks_todos.sql: edited after it was applied")


async def test_ready_is_503_when_the_database_has_a_migration_this_app_lacks(
    manager: DatabaseManager, conn: asyncpg.Connection, migrations: Path
) -> None:
    await apply_all(conn, migrations)
    last = PROJECT_FILES[-1]
    (migrations / last.filename).unlink()  # an older image against a newer schema: neither file is there
    if last.down is not None:
        (migrations / last.down.filename).unlink()
    async with serving(HealthApp(manager, migrations_dir=migrations)) as url:
        reply = await get(f"{url}/ready")
    assert reply.status == 503
    assert f"{PROJECT_FILES[-1].filename}: applied on" in reply.body["reasons"][0]


async def test_ready_is_503_when_a_migration_file_is_malformed(manager: DatabaseManager, migrations: Path) -> None:
    (migrations / "8_bad_name.sql").write_text("SELECT 1;")
    async with serving(HealthApp(manager, migrations_dir=migrations)) as url:
        reply = await get(f"{url}/ready")
    assert reply.status == 503
    assert reply.body["reasons"] == [
        "migration files: 8_bad_name.sql: not a valid migration name; expected NNN_description.sql (3 or more "
        "digits, '_', then letters, digits, '_' or '-'), e.g. 008_add_todo_index.sql; NNN_description.down.sql "
        "beside it to undo it; or R__description.sql for a repeatable script"
    ]


async def test_both_are_503_with_the_reason_when_the_server_is_gone(database: ConnectionSettings) -> None:
    closed = socket.socket()
    closed.bind(("127.0.0.1", 0))
    port = closed.getsockname()[1]
    closed.close()  # nothing listens on this port now
    config = config_for(database, host="127.0.0.1", port=port, password=None)
    async with DatabaseManager(config) as manager, serving(HealthApp(manager)) as url:
        health = await get(f"{url}/health")
        ready = await get(f"{url}/ready")
    assert health.status == 503
    assert health.body["status"] == "unavailable"
    assert f"127.0.0.1:{port}" in health.body["database"]["error"]
    assert ready.status == 503
    assert ready.body["reasons"] == [f"database: {health.body['database']['error']}"]


async def test_polls_reuse_one_pooled_connection(
    manager: DatabaseManager, conn: asyncpg.Connection, migrated: DatabaseManager
) -> None:
    name = manager.config.application_name
    async with serving(HealthApp(manager)) as url:
        await get(f"{url}/ready")
        first = await backend_pids(conn, name)
        for _ in range(20):
            assert (await get(f"{url}/health")).status == 200
            assert (await get(f"{url}/ready")).status == 200
        later = await backend_pids(conn, name)
    assert len(first) == 1
    assert later == first


async def raw_get(url: str) -> int:
    """GET over a socket of its own on the event loop, so 64 of them are truly in flight at once."""
    host, port = url.removeprefix("http://").split("/")[0].split(":")
    reader, writer = await asyncio.open_connection(host, int(port))
    path = "/" + url.removeprefix("http://").split("/", 1)[1]
    writer.write(f"GET {path} HTTP/1.1\r\nHost: {host}\r\nConnection: close\r\n\r\n".encode())
    status_line = await reader.readline()
    await reader.read()
    writer.close()
    await writer.wait_closed()
    return int(status_line.split()[1])


async def test_a_burst_of_parallel_polls_takes_one_connection_not_the_pool(
    manager: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with serving(HealthApp(manager)) as url:
        statuses = await asyncio.gather(*(raw_get(f"{url}/health") for _ in range(64)))
        pids = await backend_pids(conn, manager.config.application_name)
    assert statuses == [200] * 64
    assert len(pids) == 1  # the pool allows 15 (5 + 10 overflow); concurrent polls shared one probe


async def test_head_answers_the_status_without_a_body(manager: DatabaseManager) -> None:
    async with serving(HealthApp(manager)) as url:
        reply = await get(f"{url}/health", method="HEAD")
    assert reply.status == 200
    assert reply.raw == b""


async def test_other_paths_are_404_and_other_methods_405(manager: DatabaseManager) -> None:
    async with serving(HealthApp(manager)) as url:
        missing = await get(f"{url}/metrics")
        post = await get(f"{url}/health", method="POST")
    assert missing.status == 404
    assert missing.body == {"error": "not found; the routes are /health and /ready"}
    assert post.status == 405


async def test_it_works_mounted_under_a_prefix_in_another_asgi_app(manager: DatabaseManager) -> None:
    probes = HealthApp(manager)

    async def host_app(scope: Scope, receive: Receive, send: Send) -> None:
        # What a framework's Mount("/probes", probes) does: keep the path, extend root_path.
        if scope["type"] == "http" and scope["path"].startswith("/probes/"):
            await probes({**scope, "root_path": scope.get("root_path", "") + "/probes"}, receive, send)
            return
        if scope["type"] == "http":
            await send({"type": "http.response.start", "status": 418, "headers": []})
            await send({"type": "http.response.body", "body": b""})

    async with serving(host_app) as url:
        mounted = await get(f"{url}/probes/health")
        own = await get(f"{url}/health")
    assert mounted.status == 200
    assert mounted.body["status"] == "ok"
    assert own.status == 418


async def test_an_app_that_made_its_manager_closes_it_at_shutdown(
    db_config: DatabaseConfig, conn: asyncpg.Connection
) -> None:
    config = db_config.model_copy(update={"application_name": "health-owned"})
    async with serving(HealthApp(config=config)) as url:
        assert (await get(f"{url}/health")).status == 200
        assert len(await backend_pids(conn, "health-owned")) == 1
    for _ in range(50):  # the server notices the closed connection a moment later
        if not await backend_pids(conn, "health-owned"):
            break
        await asyncio.sleep(0.02)
    assert await backend_pids(conn, "health-owned") == set()


async def poll_until(url: str, status: int, give_up_after: float = 20.0) -> Reply:
    deadline = time.monotonic() + give_up_after
    while True:
        reply = await get(url)
        if reply.status == status or time.monotonic() > deadline:
            return reply
        await asyncio.sleep(0.2)


@pytest.mark.slow
async def test_health_is_503_within_its_timeout_while_the_server_is_stopped_and_200_after(
    private_server: PrivateServer,
) -> None:
    config = config_for(private_server.settings, health_check_timeout=1.0, connect_timeout=1.0)
    async with DatabaseManager(config) as manager, serving(HealthApp(manager)) as url:
        assert (await get(f"{url}/health")).status == 200
        await asyncio.to_thread(private_server.stop_immediately)
        down = await get(f"{url}/health")
        await asyncio.to_thread(private_server.start_again)
        back = await poll_until(f"{url}/health", 200)
    assert down.status == 503
    assert down.seconds < 1.0 + 1.0  # the timeout, plus slack for a loaded 2-core machine
    assert back.status == 200


@pytest.mark.slow
async def test_health_and_ready_are_503_within_the_timeout_while_the_server_is_frozen(
    private_server: PrivateServer,
) -> None:
    admin = await asyncpg.connect(**private_server.settings.asyncpg_kwargs())
    try:
        await apply_all(admin, PROJECT_MIGRATIONS)
    finally:
        await admin.close()
    config = config_for(private_server.settings, health_check_timeout=0.5)
    async with DatabaseManager(config) as manager, serving(HealthApp(manager)) as url:
        assert (await get(f"{url}/ready")).status == 200
        frozen = server_processes(private_server)
        for process in frozen:
            process.send_signal(signal.SIGSTOP)
        try:
            health = await get(f"{url}/health")
            ready = await get(f"{url}/ready")
        finally:
            for process in frozen:
                process.send_signal(signal.SIGCONT)
        back = await poll_until(f"{url}/ready", 200)
    assert (health.status, ready.status) == (503, 503)
    assert health.body["database"]["error"] == "no answer within 0.5 s (DB_HEALTH_CHECK_TIMEOUT)"
    assert ready.body["reasons"] == ["database: no answer within 0.5 s (DB_HEALTH_CHECK_TIMEOUT)"]
    assert max(health.seconds, ready.seconds) < 0.5 + 1.0
    assert back.status == 200
