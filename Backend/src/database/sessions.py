"""The one rule of writes, and sessions that cannot outlive their block.

**A repository write commits by itself unless the caller owns the transaction**: the caller owns it inside
`manager.transaction()`, after `await session.begin()` / `session.begin_nested()`, or inside
`async with session.begin():`. So `create_todo(session, ...)` in a plain `manager.session()` is stored when
it returns (as the spec's `session.add(); await session.commit()` is), and several writes inside
`manager.transaction()` commit or roll back together.

A transaction SQLAlchemy began by itself (autobegin, at the first statement) belongs to nobody, so a write
after a plain read still commits.

**A rollback leaves the objects a caller holds readable.** SQLAlchemy expires every object of a session when
its transaction rolls back, and under asyncio reading an expired attribute cannot load it again (it raises
MissingGreenlet, or DetachedInstanceError once the session has ended). So sessions keep each object's
loaded values across a rollback instead (`_remember_loaded` / `_restore_loaded`): an object reads as it did
before, minus the changes the caller made to it and had not flushed, which are undone. Values the rolled-back
transaction wrote (an UPDATE ... RETURNING in a failed `transaction()`) stay on the object although they
were not stored; read the row again in a new session when the stored state matters.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Mapping
from contextlib import asynccontextmanager
from typing import Any

from sqlalchemy import event
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import InstanceState, Session, SessionTransaction
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import LoaderCallableStatus
from sqlalchemy.orm.session import SessionTransactionOrigin

from src.database.errors import ReadOnlySession, SessionClosed
from src.database.foreign_keys import missing_reference

OWNED_BY_CALLER = "agent_backend.owned_by_caller"
"""`session.info` key set by `DatabaseManager.transaction()` for the length of its block."""
READONLY = "agent_backend.readonly"
"""`session.info` key of the sessions `manager.session(readonly=True)` makes: writes are refused."""


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
async def write(session: AsyncSession, *, fields: Mapping[object, str] | None = None) -> AsyncIterator[bool]:
    """Around a repository write's SQL: commit at the end unless the caller owns the transaction; on an
    error, roll back what this session did (unless the caller owns it: then its block decides), so the
    session stays usable. Yields whether the caller owns the transaction.

    A foreign-key violation (a referenced row that does not exist) is raised as NotFound naming the
    reference; `fields` names the field per key when one write carries many rows. Inside the caller's
    transaction the database has aborted that transaction by then, and the error says so.

    Check the caller's input before entering: a ValueError raised for bad input must not roll back
    the caller's earlier, uncommitted work.
    """
    if session.sync_session.info.get(READONLY):
        raise ReadOnlySession("a repository write")
    owned = caller_owns_transaction(session)
    try:
        yield owned
        if not owned:
            await session.commit()
    except BaseException as exc:
        if not owned:
            # If the connection is gone the rollback fails too; the original error is the one worth raising.
            with contextlib.suppress(Exception):
                await session.rollback()
        note = "the database aborted the transaction: leave the transaction() block and retry" if owned else None
        missing = missing_reference(exc, fields=fields, note=note) if isinstance(exc, Exception) else None
        if missing is not None:
            raise missing from None
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


@event.listens_for(GuardedSession, "before_flush")
def _refuse_readonly_flush(session: Session, flush_context: Any, instances: Any) -> None:
    # Before any SQL: a replica would refuse it anyway, but the primary fallback is a plain connection
    # without transaction pooling's READ ONLY transaction, and the error should be ours either way.
    if session.info.get(READONLY) and (session.new or session.dirty or session.deleted):
        raise ReadOnlySession("a flush of added, changed or deleted objects")


LOADED_ON_ROLLBACK = "agent_backend.loaded_on_rollback"
"""`session.info` key holding the objects' loaded values between a rollback and the expiry it causes."""

_UNLOADED = (LoaderCallableStatus.NO_VALUE, LoaderCallableStatus.NEVER_SET)


def _loaded_values(state: InstanceState[Any]) -> dict[str, Any]:
    """An object's attributes as last loaded: its current values, with the ones the caller changed and
    did not flush put back (the originals SQLAlchemy keeps in committed_state)."""
    mapped = state.manager
    values = {key: value for key, value in state.dict.items() if key in mapped}
    for key, original in state.committed_state.items():
        if original in _UNLOADED:
            values.pop(key, None)
        else:
            values[key] = original
    return values


@event.listens_for(GuardedSession, "after_rollback")
def _remember_loaded(session: Session) -> None:
    # Runs after the database rolled back and before SQLAlchemy expires the session's objects.
    session.info[LOADED_ON_ROLLBACK] = [(state, _loaded_values(state)) for state in session.identity_map.all_states()]


@event.listens_for(GuardedSession, "after_soft_rollback")
def _restore_loaded(session: Session, previous_transaction: SessionTransaction) -> None:
    # Runs once the expiry is done: give every object its loaded values back, as committed state.
    for state, values in session.info.pop(LOADED_ON_ROLLBACK, ()):
        obj = state.obj()
        if obj is None:
            continue
        for key, value in values.items():
            set_committed_value(obj, key, value)
