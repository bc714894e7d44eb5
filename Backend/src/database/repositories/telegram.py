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

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.database import sessions
from src.database.errors import InvalidInput
from src.database.models import TelegramSession
from src.database.repositories.fields import checked_json
from src.database.repositories.references import require_chats
from src.database.schemas import common
from src.database.schemas.telegram import BIGINT_MAX, BIGINT_MIN, telegram_id


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


async def upsert_session(
    session: AsyncSession,
    telegram_chat_id: int,
    telegram_user_id: int,
    *,
    state: Mapping[str, Any] | Unset | None = UNSET,
    expires_at: datetime | Unset | None = UNSET,
    chat_id: uuid.UUID | str | Unset | None = UNSET,
) -> TelegramSession:
    """Create the session of a Telegram chat, or update it, in one `INSERT ... ON CONFLICT
    (telegram_chat_id) DO UPDATE` (safe under concurrent calls); committed unless the caller owns the
    transaction.

    The user id is always written; `state`, `expires_at` and `chat_id` only when given, so
    `upsert_session(s, chat, user, state={...})` keeps the stored expiry and chat link. An explicit None
    clears a field (`state=None` stores `{}`, `expires_at=None` means never, `chat_id=None` unlinks).
    InvalidInput for an id outside bigint or a naive datetime; NotFound when chat_id names no chat.
    """
    values: dict[str, Any] = {
        "telegram_chat_id": telegram_id(telegram_chat_id, "telegram_chat_id"),
        "telegram_user_id": telegram_id(telegram_user_id, "telegram_user_id"),
    }
    if state is not UNSET:
        if state is not None and not isinstance(state, Mapping):
            raise InvalidInput(
                "telegram_session.state", f"must be a JSON object (a mapping), not {type(state).__name__}"
            )
        values["state"] = checked_json("telegram_session.state", dict(state or {}))
    if expires_at is not UNSET:
        values["expires_at"] = None if expires_at is None else _aware(expires_at, "telegram_session.expires_at")
    if chat_id is not UNSET:
        values["chat_id"] = None if chat_id is None else common.identifier(chat_id, "telegram_session.chat_id")
    inserting = insert(TelegramSession).values(**values)
    upsert = inserting.on_conflict_do_update(
        constraint="uq_sessions_telegram_chat_id",
        set_={name: inserting.excluded[name] for name in values if name != "telegram_chat_id"},
    ).returning(TelegramSession)
    async with sessions.write(session):
        if values.get("chat_id") is not None:
            await require_chats(session, [values["chat_id"]], field="telegram_session.chat_id")
        # populate_existing: an upsert may return a row this session already holds; show the new values.
        result = await session.scalars(upsert, execution_options={"populate_existing": True})
        return result.one()


async def get_session(session: AsyncSession, telegram_chat_id: int) -> TelegramSession | None:
    chat = telegram_id(telegram_chat_id, "telegram_chat_id")
    query = select(TelegramSession).where(TelegramSession.telegram_chat_id == chat)
    return (await session.scalars(query)).one_or_none()


async def expire_sessions(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete sessions whose expires_at has passed (the server's clock unless `now` is given); returns how
    many. Committed unless the caller owns the transaction."""
    cutoff = func.now() if now is None else _aware(now, "now")
    async with sessions.write(session):
        result = await session.execute(
            delete(TelegramSession).where(TelegramSession.expires_at <= cutoff).returning(TelegramSession.id)
        )
        return len(result.all())


__all__ = ["BIGINT_MAX", "BIGINT_MIN", "UNSET", "expire_sessions", "get_session", "upsert_session"]
