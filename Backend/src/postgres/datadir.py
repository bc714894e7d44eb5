"""Where the embedded server keeps its data, apart from the server code: the runner's settings need the
folder's name on every start, the server module (and what it imports) only when it starts one."""

from __future__ import annotations

from pathlib import Path

from src import PROJECT_ROOT

ENV_DATA_DIR = "EMBEDDED_PGDATA"
# In a checkout, .pgdata sits in the project (wherever `migrate` is started from); an installed package
# has no project folder of its own (PROJECT_ROOT is then inside the virtualenv), so there it is .pgdata in
# the current directory.
DEFAULT_DATA_DIR = PROJECT_ROOT / ".pgdata" if (PROJECT_ROOT / "pyproject.toml").is_file() else Path(".pgdata")

__all__ = ["DEFAULT_DATA_DIR", "ENV_DATA_DIR"]
