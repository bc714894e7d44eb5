"""The data layer the application uses: configuration, engine and sessions, models, repositories.

    from src.database import DatabaseConfig, DatabaseManager

The names below are loaded on first use, so importing a light submodule (the runner reads
`src.postgres` at every container start) does not pay for SQLAlchemy and pydantic.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from src.database.config import DatabaseConfig
    from src.database.manager import DatabaseManager, Health

_EXPORTS = {
    "DatabaseConfig": "src.database.config",
    "DatabaseManager": "src.database.manager",
    "Health": "src.database.manager",
}

__all__ = ["DatabaseConfig", "DatabaseManager", "Health"]


def __getattr__(name: str) -> Any:
    module = _EXPORTS.get(name)
    if module is None:
        raise AttributeError(f"module 'src.database' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)
