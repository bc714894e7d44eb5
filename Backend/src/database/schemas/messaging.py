"""messaging.chats and messaging.messages as pydantic models: the rules of 003_messaging_chats.sql and
004_messaging_messages.sql, checked before any SQL is sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any, ClassVar

from pydantic import AliasChoices, Field

from src.database.models.messaging import MessageRole
from src.database.schemas.common import (
    CreateModel,
    JsonObject,
    ReadModel,
    SearchModel,
    SearchText,
    Text,
    Text500,
    Timestamp,
    UpdateModel,
)


class ChatCreate(CreateModel):
    """A new chat: every field optional."""

    title: Text500 | None = None
    """At most 500 characters (ck_chats_title_length); may be empty or absent."""
    metadata: JsonObject = Field(default_factory=dict)


class ChatUpdate(UpdateModel):
    """The fields to change; those not set stay as they are. `title=None` clears the title."""

    title: Text500 | None = None
    metadata: JsonObject | None = None

    not_null: ClassVar[frozenset[str]] = frozenset({"metadata"})


class ChatSearch(SearchModel):
    """Filters for `search_chats`, combined with AND; every one optional."""

    title: SearchText | None = None
    """Appears in the title."""
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None
    metadata: JsonObject | None = None
    """The chat's metadata contains this object (JSONB `@>`)."""


class ChatRead(ReadModel):
    """A stored chat, e.g. as a FastAPI response body: `ChatRead.model_validate(chat)`."""

    id: uuid.UUID
    title: str | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))


class MessageBody(CreateModel):
    """A message without its chat: the body of `POST /chats/{chat_id}/messages`, and the items of
    `add_messages(session, chat_id, [...])`."""

    role: MessageRole
    """user, assistant, system or tool (ck_messages_role)."""
    content: Text
    """Stored verbatim; may be empty, never NULL."""
    metadata: JsonObject = Field(default_factory=dict)


class MessageCreate(MessageBody):
    """A new message of the chat `chat_id` (which must exist, else LookupError)."""

    chat_id: uuid.UUID


class MessageSearch(SearchModel):
    """Filters for `search_messages`, combined with AND; every one optional."""

    chat_id: uuid.UUID | None = None
    roles: frozenset[MessageRole] | None = None
    """Any of these roles."""
    text: SearchText | None = None
    """Appears in the content."""
    created_after: Timestamp | None = None
    created_before: Timestamp | None = None


class MessageRead(ReadModel):
    """A stored message: `MessageRead.model_validate(message)`."""

    id: uuid.UUID
    chat_id: uuid.UUID
    role: MessageRole
    content: str
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))


class ChatWithMessages(ChatRead):
    """A chat and the messages loaded with it (`get_chat_with_recent_messages`), oldest first."""

    messages: list[MessageRead]


__all__ = [
    "ChatCreate",
    "ChatRead",
    "ChatSearch",
    "ChatUpdate",
    "ChatWithMessages",
    "MessageBody",
    "MessageCreate",
    "MessageRead",
    "MessageSearch",
]
