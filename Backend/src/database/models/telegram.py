"""telegram: bot conversation state, one session per Telegram chat."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import TYPE_CHECKING, Any

from sqlalchemy import BigInteger, CheckConstraint, DateTime, ForeignKey, Index, UniqueConstraint, text
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Mapped, mapped_column, relationship

from src.database.models.base import Base, Timestamped

if TYPE_CHECKING:
    from src.database.models.messaging import Chat


class TelegramSession(Timestamped, Base):
    __tablename__ = "sessions"
    __table_args__ = (
        UniqueConstraint("telegram_chat_id"),
        CheckConstraint("jsonb_typeof(state) = 'object'", name="state_is_object"),
        CheckConstraint("jsonb_typeof(metadata) = 'object'", name="metadata_is_object"),
        Index("ix_sessions_telegram_user_id", "telegram_user_id"),
        Index("ix_sessions_expires_at", "expires_at", postgresql_where=text("expires_at IS NOT NULL")),
        Index("ix_sessions_chat_id", "chat_id", postgresql_where=text("chat_id IS NOT NULL")),
        {"schema": "telegram", "comment": "Bot conversation state for one Telegram chat."},
    )

    telegram_user_id: Mapped[int] = mapped_column(BigInteger, comment="Telegram's user id (64-bit).")
    telegram_chat_id: Mapped[int] = mapped_column(
        BigInteger, comment="Telegram's chat id (64-bit, negative for groups); unique."
    )
    chat_id: Mapped[uuid.UUID | None] = mapped_column(ForeignKey("messaging.chats.id", ondelete="SET NULL"))
    state: Mapped[dict[str, Any]] = mapped_column(
        JSONB, server_default=text("'{}'::jsonb"), comment="The bot's conversation state, a JSON object."
    )
    expires_at: Mapped[datetime | None] = mapped_column(
        DateTime(timezone=True), comment="When the session lapses; NULL for never."
    )

    chat: Mapped[Chat | None] = relationship(back_populates="telegram_sessions", lazy="raise")
