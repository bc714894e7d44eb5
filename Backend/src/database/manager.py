"""DatabaseManager: one async engine (SQLAlchemy 2 over asyncpg) and the ways agent code uses it.

    manager = DatabaseManager(DatabaseConfig())
    async with manager.transaction() as session:      # commits on success, rolls back on error
        await create_todo(session, ...)
    async with manager.session(readonly=True) as session:  # a replica's (DATABASE_REPLICA_URL), else the primary's
        ...
    ok = await manager.health_check()                 # True/False, never raises, bounded in time
    await manager.close()                             # then session() raises ManagerClosed

The pool pings a connection that sat idle for over `pool_ping_after` seconds before handing it out, and
replaces it if it is dead, so after a server restart the next session gets a fresh connection without the
caller doing anything. A connection used more recently is trusted without a ping (as HikariCP's
"alive bypass window" does): under load that saves one round trip per session, and a connection that
died that recently was in use when it died, so its own caller saw the error.

Session settings (statement_timeout) are SET on the server, never sent as startup parameters, which
PgBouncer refuses (or drops, with `ignore_startup_parameters`): once per new connection, or, with
`transaction_pooling`, with SET LOCAL at the start of every transaction, since the next transaction
may run on another server connection. docs/pooling.md has what each pooling mode supports.

Read-only sessions run on a replica when one is configured and healthy (round robin; a replica that
fails to connect or trails the primary by more than `replica_max_lag` is left out for a few seconds),
else on the primary, read-only there too. Without transaction pooling their connections are
`default_transaction_read_only` and in autocommit: a read costs one round trip, no BEGIN/COMMIT, and each
statement sees the latest committed data (there is no snapshot across statements). With transaction
pooling they are READ ONLY transactions.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import math
import time
from collections.abc import AsyncIterator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field, replace
from types import TracebackType
from typing import Any

from sqlalchemy import Connection, event
from sqlalchemy import exc as sa_exc
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker, create_async_engine
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.pool import ConnectionPoolEntry, PoolProxiedConnection, QueuePool
from sqlalchemy.util import await_only

from src.database import direct, faults, sessions, slowlog
from src.database.config import DatabaseConfig
from src.database.errors import DatabaseUnavailable, DataLayerError, ManagerClosed
from src.postgres.explain import explain_connect_error

log = logging.getLogger(__name__)

_IDLE_SINCE = "idle_since"

REPLICA_RETRY_AFTER = 5.0
"""Seconds a replica that failed to connect, or lagged too far, is left out of routing."""
LAG_CHECK_EVERY = 1.0
"""A replica's lag is read again at most this often (seconds): a read-only session costs no extra round
trip otherwise."""

LAG_SQL = """SELECT CASE
    WHEN NOT pg_is_in_recovery() THEN 0::float8
    WHEN COALESCE(pg_last_wal_receive_lsn() = pg_last_wal_replay_lsn(), false) THEN 0::float8
    ELSE extract(epoch FROM now() - pg_last_xact_replay_timestamp())::float8
