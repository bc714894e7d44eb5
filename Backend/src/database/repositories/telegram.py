"""telegram.sessions.

Writes follow the rule of `src.database.sessions`: they commit by themselves in a plain
`manager.session()` and join the caller's transaction inside `manager.transaction()`.
"""

from __future__ import annotations

import enum
import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any, Final, Literal

from sqlalchemy import delete, func, inspect, select, update
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import sessions
from src.database.errors import InvalidInput
from src.database.models import TelegramSession
from src.database.repositories.objects import adopt
from src.database.repositories.references import require_chats
from src.database.schemas import common
from src.database.schemas.telegram import (
    BIGINT_MAX,
    BIGINT_MIN,
    TelegramSessionCreate,
    TelegramSessionUpdate,
    telegram_id,
)

TelegramSessionInput = TelegramSession | TelegramSessionCreate | Mapping[str, Any]
"""What `upsert_session` takes: a new ORM object, a TelegramSessionCreate, or a mapping of its fields."""


_COLUMNS = TelegramSession.__mapper__.columns
"""Attribute name (metadata_) -> column (metadata)."""


class _Unset(enum.Enum):
    UNSET = "UNSET"


UNSET: Final = _Unset.UNSET
"""The default of upsert_session's optional fields: "not given, leave the stored value", unlike None."""
Unset = Literal[_Unset.UNSET]


def _aware(value: object, field: str) -> datetime:
    if not isinstance(value, datetime):
        raise InvalidInput(field, f"must be a datetime, not {type(value).__name__}")
    if value.tzinfo is None:
        raise InvalidInput(field, "must be timezone-aware (e.g. datetime.now(UTC) + timedelta(...))")
    return value


def _keyword_fields(
    telegram_chat_id: int,
    telegram_user_id: int | None,
    state: object,
    expires_at: object,
    chat_id: object,
    metadata: object,
) -> dict[str, Any]:
    """The positional/keyword form (`upsert_session(s, chat, user, state=...)`) as a mapping of the fields
    given; its own messages for the ids and datetimes, and `state=None` meaning {} as it always has."""
    if telegram_user_id is None:
        raise InvalidInput("telegram_user_id", "is required with a telegram_chat_id")
    fields: dict[str, Any] = {
        "telegram_chat_id": telegram_id(telegram_chat_id, "telegram_chat_id"),
        "telegram_user_id": telegram_id(telegram_user_id, "telegram_user_id"),
    }
    if state is not UNSET:
        fields["state"] = {} if state is None else state
    if expires_at is not UNSET:
        fields["expires_at"] = None if expires_at is None else _aware(expires_at, "telegram_session.expires_at")
    if chat_id is not UNSET:
        fields["chat_id"] = None if chat_id is None else common.identifier(chat_id, "telegram_session.chat_id")
    if metadata is not UNSET:
        fields["metadata"] = metadata
    return fields


def _holds_session_of(session: AsyncSession, telegram_chat_id: int) -> bool:
    return any(
        isinstance(obj, TelegramSession) and inspect(obj).dict.get("telegram_chat_id") == telegram_chat_id
        for obj in session.identity_map.values()
    )


