"""messaging.chats and messaging.messages.

Writes follow the rule of `src.database.sessions`: they commit by themselves in a plain
`manager.session()` and join the caller's transaction inside `manager.transaction()`.

A chat reads back in the order its messages were added, also when many are added in one transaction
(where `now()` is the same for all of them): `add_message` and `add_messages` stamp each message with
the server's clock at the write, strictly after the chat's latest message (see `_INSERT_MESSAGES`).
"""

from __future__ import annotations

import functools
import uuid
from collections.abc import Iterable, Mapping, Sequence
from typing import Any, overload

from pydantic import BaseModel
from sqlalchemy import bindparam, delete, insert, inspect, select, text, tuple_, update
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.dialects.postgresql import UUID as PgUUID
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from src.database import direct, sessions
from src.database.errors import InvalidInput, NotFound
from src.database.models import Chat, Message, MessageRole
from src.database.repositories.filters import contains_text
from src.database.repositories.objects import adopt
from src.database.repositories.paging import Page, check_limit, decode_cursor, page_of
from src.database.schemas import common
from src.database.schemas.messaging import (
    ChatCreate,
    ChatSearch,
    ChatUpdate,
    MessageBody,
    MessageCreate,
    MessageSearch,
)

ChatInput = Chat | ChatCreate | Mapping[str, Any]
"""What `create_chat` takes: a new ORM object, a ChatCreate, or a mapping of its fields."""
MessageInput = Message | MessageCreate | MessageBody | Mapping[str, Any]
"""A message to add: a new ORM object, a MessageCreate / MessageBody, or a mapping of their fields."""

_UNSET: Any = object()
_CHATS_NEWEST_FIRST = (Chat.created_at.desc(), Chat.id.desc())
_MESSAGES_IN_TIME_ORDER = (Message.created_at, Message.id)

# One statement for one message or many: it inserts nothing when the chat does not exist (no foreign-key
# error to abort the caller's transaction; the chat row is locked as the foreign key's check would, so a
# delete under way is waited for and then counts as missing), and gives the n-th message the time
# max(now by the clock, the chat's latest message) + n microseconds, so messages keep the order they were
# added in even within one transaction, and after the chat's earlier ones even if the clock stepped back.
# The latest message is one step down ix_messages_chat_id_created_at.
_INSERT_MESSAGES = text(
    """
    INSERT INTO messaging.messages (chat_id, role, content, metadata, created_at, updated_at)
    SELECT c.id, m.item ->> 'role', m.item ->> 'content', m.item -> 'metadata',
           t.at + m.n * interval '1 microsecond', t.at + m.n * interval '1 microsecond'
    FROM messaging.chats AS c
    CROSS JOIN LATERAL (
        SELECT greatest(clock_timestamp(), (SELECT max(created_at) FROM messaging.messages WHERE chat_id = c.id)) AS at
    ) AS t
    CROSS JOIN LATERAL jsonb_array_elements(CAST(:items AS jsonb)) WITH ORDINALITY AS m(item, n)
    WHERE c.id = :chat_id
    ORDER BY m.n
    FOR KEY SHARE OF c
    RETURNING messaging.messages.*
    """
).bindparams(bindparam("items", type_=JSONB), bindparam("chat_id", type_=PgUUID(as_uuid=True)))


@functools.cache
def _newest_messages() -> direct.Statement[Message]:
    mapper = inspect(Message)
    query = (
        select(*direct.columns(mapper))
        .where(Message.chat_id == bindparam("chat_id"))
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(bindparam("limit"))
    )
    return direct.compile_statement(mapper, query)


# --- chats -------------------------------------------------------------------------------------------


