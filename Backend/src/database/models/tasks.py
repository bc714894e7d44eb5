"""tasks: todos."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, SmallInteger, Text, text
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.database.models.base import Base, StrEnumText, Timestamped

if TYPE_CHECKING:
    from src.database.models.messaging import Chat


class TodoStatus(enum.StrEnum):
    PENDING = "pending"
    IN_PROGRESS = "in_progress"
    COMPLETED = "completed"
    CANCELLED = "cancelled"


class Todo(Timestamped, Base):
    __tablename__ = "todos"
    __table_args__ = (
        CheckConstraint("char_length(title) <= 500", name="title_length"),
        CheckConstraint("btrim(title) <> ''", name="title_not_blank"),
        CheckConstraint("status IN ('pending', 'in_progress', 'completed', 'cancelled')", name="status"),
        CheckConstraint("priority BETWEEN 1 AND 5", name="priority"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata_is_object"),
        Index("ix_todos_status_created_at", "status", text("created_at DESC"), text("id DESC")),
        Index("ix_todos_created_at", text("created_at DESC"), text("id DESC")),
        Index("ix_todos_chat_id", "chat_id", postgresql_where=text("chat_id IS NOT NULL")),
        {"schema": "tasks", "comment": "A unit of work an agent or user tracks."},
    )

    title: Mapped[str] = mapped_column(Text)
    description: Mapped[str | None] = mapped_column(Text)
    status: Mapped[TodoStatus] = mapped_column(
        StrEnumText(TodoStatus),
        server_default=text("'pending'::text"),
        comment="pending, in_progress, completed or cancelled.",
    )
    priority: Mapped[int] = mapped_column(
        SmallInteger, server_default=text("3"), comment="1 (highest) to 5 (lowest); 3 by default."
    )
    chat_id: Mapped[uuid.UUID | None] = mapped_column(
        ForeignKey("messaging.chats.id", ondelete="SET NULL"),
        comment="The chat the todo came from, if any; kept as NULL when that chat is deleted.",
    )
    due_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))
    completed_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="When the todo was completed; NULL until then."
    )

    chat: Mapped[Chat | None] = relationship(back_populates="todos", lazy="raise")
