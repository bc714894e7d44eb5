"""Repository functions for messaging.chats and messaging.messages, on a migrated real database."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime
from typing import Any

import asyncpg
import pytest
from sqlalchemy.exc import InvalidRequestError

from src.database.errors import InvalidInput, NotFound
from src.database.manager import DatabaseManager
from src.database.models import Chat, Message, MessageRole
from src.database.repositories import messaging, tasks
from src.database.schemas.messaging import (
    ChatCreate,
    ChatRead,
    ChatUpdate,
    ChatWithMessages,
    MessageBody,
    MessageCreate,
    MessageRead,
    MessageSearch,
)
from tests.database.recording import inserts, sql_statements

HOSTILE = ["'); DROP TABLE messaging.messages; --", "1 OR 1=1", "emoji 🧪 ∑ \u202e", "$$; SELECT 1; $$", ""]


async def stored_contents(conn: asyncpg.Connection) -> list[str]:
    """What another connection sees, in the order a chat lists its messages."""
    rows = await conn.fetch("SELECT content FROM messaging.messages ORDER BY created_at, id")
    return [r["content"] for r in rows]


# --- chats ---------------------------------------------------------------------------------------------


async def test_create_chat_with_keywords_returns_it_stored(migrated: DatabaseManager, conn: asyncpg.Connection) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="planning", metadata={"source": "web"})
    assert isinstance(chat.id, uuid.UUID)
    assert (chat.title, chat.metadata_) == ("planning", {"source": "web"})
    assert await conn.fetchval("SELECT title FROM messaging.chats WHERE id = $1", chat.id) == "planning"


@pytest.mark.parametrize(
    "given",
    [
        Chat(title="t", metadata={"k": 1}),
        ChatCreate(title="t", metadata={"k": 1}),
        {"title": "t", "metadata": {"k": 1}},
    ],
    ids=["orm", "pydantic", "mapping"],
)
async def test_create_chat_takes_an_object_a_model_or_a_mapping(migrated: DatabaseManager, given: Any) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, given)
    assert (chat.title, chat.metadata_) == ("t", {"k": 1})
    if isinstance(given, Chat):
        assert chat is given


async def test_create_chat_with_nothing_makes_an_untitled_chat(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
    assert (chat.title, chat.metadata_) == (None, {})


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"title": "x" * 501}, r"chat\.title: .*at most 500 characters"),
        ({"title": "a\x00"}, r"chat\.title: contains a NUL character"),
        ({"metadata": [1]}, r"chat\.metadata: must be a JSON object \(a dict\), not list"),
        ({"metadata": None}, r"chat\.metadata: must be a JSON object"),
        ({"tilte": "x"}, r"chat\.tilte: is not a field; did you mean 'title'\? \(allowed: metadata, title\)"),
        ({"id": uuid.uuid4()}, r"chat\.id: is set by the database"),
        (Chat(title="x" * 501), r"chat\.title: .*at most 500"),
    ],
)
async def test_a_bad_chat_is_a_value_error_before_any_sql(migrated: DatabaseManager, given: Any, message: str) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await messaging.create_chat(session, given)
        assert sent == []
        assert (await messaging.create_chat(session, title="next")).title == "next"  # still usable


async def test_create_chat_refuses_an_object_and_keywords_together(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match="not both"):
            await messaging.create_chat(session, {"title": "a"}, title="b")


async def test_an_exception_after_two_chat_writes_in_a_transaction_leaves_neither(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    with pytest.raises(RuntimeError):
        async with migrated.transaction() as session:
            chat = await messaging.create_chat(session, title="c")
            await messaging.add_message(session, chat.id, "user", "hi")
            raise RuntimeError("halfway")
    assert await conn.fetchval("SELECT count(*) FROM messaging.chats") == 0
    assert await stored_contents(conn) == []


async def test_get_chat_finds_it_or_returns_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="c")
    async with migrated.session() as session:
        found = await messaging.get_chat(session, str(chat.id))
        assert found is not None
        assert found.title == "c"
        assert await messaging.get_chat(session, uuid.uuid4()) is None


async def test_update_chat_writes_only_the_fields_given_and_is_stored(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="old", metadata={"k": 1})
        updated = await messaging.update_chat(session, chat.id, ChatUpdate(title="new"))
    assert updated is not None
    assert (updated.title, updated.metadata_) == ("new", {"k": 1})
    assert await conn.fetchval("SELECT title FROM messaging.chats") == "new"


async def test_update_chat_with_none_clears_the_title(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="old")
        updated = await messaging.update_chat(session, chat.id, {"title": None})
    assert updated is not None
    assert updated.title is None


@pytest.mark.parametrize(
    ("updates", "message"),
    [
        ({"metadata": None}, r"chat\.metadata: cannot be null"),
        ({"title": "x" * 501}, r"chat\.title: .*at most 500"),
        ({"created_at": datetime.now(UTC)}, r"chat\.created_at: is read-only"),
        ({"name": "x"}, r"chat\.name: is not a field that can be updated"),
        ({}, r"chat: no fields to update"),
    ],
)
async def test_update_chat_refuses_bad_updates_before_any_sql(
    migrated: DatabaseManager, updates: dict[str, Any], message: str
) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await messaging.update_chat(session, uuid.uuid4(), updates)
    assert sent == []


async def test_update_chat_returns_none_for_an_unknown_id(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await messaging.update_chat(session, uuid.uuid4(), {"title": "x"}) is None


async def test_delete_chat_deletes_its_messages_and_keeps_its_todos(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await messaging.add_message(session, chat.id, "user", "hi")
        todo = await tasks.create_todo(session, {"title": "t", "chat_id": chat.id})
        assert await messaging.delete_chat(session, chat.id) is True
        assert await messaging.delete_chat(session, chat.id) is False
    assert await stored_contents(conn) == []
    assert await conn.fetchval("SELECT chat_id FROM tasks.todos WHERE id = $1", todo.id) is None


async def test_list_chats_pages_newest_first(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        made = [await messaging.create_chat(session, title=f"c{i}") for i in range(5)]
    seen: list[uuid.UUID] = []
    cursor = None
    async with migrated.session() as session:
        for expected in (2, 2, 1):
            page = await messaging.list_chats(session, after=cursor, limit=2)
            assert len(page.items) == expected
            seen += [c.id for c in page.items]
            cursor = page.next_cursor
    assert cursor is None
    assert seen == [c.id for c in reversed(made)]


async def test_search_chats_by_title_metadata_and_time(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        first = await messaging.create_chat(session, title="Weekly 100% review", metadata={"team": "red"})
        second = await messaging.create_chat(session, title="weekly 1000 review", metadata={"team": "red"})
        await messaging.create_chat(session, title="weekly sync", metadata={"team": "blue"})
        by_title = await messaging.search_chats(session, {"title": "0% REVIEW"})
        by_metadata = await messaging.search_chats(session, {"metadata": {"team": "red"}})
        after_first = await messaging.search_chats(session, {"created_after": first.created_at, "title": "review"})
    assert [c.id for c in by_title.items] == [first.id]
    assert [c.id for c in by_metadata.items] == [second.id, first.id]
    assert [c.id for c in after_first.items] == [second.id]


async def test_a_chat_reads_into_the_pydantic_read_model(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title="c", metadata={"k": "v"})
    read = ChatRead.model_validate(chat)
    assert (read.id, read.title, read.metadata) == (chat.id, "c", {"k": "v"})


# --- messages ------------------------------------------------------------------------------------------


async def test_add_message_with_todays_signature_appends_and_is_stored(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        message = await messaging.add_message(session, chat.id, "user", "hello", metadata={"lang": "en"})
    assert (message.chat_id, message.role, message.content, message.metadata_) == (
        chat.id,
        MessageRole.USER,
        "hello",
        {"lang": "en"},
    )
    assert await stored_contents(conn) == ["hello"]


async def test_add_message_is_one_statement(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        with sql_statements(migrated) as sent:
            await messaging.add_message(session, chat.id, MessageRole.ASSISTANT, "hi")
    assert len(sent) == 1


async def test_add_message_takes_a_message_object_and_returns_that_object_stored(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        given = Message(chat_id=chat.id, role="tool", content="42")
        with sql_statements(migrated) as sent:
            returned = await messaging.add_message(session, given)
        assert returned is given
        assert session.identity_map.get(session.sync_session.identity_key(Message, (given.id,))) is given
        await session.commit()  # nothing left to flush: the object is stored, not pending again
    assert len(sent) == 1
    assert isinstance(given.id, uuid.UUID)
    assert (given.role, given.content, given.metadata_) == (MessageRole.TOOL, "42", {})
    assert given.created_at.tzinfo is not None
    assert await stored_contents(conn) == ["42"]


@pytest.mark.parametrize("form", ["create-model", "mapping", "body-model", "body-mapping"])
async def test_add_message_takes_a_model_or_a_mapping(migrated: DatabaseManager, form: str) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        if form == "create-model":
            message = await messaging.add_message(session, MessageCreate(chat_id=chat.id, role="user", content="c"))
        elif form == "mapping":
            message = await messaging.add_message(session, {"chat_id": chat.id, "role": "user", "content": "c"})
        elif form == "body-model":
            message = await messaging.add_message(session, chat.id, MessageBody(role="user", content="c"))
        else:
            message = await messaging.add_message(session, chat.id, {"role": "user", "content": "c"})
    assert (message.chat_id, message.role, message.content) == (chat.id, MessageRole.USER, "c")


async def test_add_message_to_a_missing_chat_is_a_lookup_error_and_the_transaction_lives_on(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    missing = uuid.uuid4()
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session, title="before")
        with pytest.raises(NotFound, match=rf"chat {missing} does not exist \(message\.chat_id\)") as raised:
            await messaging.add_message(session, missing, "user", "hello")
        await messaging.add_message(session, chat.id, "user", "after")  # the transaction was not aborted
    assert isinstance(raised.value, LookupError)
    assert await stored_contents(conn) == ["after"]


async def test_a_missing_chat_in_a_plain_session_keeps_the_earlier_writes(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await messaging.add_message(session, chat.id, "user", "kept")
        with pytest.raises(LookupError):
            await messaging.add_message(session, uuid.uuid4(), "user", "lost")
        await messaging.add_message(session, chat.id, "user", "also kept")
    assert await stored_contents(conn) == ["kept", "also kept"]


BAD_MESSAGES: list[tuple[tuple[Any, ...], str]] = [
    (("robot", "x"), r"message\.role: input should be 'user', 'assistant', 'system' or 'tool'"),
    (("user", "a\x00b"), r"message\.content: contains a NUL character"),
    (("user", None), r"message: give the role and the content"),
    (("user", 42), r"message\.content: input should be a valid string"),
    (({"role": "user", "content": "x", "colour": 1},), r"message\.colour: is not a field"),
    (({"role": "user", "content": "x", "metadata": []},), r"message\.metadata: must be a JSON object"),
    (({"content": "x"},), r"message\.role: is required"),
    (({"role": "user", "content": "x", "chat_id": uuid.uuid4()},), r"message\.chat_id: is .*being added to chat"),
]


@pytest.mark.parametrize(("args", "message"), BAD_MESSAGES)
async def test_a_bad_message_is_a_value_error_before_any_sql(
    migrated: DatabaseManager, args: tuple[Any, ...], message: str
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput, match=message):
            await messaging.add_message(session, chat.id, *args)
        assert sent == []
        await messaging.add_message(session, chat.id, "user", "still usable")


@pytest.mark.parametrize(
    ("given", "message"),
    [
        ({"role": "user", "content": "x"}, r"message\.chat_id: is required"),
        (Message(role="user", content="x"), r"message\.chat_id: is required"),
        (Message(chat_id=uuid.uuid4(), role="robot", content="x"), r"message\.role"),
        ({"chat_id": "not a uuid", "role": "user", "content": "x"}, r"message\.chat_id: is not a UUID"),
        (42, r"message: expected a Message, a MessageCreate, a MessageBody or a mapping, not int"),
    ],
)
async def test_a_bad_message_object_is_a_value_error(migrated: DatabaseManager, given: Any, message: str) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=message):
            await messaging.add_message(session, given)


async def test_messages_added_in_one_transaction_list_in_the_order_added(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:  # one transaction: now() is the same for all of them
        chat = await messaging.create_chat(session)
        for i in range(20):
            await messaging.add_message(session, chat.id, "user" if i % 2 else "assistant", f"m{i}")
    async with migrated.session() as session:
        page = await messaging.list_messages(session, chat.id, limit=100)
    assert [m.content for m in page.items] == [f"m{i}" for i in range(20)]


async def test_add_messages_stores_them_all_in_one_statement_in_the_order_given(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        items: list[Any] = [{"role": "user", "content": f"m{i}"} for i in range(300)]
        items += [MessageBody(role="assistant", content="body"), Message(role="tool", content="object")]
        with sql_statements(migrated) as sent:
            added = await messaging.add_messages(session, chat.id, items)
    assert len(sent) == 1
    assert len(inserts(sent)) == 1
    expected = [f"m{i}" for i in range(300)] + ["body", "object"]
    assert [m.content for m in added] == expected
    assert added[-1] is items[-1]
    assert await stored_contents(conn) == expected


async def test_add_messages_after_earlier_ones_keeps_the_chat_in_order(migrated: DatabaseManager) -> None:
    async with migrated.transaction() as session:
        chat = await messaging.create_chat(session)
        await messaging.add_messages(session, chat.id, [{"role": "user", "content": f"a{i}"} for i in range(3)])
        await messaging.add_message(session, chat.id, "assistant", "b")
        await messaging.add_messages(session, chat.id, [{"role": "user", "content": f"c{i}"} for i in range(3)])
    async with migrated.session() as session:
        page = await messaging.list_messages(session, chat.id)
    assert [m.content for m in page.items] == ["a0", "a1", "a2", "b", "c0", "c1", "c2"]


async def test_add_messages_to_a_missing_chat_is_a_lookup_error_storing_none(
    migrated: DatabaseManager, conn: asyncpg.Connection
) -> None:
    missing = uuid.uuid4()
    async with migrated.session() as session:
        with pytest.raises(NotFound, match=rf"chat {missing} does not exist"):
            await messaging.add_messages(session, missing, [{"role": "user", "content": "x"}])
    assert await stored_contents(conn) == []


async def test_add_messages_names_every_bad_item_and_sends_nothing(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        with sql_statements(migrated) as sent, pytest.raises(InvalidInput) as raised:
            await messaging.add_messages(
                session,
                chat.id,
                [
                    {"role": "user", "content": "ok"},
                    {"role": "robot", "content": "x"},
                    MessageCreate(chat_id=uuid.uuid4(), role="user", content="other chat"),
                ],
            )
    assert sent == []
    assert [e.field for e in raised.value.errors] == ["messages[1].role", "messages[2].chat_id"]


async def test_add_messages_of_nothing_sends_nothing(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with sql_statements(migrated) as sent:
            assert await messaging.add_messages(session, uuid.uuid4(), []) == []
    assert sent == []


async def test_list_messages_pages_in_time_order(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        sent = [
            m.id
            for m in await messaging.add_messages(
                session, chat.id, [{"role": "user", "content": f"m{i}"} for i in range(5)]
            )
        ]
    received: list[uuid.UUID] = []
    cursor = None
    async with migrated.session() as session:
        for expected in (2, 2, 1):
            page = await messaging.list_messages(session, chat.id, after=cursor, limit=2)
            assert len(page.items) == expected
            received += [m.id for m in page.items]
            cursor = page.next_cursor
    assert cursor is None
    assert received == sent


async def test_search_messages_by_role_text_and_chat(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        other = await messaging.create_chat(session)
        await messaging.add_messages(
            session,
            chat.id,
            [
                {"role": "user", "content": "Deploy at 5_pm"},
                {"role": "assistant", "content": "deploy done"},
                {"role": "user", "content": "deploy at 5 pm"},
            ],
        )
        await messaging.add_message(session, other.id, "user", "deploy at 5_pm elsewhere")
        found = await messaging.search_messages(
            session, MessageSearch(chat_id=chat.id, roles=frozenset({MessageRole.USER}), text="5_PM")
        )
        everywhere = await messaging.search_messages(session, {"text": "5_pm"})
    assert [m.content for m in found.items] == ["Deploy at 5_pm"]
    assert [m.content for m in everywhere.items] == ["Deploy at 5_pm", "deploy at 5_pm elsewhere"]


async def test_search_messages_created_before_and_after(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        made = await messaging.add_messages(session, chat.id, [{"role": "user", "content": f"m{i}"} for i in range(3)])
        after = await messaging.search_messages(session, {"created_after": made[1].created_at})
        before = await messaging.search_messages(session, {"created_before": made[1].created_at})
    assert [m.content for m in after.items] == ["m2"]
    assert [m.content for m in before.items] == ["m0"]


async def test_a_bad_message_search_names_the_filter(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        with pytest.raises(InvalidInput, match=r"search\.roles\.0: input should be 'user'"):
            await messaging.search_messages(session, {"roles": ["robot"]})


async def test_a_message_reads_into_the_pydantic_read_model(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        message = await messaging.add_message(session, chat.id, "user", "hi", metadata={"k": 1})
    read = MessageRead.model_validate(message)
    assert (read.id, read.chat_id, read.role, read.content, read.metadata) == (
        message.id,
        chat.id,
        MessageRole.USER,
        "hi",
        {"k": 1},
    )


async def test_a_chat_loads_with_its_recent_messages_in_two_queries(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await messaging.add_messages(session, chat.id, [{"role": "assistant", "content": f"m{i}"} for i in range(30)])
    async with migrated.session() as session:
        with sql_statements(migrated) as sent:
            loaded = await messaging.get_chat_with_recent_messages(session, chat.id, recent=10)
        assert loaded is not None
        contents = [m.content for m in loaded.messages]
        read = ChatWithMessages.model_validate(loaded)
    assert contents == [f"m{i}" for i in range(20, 30)]
    assert [m.content for m in read.messages] == contents
    assert len(sent) == 2


async def test_a_missing_chat_loads_as_none(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        assert await messaging.get_chat_with_recent_messages(session, uuid.uuid4()) is None


async def test_relations_never_load_lazily_by_surprise(migrated: DatabaseManager) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
    async with migrated.session() as session:
        fresh = await session.get(type(chat), chat.id)
        assert fresh is not None
        with pytest.raises(InvalidRequestError, match="lazy='raise'"):
            _ = fresh.todos


@pytest.mark.parametrize("hostile", HOSTILE)
async def test_hostile_content_is_stored_verbatim(migrated: DatabaseManager, hostile: str) -> None:
    async with migrated.session() as session:
        chat = await messaging.create_chat(session, title=hostile)
        await messaging.add_message(session, chat.id, "user", hostile, metadata={hostile: hostile})
    async with migrated.session() as session:
        page = await messaging.list_messages(session, chat.id)
        stored_chat = await messaging.get_chat(session, chat.id)
    assert [(m.content, m.metadata_) for m in page.items] == [(hostile, {hostile: hostile})]
    assert stored_chat is not None
    assert stored_chat.title == hostile


async def test_a_megabyte_message_is_stored_whole(migrated: DatabaseManager) -> None:
    text = 'é\n"\\' * 250_000
    async with migrated.session() as session:
        chat = await messaging.create_chat(session)
        await messaging.add_message(session, chat.id, "user", text)
    async with migrated.session() as session:
        page = await messaging.list_messages(session, chat.id)
    assert page.items[0].content == text
