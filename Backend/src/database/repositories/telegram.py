"""telegram.sessions."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncSession

from src.database.models import TelegramSession
from src.database.repositories.fields import checked_json


async def upsert_session(
    session: AsyncSession,
    telegram_chat_id: int,
    telegram_user_id: int,
    *,
    state: Mapping[str, Any] | None = None,
    expires_at: datetime | None = None,
    chat_id: uuid.UUID | None = None,
) -> TelegramSession:
    """Create the session of a Telegram chat, or replace its user, state, expiry and chat link, in one
    `INSERT ... ON CONFLICT (telegram_chat_id) DO UPDATE` (safe under concurrent calls)."""
    if expires_at is not None and expires_at.tzinfo is None:
        raise ValueError("expires_at must be timezone-aware (e.g. datetime.now(UTC) + timedelta(...))")
    values = {
        "telegram_chat_id": telegram_chat_id,
        "telegram_user_id": telegram_user_id,
        "state": checked_json("telegram_session.state", dict(state or {})),
        "expires_at": expires_at,
        "chat_id": chat_id,
    }
    inserting = insert(TelegramSession).values(**values)
    upsert = inserting.on_conflict_do_update(
        constraint="uq_sessions_telegram_chat_id",
        set_={
            "telegram_user_id": inserting.excluded.telegram_user_id,
            "state": inserting.excluded.state,
            "expires_at": inserting.excluded.expires_at,
            "chat_id": inserting.excluded.chat_id,
        },
    ).returning(TelegramSession)
    # populate_existing: an upsert may return a row this session already holds; show the new values.
    result = await session.scalars(upsert, execution_options={"populate_existing": True})
    return result.one()


async def get_session(session: AsyncSession, telegram_chat_id: int) -> TelegramSession | None:
    query = select(TelegramSession).where(TelegramSession.telegram_chat_id == telegram_chat_id)
    return (await session.scalars(query)).one_or_none()


async def expire_sessions(session: AsyncSession, *, now: datetime | None = None) -> int:
    """Delete sessions whose expires_at has passed (the server's clock unless `now` is given); returns how many."""
    if now is not None and now.tzinfo is None:
        raise ValueError("now must be timezone-aware")
    cutoff = now if now is not None else func.now()
    result = await session.execute(
        delete(TelegramSession).where(TelegramSession.expires_at <= cutoff).returning(TelegramSession.id)
    )
    return len(result.all())
