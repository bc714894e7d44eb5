"""examples/agent_service, the FastAPI recipe: served by a real uvicorn on a loopback port (lifespan and
all), spoken to over HTTP, against a real server."""

from __future__ import annotations

import asyncio
import socket
import subprocess
import sys
import time
import uuid
from collections.abc import AsyncIterator, Iterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any

import httpx
import pytest
import uvicorn

from examples.agent_service.app import RETRY_AFTER_SECONDS, create_app
from src import PROJECT_ROOT
from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from tests.support import environ_without_settings, free_port


@asynccontextmanager
async def serving(config: DatabaseConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The service for `config` under uvicorn on a free loopback port; a client for it; shut down after."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    server = uvicorn.Server(uvicorn.Config(create_app(config), log_level="warning", lifespan="on", ws="none"))
    task = asyncio.create_task(server.serve(sockets=[sock]))
    try:
        while not server.started:
            if task.done():
                task.result()
                pytest.fail("the service did not start")
            await asyncio.sleep(0.01)
        base = f"http://127.0.0.1:{sock.getsockname()[1]}"
        async with httpx.AsyncClient(base_url=base, trust_env=False, timeout=30) as client:
            yield client
    finally:
        server.should_exit = True
        await task
        sock.close()


@pytest.fixture
async def service(migrated: DatabaseManager, db_config: DatabaseConfig) -> AsyncIterator[httpx.AsyncClient]:
    """The service on a migrated database (its own manager, made by its lifespan)."""
    async with serving(db_config) as client:
        yield client


async def create(client: httpx.AsyncClient, **fields: Any) -> dict[str, Any]:
    response = await client.post("/todos", json=fields)
    assert response.status_code == 201, response.text
    body: dict[str, Any] = response.json()
    return body


async def test_a_created_todo_is_read_back_by_a_new_request(service: httpx.AsyncClient) -> None:
    created = await create(service, title="Ship it", priority=1, metadata={"source": "chat"})
    response = await service.get(f"/todos/{created['id']}")
    assert response.status_code == 200
    assert response.json() == created
    assert created["status"] == "pending"
    assert created["metadata"] == {"source": "chat"}


async def test_a_bad_status_is_422_naming_the_field_and_the_allowed_values(service: httpx.AsyncClient) -> None:
    response = await service.post("/todos", json={"title": "x", "status": "finished-ish"})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "status"
    assert all(value in error["allowed"] for value in ("pending", "in_progress", "completed", "cancelled"))
    assert "finished-ish" not in response.text  # the rejected value is not echoed back


async def test_a_rule_the_repository_checks_is_422_naming_the_field(service: httpx.AsyncClient) -> None:
    created = await create(service, title="keep my title")
    response = await service.patch(f"/todos/{created['id']}", json={"title": None})
    assert response.status_code == 422
    [error] = response.json()["detail"]
    assert error["field"] == "todo.title"
    assert "NOT NULL" in error["problem"]


async def test_an_unknown_todo_is_404(service: httpx.AsyncClient) -> None:
    missing = uuid.uuid4()
    response = await service.get(f"/todos/{missing}")
    assert response.status_code == 404
    assert str(missing) in response.json()["detail"]


async def test_a_chat_that_does_not_exist_is_404_naming_the_field(service: httpx.AsyncClient) -> None:
    response = await service.post("/todos", json={"title": "x", "chat_id": str(uuid.uuid4())})
    assert response.status_code == 404
    assert response.json()["field"] == "todo.chat_id"


async def test_an_update_changes_only_the_fields_given_and_is_stored(service: httpx.AsyncClient) -> None:
    created = await create(service, title="Write the report", description="draft", priority=2)
    response = await service.patch(f"/todos/{created['id']}", json={"status": "completed"})
    assert response.status_code == 200
    stored = (await service.get(f"/todos/{created['id']}")).json()
    assert stored == response.json()
    assert (stored["status"], stored["description"], stored["priority"]) == ("completed", "draft", 2)


async def test_a_delete_removes_the_todo(service: httpx.AsyncClient) -> None:
    created = await create(service, title="Temporary")
    assert (await service.delete(f"/todos/{created['id']}")).status_code == 204
    assert (await service.get(f"/todos/{created['id']}")).status_code == 404
    assert (await service.delete(f"/todos/{created['id']}")).status_code == 404


async def test_the_list_by_status_has_only_that_status_newest_first(service: httpx.AsyncClient) -> None:
    first = await create(service, title="first")
    done = await create(service, title="done", status="completed")
    second = await create(service, title="second")
    pending = (await service.get("/todos", params={"status": "pending"})).json()
    completed = (await service.get("/todos", params={"status": "completed"})).json()
    assert [t["id"] for t in pending["items"]] == [second["id"], first["id"]]
    assert [t["id"] for t in completed["items"]] == [done["id"]]
    assert pending["next_cursor"] is None


async def test_the_list_pages_with_the_cursor_it_returns(service: httpx.AsyncClient) -> None:
    made = [await create(service, title=f"step {n}") for n in range(3)]
    seen: list[str] = []
    params: dict[str, Any] = {"limit": 2}
    while True:
        page = (await service.get("/todos", params=params)).json()
        seen += [t["id"] for t in page["items"]]
        if page["next_cursor"] is None:
            break
        params["after"] = page["next_cursor"]
    assert seen == [t["id"] for t in reversed(made)]


async def test_health_is_200(service: httpx.AsyncClient) -> None:
    response = await service.get("/health")
    assert response.status_code == 200
    assert response.json()["status"] == "ok"


async def test_ready_is_200_after_the_migrations(service: httpx.AsyncClient) -> None:
    response = await service.get("/ready")
    assert response.status_code == 200
    assert response.json()["status"] == "ready"


async def test_ready_is_503_before_the_migrations(db_config: DatabaseConfig) -> None:
    async with serving(db_config) as client:  # an empty database: nothing applied yet
        response = await client.get("/ready")
    assert response.status_code == 503
    assert response.json()["status"] == "not ready"
    assert any("pending" in reason for reason in response.json()["reasons"])


async def test_an_unreachable_database_is_503_with_retry_after() -> None:
    nowhere = DatabaseConfig(host="127.0.0.1", port=free_port(), database="agents", username="app")
    async with serving(nowhere) as client:
        response = await client.post("/todos", json={"title": "x"})
    assert response.status_code == 503
    assert response.headers["retry-after"] == str(RETRY_AFTER_SECONDS)
    assert "127.0.0.1" in response.json()["detail"]


@pytest.fixture
def uvicorn_process(database_url: str, tmp_path: Path) -> Iterator[tuple[subprocess.Popen[str], str]]:
    """The README's way, `uvicorn examples.agent_service.app:app`, configured by DATABASE_URL alone (and
    started in a directory of its own, so no .env of the checkout is read)."""
    port = free_port()
    env = environ_without_settings(DATABASE_URL=database_url)
    env.pop("PYTHONPATH", None)
    argv = [sys.executable, "-m", "uvicorn", "examples.agent_service.app:app", "--app-dir", str(PROJECT_ROOT)]
    process = subprocess.Popen(
        [*argv, "--host", "127.0.0.1", "--port", str(port)],
        cwd=tmp_path,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        yield process, f"http://127.0.0.1:{port}"
    finally:
        if process.poll() is None:
            process.terminate()
        process.communicate(timeout=30)


@pytest.mark.slow
async def test_uvicorn_serves_the_module_app_from_database_url(
    uvicorn_process: tuple[subprocess.Popen[str], str], migrated: DatabaseManager
) -> None:
    process, url = uvicorn_process
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient(base_url=url, trust_env=False, timeout=10) as client:
        while True:
            try:
                ready = await client.get("/ready")
                break
            except httpx.TransportError:
                if process.poll() is not None:
                    pytest.fail(f"uvicorn exited ({process.returncode}): {process.communicate()[0]}")
                assert time.monotonic() < deadline, "uvicorn never answered"
                await asyncio.sleep(0.1)
        created = await client.post("/todos", json={"title": "from the README"})
        read = await client.get(f"/todos/{created.json()['id']}")
    assert ready.status_code == 200
    assert created.status_code == 201
    assert read.json()["title"] == "from the README"
