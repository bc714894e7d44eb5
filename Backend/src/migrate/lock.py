"""The runner's lock: a transaction-level advisory lock, one per ledger table, held by an open transaction.

A session-level lock is wrong behind a transaction-pooling PgBouncer: successive transactions of one
client land on different server connections, so the lock is taken on one and released (or not) on
another, and it outlives the runner that took it. A transaction-level lock lives exactly as long as the
transaction that holds it, on the one server connection that transaction has, under every pooler; if the
runner dies, its transaction is rolled back and the lock goes with it, so a dead runner never holds it.
When every pending file runs in one transaction, that transaction holds the lock itself (one connection);
otherwise a second connection keeps a transaction open for the whole run, holding it (`runner`).

It is taken by polling `pg_try_advisory_xact_lock`, never by blocking in `pg_advisory_xact_lock`: a session
waiting inside it holds a snapshot that a concurrent `CREATE INDEX CONCURRENTLY` must wait out, while that
index build waits for the lock holder, which PostgreSQL reports as a deadlock. Between polls a READ
COMMITTED transaction holds no snapshot, so waiting in an open transaction blocks neither that nor VACUUM.
"""

from __future__ import annotations

import asyncio
import contextlib
import hashlib
import random
import time
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import datetime

import asyncpg

from src.migrate import ledger
from src.migrate.errors import LockTimeout
from src.migrate.ledger import LedgerTable

POLL_INTERVAL = 0.1
MAX_POLL_INTERVAL = 1.0


def lock_key(table: LedgerTable) -> int:
    """A stable signed 64-bit key per ledger table, so two ledgers in one database do not block each other."""
    digest = hashlib.sha256(f"src.migrate:{table}".encode()).digest()
    return int.from_bytes(digest[:8], "big", signed=True)


@dataclass(frozen=True)
class Holder:
    pid: int
    application_name: str
    client: str | None
    backend_start: datetime | None
    state: str | None

    def __str__(self) -> str:
        since = f", connected since {self.backend_start:%Y-%m-%d %H:%M:%S%z}" if self.backend_start else ""
        client = f" from {self.client}" if self.client else ""
        app = self.application_name or "(no application_name)"
        return f"pid {self.pid} ({app}{client}{since}, {self.state or 'state unknown'})"


async def holder(conn: asyncpg.Connection, key: int) -> Holder | None:
    """Who holds the lock now, from pg_locks and pg_stat_activity (None if nobody, or not visible to us)."""
    unsigned = key & 0xFFFFFFFFFFFFFFFF
    rows = await ledger.fetch(
        conn,
        """
        SELECT a.pid, a.application_name, a.client_addr::text AS client, a.backend_start, a.state
        FROM pg_locks l JOIN pg_stat_activity a ON a.pid = l.pid
        WHERE l.locktype = 'advisory' AND l.granted AND l.objsubid = 1
          AND l.database = (SELECT oid FROM pg_database WHERE datname = current_database())
          AND l.classid = $1::bigint::oid AND l.objid = $2::bigint::oid
        """,
        unsigned >> 32,
        unsigned & 0xFFFFFFFF,
    )
    return Holder(**dict(rows[0])) if rows else None


async def acquire(
    conn: asyncpg.Connection,
    key: int,
    *,
    wait: float,
    on_busy: Callable[[Holder | None], None] | None = None,
) -> float:
    """Take the session-level lock on `conn` (right only on a connection that is not pooled per transaction),
    polling for up to `wait` seconds; returns how long it waited. `on_busy` is called once, when the first
    attempt finds the lock taken."""
    waiting = _Waiting(conn, key, wait, on_busy)
    take = f"SELECT 1 WHERE pg_catalog.pg_try_advisory_lock({int(key)})"
    while await conn.execute(take) != "SELECT 1":
        await waiting.pause()
    return waiting.elapsed()


@contextlib.asynccontextmanager
async def held(
    conn: asyncpg.Connection,
    key: int,
    *,
    wait: float,
    on_busy: Callable[[Holder | None], None] | None = None,
) -> AsyncIterator[float]:
    """A transaction on `conn` that holds the lock for the length of the block, which commits at its end
    (rolls back on an exception); yields the seconds it waited for the lock.

    Every attempt is a transaction of its own (BEGIN, a simple-query try, ROLLBACK when the lock is taken):
    a waiter must not sit in an open transaction, since a CREATE INDEX CONCURRENTLY of the lock holder waits
    for the end of every transaction that had a snapshot when it looked, and an attempt has one. The
    transaction that got the lock stays open, with no snapshot between its statements.
    """
    waiting = _Waiting(conn, key, wait, on_busy)
    take = f"SELECT 1 WHERE pg_catalog.pg_try_advisory_xact_lock({int(key)})"
    while True:
        transaction = conn.transaction()
        await transaction.start()
        try:
            taken = await conn.execute(take) == "SELECT 1"
        except BaseException:
            with contextlib.suppress(asyncpg.PostgresError, asyncpg.InterfaceError, OSError):
                await transaction.rollback()
            raise
        if taken:
            break
        await transaction.rollback()
        await waiting.pause()
    try:
        yield waiting.elapsed()
    except BaseException:
        if not conn.is_closed():
            await transaction.rollback()
        raise
    await transaction.commit()


class _Waiting:
    """The polling between attempts: jittered, growing pauses, a word when busy, the timeout."""

    def __init__(
        self, conn: asyncpg.Connection, key: int, wait: float, on_busy: Callable[[Holder | None], None] | None
    ) -> None:
        self.conn, self.key, self.wait, self.on_busy = conn, key, wait, on_busy
        self.started = time.monotonic()
        self.interval = POLL_INTERVAL
        self.told = False

    def elapsed(self) -> float:
        return time.monotonic() - self.started

    async def pause(self) -> None:
        elapsed = self.elapsed()
        if not self.told and self.on_busy is not None:
            self.on_busy(await self._holder())
            self.told = True
        if elapsed >= self.wait:
            who = await self._holder()
            raise LockTimeout(
                f"another runner has held the migration lock for over {self.wait:g} s "
                f"(MIGRATE_LOCK_WAIT): {who or 'holder not visible to this role'}; "
                "wait for it to finish, or raise --lock-wait"
            )
        # Jitter so a fleet of replicas started together does not poll in lock-step.
        pause = min(self.interval * random.uniform(0.8, 1.2), max(0.0, self.wait - elapsed) + 0.01)  # noqa: S311
        await asyncio.sleep(pause)
        self.interval = min(self.interval * 1.5, MAX_POLL_INTERVAL)

    async def _holder(self) -> Holder | None:
        # In a transaction of its own (both round trips on one server connection behind any pooler), ended
        # before the next attempt.
        async with self.conn.transaction():
            return await holder(self.conn, self.key)


async def release(conn: asyncpg.Connection, key: int) -> None:
    """Release a session-level lock (a transaction-level one ends with its transaction)."""
    # A simple query: no prepared statement a migration's DEALLOCATE ALL could have removed.
    await conn.execute(f"SELECT pg_catalog.pg_advisory_unlock({int(key)})")


async def retake(conn: asyncpg.Connection, key: int) -> bool:
    """Take the lock again after a migration released it (DISCARD ALL does); False if another runner has it."""
    return bool(await ledger.fetchval(conn, "SELECT pg_catalog.pg_try_advisory_lock($1)", key))