async def create_chat(
    session: AsyncSession,
    chat: ChatInput | None = None,
    *,
    title: str | None = _UNSET,
    metadata: Mapping[str, Any] | None = _UNSET,
) -> Chat:
    """Store a new chat and return it (committed, unless the caller owns the transaction).

    `create_chat(session, Chat(title=...))`, `create_chat(session, ChatCreate(...))`,
    `create_chat(session, {"title": ...})` or `create_chat(session, title=..., metadata=...)`; a Chat object
    given is the one stored and returned."""
    keywords = {name: value for name, value in (("title", title), ("metadata", metadata)) if value is not _UNSET}
    if chat is not None and keywords:
        raise InvalidInput("chat", "pass the chat or title=/metadata= keywords, not both")
    if keywords.get("metadata", _UNSET) is None:
        del keywords["metadata"]  # the keyword form has always read metadata=None as "none given"
    checked = common.creation(chat if chat is not None else keywords, ChatCreate, Chat, what="chat")
    async with sessions.write(session):
        if isinstance(chat, Chat):
            for name, value in common.attributes(checked).items():
                setattr(chat, name, value)
            session.add(chat)
            await session.flush()  # eager_defaults: one INSERT ... RETURNING fills id and timestamps
            return chat
        query = insert(Chat).values(**common.attributes(checked)).returning(Chat)
        return (await session.scalars(query)).one()


async def get_chat(session: AsyncSession, chat_id: uuid.UUID | str) -> Chat | None:
    row_id = common.identifier(chat_id, "chat_id")
    if direct.usable(session, write=False):
        return await direct.get_one(session, Chat, row_id)
    return await session.get(Chat, row_id)


async def update_chat(
    session: AsyncSession, chat_id: uuid.UUID | str, updates: ChatUpdate | Mapping[str, Any]
) -> Chat | None:
    """Change only the fields given, in one `UPDATE ... RETURNING`; None when no chat has that id."""
    row_id = common.identifier(chat_id, "chat_id")
    values = common.changes(updates, ChatUpdate, what="chat")
    async with sessions.write(session):
        query = update(Chat).where(Chat.id == row_id).values(**values).returning(Chat)
        # populate_existing: the session may already hold this row; show the new values.
        result = await session.scalars(
            query, execution_options={"synchronize_session": False, "populate_existing": True}
        )
        return result.one_or_none()


async def delete_chat(session: AsyncSession, chat_id: uuid.UUID | str) -> bool:
    """True when a chat was deleted; its messages go with it, its todos, executions and Telegram
    sessions stay with chat_id NULL (the foreign keys' ON DELETE rules)."""
    row_id = common.identifier(chat_id, "chat_id")
    async with sessions.write(session):
        result = await session.execute(delete(Chat).where(Chat.id == row_id).returning(Chat.id))
        return result.first() is not None


async def list_chats(session: AsyncSession, *, after: str | None = None, limit: int = 50) -> Page[Chat]:
    """A page of chats, newest first (ix_chats_created_at); pass `next_cursor` back as `after`."""
    return await search_chats(session, None, after=after, limit=limit)


async def search_chats(
    session: AsyncSession,
    search: ChatSearch | Mapping[str, Any] | None = None,
    *,
    after: str | None = None,
    limit: int = 50,
) -> Page[Chat]:
    """A page of the chats matching every filter of `search`, newest first (keyset pagination)."""
    filters = common.search(search, ChatSearch, what="search")
    query = select(Chat).order_by(*_CHATS_NEWEST_FIRST).limit(check_limit(limit) + 1)
    if filters.title is not None:
        query = query.where(contains_text(Chat.title, filters.title))
    if filters.created_after is not None:
        query = query.where(Chat.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Chat.created_at < filters.created_before)
    if filters.metadata is not None:
        query = query.where(Chat.metadata_.contains(filters.metadata))
    if after is not None:
        created_at, row_id = decode_cursor(after)
        query = query.where(tuple_(Chat.created_at, Chat.id) < tuple_(created_at, row_id))
    return page_of(list((await session.scalars(query)).all()), limit)


# --- messages ----------------------------------------------------------------------------------------


