"""The one rule of writes, and sessions that cannot outlive their block.

**A repository write commits by itself unless the caller owns the transaction**: the caller owns it inside
`manager.transaction()`, after `await session.begin()` / `session.begin_nested()`, or inside
`async with session.begin():`. So `create_todo(session, ...)` in a plain `manager.session()` is stored when
it returns (as the spec's `session.add(); await session.commit()` is), and several writes inside
`manager.transaction()` commit or roll back together.

A transaction SQLAlchemy began by itself (autobegin, at the first statement) belongs to nobody, so a write
after a plain read still commits.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction
from sqlalchemy.orm.session import SessionTransactionOrigin

from src.database.errors import SessionClosed

OWNED_BY_CALLER = "agent_backend.owned_by_caller"
"""`session.info` key set by `DatabaseManager.transaction()` for the length of its block."""


class GuardedSession(Session):
    """A SQLAlchemy Session that refuses to start new work once its `async with` block has ended.

    SQLAlchemy lets a closed session begin again (and check out a new connection); in a long-running
    agent that is a connection leak nobody sees. Every way of using a session to reach the database
    (execute, get, flush, commit, begin) passes through `_autobegin_t`, so the check lives there.
    """

    ended = False

    def _autobegin_t(self, begin: bool = False) -> SessionTransaction:
        if self.ended:
            raise SessionClosed(
                "this session was closed when its `async with manager.session()` (or transaction()) block "
                "ended; open a new one with `async with manager.session() as session:`"
            )
        return super()._autobegin_t(begin)


def caller_owns_transaction(session: AsyncSession) -> bool:
    """True when the caller began the current transaction (so a repository write must not commit it)."""
    sync = session.sync_session
    if sync.info.get(OWNED_BY_CALLER) or sync.in_nested_transaction():
        return True
    transaction = sync.get_transaction()
    return transaction is not None and transaction.origin is not SessionTransactionOrigin.AUTOBEGIN


@asynccontextmanager
async def write(session: AsyncSession) -> AsyncIterator[bool]:
    """Around a repository write's SQL: commit at the end unless the caller owns the transaction; on an
    error, roll back what this session did (unless the caller owns it: then its block decides), so the
    session stays usable. Yields whether the caller owns the transaction.

    Check the caller's input before entering: a ValueError raised for bad input must not roll back
    the caller's earlier, uncommitted work.
    """
    owned = caller_owns_transaction(session)
    try:
        yield owned
        if not owned:
            await session.commit()
    except BaseException:
        if not owned:
            # If the connection is gone the rollback fails too; the original error is the one worth raising.
            with contextlib.suppress(Exception):
                await session.rollback()
        raise


def mark_owned(session: AsyncSession, owned: bool) -> None:
    if owned:
        session.sync_session.info[OWNED_BY_CALLER] = True
    else:
        session.sync_session.info.pop(OWNED_BY_CALLER, None)


def end(session: AsyncSession) -> None:
    """After the block: any further use raises SessionClosed."""
    sync: Any = session.sync_session
    sync.ended = True
