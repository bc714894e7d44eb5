"""agents: one execution per agent run."""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import CheckConstraint, DateTime, ForeignKey, Index, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.database.models.base import Base, StrEnumText, Timestamped

if TYPE_CHECKING:
    from src.database.models.messaging import Chat


class ExecutionStatus(enum.StrEnum):
    PENDING = "pending"
    RUNNING = "running"
    SUCCEEDED = "succeeded"
    FAILED = "failed"
    CANCELLED = "cancelled"


class Execution(Timestamped, Base):
    __tablename__ = "executions"
    __table_args__ = (
        CheckConstraint("btrim(agent_name) <> ''", name="agent_name_not_blank"),
        CheckConstraint("status IN ('pending', 'running', 'succeeded', 'failed', 'cancelled')", name="status"),
        CheckConstraint("finished_at IS NULL OR finished_at >= started_at", name="finished_after_start"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata_is_object"),
        Index("ix_executions_status_started_at", "status", text("started_at DESC"), text("id DESC")),
        Index("ix_executions_chat_id", "chat_id", postgresql_where=text("chat_id IS NOT NULL")),
        Index(
            "ix_executions_metadata", "metadata", postgresql_using="gin", postgresql_ops={"metadata": "jsonb_path_ops"}
        ),
        {"schema": "agents", "comment": "One run of an agent: its input, output or error, and timing."},
    )

    agent_name: Mapped[str] = mapped_column(Text)
    status: Mapped[ExecutionStatus] = mapped_column(
        StrEnumText(ExecutionStatus),
        server_default=text("'pending'::text"),
        comment="pending, running, succeeded, failed or cancelled.",
    )
    input: Mapped[Any] = mapped_column(JSONB, server_default=text("'{}'::jsonb"))
    # none_as_null: Python None is SQL NULL ("no output yet"), not the JSON value null.
    output: Mapped[Any | None] = mapped_column(
        JSONB(none_as_null=True), comment="The result of a successful run; NULL until it finishes."
    )
    error: Mapped[str | None] = mapped_column(Text, comment="Why the run failed; NULL unless it failed.")
    chat_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("messaging.chats.id", ondelete="SET NULL"))
    started_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    finished_at: Mapped[datetime | None] = mapped_column(DateTime(timezone=True))

    chat: Mapped[Chat | None] = relationship(back_populates="executions", lazy="raise")