END"""
"""Seconds the server trails its primary: 0 when it has replayed all it received (an idle primary writes
no new transactions, so the last one's age would be no lag at all), None when it replayed nothing yet."""


def _note_checkin(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
    record.info[_IDLE_SINCE] = time.monotonic()


def _shown_ms(milliseconds: int) -> str:
    """A duration as PostgreSQL shows a setting in milliseconds (SHOW, set_config): `1500ms`, `2s`, `1min`."""
    for unit, size in (("d", 86_400_000), ("h", 3_600_000), ("min", 60_000), ("s", 1000)):
        if milliseconds % size == 0:
            return f"{milliseconds // size}{unit}"
    return f"{milliseconds}ms"


def _session_settings(config: DatabaseConfig, *, reader: bool) -> dict[str, str]:
    """What to SET on every new connection (without transaction pooling), as SHOW would show it."""
    values: dict[str, str] = {}
    timeout = config.statement_timeout_ms()
    if timeout is not None:
        values["statement_timeout"] = _shown_ms(timeout)
    if reader:
        values["default_transaction_read_only"] = "on"
    return values


def _apply_on_connect(values: dict[str, str]) -> Callable[[Any, ConnectionPoolEntry], None]:
    """A pool "connect" hook: one round trip sets every value and reads back what the server now holds,
    so a setting that did not take fails the connection instead of being silently absent."""
    names = list(values)
    query = "SELECT " + ", ".join(f"set_config('{name}', ${i + 1}, false)" for i, name in enumerate(names))

    def apply(dbapi_connection: Any, record: ConnectionPoolEntry) -> None:
        row = dbapi_connection.run_async(lambda driver: driver.fetchrow(query, *values.values()))
        held = dict(zip(names, row, strict=True))
        if held != values:
            raise DataLayerError(f"the server did not take the session settings {values}: it holds {held}")

    return apply


def _set_local_on_begin(statement: str) -> Callable[[Session, SessionTransaction, Connection], None]:
    """A session "after_begin" hook for transaction pooling: the settings, for this transaction only."""

    def apply(session: Session, transaction: SessionTransaction, connection: Connection) -> None:
        connection.exec_driver_sql(statement)

    return apply


@dataclass(frozen=True)
class ReplicaHealth:
    server: str
    """`user@host:port/database`, never the password."""
    ok: bool
    """It answered, and trails the primary by no more than replica_max_lag."""
    latency_ms: float
    lag_s: float | None = None
    """Seconds behind the primary (0 when it replayed all it received); None when unknown."""
    error: str | None = None

    def as_dict(self) -> dict[str, Any]:
        return {
            "server": self.server,
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 3),
            "lag_s": None if self.lag_s is None else round(self.lag_s, 3),
            "error": self.error,
        }


class _Replica:
    """One replica's engine, sessions and routing state."""

    def __init__(self, config: DatabaseConfig, engine: AsyncEngine, sessions: async_sessionmaker[AsyncSession]) -> None:
        self.config = config
        self.name = config.describe()
        self.engine = engine
        self.sessions = sessions
        self.down_until = -math.inf
        self.lag_checked = -math.inf
        self.lag: float | None = None

    def mark_down(self, why: str) -> None:
        if self.down_until <= time.monotonic():
            log.warning("replica %s left out of read-only sessions for %g s: %s", self.name, REPLICA_RETRY_AFTER, why)
        self.down_until = time.monotonic() + REPLICA_RETRY_AFTER


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
    replicas: tuple[ReplicaHealth, ...] = ()
    """Each configured replica; one that is down or lagging does not make `ok` false (reads fall back to
    the primary), it is reported here."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "ok": self.ok,
            "latency_ms": round(self.latency_ms, 3),
            "server_version": self.server_version,
            "pool": self.pool,
            "error": self.error,
            "replicas": [replica.as_dict() for replica in self.replicas],
        }


def _ping_if_idle(
    engine: AsyncEngine, ping_after: float
) -> Callable[[Any, ConnectionPoolEntry, PoolProxiedConnection], None]:
    def ping(dbapi_connection: Any, record: ConnectionPoolEntry, proxy: PoolProxiedConnection) -> None:
        """Pool checkout hook (runs inside SQLAlchemy's greenlet, so the dialect's ping may await)."""
        idle_since = record.info.get(_IDLE_SINCE)
        if idle_since is not None and time.monotonic() - idle_since <= ping_after:
            return
        try:
            # One simple-query round trip, not the dialect's ping: that one wraps its query in BEGIN and
            # ROLLBACK, three round trips, and prepares a statement.
            driver: Any = record.driver_connection
            await_only(driver.execute("SELECT 1"))
        except Exception as exc:
            raise sa_exc.DisconnectionError("a pooled connection was dead; replacing it") from exc

    return ping


async def _close(session: AsyncSession) -> None:
    """Close a session at the end of its block. One that began no transaction holds no connection, so
    closing it is no I/O and runs right here (AsyncSession's own exit schedules a task for it, which is
    most of a short session's cost); otherwise as AsyncSession's exit does, shielded from cancellation so
    that the connection goes back to the pool however the block ended."""
    sync = session.sync_session
    if sync.get_transaction() is None:
        sync.close()
    else:
        await asyncio.shield(session.close())


class DatabaseManager:
    def __init__(self, config: DatabaseConfig) -> None:
        self.config = config
        self.engine: AsyncEngine = self._engine(config, reader=False)
        self.sessions = self._sessionmaker(config, self.engine, reader=False)
        self._replicas = [
            _Replica(replica, engine, self._sessionmaker(replica, engine, reader=True))
            for replica in config.replicas()
            for engine in [self._engine(replica, reader=True)]
        ]
        self._next_replica = 0
        self._primary_reader: tuple[AsyncEngine, async_sessionmaker[AsyncSession]] | None = None
        """Read-only sessions on the primary, made at the first one (no replica, or none healthy)."""
        self._reading_from_primary = False
        """Whether the last read-only session fell back to the primary (logged once per change)."""
        self._abandoned: set[asyncio.Future[Any]] = set()
        """Health probes that missed their deadline and are still cleaning up."""
        self.closed = False
        """True once `close()` was called: new sessions raise ManagerClosed."""

    def __repr__(self) -> str:
        return f"DatabaseManager({self.config.describe()})"

    @staticmethod
    def _engine(config: DatabaseConfig, *, reader: bool) -> AsyncEngine:
        options: dict[str, Any] = {}
        if reader and config.transaction_pooling:
            options["execution_options"] = {"postgresql_readonly": True}  # BEGIN READ ONLY per transaction
        elif reader:
            options["isolation_level"] = "AUTOCOMMIT"  # read-only by default_transaction_read_only below
        engine = create_async_engine(
            config.sqlalchemy_url(),
            pool_size=config.pool_size,
            max_overflow=config.max_overflow,
            pool_timeout=config.pool_timeout,
            pool_recycle=config.pool_recycle,
            pool_pre_ping=False,  # replaced by _ping_if_idle below
            # Last in, first out: a light load keeps reusing the connections it just used, whose server
            # processes are warm, instead of cycling through every pooled one (measured: a single caller's
            # one-row writes ran ~30 % slower cycling through 16; docs/benchmarks.md). The ones left idle
            # at the bottom are pinged before reuse (_ping_if_idle) or recycled (pool_recycle).
            pool_use_lifo=True,
            echo=config.echo,
            hide_parameters=True,  # errors and logs never carry bound values (they may be personal data)
            connect_args=config.connect_args(),
            **options,
        )
        event.listen(engine.sync_engine.pool, "checkin", _note_checkin)
        event.listen(engine.sync_engine.pool, "checkout", _ping_if_idle(engine, config.pool_ping_after))
        values = _session_settings(config, reader=reader)
        if values and not config.transaction_pooling:
            event.listen(engine.sync_engine, "connect", _apply_on_connect(values))
        if config.slow_statement_ms is not None:
            slowlog.install(engine, config.slow_statement_ms)
        return engine

    @staticmethod
    def _sessionmaker(config: DatabaseConfig, engine: AsyncEngine, *, reader: bool) -> async_sessionmaker[AsyncSession]:
        session_class: type[sessions.GuardedSession] = sessions.GuardedSession
        timeout = config.statement_timeout_ms()
        if config.transaction_pooling and timeout is not None:
            # A class of this manager's own, so the hook is its alone. Two more round trips per transaction
            # (SQLAlchemy prepares the SET, then runs it): the price of a setting that survives transaction
            # pooling; a role-level setting (ALTER ROLE ... SET statement_timeout) costs nothing.
            session_class = type("TimeoutSession", (sessions.GuardedSession,), {})
            statement = f"SET LOCAL statement_timeout = '{timeout}ms'"
            event.listen(session_class, "after_begin", _set_local_on_begin(statement))
        return async_sessionmaker(
            engine,
            expire_on_commit=False,
            class_=AsyncSession,
            sync_session_class=session_class,
            info={sessions.READONLY: reader, direct.ENABLED: not config.transaction_pooling},
        )

    @asynccontextmanager
    async def session(self, *, readonly: bool = False) -> AsyncIterator[AsyncSession]:
        """A session for a unit of work. Repository writes in it commit by themselves (see
        `src.database.sessions`); anything else not committed is rolled back when the block ends; an
        exception inside rolls back and propagates. The session is closed at the end, and using it after
        the block raises SessionClosed instead of quietly opening a new connection. After `close()`:
        ManagerClosed, and no connection is opened.

        `readonly=True`: on a healthy replica (DATABASE_REPLICA_URL), else on the primary, read-only on
        either: a write raises ReadOnlySession and nothing is stored. A replica may trail the primary (up
        to replica_max_lag seconds): reads that must see writes just made use a plain `session()`."""
        self._refuse_if_closed()
        replica: _Replica | None = None
        if readonly:
            replica = await self._pick_replica()
            factory = replica.sessions if replica is not None else self._reader_on_primary()
        else:
            factory = self.sessions
        try:
            session = factory()
            try:
                yield session
            except BaseException:
                # If the connection is gone the rollback fails too; the original error is the one to raise.
                with contextlib.suppress(Exception):
                    await session.rollback()
                raise
            finally:
                sessions.end(session)
                await _close(session)
        except Exception as exc:
            config = replica.config if replica is not None else self.config
            try:
                self._raise_translated(exc, "a statement in the session", config)
            except DatabaseUnavailable:
                if replica is not None:
                    replica.mark_down("it could not be reached")
                raise
            raise
        finally:
            if self.closed:
                # A session that was open when close() ran may have taken a connection since: close it too.
                for engine in self._engines():
                    await engine.dispose()

    async def _pick_replica(self) -> _Replica | None:
        """The next replica (round robin) not left out and not lagging, or None: then the primary serves."""
        count = len(self._replicas)
        for step in range(count):
            replica = self._replicas[(self._next_replica + step) % count]
            if replica.down_until > time.monotonic():
                continue
            if time.monotonic() - replica.lag_checked >= LAG_CHECK_EVERY and not await self._lag_ok(replica):
                continue
            self._next_replica = (self._next_replica + step + 1) % count
            if self._reading_from_primary:
                self._reading_from_primary = False
                log.warning("read-only sessions are served by replicas again (%s)", replica.name)
            return replica
        if count and not self._reading_from_primary:
            self._reading_from_primary = True
            log.warning("no healthy replica: read-only sessions fall back to the primary %s", self.config.describe())
        return None

    async def _lag_ok(self, replica: _Replica) -> bool:
        """Read the replica's lag (bounded by health_check_timeout); mark it down when too far behind or
        unreachable. Concurrent sessions meanwhile use the last answer."""
        replica.lag_checked = time.monotonic()
        answer = await self._replica_health(replica, deadline=self.config.health_check_timeout)
        return answer.ok

    def _reader_on_primary(self) -> async_sessionmaker[AsyncSession]:
        if self._primary_reader is None:
            engine = self._engine(self.config, reader=True)
            self._primary_reader = (engine, self._sessionmaker(self.config, engine, reader=True))
        return self._primary_reader[1]

    def _engines(self) -> list[AsyncEngine]:
        engines = [self.engine, *(replica.engine for replica in self._replicas)]
        if self._primary_reader is not None:
            engines.append(self._primary_reader[0])
        return engines

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
                self._raise_translated(exc, "COMMIT", self.config)
                raise

    def _raise_translated(self, exc: Exception, operation: str, config: DatabaseConfig) -> None:
        """Raise the data layer's name for a driver fault (from it); return when `exc` is not one."""
        named = faults.translate(
            exc, operation=operation, settings=config.connection_settings(), pool_timeout=config.pool_timeout
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
        replicas = asyncio.gather(
            *(self._replica_health(r, deadline=self.config.health_check_timeout) for r in self._replicas)
        )
        waiting: set[asyncio.Future[Any]] = {probe, replicas}
        done, _ = await asyncio.wait(waiting, timeout=self.config.health_check_timeout)
        # Each replica's probe has the same deadline of its own, so this is at most a moment later.
        replica_health = tuple(await replicas)
        if probe in done:
            return replace(probe.result(), replicas=replica_health)
        self._abandon(probe)
        if not connected.is_set() and self._pool_full():
            # Still queued for a connection: the application holds them all, the server may be fine.
            error = self._pool_exhausted(self.config.health_check_timeout)
        else:
            error = f"no answer within {self.config.health_check_timeout:g} s (DB_HEALTH_CHECK_TIMEOUT)"
        return Health(
            False, (time.perf_counter() - started) * 1000, pool=self._pool_usage(), error=error, replicas=replica_health
        )

    def _abandon(self, task: asyncio.Future[Any]) -> None:
        """Cancel a probe past its deadline and let it clean up in the background (see `health`)."""
        task.cancel()
        self._abandoned.add(task)
        task.add_done_callback(self._abandoned.discard)

    async def _replica_health(self, replica: _Replica, *, deadline: float) -> ReplicaHealth:
        """Probe one replica within `deadline` seconds: its lag, read on a pooled connection. Also updates
        its routing state: one that fails or lags too far is left out of read-only sessions for a while."""
        started = time.perf_counter()
        probe = asyncio.ensure_future(self._read_lag(replica))
        done, _ = await asyncio.wait({probe}, timeout=deadline)
        latency = (time.perf_counter() - started) * 1000
        if probe not in done:
            self._abandon(probe)
            error = f"no answer within {deadline:g} s (DB_HEALTH_CHECK_TIMEOUT)"
        elif (failure := probe.exception()) is not None:
            error = self._explain(failure, replica.config)
        else:
            lag = probe.result()
            replica.lag = lag
            if lag is None:
                error = "its lag is unknown: it has replayed no transaction since it started"
            elif lag > self.config.replica_max_lag:
                limit = self.config.replica_max_lag
                error = f"{lag:.1f} s behind the primary, more than DB_REPLICA_MAX_LAG ({limit:g} s)"
            else:
                return ReplicaHealth(replica.name, True, latency, lag)
            replica.mark_down(error)
            return ReplicaHealth(replica.name, False, latency, lag, error)
        replica.mark_down(error)
        return ReplicaHealth(replica.name, False, latency, None, error)

    @staticmethod
    async def _read_lag(replica: _Replica) -> float | None:
        async with replica.engine.connect() as conn:
            raw = await conn.get_raw_connection()
            try:
                lag: float | None = await raw.driver_connection.fetchval(LAG_SQL)  # type: ignore[union-attr]
            except BaseException:
                await conn.invalidate()
                raise
            return lag

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
                False,
                (time.perf_counter() - started) * 1000,
                pool=self._pool_usage(),
                error=self._explain(exc, self.config),
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

    def _explain(self, exc: BaseException, config: DatabaseConfig) -> str:
        if isinstance(exc, sa_exc.TimeoutError):  # SQLAlchemy's pool wait, before any connect attempt
            return self._pool_exhausted(config.pool_timeout)
        original = exc.orig if isinstance(exc, sa_exc.DBAPIError) and exc.orig is not None else exc
        cause = original.__cause__ or original
        for candidate in (original, cause):
            message = explain_connect_error(candidate, config.connection_settings())
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
        for engine in self._engines():
            await engine.dispose()

    async def __aenter__(self) -> DatabaseManager:
        return self

    async def __aexit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.close()
