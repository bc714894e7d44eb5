"""telegram.sessions as pydantic models: the rules of 007_telegram_sessions.sql, checked before any SQL is sent."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Annotated, Any, ClassVar

from pydantic import AfterValidator, AliasChoices, Field, Strict

from src.database.errors import InvalidInput
from src.database.schemas.common import CreateModel, JsonObject, ReadModel, Timestamp, UpdateModel

BIGINT_MIN, BIGINT_MAX = -(2**63), 2**63 - 1
_RANGE = f"a whole number from {BIGINT_MIN} to {BIGINT_MAX} (PostgreSQL bigint)"


def _in_bigint_range(value: int) -> int:
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise ValueError(f"is out of range: must be {_RANGE}")
    return value


BigInt = Annotated[int, Strict(), AfterValidator(_in_bigint_range)]
"""Telegram's 64-bit ids: a whole number (not "42" or True) that fits a bigint column."""


def telegram_id(value: object, field: str) -> int:
    """`value` as a Telegram id, or an InvalidInput naming `field` and the range (for lookups by id,
    where an out-of-range int would otherwise fail inside the driver)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise InvalidInput(field, f"is a {type(value).__name__}, not an int", allowed=_RANGE)
    if not BIGINT_MIN <= value <= BIGINT_MAX:
        raise InvalidInput(field, "is out of range", allowed=_RANGE)
    return value


class TelegramSessionCreate(CreateModel):
    """A Telegram chat's session as `upsert_session` takes it: the two ids are required; of the others,
    only the fields set are written when the session already exists (unset ones keep their values; on
    INSERT they take the defaults: no chat link, state {}, never expires, metadata {})."""

    telegram_chat_id: BigInt
    telegram_user_id: BigInt
    chat_id: uuid.UUID | None = None
    """The messaging chat of this conversation; it must exist (else LookupError). None unlinks it."""
    state: JsonObject = Field(default_factory=dict)
    expires_at: Timestamp | None = None
    """When the session lapses (timezone-aware); None for never."""
    metadata: JsonObject = Field(default_factory=dict)


class TelegramSessionUpdate(UpdateModel):
    """The fields of a stored session to change (`update_session`); those not set stay as they are.
    `chat_id=None` unlinks the chat, `expires_at=None` makes it never expire."""

    telegram_user_id: BigInt | None = None
    chat_id: uuid.UUID | None = None
    state: JsonObject | None = None
    expires_at: Timestamp | None = None
    metadata: JsonObject | None = None

    not_null: ClassVar[frozenset[str]] = frozenset({"telegram_user_id", "state", "metadata"})


class TelegramSessionRead(ReadModel):
    """A stored session, e.g. as a FastAPI response body: `TelegramSessionRead.model_validate(s)`."""

    id: uuid.UUID
    telegram_chat_id: int
    telegram_user_id: int
    chat_id: uuid.UUID | None
    state: dict[str, Any]
    expires_at: datetime | None
    created_at: datetime
    updated_at: datetime
    metadata: dict[str, Any] = Field(validation_alias=AliasChoices("metadata_", "metadata"))


__all__ = [
    "BIGINT_MAX",
    "BIGINT_MIN",
    "BigInt",
    "TelegramSessionCreate",
    "TelegramSessionRead",
    "TelegramSessionUpdate",
    "telegram_id",
]
