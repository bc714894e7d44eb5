"""The project as a user installs it: a wheel built from the sources, installed non-editable (with its
runtime dependencies only) into a venv of its own, and run from a directory outside the checkout. What the
checkout hides is what this finds: a package missing from pyproject.toml's list, SQL files left out of
the wheel, a default that points into Backend/, a module that needs a dev-only dependency."""

from __future__ import annotations

import json
import os
import shutil
import subprocess
import sys
import time
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from src import BACKEND_DIR, PROJECT_ROOT
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import PROJECT_MIGRATIONS, environ_without_settings, fetchval, free_port, http_get

SOURCE = BACKEND_DIR / "src"
N = len(discover(PROJECT_MIGRATIONS))
COPIED = ("pyproject.toml", "README.md", "Backend/src", "Backend/database")
"""What the wheel is built from: what Backend/Dockerfile copies before its `pip install .`. A copy, so
that the build's own files (build/, *.egg-info) never land in the checkout."""


def source_packages() -> set[str]:
    """Every package under Backend/src, dotted (src, src.database, ...)."""
    return {".".join(p.parent.relative_to(BACKEND_DIR).parts) for p in SOURCE.rglob("__init__.py")}


def test_pyproject_lists_every_package_under_backend_src() -> None:
    listed = set(tomllib.loads((PROJECT_ROOT / "pyproject.toml").read_text())["tool"]["setuptools"]["packages"])
    assert source_packages() - listed == set(), "add these to [tool.setuptools] packages in pyproject.toml"


@dataclass(frozen=True)
class Installed:
    wheel: Path
    bin: Path

    def env(self, **extra: str) -> dict[str, str]:
        """A fresh machine's environment with this venv first on PATH: no database settings, no
        PYTHONPATH (nothing of the checkout can be imported), plus `extra`."""
        env = environ_without_settings(**extra)
        env.pop("PYTHONPATH", None)
        env.pop("VIRTUAL_ENV", None)
        return {**env, "PATH": f"{self.bin}{os.pathsep}{env.get('PATH', '')}"}

    def run(self, *argv: str, cwd: Path, **extra: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.bin / argv[0]), *argv[1:]],
            cwd=cwd,
            env=self.env(**extra),
            capture_output=True,
            text=True,
            timeout=120,
            check=False,
        )


