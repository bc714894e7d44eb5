"""messaging.chats and messaging.messages."""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from typing import Any

from sqlalchemy import insert, literal, select, tuple_
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm.attributes import set_committed_value

from src.database.models import Chat, Message, MessageRole
from src.database.repositories.fields import checked_json, checked_text, no_nul
from src.database.repositories.paging import Page, check_limit, decode_cursor, encode_cursor


async def create_chat(
    session: AsyncSession, *, title: str | None = None, metadata: Mapping[str, Any] | None = None
) -> Chat:
    values: dict[str, Any] = {"title": checked_text("chat.title", title) if title is not None else None}
    if metadata is not None:
        values["metadata_"] = checked_json("chat.metadata", dict(metadata))
    return (await session.scalars(insert(Chat).values(**values).returning(Chat))).one()


async def add_message(
    session: AsyncSession,
    chat_id: uuid.UUID,
    role: MessageRole | str,
    content: str,
    *,
    metadata: Mapping[str, Any] | None = None,
) -> Message:
    """Append a message to a chat; LookupError when the chat does not exist.

    The insert selects from the chat, so a missing chat inserts nothing instead of raising a foreign-key
    error that would abort the caller's transaction.
    """
    columns = Message.__table__.c
    values = {  # keyed by SQL column name: from_select takes columns, not ORM attributes
        "chat_id": Chat.id,
        "role": literal(MessageRole(role).value, type_=columns.role.type),
        "content": literal(no_nul("message.content", content), type_=columns.content.type),
        "metadata": literal(checked_json("message.metadata", dict(metadata or {})), type_=columns.metadata.type),
    }
    query = (
        insert(Message).from_select(list(values), select(*values.values()).where(Chat.id == chat_id)).returning(Message)
    )
    message = (await session.scalars(query)).one_or_none()
    if message is None:
        raise LookupError(f"chat {chat_id} does not exist")
    return message


async def list_messages(
    session: AsyncSession, chat_id: uuid.UUID, *, after: str | None = None, limit: int = 50
) -> Page[Message]:
    """A chat's messages in time order, a page at a time (served by ix_messages_chat_id_created_at)."""
    query = (
        select(Message)
        .where(Message.chat_id == chat_id)
        .order_by(Message.created_at, Message.id)
        .limit(check_limit(limit) + 1)
    )
    if after is not None:
        created_at, row_id = decode_cursor(after)
        query = query.where(tuple_(Message.created_at, Message.id) > tuple_(created_at, row_id))
    rows = list((await session.scalars(query)).all())
    page, more = rows[:limit], len(rows) > limit
    return Page(page, encode_cursor(page[-1].created_at, page[-1].id) if more else None)


async def get_chat_with_recent_messages(session: AsyncSession, chat_id: uuid.UUID, *, recent: int = 20) -> Chat | None:
    """The chat with `chat.messages` holding its last `recent` messages in time order: two queries in all,
    however many messages there are (no query per message, no lazy load)."""
    chat = await session.get(Chat, chat_id)
    if chat is None:
        return None
    newest = (
        select(Message)
        .where(Message.chat_id == chat_id)
        .order_by(Message.created_at.desc(), Message.id.desc())
        .limit(check_limit(recent))
    )
    messages = list((await session.scalars(newest)).all())
    messages.reverse()
    set_committed_value(chat, "messages", messages)
    return chat