async def upsert_session(
    session: AsyncSession,
    telegram_chat_id: int | TelegramSessionInput,
    telegram_user_id: int | None = None,
    *,
    state: Mapping[str, Any] | Unset | None = UNSET,
    expires_at: datetime | Unset | None = UNSET,
    chat_id: uuid.UUID | str | Unset | None = UNSET,
    metadata: Mapping[str, Any] | Unset = UNSET,
) -> TelegramSession:
    """Create the session of a Telegram chat, or update it, in one `INSERT ... ON CONFLICT
    (telegram_chat_id) DO UPDATE` (safe under concurrent calls); committed unless the caller owns the
    transaction.

    `upsert_session(s, chat, user, state={...}, expires_at=..., chat_id=..., metadata=...)`, or
    `upsert_session(s, data)` with a TelegramSession object, a TelegramSessionCreate or a mapping of its
    fields. The ids are always written; the other fields only when given, so `upsert_session(s, chat,
    user, state={...})` keeps the stored expiry and chat link. In the keyword form an explicit None clears
    a field (`state=None` stores `{}`, `expires_at=None` means never, `chat_id=None` unlinks). A
    TelegramSession object given is the one returned, holding the stored row (unless this session already
    held that row as another object: then that one is returned, updated). InvalidInput for an id outside
    bigint, a naive datetime or a bad field; NotFound when chat_id names no chat.
    """
    if isinstance(telegram_chat_id, int):
        data: object = _keyword_fields(telegram_chat_id, telegram_user_id, state, expires_at, chat_id, metadata)
    elif telegram_user_id is not None or any(v is not UNSET for v in (state, expires_at, chat_id, metadata)):
        raise InvalidInput(
            "telegram_session", "pass the session alone, or telegram_chat_id, telegram_user_id and keywords"
        )
    else:
        data = telegram_chat_id
    checked = common.creation(data, TelegramSessionCreate, TelegramSession, what="telegram_session")
    values = common.attributes(checked)
    inserting = insert(TelegramSession).values(**values)
    upsert = inserting.on_conflict_do_update(
        constraint="uq_sessions_telegram_chat_id",
        set_={
            _COLUMNS[name].key: inserting.excluded[_COLUMNS[name].key] for name in values if name != "telegram_chat_id"
        },
    ).returning(TelegramSession)
    given = data if isinstance(data, TelegramSession) else None
    held = given is not None and _holds_session_of(session, checked.telegram_chat_id)
    # A read, so before `write`: a missing chat must not roll back the caller's earlier work either.
    if checked.chat_id is not None:
        await require_chats(session, [checked.chat_id], field="telegram_session.chat_id")
    async with sessions.write(session):
        # populate_existing: an upsert may return a row this session already holds; show the new values.
        stored = (await session.scalars(upsert, execution_options={"populate_existing": True})).one()
    if given is None or held:
        return stored
    return adopt(session, given, stored)


async def get_session(session: AsyncSession, telegram_chat_id: int) -> TelegramSession | None:
    chat = telegram_id(telegram_chat_id, "telegram_chat_id")
    query = select(TelegramSession).where(TelegramSession.telegram_chat_id == chat)
    return (await session.scalars(query)).one_or_none()


async def update_session(
    session: AsyncSession, telegram_chat_id: int, updates: TelegramSessionUpdate | Mapping[str, Any]
) -> TelegramSession | None:
    """Change only the fields given of a Telegram chat's session, in one `UPDATE ... RETURNING`; None when
    the chat has no session. InvalidInput for a bad field; NotFound when chat_id names no chat."""
    chat = telegram_id(telegram_chat_id, "telegram_chat_id")
    values = common.changes(updates, TelegramSessionUpdate, what="telegram_session")
    if values.get("chat_id") is not None:
        await require_chats(session, [values["chat_id"]], field="telegram_session.chat_id")
    query = (
        update(TelegramSession)
        .where(TelegramSession.telegram_chat_id == chat)
        .values(**values)
        .returning(TelegramSession)
    )
    async with sessions.write(session):
        # populate_existing: the session may already hold this row; show the new values.
        result = await session.scalars(
            query, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        return result.one_or_none()


async def expire_sessions(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete sessions whose expires_at has passed (the server's clock unless `now` is given); returns how
    many. Committed unless the caller owns the transaction."""
    cutoff = func.now() if now is None else _aware(now, "now")
    async with sessions.write(session):
        result = await session.execute(
            delete(TelegramSession).where(TelegramSession.expires_at <= cutoff).returning(TelegramSession.id)
        )
        return len(result.all())


__all__ = [
    "BIGINT_MAX",
    "BIGINT_MIN",
    "UNSET",
    "TelegramSessionInput",
    "expire_sessions",
    "get_session",
    "update_session",
    "upsert_session",
]