def _message_body(item: object, what: str, chat_id: uuid.UUID | None) -> tuple[uuid.UUID | None, MessageBody]:
    """The chat an item names (if it names one) and its checked body; a chat_id that contradicts the
    call's is an error."""
    named: object = None
    if isinstance(item, Message):
        named = inspect(item).dict.get("chat_id")
        body = common.creation(item, MessageBody, Message, what=what, ignore={"chat_id"})
    else:
        if isinstance(item, BaseModel):
            fields: Any = item.model_dump(exclude_unset=True)
        elif isinstance(item, Mapping):
            fields = dict(item)
        else:
            raise InvalidInput(
                what, f"expected a Message, a MessageCreate, a MessageBody or a mapping, not {type(item).__name__}"
            )
        named = fields.pop("chat_id", None)
        body = common.creation(fields, MessageBody, Message, what=what)
    named_id = None if named is None else common.identifier(named, f"{what}.chat_id")
    if chat_id is not None and named_id is not None and named_id != chat_id:
        raise InvalidInput(f"{what}.chat_id", f"is {named_id}, but the messages are being added to chat {chat_id}")
    return named_id, body


async def _insert_messages(
    session: AsyncSession, chat_id: uuid.UUID, bodies: Sequence[MessageBody], *, field: str
) -> list[Message]:
    items = [body.model_dump(mode="json") for body in bodies]
    async with sessions.write(session, fields={chat_id: field}):
        query = select(Message).from_statement(_INSERT_MESSAGES)
        stored = list((await session.scalars(query, {"items": items, "chat_id": chat_id})).all())
    if not stored:
        # Raised after the write, not inside it: nothing was inserted, so there is nothing to roll back,
        # and a rollback would expire every object the caller holds from this session.
        raise NotFound("chat", chat_id, field=field)
    return sorted(stored, key=lambda m: (m.created_at, m.id))


