"""Repository functions for messaging.chats and messaging.messages, on a migrated real database."""

from __future__ import annotations

import uuid

import pytest
from sqlalchemy import event
from sqlalchemy.exc import InvalidRequestError

from src.database.manager import DatabaseManager
from src.database.models import MessageRole
from src.database.repositories import messaging

HOSTILE = ["'); DROP TABLE messaging.messages; --", "1 OR 1=1", "emoji 🧪 ∑ \u202e", "$$; SELECT 1; $$"]


async def test_create_chat_returns_it(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session, title="planning", metadata={"source": "web"})
    assert isinstance(chat.id, uuid.UUID)
    assert (chat.title, chat.metadata_) == ("planning", {"source": "web"})


async def test_add_message_appends_to_the_chat(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session)
        message = await messaging.add_message(session, chat.id, "user", "hello", metadata={"lang": "en"})
    assert (message.chat_id, message.role, message.content, message.metadata_) == (
        chat.id,
        MessageRole.USER,
        "hello",
        {"lang": "en"},
    )


async def test_add_message_to_a_missing_chat_is_a_lookup_error_and_the_transaction_lives_on(
    migrated: DatabaseManager,
) -> None:
    async with migrated.transaction() as session:
        with pytest.raises(LookupError, match="does not exist"):
            await messaging.add_message(session, uuid.uuid4(), "user", "hello")
        chat = await messaging.create_chat(session)  # the transaction was not aborted
    assert chat.id is not None


async def test_an_unknown_role_is_a_value_error(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"message\.role: input should be 'user', 'assistant', 'system' or 'tool'"):
            await messaging.add_message(session, uuid.uuid4(), "robot", "x")


async def test_list_messages_pages_in_time_order(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session)
    sent = []
    for i in range(5):  # separate transactions: distinct created_at, so time order is observable
        async with migrated.transaction() as session:
            sent.append((await messaging.add_message(session, chat.id, "user", f"m{i}")).id)
    received: list[uuid.UUID] = []
    cursor = None
    async with migrated.session() as session:
        while True:
            page = await messaging.list_messages(session, chat.id, after=cursor, limit=2)
            received += [m.id for m in page.items]
            cursor = page.next_cursor
            if cursor is None:
                break
    assert received == sent


async def test_a_chat_loads_with_its_recent_messages_in_two_queries(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session)
    for i in range(30):
        async with migrated.transaction() as session:
            await messaging.add_message(session, chat.id, "assistant", f"m{i}")
    statements: list[str] = []

    def count(*args: object) -> None:
        statements.append(str(args[2]))

    event.listen(migrated.engine.sync_engine, "before_cursor_execute", count)
    try:
        async with migrated.session() as session:
            loaded = await messaging.get_chat_with_recent_messages(session, chat.id, recent=10)
            assert loaded is not None
            contents = [m.content for m in loaded.messages]
    finally:
        event.remove(migrated.engine.sync_engine, "before_cursor_execute", count)
    assert contents == [f"m{i}" for i in range(20, 30)]
    assert len([s for s in statements if s.lstrip().upper().startswith("SELECT")]) == 2


async def test_a_missing_chat_loads_as_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await messaging.get_chat_with_recent_messages(session, uuid.uuid4()) is None


async def test_relations_never_load_lazily_by_surprise(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session)
    async with migrated.session() as session:
        fresh = await session.get(type(chat), chat.id)
        assert fresh is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = fresh.todos


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_content_is_stored_verbatim(migrated: DatabaseManager, hostile: str) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session, title=hostile)
        await messaging.add_message(session, chat.id, "user", hostile)
    async with migrated.session() as session:
        page = await messaging.list_messages(session, chat.id)
    assert [m.content for m in page.items] == [hostile]


async def test_nul_in_content_is_refused_clearly(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(ValueError, match=r"message\.content: contains a NUL character"):
            await messaging.add_message(session, uuid.uuid4(), "user", "a\x00b")