def _pip(python: Path, *args: str, cwd: Path) -> None:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "VIRTUAL_ENV")}
    done = subprocess.run(
        [str(python), "-m", "pip", *args], cwd=cwd, env=env, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"pip {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}"


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> Installed:
    """The wheel, built from a copy of the sources and installed into a new venv; once per module."""
    root = tmp_path_factory.mktemp("install")
    sources = root / "sources"
    for name in COPIED:
        origin = PROJECT_ROOT / name
        if origin.is_dir():
            shutil.copytree(origin, sources / name, ignore=shutil.ignore_patterns("__pycache__", "*.pyc"))
        else:
            sources.mkdir(parents=True, exist_ok=True)
            shutil.copy2(origin, sources / name)
    venv = root / "venv"
    subprocess.run([sys.executable, "-m", "venv", str(venv)], check=True, timeout=300)
    python = venv / "bin" / "python"
    _pip(python, "wheel", "--quiet", "--no-deps", "--wheel-dir", str(root / "dist"), str(sources), cwd=root)
    [wheel] = (root / "dist").glob("*.whl")
    _pip(python, "install", "--quiet", str(wheel), cwd=root)
    return Installed(wheel=wheel, bin=venv / "bin")


@pytest.fixture
def outside(tmp_path: Path) -> Path:
    """A working directory that is not the checkout nor in it (and holds no .env)."""
    assert not tmp_path.resolve().is_relative_to(PROJECT_ROOT.resolve())
    return tmp_path


@pytest.mark.slow
def test_the_wheel_holds_every_module_and_migration_of_the_sources(installed: Installed) -> None:
    names = set(zipfile.ZipFile(installed.wheel).namelist())
    modules = {p.relative_to(BACKEND_DIR).as_posix() for p in SOURCE.rglob("*.py")}
    files = discover(PROJECT_MIGRATIONS)
    migrations = {
        f"src/database/migrations/{p.name}" for f in files for p in [f.path, *([f.down.path] if f.down else [])]
    }
    assert modules - names == set()
    assert migrations - names == set()
    assert "src/py.typed" in names


def source_modules() -> set[str]:
    """Every module and package under Backend/src but `src` itself, dotted."""
    found = set()
    for path in SOURCE.rglob("*.py"):
        parts = path.relative_to(BACKEND_DIR).with_suffix("").parts
        found.add(".".join(parts[:-1] if parts[-1] == "__init__" else parts))
    return found - {"src"}


@pytest.mark.slow
def test_every_installed_module_imports_with_the_runtime_dependencies_alone(
    installed: Installed, outside: Path
) -> None:
    script = (
        "import importlib, json, pkgutil, src\n"
        "names = [m.name for m in pkgutil.walk_packages(src.__path__, 'src.')]\n"
        "for name in names: importlib.import_module(name)\n"
        "print(json.dumps([src.__file__, names]))\n"
    )
    done = installed.run("python", "-c", script, cwd=outside)
    assert done.returncode == 0, done.stderr
    where, names = json.loads(done.stdout)
    assert Path(where).is_relative_to(installed.bin.parent)  # the installed copy, not the checkout
    assert set(names) == source_modules()


@pytest.mark.slow
def test_installed_migrate_applies_and_reports_status_from_outside_the_checkout(
    installed: Installed, outside: Path, database: ConnectionSettings, database_url: str
) -> None:
    applied = installed.run("migrate", "apply", cwd=outside, DATABASE_URL=database_url)
    status = installed.run("migrate", "status", cwd=outside, DATABASE_URL=database_url)
    assert applied.returncode == 0, applied.stderr
    assert f"Applied {N} migration(s)" in applied.stdout
    assert status.returncode == 0, status.stderr
    assert f"{N} applied, 0 pending" in status.stdout
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == N


@pytest.mark.slow
def test_the_installed_embedded_server_keeps_its_data_in_the_current_directory(
    installed: Installed, outside: Path
) -> None:
    # Not inside the virtualenv, where the package's own folder is.
    script = "from src.postgres import embedded; print(embedded.DEFAULT_DATA_DIR.resolve())"
    done = installed.run("python", "-c", script, cwd=outside)
    assert done.returncode == 0, done.stderr
    assert Path(done.stdout.strip()) == (outside / ".pgdata").resolve()


def wait_for(url: str, status: int, process: subprocess.Popen[str], give_up_after: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + give_up_after
    while True:
        if process.poll() is not None:
            pytest.fail(f"the health server exited ({process.returncode}): {process.communicate()[0]}")
        try:
            got, body = http_get(url, timeout=5)
        except OSError:
            got, body = 0, {}
        if got == status:
            return body
        assert time.monotonic() < deadline, f"{url} never answered {status} (last {got} {body})"
        time.sleep(0.2)


@pytest.mark.slow
def test_the_installed_health_server_is_ready_once_migrate_apply_ran(
    installed: Installed, outside: Path, database_url: str
) -> None:
    port = free_port()
    server = subprocess.Popen(
        [str(installed.bin / "migrate"), "serve-health", "--port", str(port)],
        cwd=outside,
        env=installed.env(DATABASE_URL=database_url),
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )
    try:
        before = wait_for(f"http://127.0.0.1:{port}/ready", 503, server)
        assert installed.run("migrate", "apply", cwd=outside, DATABASE_URL=database_url).returncode == 0
        after = wait_for(f"http://127.0.0.1:{port}/ready", 200, server)
        health = wait_for(f"http://127.0.0.1:{port}/health", 200, server)
    finally:
        server.terminate()
        server.communicate(timeout=30)
    assert f"{N} migration(s) pending" in before["reasons"][0]
    assert after["migrations"] == {"head": N, "applied": N, "files": N}
    assert health["status"] == "ok"


@pytest.mark.slow
def test_the_installed_health_app_compares_the_folder_migrations_dir_names(
    installed: Installed, outside: Path, database_url: str
) -> None:
    """HealthApp() made by agent code (no CLI in between): the packaged SQL by default, MIGRATIONS_DIR
    when set."""
    assert installed.run("migrate", "apply", cwd=outside, DATABASE_URL=database_url).returncode == 0
    folder = Path(shutil.copytree(PROJECT_MIGRATIONS, outside / "migrations"))
    (folder / f"{N + 1:03d}_later.sql").write_text("CREATE TABLE IF NOT EXISTS tasks.later (id int);\n")
    script = (
        "import asyncio, json\n"
        "from src.app.health import HealthApp\n"
        "async def main():\n"
        "    app = HealthApp()\n"
        "    answer = await app.check_ready()\n"
        "    await app.close()\n"
        "    print(json.dumps([answer.status, answer.body['reasons']]))\n"
        "asyncio.run(main())\n"
    )
    packaged = installed.run("python", "-c", script, cwd=outside, DATABASE_URL=database_url)
    named = installed.run("python", "-c", script, cwd=outside, DATABASE_URL=database_url, MIGRATIONS_DIR=str(folder))
    assert packaged.returncode == 0, packaged.stderr
    assert named.returncode == 0, named.stderr
    assert packaged.stdout.strip() == "[200, []]"
    status, reasons = json.loads(named.stdout)
    assert status == 503
    assert any(f"{N + 1:03d}_later.sql" in reason for reason in reasons)


@pytest.mark.slow
def test_installed_without_the_embedded_extra_migrate_names_it_when_no_database_is_configured(
    installed: Installed, outside: Path
) -> None:
    done = installed.run("migrate", "status", cwd=outside)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "migrate: error: no database is configured (DATABASE_URL or DB_*) and the embedded PostgreSQL is not "
        "installed; set one, or install the `embedded` extra (pip install 'agent-backend-db[embedded]')"
    ]


@pytest.mark.slow
def test_installed_without_the_lint_extra_migrate_lint_names_it(installed: Installed, outside: Path) -> None:
    done = installed.run("migrate", "lint", cwd=outside)
    assert done.returncode == 2, done.stderr
    assert done.stderr.splitlines() == [
        "migrate: error: squawk not found beside this Python or on PATH; install the `lint` extra "
        "(pip install 'agent-backend-db[lint]')"
    ]
