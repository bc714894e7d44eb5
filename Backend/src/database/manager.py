"""DatabaseManager: one async engine (SQLAlchemy 2 over asyncpg) and the ways agent code uses it.

    manager = DatabaseManager(DatabaseConfig())
    async with manager.transaction() as session:      # commits on success, rolls back on error
        await create_todo(session, ...)
    ok = await manager.health_check()                 # True/False, never raises, bounded in time
    await manager.close()                             # then session() raises ManagerClosed

The pool pings a connection that sat idle for over `pool_ping_after` seconds before handing it out, and
replaces it if it is dead, so after a server restart the next session gets a fresh connection without the
caller doing anything. A connection used more recently is trusted without a ping (as HikariCP's
"alive bypass window" does): under load that saves one round trip per session, and a connection that
died that recently was in use when it died, so its own caller saw the error.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from types import TracebackType
from typing import Any

from sqlalchemy import event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool

from src.database import faults, sessions, slowlog
from src.database.config import DatabaseConfig
from src.database.errors import ManagerClosed
from src.postgres.explain import explain_connect_error

_IDLE_SINCE = "idle_since"


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


@dataclass(frozen=True)
class Health:
    ok: bool
    latency_ms: float
    server_version: str | None = None
    pool: dict[str, int] = field(default_factory=dict)
    """size, checked_out, overflow: how busy the pool is."""
    error: str | None = None
    """Why it is not ok, in words without secrets."""
    detail: object = None
    """What the caller's extra `check` returned, when there was one and it ran."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 3),
            "server_version": self.server_version,
            "pool": self.pool,
            "error": self.error,
        }


