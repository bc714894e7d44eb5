"""The runner's lock: a session-level advisory lock on the applying connection, one per ledger table.

It is taken by polling `pg_try_advisory_lock`, never by blocking in `pg_advisory_lock`: a session waiting
inside `pg_advisory_lock` holds a snapshot that a concurrent `CREATE INDEX CONCURRENTLY` must wait out,
while that index build waits for the lock holder, which PostgreSQL reports as a deadlock.
"""

from __future__ import annotations

import asyncio
import hashlib
import random
import time
from collections.abc import Callable
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
    row = await conn.fetchrow(
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
    return Holder(**dict(row)) if row is not None else None


async def acquire(
    conn: asyncpg.Connection,
    key: int,
    *,
    wait: float,
    on_busy: Callable[[Holder | None], None] | None = None,
) -> float:
    """Take the lock, polling for up to `wait` seconds; returns how long it waited.

    `on_busy` is called once, when the first attempt finds the lock taken.
    """
    started = time.monotonic()
    interval = POLL_INTERVAL
    told = False
    while True:
        if await conn.fetchval("SELECT pg_try_advisory_lock($1)", key):
            return time.monotonic() - started
        elapsed = time.monotonic() - started
        if not told and on_busy is not None:
            on_busy(await holder(conn, key))
            told = True
        if elapsed >= wait:
            who = await holder(conn, key)
            raise LockTimeout(
                f"another runner has held the migration lock for over {wait:g} s "
                f"(MIGRATE_LOCK_WAIT): {who or 'holder not visible to this role'}; "
                "wait for it to finish, or raise --lock-wait"
            )
        # Jitter so a fleet of replicas started together does not poll in lock-step.
        await asyncio.sleep(min(interval * random.uniform(0.8, 1.2), max(0.0, wait - elapsed) + 0.01))  # noqa: S311
        interval = min(interval * 1.5, MAX_POLL_INTERVAL)


async def release(conn: asyncpg.Connection, key: int) -> None:
    # A simple query: no prepared statement a migration's DEALLOCATE ALL could have removed.
    await conn.execute(f"SELECT pg_catalog.pg_advisory_unlock({int(key)})")


async def retake(conn: asyncpg.Connection, key: int) -> bool:
    """Take the lock again after a migration released it (DISCARD ALL does); False if another runner has it."""
    return bool(await ledger.fetchval(conn, "SELECT pg_catalog.pg_try_advisory_lock($1)", key))
