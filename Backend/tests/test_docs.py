"""The code in docs/data-layer.md runs: every ```python block, in order, in one namespace, against a
migrated database on the test server, so the guide cannot go stale.

Each block runs as the body of an `async def` (so `await` and `async with` work as they do in agent
code); the names it binds are kept for the blocks after it. Before the first block, `settings` holds the
test database's location (as the spec's snippet expects) and DATABASE_URL points at it, so
`DatabaseConfig()` finds it too. Blocks fenced as ```text or ```sh are not run.
"""

from __future__ import annotations

import re
import textwrap
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest

from src import PROJECT_ROOT
from src.database.manager import DatabaseManager
from src.postgres.settings import ConnectionSettings
from tests.support import url_of

GUIDE = PROJECT_ROOT / "docs" / "data-layer.md"
_BLOCK = re.compile(r"^```python\n(.*?)^```", re.S | re.M)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """(line number, code) of every ```python block."""
    text = path.read_text()
    return [(text[: m.start()].count("\n") + 1, m.group(1)) for m in _BLOCK.finditer(text)]


def test_the_guide_has_code_to_run() -> None:
    assert len(python_blocks(GUIDE)) >= 5


async def test_every_python_block_of_the_data_layer_guide_runs(
    migrated: DatabaseManager, database: ConnectionSettings, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DATABASE_URL", url_of(database))
    password = database.password.get_secret_value() if database.password is not None else None
    namespace: dict[str, Any] = {
        "settings": SimpleNamespace(
            db_host=database.host,
            db_port=database.port,
            db_name=database.database,
            db_user=database.user,
            db_password=password,
        )
    }
    managers: list[Any] = []
    try:
        for line, code in python_blocks(GUIDE):
            body = textwrap.indent(code, "    ") or "    pass\n"
            source = f"async def __block__():\n{body}    return dict(locals())\n"
            compiled = compile(source, f"{GUIDE.name}:{line}", "exec")
            exec(compiled, namespace)  # noqa: S102 - the project's own documentation
            try:
                produced = await namespace.pop("__block__")()
            except Exception as exc:
                raise AssertionError(f"docs/data-layer.md block at line {line} failed: {exc!r}") from exc
            namespace.update(produced)
            managers += [v for v in produced.values() if isinstance(v, DatabaseManager)]
    finally:
        for manager in managers:
            await manager.close()
