"""One boundary that names driver faults: SQLAlchemy/asyncpg/socket exceptions become the data layer's
own (`src.database.errors`), each naming the setting that bounds it, so agent code catches TimeoutError or
ConnectionError (or DatabaseTimeout, ConnectionLost, ...) instead of driver classes.

Pure classification: `translate` looks at an exception and its chain (`.orig`, `__cause__`) and returns
the error to raise, or None to leave it alone. A bare OSError or TimeoutError counts only when it was
raised inside the driver (asyncpg or SQLAlchemy frames in its traceback), so the agent's own file or HTTP
errors inside a session block pass through untouched.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from types import TracebackType

import asyncpg
from sqlalchemy import exc as sa_exc

from src.database.errors import (
    ConnectionLost,
    DatabaseTimeout,
    DatabaseUnavailable,
    DataLayerError,
    PoolExhausted,
    ReadOnlySession,
)
from src.postgres.explain import explain_connect_error
from src.postgres.settings import ConnectionSettings

_DRIVER_PATHS = ("/asyncpg/", "/sqlalchemy/")
_CONNECT_PATHS = ("/asyncpg/connect_utils.py",)
"""Frames of asyncpg's connection setup: a fault raised there is a failure to connect, not a lost one."""


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop(0)
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo.extend([getattr(current, "orig", None), current.__cause__, current.__context__])


def _raised_in(exc: BaseException, paths: tuple[str, ...]) -> bool:
    tb: TracebackType | None = exc.__traceback__
    while tb is not None:
        if any(part in tb.tb_frame.f_code.co_filename for part in paths):
            return True
        tb = tb.tb_next
    return False


def _lost(exc: BaseException) -> bool:
    if isinstance(exc, asyncpg.ConnectionDoesNotExistError):
        return True
    if isinstance(exc, sa_exc.DBAPIError) and exc.connection_invalidated:
        return True  # SQLAlchemy's dialect judged it a disconnect (e.g. "connection is closed")
    if isinstance(exc, asyncpg.InterfaceError) and "cannot switch to state" in str(exc):
        return True  # asyncpg's protocol after the socket died mid-query
    sqlstate = getattr(exc, "sqlstate", None)
    return isinstance(sqlstate, str) and (sqlstate.startswith("08") or sqlstate.startswith("57P0"))


def translate(
    exc: BaseException,
    *,
    operation: str,
    settings: ConnectionSettings | None = None,
    pool_timeout: float | None = None,
) -> DataLayerError | None:
    """The data-layer error for `exc` (raise it `from exc`), or None when `exc` is not a database fault."""
    if isinstance(exc, DataLayerError):
        return None
    if isinstance(exc, sa_exc.TimeoutError):  # SQLAlchemy's pool wait
        within = f" within {pool_timeout:g} s" if pool_timeout is not None else ""
        return PoolExhausted(
            f"{operation}: no free pooled connection{within} (DB_POOL_TIMEOUT); raise DB_POOL_SIZE / "
            "DB_MAX_OVERFLOW or hold sessions for less time",
            setting="DB_POOL_TIMEOUT",
            operation=operation,
        )
    if not (isinstance(exc, sa_exc.DBAPIError) or _raised_in(exc, _DRIVER_PATHS)):
        return None
    chain = list(_chain(exc))
    for candidate in chain:
        sqlstate = getattr(candidate, "sqlstate", None)
        if sqlstate == "25006":  # read_only_sql_transaction: a replica, or a READ ONLY transaction
            return ReadOnlySession(f"{operation}: the server refused a write ({candidate})")
        if sqlstate == "57014" and "statement timeout" in str(candidate):
            return DatabaseTimeout(
                f"{operation}: the server cancelled a statement that ran past DB_STATEMENT_TIMEOUT",
                setting="DB_STATEMENT_TIMEOUT",
                operation=operation,
            )
    if any(_raised_in(c, _CONNECT_PATHS) for c in chain) and any(
        isinstance(c, TimeoutError | asyncio.CancelledError) for c in chain
    ):
        # A server that accepts the TCP connection and never answers: the connect timeout ran out.
        where = settings.describe() if settings is not None else "the database"
        return DatabaseTimeout(
            f"{operation}: cannot connect to {where}: no answer within DB_CONNECT_TIMEOUT",
            setting="DB_CONNECT_TIMEOUT",
            operation=operation,
        )
    for candidate in chain:
        if _raised_in(candidate, _CONNECT_PATHS):
            message = explain_connect_error(candidate, settings) if settings is not None else None
            return DatabaseUnavailable(message or f"{operation}: cannot connect ({type(candidate).__name__})")
    for candidate in chain:
        if _lost(candidate):
            return ConnectionLost(f"{operation}: the connection to the database was lost ({type(candidate).__name__})")
        if isinstance(candidate, TimeoutError):
            return DatabaseTimeout(
                f"{operation}: no answer within DB_COMMAND_TIMEOUT; the statement was cancelled",
                setting="DB_COMMAND_TIMEOUT",
                operation=operation,
            )
    for candidate in chain:
        if isinstance(candidate, OSError):
            return ConnectionLost(f"{operation}: the connection to the database was lost ({type(candidate).__name__})")
    return None
