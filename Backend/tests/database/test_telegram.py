"""Repository functions for telegram.sessions, on a migrated real database."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from src.database.errors import InvalidInput, NotFound
from src.database.manager import DatabaseManager
from src.database.models import TelegramSession
from src.database.repositories import messaging, telegram
from src.database.schemas.telegram import TelegramSessionCreate, TelegramSessionUpdate
from tests.database import recording

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
        with pytest.raises(InvalidInput, match=r"telegram_session\.expires_at: must be timezone-aware"):
            await telegram.upsert_session(session, 1, 1, expires_at=datetime(2030, 1, 1))


async def test_an_upsert_in_a_plain_session_is_stored(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert stored.state == {"step": 1}


async def test_upserts_in_a_transaction_that_fails_leave_nothing(migrated: DatabaseManager) -> None:
    with pytest.raises(RuntimeError, match="bot crashed"):
        async with migrated.transaction() as session:
            await telegram.upsert_session(session, 1, 1)
            await telegram.upsert_session(session, 2, 2)
            raise RuntimeError("bot crashed")
    async with migrated.session() as session:
        assert await telegram.get_session(session, 1) is None
        assert await telegram.get_session(session, 2) is None


async def test_an_upsert_of_only_the_state_keeps_the_expiry_and_the_chat_link(migrated: DatabaseManager) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await session.commit()
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1}, expires_at=expires, chat_id=chat.id)
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 2})
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert (stored.state, stored.expires_at, stored.chat_id) == ({"step": 2}, expires, chat.id)


async def test_an_upsert_without_state_keeps_the_state(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
        moved = await telegram.upsert_session(session, GROUP_CHAT, 43, expires_at=None)
    assert (moved.telegram_user_id, moved.state, moved.expires_at) == (43, {"step": 1}, None)


async def test_an_explicit_none_clears_the_expiry(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, expires_at=datetime.now(UTC) + timedelta(hours=1))
        cleared = await telegram.upsert_session(session, GROUP_CHAT, 42, expires_at=None)
    assert cleared.expires_at is None


@pytest.mark.parametrize(
    ("chat_id", "user_id", "field"),
    [(2**63, 1, "telegram_chat_id"), (1, -(2**63) - 1, "telegram_user_id"), (True, 1, "telegram_chat_id")],
)
async def test_a_telegram_id_outside_bigint_names_the_field_and_the_range(
    migrated: DatabaseManager, chat_id: int, user_id: int, field: str
) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=f"^{field}: ") as caught:
            await telegram.upsert_session(session, chat_id, user_id)
        assert (
            caught.value.allowed
            == "a whole number from -9223372036854775808 to 9223372036854775807 (PostgreSQL bigint)"
        )
        assert await telegram.get_session(session, 1) is None  # the session is still usable


async def test_the_edges_of_bigint_are_accepted(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        stored = await telegram.upsert_session(session, -(2**63), 2**63 - 1)
    assert (stored.telegram_chat_id, stored.telegram_user_id) == (-(2**63), 2**63 - 1)


async def test_a_chat_id_of_no_chat_is_not_found_and_nothing_is_stored(migrated: DatabaseManager) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound, match=f"chat {missing} does not exist \\(telegram_session.chat_id\\)"):
            await telegram.upsert_session(session, GROUP_CHAT, 42, chat_id=missing)
        assert await telegram.get_session(session, GROUP_CHAT) is None  # the session is still usable


async def test_expire_sessions_in_a_plain_session_is_stored(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, 1, 1, expires_at=datetime.now(UTC) - timedelta(minutes=1))
        assert await telegram.expire_sessions(session) == 1
    async with migrated.session() as session:
        assert await telegram.get_session(session, 1) is None


# --- the three input forms, and update_session --------------------------------------------------------


async def test_upsert_session_takes_a_create_model_and_writes_only_the_fields_it_sets(
    migrated: DatabaseManager,
) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        first = await telegram.upsert_session(
            session,
            TelegramSessionCreate(
                telegram_chat_id=GROUP_CHAT,
                telegram_user_id=42,
                state={"step": 1},
                expires_at=expires,
                chat_id=chat.id,
                metadata={"lang": "de"},
            ),
        )
        again = await telegram.upsert_session(
            session, TelegramSessionCreate(telegram_chat_id=GROUP_CHAT, telegram_user_id=43, state={"step": 2})
        )
    assert again.id == first.id
    assert (again.telegram_user_id, again.state, again.expires_at, again.chat_id, again.metadata_) == (
        43,
        {"step": 2},
        expires,
        chat.id,
        {"lang": "de"},
    )


async def test_upsert_session_takes_a_mapping(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        stored = await telegram.upsert_session(
            session, {"telegram_chat_id": 5, "telegram_user_id": 6, "metadata": {"source": "webhook"}}
        )
    assert (stored.telegram_chat_id, stored.telegram_user_id, stored.state, stored.metadata_) == (
        5,
        6,
        {},
        {"source": "webhook"},
    )
    async with migrated.session() as session:
        assert await telegram.get_session(session, 5) is not None  # committed by the plain session


async def test_upsert_session_takes_a_new_telegram_session_object_and_returns_it(migrated: DatabaseManager) -> None:
    given = TelegramSession(telegram_chat_id=GROUP_CHAT, telegram_user_id=42, state={"step": 1})
    async with migrated.session() as session:
        returned = await telegram.upsert_session(session, given)
    assert returned is given
    assert isinstance(given.id, uuid.UUID)
    assert (given.state, given.expires_at, given.metadata_) == ({"step": 1}, None, {})
    later = TelegramSession(telegram_chat_id=GROUP_CHAT, telegram_user_id=42, state={"step": 2})
    async with migrated.session() as session:
        replaced = await telegram.upsert_session(session, later)
    assert replaced is later
    assert (later.id, later.state) == (given.id, {"step": 2})  # the same row, updated


async def test_an_object_for_a_session_this_session_holds_returns_the_held_one(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        held = await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
        returned = await telegram.upsert_session(
            session, TelegramSession(telegram_chat_id=GROUP_CHAT, telegram_user_id=42, state={"step": 2})
        )
        assert returned is held
        assert held.state == {"step": 2}
        assert await telegram.get_session(session, GROUP_CHAT) is held


@pytest.mark.parametrize(
    ("data", "message"),
    [
        ({"telegram_chat_id": 1}, r"^telegram_session\.telegram_user_id: is required$"),
        ({"telegram_chat_id": "1", "telegram_user_id": 2}, r"^telegram_session\.telegram_chat_id: input should be"),
        ({"telegram_chat_id": 2**63, "telegram_user_id": 2}, r"^telegram_session\.telegram_chat_id: is out of range"),
        ({"telegram_chat_id": 1, "telegram_user_id": True}, r"^telegram_session\.telegram_user_id: input should be"),
        ({"telegram_chat_id": 1, "telegram_user_id": 2, "state": [1]}, r"^telegram_session\.state: must be a JSON"),
        ({"telegram_chat_id": 1, "telegram_user_id": 2, "state": None}, r"^telegram_session\.state: must be a JSON"),
        (
            {"telegram_chat_id": 1, "telegram_user_id": 2, "expires_at": datetime(2030, 1, 1)},
            r"^telegram_session\.expires_at: input should have timezone info",
        ),
        (
            {"telegram_chat_id": 1, "telegram_user_id": 2, "stat": {}},
            r"^telegram_session\.stat: .*did you mean 'state'",
        ),
        ({"telegram_chat_id": 1, "telegram_user_id": 2, "metadata": {"k": "\x00"}}, r"^telegram_session\.metadata: "),
        (TelegramSession(telegram_chat_id=1), r"^telegram_session\.telegram_user_id: is required$"),
        ("1", r"^telegram_session: expected a TelegramSession, a TelegramSessionCreate or a mapping, not str$"),
    ],
)
async def test_bad_input_in_any_form_names_the_field_and_nothing_is_sent(
    migrated: DatabaseManager, data: Any, message: str
) -> None:
    async with migrated.session() as session:
        with recording.sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await telegram.upsert_session(session, data)
        assert sent == []
        assert await telegram.get_session(session, 1) is None  # the session is still usable


async def test_the_session_and_ids_or_keywords_together_are_refused(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"^telegram_session: pass the session alone"):
            await telegram.upsert_session(session, {"telegram_chat_id": 1, "telegram_user_id": 2}, state={})
        with pytest.raises(InvalidInput, match=r"^telegram_user_id: is required with a telegram_chat_id$"):
            await telegram.upsert_session(session, 1)


async def test_the_keyword_form_takes_metadata(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, 1, 2, metadata={"a": 1})
        kept = await telegram.upsert_session(session, 1, 3)
    assert (kept.telegram_user_id, kept.metadata_) == (3, {"a": 1})


async def test_update_session_changes_only_the_fields_given(migrated: DatabaseManager) -> None:
    expires = datetime.now(UTC) + timedelta(hours=1)
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1}, expires_at=expires, chat_id=chat.id)
        moved = await telegram.update_session(session, GROUP_CHAT, {"state": {"step": 2}})
        unlinked = await telegram.update_session(session, GROUP_CHAT, TelegramSessionUpdate(chat_id=None))
    assert moved is not None
    assert unlinked is not None
    assert (unlinked.state, unlinked.expires_at, unlinked.chat_id, unlinked.telegram_user_id) == (
        {"step": 2},
        expires,
        None,
        42,
    )
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert (stored.state, stored.chat_id) == ({"step": 2}, None)


async def test_update_session_of_a_chat_without_one_is_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await telegram.update_session(session, 7, {"state": {}}) is None


@pytest.mark.parametrize(
    ("updates", "error", "message"),
    [
        ({"state": None}, InvalidInput, r"^telegram_session\.state: cannot be null \(the column is NOT NULL\)$"),
        ({"telegram_user_id": None}, InvalidInput, r"^telegram_session\.telegram_user_id: cannot be null"),
        ({"telegram_chat_id": 5}, InvalidInput, r"^telegram_session\.telegram_chat_id: is not a field that can be"),
        ({"id": uuid.uuid4()}, InvalidInput, r"^telegram_session\.id: is read-only"),
        ({}, InvalidInput, r"^telegram_session: no fields to update"),
        ({"expires_at": datetime(2030, 1, 1)}, InvalidInput, r"^telegram_session\.expires_at: input should have"),
        ({"chat_id": uuid.uuid4()}, NotFound, r"^chat .* does not exist \(telegram_session\.chat_id\)$"),
    ],
)
async def test_a_bad_update_names_the_field_and_changes_nothing(
    migrated: DatabaseManager, updates: dict[str, Any], error: type[Exception], message: str
) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
        with pytest.raises(error, match=message):
            await telegram.update_session(session, GROUP_CHAT, updates)
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert (stored.state, stored.telegram_user_id) == ({"step": 1}, 42)


async def test_updates_in_a_transaction_that_fails_leave_nothing(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        await telegram.upsert_session(session, GROUP_CHAT, 42, state={"step": 1})
    with pytest.raises(RuntimeError, match="bot crashed"):
        async with migrated.transaction() as session:
            await telegram.update_session(session, GROUP_CHAT, {"state": {"step": 2}})
            raise RuntimeError("bot crashed")
    async with migrated.session() as session:
        stored = await telegram.get_session(session, GROUP_CHAT)
    assert stored is not None
    assert stored.state == {"step": 1}
