"""What the data layer sends: the SQL statements a block of test code caused, counted on the engine."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from sqlalchemy import event

from src.database.manager import DatabaseManager


@contextmanager
def sql_statements(manager: DatabaseManager) -> Iterator[list[str]]:
    """Every statement sent through `manager`'s engine while the block runs (BEGIN and COMMIT excluded:
    the asyncpg dialect sends those without a cursor)."""
    seen: list[str] = []

    def record(*args: Any) -> None:
        seen.append(str(args[2]))

    engine = manager.engine.sync_engine
    event.listen(engine, "before_cursor_execute", record)
    try:
        yield seen
    finally:
        event.remove(engine, "before_cursor_execute", record)


def inserts(statements: list[str]) -> list[str]:
    return [s for s in statements if s.lstrip().upper().startswith("INSERT")]
