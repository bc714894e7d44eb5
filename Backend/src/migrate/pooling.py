"""Whether a connection goes through a pooler in transaction mode (PgBouncer `pool_mode = transaction`).

There, successive transactions of one client may each run on a different server connection, so nothing
set for a session carries from one statement outside a transaction to the next: a file that must run
outside a transaction (CREATE INDEX CONCURRENTLY, VACUUM) cannot get the runner's lock_timeout and
statement_timeout. Such a pooler does not say what it is; the runner sees it in the backends its
transactions get: while the lock connection holds a transaction open, the work connection's successive
transactions keep their backend only when the work connection owns one (direct, or session pooling).
A pooler hands a just-released server connection to the next client first (PgBouncer reuses the most
recently used one), so with it the lock connection's transaction gets the backend the work connection
had a moment before, or the work connection's next transaction another one.
"""

from __future__ import annotations

import asyncpg

from src.migrate import ledger

_PID = "SELECT pg_catalog.pg_backend_pid()"


async def backend_pid(conn: asyncpg.Connection) -> int:
    """The server process of the current transaction (in a transaction of its own when there is none)."""
    if conn.is_in_transaction():
        pid = int(str(await ledger.fetchval(conn, _PID)))
        # A simple query replaces the unnamed portal, whose snapshot would otherwise stay with the open
        # transaction (the lock connection's), for a CREATE INDEX CONCURRENTLY to wait on.
        await conn.execute("SELECT 1")
        return pid
    async with conn.transaction():
        return int(str(await ledger.fetchval(conn, _PID)))


async def transaction_pooled(work: asyncpg.Connection, work_pid: int, lock: asyncpg.Connection) -> bool:
    """Whether `work` is pooled per transaction: `work_pid` is its backend from a transaction that ended
    before `lock` (in an open transaction now) began its own."""
    if await backend_pid(lock) == work_pid:
        return True
    return await backend_pid(work) != work_pid
