"""The declarative base every model shares, and the column types they have in common.

Constraint names follow the same convention as the SQL migrations (pk_chats, fk_messages_chat_id_chats,
uq_sessions_telegram_chat_id, ck_todos_status), so the models and the live schema compare equal.
"""

from __future__ import annotations

import enum
import uuid
from datetime import datetime
from typing import Any, TypeVar

from sqlalchemy import DateTime, FetchedValue, MetaData, Text, func, text
from sqlalchemy.dialects.postgresql import JSONB, UUID
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

NAMING_CONVENTION = {
    "pk": "pk_%(table_name)s",
    "fk": "fk_%(table_name)s_%(column_0_N_name)s_%(referred_table_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING_CONVENTION)

    def __init__(self, **kwargs: Any) -> None:
        # The JSON column is `metadata` in SQL, in the pydantic models and in the spec, but SQLAlchemy owns
        # that name on the class, so the attribute is `metadata_`; accept both spellings here.
        if "metadata" in kwargs:
            if "metadata_" in kwargs:
                raise TypeError("pass metadata or metadata_, not both")
            kwargs["metadata_"] = kwargs.pop("metadata")
        cls = type(self)
        for key in kwargs:
            if not hasattr(cls, key):
                raise TypeError(f"{key!r} is not a field of {cls.__name__}")
        for key, value in kwargs.items():
            setattr(self, key, value)


E = TypeVar("E", bound=enum.StrEnum)


class StrEnumText(TypeDecorator[E]):
    """A str enum stored as `text` (the migrations hold the allowed values with a CHECK constraint),
    read back as the enum member."""

    impl = Text
    cache_ok = True

    def __init__(self, enum_class: type[E]) -> None:
        super().__init__()
        self.enum_class = enum_class

    def process_bind_param(self, value: E | str | None, dialect: Dialect) -> str | None:
        return None if value is None else self.enum_class(value).value

    def process_result_value(self, value: str | None, dialect: Dialect) -> E | None:
        if value is None:
            return None
        # The member by a dict lookup: calling the enum class costs ~10x more, once per row read.
        member: E | None = self.enum_class._value2member_map_.get(value)  # type: ignore[assignment]
        return member if member is not None else self.enum_class(value)


class Timestamped:
    """id, created_at, updated_at and metadata: the columns every table has.

    updated_at is kept by the database (a BEFORE UPDATE trigger); the ORM reads it back after each UPDATE.
    """

    id: Mapped[uuid.UUID] = mapped_column(
        UUID(as_uuid=True), primary_key=True, server_default=text("gen_random_uuid()")
    )
    created_at: Mapped[datetime] = mapped_column(DateTime(timezone=True), server_default=func.now())
    updated_at: Mapped[datetime] = mapped_column(
        DateTime(timezone=True), server_default=func.now(), server_onupdate=FetchedValue()
    )
    # `metadata` is SQLAlchemy's own attribute on declarative classes; the column keeps its SQL name.
    metadata_: Mapped[dict[str, Any]] = mapped_column("metadata", JSONB, server_default=text("'{}'::jsonb"))

    __mapper_args__ = {"eager_defaults": True}  # noqa: RUF012 - SQLAlchemy reads it as a plain dict
