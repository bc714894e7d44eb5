"""Log the statements that take longer than a threshold, through the standard logging module.

    slowlog.install(engine, threshold_ms=500)   # DatabaseManager does it when DB_SLOW_STATEMENT_MS is set

Each slow statement is one WARNING on the logger `src.database.slow`: its duration and its SQL text as
sent, with placeholders (`$1`) where the values go. Bound parameter values are never logged: they may
hold personal data or secrets. The record also carries `duration_ms` and `statement` as attributes, for a
structured log handler. A statement that fails after running longer than the threshold (cancelled by a
timeout, say) is logged too, marked as failed. The time is measured around the driver's execute, so it
includes the round trip, as a caller feels it.
"""

from __future__ import annotations

import logging
import time
import weakref
from collections.abc import Callable
from typing import Any

from sqlalchemy import event
from sqlalchemy.engine import Connection, Engine, ExceptionContext
from sqlalchemy.ext.asyncio import AsyncEngine

LOGGER = logging.getLogger("src.database.slow")
MAX_SQL = 2000
"""Characters of SQL text kept in a log line; longer statements are cut (with `...`)."""

_LOGGERS: weakref.WeakKeyDictionary[Any, Callable[[float, str, bool], None]] = weakref.WeakKeyDictionary()
"""Per engine (its sync Engine) with a threshold: what logs one of its statements, for `observe`."""

_STARTED = "src.database.slowlog.started"
"""Key in the connection's `info` dict: a stack of start times, one per statement in flight on it."""


def _shown(statement: str) -> str:
    one_line = " ".join(statement.split())
    return one_line if len(one_line) <= MAX_SQL else one_line[:MAX_SQL] + " ..."


def install(engine: AsyncEngine, threshold_ms: float) -> None:
    """Log every statement `engine` runs that takes `threshold_ms` or longer (0: every statement)."""
    sync_engine = engine.sync_engine

    def before(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        conn.info.setdefault(_STARTED, []).append(time.perf_counter())

    def took(conn: Connection) -> float | None:
        started: list[float] = conn.info.get(_STARTED, [])
        return (time.perf_counter() - started.pop()) * 1000 if started else None

    def log(duration_ms: float, statement: str, failed: bool) -> None:
        shown = _shown(statement)
        LOGGER.warning(
            "slow statement%s: %.1f ms (DB_SLOW_STATEMENT_MS %g): %s",
            " (failed)" if failed else "",
            duration_ms,
            threshold_ms,
            shown,
            extra={"duration_ms": round(duration_ms, 3), "statement": shown, "failed": failed},
        )

    def after(conn: Connection, cursor: Any, statement: str, parameters: Any, context: Any, many: bool) -> None:
        duration_ms = took(conn)
        if duration_ms is not None and duration_ms >= threshold_ms:
            log(duration_ms, statement, False)

    def on_error(context: ExceptionContext) -> None:
        conn = context.connection
        if conn is None or context.statement is None:
            return
        duration_ms = took(conn)
        if duration_ms is not None and duration_ms >= threshold_ms:
            log(duration_ms, context.statement, True)

    def observed(duration_ms: float, statement: str, failed: bool) -> None:
        if duration_ms >= threshold_ms:
            log(duration_ms, statement, failed)

    _LOGGERS[sync_engine] = observed
    event.listen(sync_engine, "before_cursor_execute", before)
    event.listen(sync_engine, "after_cursor_execute", after)
    event.listen(sync_engine, "handle_error", on_error)


def installed(engine: Engine) -> bool:
    """Whether `install` put its listeners on `engine` (a sync Engine)."""
    return engine in _LOGGERS


def observe(engine: Engine, statement: str, duration_ms: float, *, failed: bool) -> None:
    """Log a statement run on `engine`'s connections (a sync Engine) outside SQLAlchemy's execution
    (src.database.direct), as `install` logs the others: when it has a threshold and the statement
    reached it."""
    observed = _LOGGERS.get(engine)
    if observed is not None:
        observed(duration_ms, statement, failed)