class DatabaseManager:
    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.engine: AsyncEngine = create_async_engine(
            config.sqlalchemy_url(),
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            pool_recycle=config.pool_recycle,
            pool_pre_ping=False,  # replaced by _ping_if_idle below
            echo=config.echo,
            hide_parameters=True,  # errors and logs never carry bound values (they may be personal data)
            connect_args=config.connect_args(),
        )
        event.listen(self.engine.sync_engine.pool, "checkin", _note_checkin)
        event.listen(self.engine.sync_engine.pool, "checkout", self._ping_if_idle)
        if config.slow_statement_ms is not None:
            slowlog.install(self.engine, config.slow_statement_ms)
        self.sessions = async_sessionmaker(
            self.engine, expire_on_commit=False, class_=AsyncSession, sync_session_class=sessions.GuardedSession
        )
        self._abandoned: set[asyncio.Future[Health]] = set()
        """Health probes that missed their deadline and are still cleaning up."""
        self.closed = False
        """True once `close()` was called: new sessions raise ManagerClosed."""

    def __repr__(self) -> str:
        return f"DatabaseManager({self.config.describe()})"

    def _ping_if_idle(self, dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        """Pool checkout hook (runs inside SQLAlchemy's greenlet, so the dialect's ping may await)."""
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since <= self.config.pool_ping_after:
            return
        try:
            self.engine.dialect.do_ping(dbapi_connection)
        except Exception as exc:
            raise sa_exc.DisconnectionError("a pooled connection was dead; replacing it") from exc

    @asynccontextmanager
    async def session(self) -> AsyncIterator[AsyncSession]:
        """A session for a unit of work. Repository writes in it commit by themselves (see
        `src.database.sessions`); anything else not committed is rolled back when the block ends; an
        exception inside rolls back and propagates. The session is closed at the end, and using it after
        the block raises SessionClosed instead of quietly opening a new connection. After `close()`:
        ManagerClosed, and no connection is opened."""
        self._refuse_if_closed()
        try:
            async with self.sessions() as session:
                try:
                    yield session
                except BaseException:
                    # If the connection is gone the rollback fails too; the original error is the one to raise.
                    with contextlib.suppress(Exception):
                        await session.rollback()
                    raise
                finally:
                    sessions.end(session)
        except Exception as exc:
            self._raise_translated(exc, "a statement in the session")
            raise
        finally:
            if self.closed:
                # A session that was open when close() ran may have taken a connection since: close it too.
                await self.engine.dispose()

    def _refuse_if_closed(self) -> None:
        if self.closed:
            raise ManagerClosed(
                "this DatabaseManager was closed (await manager.close()); make a new DatabaseManager(config) "
                "to use the database again"
            )

    @asynccontextmanager
    async def transaction(self) -> AsyncIterator[AsyncSession]:
        """A session whose block is one transaction: it commits when the block ends without an exception
        and rolls back otherwise. Repository writes inside join it instead of committing on their own, so
        they are stored together or not at all."""
        async with self.session() as session:
            sessions.mark_owned(session, True)
            await session.begin()
            yield session
            # commit() commits whatever transaction is current, also one begun after a manual commit.
            try:
                await session.commit()
            except Exception as exc:
                self._raise_translated(exc, "COMMIT")
                raise

    def _raise_translated(self, exc: Exception, operation: str) -> None:
        """Raise the data layer's name for a driver fault (from it); return when `exc` is not one."""
        named = faults.translate(
            exc, operation=operation, settings=self.config.connection_settings(), pool_timeout=self.config.pool_timeout
        )
        if named is not None:
            raise named from exc

    async def health(self, check: Callable[[Any], Awaitable[object]] | None = None) -> Health:
        """Ping the server through the pool; never raises, and returns within health_check_timeout.

        The probe runs as its own task: when the deadline passes it is cancelled and left to clean up
        in the background (closing a connection to a frozen server can itself take seconds), so the
        answer is never later than the timeout. `check`, when given, runs on the same pooled connection
        (the asyncpg connection itself) within the same deadline (readiness uses it to read the migration
        ledger); what it returns is `Health.detail`, and an exception it raises makes the answer not ok.
        """
        started = time.perf_counter()
        if self.closed:
            return Health(
                False, 0.0, pool=self._pool_usage(), error="this DatabaseManager is closed (await manager.close())"
            )
        connected = asyncio.Event()
        probe = asyncio.ensure_future(self._probe(started, check, connected))
        done, _ = await asyncio.wait({probe}, timeout=self.config.health_check_timeout)
        if probe in done:
            return probe.result()
        probe.cancel()
        self._abandoned.add(probe)
        probe.add_done_callback(self._abandoned.discard)
        if not connected.is_set() and self._pool_full():
            # Still queued for a connection: the application holds them all, the server may be fine.
            error = self._pool_exhausted(self.config.health_check_timeout)
        else:
            error = f"no answer within {self.config.health_check_timeout:g} s (DB_HEALTH_CHECK_TIMEOUT)"
        return Health(False, (time.perf_counter() - started) * 1000, pool=self._pool_usage(), error=error)

    async def _probe(
        self, started: float, check: Callable[[Any], Awaitable[object]] | None, connected: asyncio.Event
    ) -> Health:
        detail: object = None
        try:
            async with self.engine.connect() as conn:
                connected.set()
                # Straight on the driver connection: one round trip, no BEGIN/ROLLBACK around it, and the
                # server version asyncpg already knows. A failure here invalidates the connection, so the
                # next probe (or session) gets a new one.
                raw = await conn.get_raw_connection()
                driver: Any = raw.driver_connection
                try:
                    await driver.fetchval("SELECT 1")
                    # The server's own string from the startup parameters (no round trip): asyncpg's
                    # ServerVersion is (major, 0, minor) for PostgreSQL 10+, so its .minor would say 0.
                    version: str = driver.get_settings().server_version
                    if check is not None:
                        detail = await check(driver)
                except BaseException:
                    await conn.invalidate()
                    raise
                server_version = version.split()[0] if version else None  # "16.4 (Debian 16.4-1)" -> "16.4"
        except Exception as exc:  # a health probe reports every failure instead of raising it
            return Health(
                False, (time.perf_counter() - started) * 1000, pool=self._pool_usage(), error=self._explain(exc)
            )
        return Health(True, (time.perf_counter() - started) * 1000, server_version, self._pool_usage(), detail=detail)

    async def health_check(self) -> bool:
        return (await self.health()).ok

    def _pool_full(self) -> bool:
        pool = self.engine.pool
        return isinstance(pool, QueuePool) and pool.checkedout() >= self.config.pool_size + self.config.max_overflow

    def _pool_exhausted(self, waited: float) -> str:
        limit = self.config.pool_size + self.config.max_overflow
        return (
            f"pool exhausted: all {limit} connections in use, none free within {waited:g} s (DB_POOL_TIMEOUT "
            f"{self.config.pool_timeout:g} s; DB_POOL_SIZE + DB_MAX_OVERFLOW = {limit}); the database was not asked"
        )

    def _pool_usage(self) -> dict[str, int]:
        pool = self.engine.pool
        if not isinstance(pool, QueuePool):
            return {}
        return {"size": pool.size(), "checked_out": pool.checkedout(), "overflow": max(0, pool.overflow())}

    def _explain(self, exc: BaseException) -> str:
        if isinstance(exc, sa_exc.TimeoutError):  # SQLAlchemy's pool wait, before any connect attempt
            return self._pool_exhausted(self.config.pool_timeout)
        original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
        cause = original.__cause__ or original
        for candidate in (original, cause):
            message = explain_connect_error(candidate, self.config.connection_settings())
            if message is not None:
                return message
        return f"{type(original).__name__}: {original}"

    async def close(self) -> None:
        """Close every pooled connection, and the manager: a later `session()` / `transaction()` raises
        ManagerClosed and `health()` answers not ok. Sessions already open finish their work (their
        connection is closed when they end). Calling it again does nothing more."""
        self.closed = True
        for probe in list(self._abandoned):
            probe.cancel()
        if self._abandoned:
            await asyncio.wait(set(self._abandoned), timeout=self.config.connect_timeout)
        await self.engine.dispose()

    async def __aenter__(self) -> DatabaseManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
