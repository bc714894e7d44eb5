"""docker-compose.yml and Backend/Dockerfile, checked without a Docker engine: what they run must exist in
the CLI, what they configure must be settings the code reads, and the wiring must be the safe one."""

from __future__ import annotations

import re
import shlex
import subprocess
import sys
import tomllib
from typing import Any

import click
import pytest
import yaml

from src import BACKEND_DIR, PROJECT_ROOT
from src.app.cli import ENV_HEALTH_HOST, ENV_HEALTH_PORT, main
from src.database.config import DatabaseConfig

COMPOSE = yaml.safe_load((PROJECT_ROOT / "docker-compose.yml").read_text())
DOCKERFILE = (BACKEND_DIR / "Dockerfile").read_text()
ENTRYPOINT = (BACKEND_DIR / "docker-entrypoint.sh").read_text()

# Every variable the app's code reads: DatabaseConfig's aliases, the runner's and the health server's.
DATABASE_SETTINGS = {str(f.validation_alias) for f in DatabaseConfig.model_fields.values()} | {"DATABASE_URL"}
OTHER_SETTINGS = {
    ENV_HEALTH_HOST,
    ENV_HEALTH_PORT,
    "MIGRATIONS_DIR",
    "MIGRATIONS_TABLE",
    "MIGRATE_LOCK_WAIT",
    "MIGRATE_LOCK_TIMEOUT",
    "MIGRATE_STATEMENT_TIMEOUT",
    "MIGRATE_WAIT_TIMEOUT",
    "MIGRATE_ON_START",
}


def assert_is_a_migrate_command(argv: list[str]) -> None:
    """argv must be `migrate <command> [options]` that the CLI accepts (parsed, not run)."""
    assert argv[0] == "migrate", argv
    name, *args = argv[1:]
    command = main.commands.get(name)
    assert command is not None, f"`migrate {name}` is not a command"
    with click.Context(main) as parent:
        command.make_context(name, list(args), parent=parent)  # raises on an unknown option or bad value


def dockerfile_instruction(name: str) -> str:
    """The Dockerfile's (last) instruction `name`, continuation lines joined."""
    joined = DOCKERFILE.replace("\\\n", " ")
    found = re.findall(rf"^{name}\s+(.*)$", joined, flags=re.MULTILINE)
    assert found, f"no {name} in the Dockerfile"
    return str(found[-1])


def test_compose_has_a_postgres_and_an_app_service() -> None:
    assert set(COMPOSE["services"]) == {"postgres", "app"}


def test_postgres_is_an_official_image_on_a_named_volume_with_a_pg_isready_healthcheck() -> None:
    postgres = COMPOSE["services"]["postgres"]
    assert re.fullmatch(r"postgres:\d+(-alpine)?", postgres["image"])
    volume = postgres["volumes"][0].split(":")[0]
    assert volume in COMPOSE["volumes"]
    assert "pg_isready" in " ".join(postgres["healthcheck"]["test"])


def test_the_app_starts_after_the_database_is_healthy() -> None:
    assert COMPOSE["services"]["app"]["depends_on"] == {"postgres": {"condition": "service_healthy"}}


def test_the_app_is_built_from_the_backend_dockerfile() -> None:
    build = COMPOSE["services"]["app"]["build"]
    assert (PROJECT_ROOT / build["context"] / build["dockerfile"]).resolve() == BACKEND_DIR / "Dockerfile"


def test_every_app_variable_is_a_setting_the_code_reads() -> None:
    environment: dict[str, Any] = COMPOSE["services"]["app"]["environment"]
    assert set(environment) <= DATABASE_SETTINGS | OTHER_SETTINGS
    assert {"DB_HOST", "DB_NAME", "DB_USER", "DB_PASSWORD"} <= set(environment)
    assert environment["DB_HOST"] == "postgres"


def test_app_and_database_agree_on_name_user_and_password() -> None:
    app = COMPOSE["services"]["app"]["environment"]
    postgres = COMPOSE["services"]["postgres"]["environment"]
    assert (app["DB_NAME"], app["DB_USER"], app["DB_PASSWORD"]) == (
        postgres["POSTGRES_DB"],
        postgres["POSTGRES_USER"],
        postgres["POSTGRES_PASSWORD"],
    )


def test_no_password_is_written_in_the_compose_file() -> None:
    for service in COMPOSE["services"].values():
        for name, value in service.get("environment", {}).items():
            if "PASSWORD" in name:
                assert re.fullmatch(r"\$\{[A-Z_]+:\?[^}]+\}", value), f"{name} must come from the environment"


