"""Keyset pagination: a page of rows and an opaque cursor for the next one.

A cursor is the (created_at, id) of the last row served, so the next page is one index range scan
however deep it is, where OFFSET would read and discard every earlier row.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

T = TypeVar("T")


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it back as `after=` for the next page; None when this page is the last."""


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise ValueError(f"not a cursor this API returned: {cursor[:40]!r}") from None


def check_limit(limit: int, maximum: int = 1000) -> int:
    if not 1 <= limit <= maximum:
        raise ValueError(f"limit must be from 1 to {maximum}, not {limit}")
    return limit
