"""The container tests' stack: the project's image built by compose, then docker-compose.yml with
compose.test.yml laid over it (host networking, loopback ports picked here), a real PostgreSQL and three app
replicas. Run by `make test-container` (Backend/tests/container/run.sh), which brings up the Docker engine
and the base images first; `make test` never collects this folder (Backend/tests/conftest.py)."""

from __future__ import annotations

import json
import os
import secrets
import subprocess
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from src import PROJECT_ROOT
from tests.support import free_port

OVERRIDE = Path(__file__).with_name("compose.test.yml")
IMAGE = "agent-backend-db:test"
"""The tag compose.test.yml gives the app image."""
PROJECT = "agent-backend-test"
APPS = ("app", "app-2", "app-3")

FACTS: dict[str, str] = {}
"""What the run measured (image size, build time, outage timings), printed at the end of the session."""


def docker(*argv: str, timeout: float = 120, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["docker", *argv], capture_output=True, text=True, timeout=timeout, check=False, env=env, cwd=PROJECT_ROOT
    )


@dataclass
class Stack:
    env: dict[str, str]
    db_port: int
    app_ports: dict[str, int]
    build_output: str = ""
    started: dict[str, str] = field(default_factory=dict)
    """Each app container's start time as the engine tells it, read once the stack is up."""

    def compose(self, *argv: str, timeout: float = 300) -> subprocess.CompletedProcess[str]:
        files = ("-f", str(PROJECT_ROOT / "docker-compose.yml"), "-f", str(OVERRIDE))
        return docker("compose", "-p", PROJECT, *files, *argv, timeout=timeout, env=self.env)

    def must(self, *argv: str, timeout: float = 300) -> str:
        done = self.compose(*argv, timeout=timeout)
        assert done.returncode == 0, f"docker compose {' '.join(argv)} failed:\n{done.stdout}\n{done.stderr}"
        return done.stdout + done.stderr

    def url(self, app: str, path: str) -> str:
        return f"http://127.0.0.1:{self.app_ports[app]}{path}"

    def logs(self, service: str) -> str:
        return self.must("logs", "--no-color", "--no-log-prefix", service)

    def inspect(self, service: str) -> dict[str, object]:
        container_id = self.must("ps", "--all", "--quiet", service).strip()
        done = docker("inspect", container_id)
        assert done.returncode == 0, done.stderr
        state: dict[str, object] = json.loads(done.stdout)[0]
        return state


def _timed(what: str, started: float) -> None:
    FACTS[what] = f"{time.monotonic() - started:.1f} s"


@pytest.fixture(scope="session")
def stack() -> Iterator[Stack]:
    ports = {app: free_port() for app in APPS}
    db_port = free_port()
    env = {
        **os.environ,
        "POSTGRES_PASSWORD": secrets.token_hex(12),
        "TEST_DB_PORT": str(db_port),
        **{f"TEST_APP_PORT_{n}": str(ports[app]) for n, app in enumerate(APPS, 1)},
    }
    for name in [k for k in env if k.startswith(("DB_", "DATABASE_URL", "MIGRAT", "HEALTH_"))]:
        del env[name]
    stack = Stack(env=env, db_port=db_port, app_ports=ports)
    stack.compose("down", "--volumes", "--remove-orphans")  # what an interrupted run left
    started = time.monotonic()
    stack.build_output = stack.must("build", "--progress", "plain", "app", timeout=900)
    _timed("image build (compose build app)", started)
    started = time.monotonic()
    stack.must("up", "--detach", "--no-build", "--wait", "--wait-timeout", "120", timeout=300)
    _timed("stack up, healthy (postgres + 3 replicas)", started)
    stack.started = {app: str(stack.inspect(app)["State"]["StartedAt"]) for app in APPS}  # type: ignore[index]
    try:
        yield stack
    finally:
        stack.compose("down", "--volumes", "--remove-orphans")


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    if FACTS:
        terminalreporter.section("container facts")
        for what, value in FACTS.items():
            terminalreporter.write_line(f"{what}: {value}")
