"""Repository functions for telegram.sessions, on a migrated real database."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest

from src.database.manager import DatabaseManager
from src.database.repositories import telegram

GROUP_CHAT = -1001234567890123  # Telegram group ids are large negative 64-bit numbers


async def test_upsert_creates_then_replaces_the_session_of_a_chat(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        first = await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
    async with migrated.transaction() as session:
        second = await telegram.upsert_session(session, GROUP_CHAT, 43, state={"step": 2})
    assert second.id == first.id
    assert (second.telegram_user_id, second.state) == (43, {"step": 2})
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert stored.state == {"step": 2}


async def test_concurrent_upserts_of_one_chat_leave_one_session(migrated: DatabaseManager) -> None:
    async def upsert(user: int) -> None:
        async with migrated.transaction() as session:
            await telegram.upsert_session(session, GROUP_CHAT, user)

    await asyncio.gather(*(upsert(u) for u in range(10)))
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert stored.telegram_user_id in range(10)


async def test_get_session_of_an_unknown_chat_is_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await telegram.get_session(session, 7) is None


async def test_expire_sessions_deletes_only_the_lapsed_ones(migrated: DatabaseManager) -> None:
    now = datetime.now(UTC)
    async with migrated.transaction() as session:
        await telegram.upsert_session(session, 1, 1, expires_at=now - timedelta(minutes=1))
        await telegram.upsert_session(session, 2, 2, expires_at=now + timedelta(hours=1))
        await telegram.upsert_session(session, 3, 3)  # never expires
    async with migrated.transaction() as session:
        assert await telegram.expire_sessions(session) == 1
    async with migrated.session() as session:
        assert await telegram.get_session(session, 1) is None
        assert await telegram.get_session(session, 2) is not None
        assert await telegram.get_session(session, 3) is not None


async def test_naive_datetimes_are_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match="timezone-aware"):
            await telegram.upsert_session(session, 1, 1, expires_at=datetime(2030, 1, 1))