@overload
async def add_message(session: AsyncSession, message: Message | MessageCreate | Mapping[str, Any], /) -> Message: ...
@overload
async def add_message(
    session: AsyncSession, chat_id: uuid.UUID | str, message: MessageBody | Mapping[str, Any], /
) -> Message: ...
@overload
async def add_message(
    session: AsyncSession,
    chat_id: uuid.UUID | str,
    role: MessageRole | str,
    content: str,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Message: ...


async def add_message(
    session: AsyncSession,
    chat_id: Any,
    role: Any = None,
    content: Any = None,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Message:
    """Append a message to a chat, in one statement; NotFound (a LookupError) when the chat does not
    exist, without aborting the caller's transaction.

    `add_message(session, chat_id, "user", "Hello", metadata={...})`, `add_message(session, chat_id, body)`
    with a MessageBody or mapping, or `add_message(session, message)` with a Message object, a
    MessageCreate or a mapping that has chat_id. A Message object given is the one stored and returned.
    """
    if isinstance(chat_id, uuid.UUID | str):
        chat = common.identifier(chat_id, "message.chat_id")
        if isinstance(role, BaseModel | Mapping) and content is None and metadata is None:
            _, body = _message_body(role, "message", chat)
        else:
            if role is None or content is None:
                raise InvalidInput("message", "give the role and the content (or one MessageBody)")
            fields = {"role": role, "content": content}
            if metadata is not None:
                fields["metadata"] = metadata
            body = common.creation(fields, MessageBody, Message, what="message")
        return (await _insert_messages(session, chat, [body], field="message.chat_id"))[0]
    if role is not None or content is not None or metadata is not None:
        raise InvalidInput("message", "pass a message object alone, or chat_id, role and content")
    named, body = _message_body(chat_id, "message", None)
    if named is None:
        raise InvalidInput("message.chat_id", "is required")
    stored = (await _insert_messages(session, named, [body], field="message.chat_id"))[0]
    return adopt(session, chat_id, stored) if isinstance(chat_id, Message) else stored


async def add_messages(
    session: AsyncSession, chat_id: uuid.UUID | str, messages: Iterable[MessageInput]
) -> list[Message]:
    """Append many messages to one chat in one statement (one round trip), in the order given; all or
    none. Errors name the item (`messages[2].role: ...`); NotFound (a LookupError) when the chat does not
    exist. Message objects given are the ones stored and returned."""
    chat = common.identifier(chat_id, "chat_id")
    given: list[object] = list(messages)
    bodies: list[MessageBody] = []
    problems: list[InvalidInput] = []
    for index, item in enumerate(given):
        try:
            bodies.append(_message_body(item, f"messages[{index}]", chat)[1])
        except InvalidInput as exc:
            problems.extend(exc.errors)
    if problems:
        raise InvalidInput.combine(problems)
    if not bodies:
        return []
    stored = await _insert_messages(session, chat, bodies, field="chat_id")
    return [
        adopt(session, item, row) if isinstance(item, Message) else row for item, row in zip(given, stored, strict=True)
    ]


async def list_messages(
    session: AsyncSession, chat_id: uuid.UUID | str, *, after: str | None = None, limit: int = 50
) -> Page[Message]:
    """A chat's messages in the order they were added, a page at a time (ix_messages_chat_id_created_at)."""
    search = MessageSearch(chat_id=common.identifier(chat_id, "chat_id"))
    return await search_messages(session, search, after=after, limit=limit)


async def search_messages(
    session: AsyncSession,
    search: MessageSearch | Mapping[str, Any] | None = None,
    *,
    after: str | None = None,
    limit: int = 50,
) -> Page[Message]:
    """A page of the messages matching every filter of `search`, in time order (keyset pagination)."""
    filters = common.search(search, MessageSearch, what="search")
    query = select(Message).order_by(*_MESSAGES_IN_TIME_ORDER).limit(check_limit(limit) + 1)
    if filters.chat_id is not None:
        query = query.where(Message.chat_id == filters.chat_id)
    if filters.roles is not None:
        query = query.where(Message.role.in_(sorted(filters.roles)))
    if filters.text is not None:
        query = query.where(contains_text(Message.content, filters.text))
    if filters.created_after is not None:
        query = query.where(Message.created_at > filters.created_after)
    if filters.created_before is not None:
        query = query.where(Message.created_at < filters.created_before)
    if after is not None:
        created_at, row_id = decode_cursor(after)
        query = query.where(tuple_(Message.created_at, Message.id) > tuple_(created_at, row_id))
    return page_of(list((await session.scalars(query)).all()), limit)


async def get_recent_messages(session: AsyncSession, chat_id: uuid.UUID | str, *, limit: int = 20) -> list[Message]:
    """A chat's last `limit` messages (1 to 1000), in the order they were added; empty when the chat has
    none or does not exist. One query, one step down ix_messages_chat_id_created_at."""
    row_id = common.identifier(chat_id, "chat_id")
    wanted = check_limit(limit)
    if direct.usable(session, write=False):
        messages = await direct.fetch(session, _newest_messages(), {"chat_id": row_id, "limit": wanted})
    else:
        newest = (
            select(Message)
            .where(Message.chat_id == row_id)
            .order_by(Message.created_at.desc(), Message.id.desc())
            .limit(wanted)
        )
        messages = list((await session.scalars(newest)).all())
    messages.reverse()
    return messages


async def get_chat_with_recent_messages(
    session: AsyncSession, chat_id: uuid.UUID | str, *, recent: int = 20
) -> Chat | None:
    """The chat with `chat.messages` holding its last `recent` messages in time order: two queries in all,
    however many messages there are (no query per message, no lazy load)."""
    row_id = common.identifier(chat_id, "chat_id")
    check_limit(recent)
    chat = await get_chat(session, row_id)
    if chat is None:
        return None
    set_committed_value(chat, "messages", await get_recent_messages(session, row_id, limit=recent))
    return chat


__all__ = [
    "ChatInput",
    "MessageInput",
    "add_message",
    "add_messages",
    "create_chat",
    "delete_chat",
    "get_chat",
    "get_chat_with_recent_messages",
    "get_recent_messages",
    "list_chats",
    "list_messages",
    "search_chats",
    "search_messages",
    "update_chat",
]
