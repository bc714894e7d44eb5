"""Keyset pagination: a page of rows and an opaque cursor for the next one.

A cursor is the (created_at, id) of the last row served, so the next page is one index range scan
however deep it is, where OFFSET would read and discard every earlier row.
"""

from __future__ import annotations

import base64
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, Protocol, TypeVar

from src.database.errors import InvalidInput


class _Keyed(Protocol):
    created_at: datetime
    id: uuid.UUID


T = TypeVar("T")
K = TypeVar("K", bound=_Keyed)


@dataclass(frozen=True)
class Page(Generic[T]):
    items: list[T]
    next_cursor: str | None
    """Pass it back as `after=` for the next page; None when this page is the last."""


def encode_cursor(created_at: datetime, row_id: uuid.UUID) -> str:
    return base64.urlsafe_b64encode(f"{created_at.isoformat()}|{row_id}".encode()).decode()


def decode_cursor(cursor: str) -> tuple[datetime, uuid.UUID]:
    if not isinstance(cursor, str):
        raise InvalidInput("after", "is not a cursor this API returned", allowed="a Page.next_cursor")
    try:
        created_at, row_id = base64.urlsafe_b64decode(cursor.encode()).decode().split("|")
        return datetime.fromisoformat(created_at), uuid.UUID(row_id)
    except (ValueError, UnicodeDecodeError):
        raise InvalidInput("after", "is not a cursor this API returned", allowed="a Page.next_cursor") from None


def check_limit(limit: Any, maximum: int = 1000) -> int:
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= maximum:
        raise InvalidInput("limit", f"must be a whole number from 1 to {maximum}, not {str(limit)[:40]}")
    return limit


def page_of(rows: list[K], limit: int) -> Page[K]:
    """The first `limit` of `rows` (fetched with limit + 1) and the cursor after them, if there is more."""
    page, more = rows[:limit], len(rows) > limit
    return Page(page, encode_cursor(page[-1].created_at, page[-1].id) if more else None)
