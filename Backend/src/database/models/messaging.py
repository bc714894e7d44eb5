"""messaging: chats and their messages."""

from __future__ import annotations

import enum
import uuid
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, ForeignKey, Index, Text, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.database.models.base import Base, StrEnumText, Timestamped

if TYPE_CHECKING:
    from src.database.models.agents import Execution
    from src.database.models.tasks import Todo
    from src.database.models.telegram import TelegramSession


class MessageRole(enum.StrEnum):
    USER = "user"
    ASSISTANT = "assistant"
    SYSTEM = "system"
    TOOL = "tool"


class Chat(Timestamped, Base):
    __tablename__ = "chats"
    __table_args__ = (
        CheckConstraint("char_length(title) <= 500", name="title_length"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata_is_object"),
        Index("ix_chats_created_at", text("created_at DESC"), text("id DESC")),
        {"schema": "messaging", "comment": "A conversation between a user and the agents."},
    )

    title: Mapped[str | None] = mapped_column(Text, comment="Optional human-readable title, at most 500 characters.")
    metadata_: Mapped[dict[str, Any]] = mapped_column(
        "metadata",
        JSONB,
        server_default=text("'{}'::jsonb"),
        comment="Free-form JSON object for integrations; never NULL.",
    )

    # lazy="raise": in async code a lazy load is a hidden query that fails; load relations explicitly.
    messages: Mapped[list[Message]] = relationship(
        back_populates="chat", order_by="Message.created_at", lazy="raise", passive_deletes=True
    )
    todos: Mapped[list[Todo]] = relationship(back_populates="chat", lazy="raise", passive_deletes=True)
    executions: Mapped[list[Execution]] = relationship(back_populates="chat", lazy="raise", passive_deletes=True)
    telegram_sessions: Mapped[list[TelegramSession]] = relationship(
        back_populates="chat", lazy="raise", passive_deletes=True
    )


class Message(Timestamped, Base):
    __tablename__ = "messages"
    __table_args__ = (
        CheckConstraint("role IN ('user', 'assistant', 'system', 'tool')", name="role"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata_is_object"),
        Index("ix_messages_chat_id_created_at", "chat_id", "created_at", "id"),
        {"schema": "messaging", "comment": "One turn of a chat, from a user, an assistant, the system or a tool."},
    )

    chat_id: Mapped[uuid.UUID] = mapped_column(ForeignKey("messaging.chats.id", ondelete="CASCADE"))
    role: Mapped[MessageRole] = mapped_column(
        StrEnumText(MessageRole), comment="Who spoke: user, assistant, system or tool."
    )
    content: Mapped[str] = mapped_column(Text, comment="The message text, stored verbatim.")

    chat: Mapped[Chat] = relationship(back_populates="messages", lazy="raise")