def test_replicas_can_scale_because_no_fixed_host_port_is_bound() -> None:
    for port in COMPOSE["services"]["app"].get("ports", []):
        assert ":" not in str(port), f"{port} binds a fixed host port; --scale app=N would collide"


def test_the_app_healthcheck_is_migrate_health_on_the_health_endpoint_at_health_port() -> None:
    kind, command = COMPOSE["services"]["app"]["healthcheck"]["test"]
    assert kind == "CMD-SHELL"
    # $$ is compose's escape: the container's shell expands HEALTH_PORT, whatever the service sets it to
    assert "http://127.0.0.1:$${HEALTH_PORT}/health" in command
    assert_is_a_migrate_command(shlex.split(command.replace("$${HEALTH_PORT}", "8000")))


def test_the_image_runs_as_a_non_root_user() -> None:
    assert dockerfile_instruction("USER") not in ("root", "0")
    assert re.search(r"useradd .*\b" + re.escape(dockerfile_instruction("USER")) + r"\b", DOCKERFILE)


def test_the_image_is_a_slim_python() -> None:
    assert re.fullmatch(r"python:3\.\d+-slim", dockerfile_instruction("FROM"))


def test_the_image_is_built_in_two_stages_and_keeps_the_virtualenv_alone() -> None:
    assert re.findall(r"^FROM\s+(.*)$", DOCKERFILE, flags=re.MULTILINE) == [
        "python:3.11-slim AS build",
        "python:3.11-slim",
    ]
    assert "COPY --from=build /opt/venv /opt/venv" in DOCKERFILE


def test_the_ca_bundle_reaches_pip_as_a_build_secret_only() -> None:
    # A secret mount leaves nothing in the layer; a build argument or COPY would keep it in the image.
    assert DOCKERFILE.count("RUN --mount=type=secret,id=pip_ca") == 2
    assert not re.search(r"^(ARG|COPY|ADD)\b.*\b(cert|ca)\b", DOCKERFILE, flags=re.MULTILINE | re.IGNORECASE)


def test_the_user_is_not_a_system_account_so_useradd_does_not_warn() -> None:
    useradd = re.search(r"^RUN useradd (.*)", DOCKERFILE, flags=re.MULTILINE)
    assert useradd is not None
    assert "--system" not in useradd[1]
    assert "--uid 10001" in useradd[1]


def test_the_image_entrypoint_is_the_script_and_its_default_command_exists() -> None:
    assert dockerfile_instruction("ENTRYPOINT") == '["docker-entrypoint.sh"]'
    assert "COPY Backend/docker-entrypoint.sh /usr/local/bin/docker-entrypoint.sh" in DOCKERFILE
    cmd = dockerfile_instruction("CMD")
    assert_is_a_migrate_command(yaml.safe_load(cmd))


def test_the_image_healthcheck_command_exists() -> None:
    healthcheck = dockerfile_instruction("HEALTHCHECK")
    argv = shlex.split(healthcheck.split(" CMD ", 1)[1].replace("${HEALTH_PORT}", "8000"))
    assert_is_a_migrate_command(argv)


def test_every_file_the_image_copies_exists() -> None:
    for line in re.findall(r"^COPY\s+(?!--from=)(.*)$", DOCKERFILE, flags=re.MULTILINE):
        *sources, _ = line.split()
        for source in sources:
            assert (PROJECT_ROOT / source).exists(), source


def test_the_image_relies_on_the_migrations_inside_the_installed_package() -> None:
    # tests/deploy/test_install.py proves a non-editable install finds them; the image must not override that.
    joined = DOCKERFILE.replace("\\\n", " ")
    assert not re.search(r"^ENV\b.*MIGRATIONS_DIR", joined, flags=re.MULTILINE)
    assert re.search(r"&& pip install --no-deps \. ", joined)  # not -e: a real install
    assert "COPY Backend/database Backend/database" in DOCKERFILE


def test_the_image_dependency_layer_installs_exactly_the_project_dependencies() -> None:
    command = re.search(r"python -c '([^']+)'", DOCKERFILE)
    assert command is not None, "no dependency layer"
    listed = subprocess.run(
        [sys.executable, "-c", command[1]], cwd=PROJECT_ROOT, capture_output=True, text=True, check=True
    ).stdout.split("\n")
    expected = tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["project"]["dependencies"]
    assert [line for line in listed if line] == expected


@pytest.mark.parametrize("line", [ln for ln in ENTRYPOINT.splitlines() if re.match(r"\s*migrate \w", ln)])
def test_every_migrate_command_in_the_entrypoint_exists(line: str) -> None:
    argv = shlex.split(line.split("||")[0].replace('"${MIGRATE_WAIT_TIMEOUT:-60}"', "60"))
    assert_is_a_migrate_command(argv)
