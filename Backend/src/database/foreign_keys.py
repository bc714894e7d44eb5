"""Foreign-key violations, named: the reference a write made to a row that does not exist, as NotFound.

The repositories check references before they write (and lock what they found, so it cannot go away
before the write), so this is the safety net: a row the caller added to the session by hand and a write
flushed, or a reference no check covers. `FOREIGN_KEYS` names every foreign key of the schema (a test
holds it to the live catalog).
"""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass

import asyncpg

from src.database.errors import NotFound


@dataclass(frozen=True)
class ForeignKey:
    field: str
    """The field a caller writes, as errors name it (`todo.chat_id`)."""
    entity: str
    """What it refers to (`chat`)."""


FOREIGN_KEYS = {
    "fk_todos_chat_id_chats": ForeignKey("todo.chat_id", "chat"),
    "fk_messages_chat_id_chats": ForeignKey("message.chat_id", "chat"),
    "fk_executions_chat_id_chats": ForeignKey("execution.chat_id", "chat"),
    "fk_sessions_chat_id_chats": ForeignKey("telegram_session.chat_id", "chat"),
}

# PostgreSQL's DETAIL of a violation on the referencing side; the other side (a delete of a row still
# referred to) says "is still referenced from table" and is left alone.
_MISSING = re.compile(r'^Key \((?P<columns>[^)]*)\)=\((?P<key>.*)\) is not present in table "(?P<table>[^"]+)"\.?$')


def _chain(exc: BaseException) -> Iterator[BaseException]:
    seen: set[int] = set()
    todo: list[BaseException | None] = [exc]
    while todo:
        current = todo.pop()
        if current is None or id(current) in seen:
            continue
        seen.add(id(current))
        yield current
        todo += [getattr(current, "orig", None), current.__cause__, current.__context__]


def _key(text: str) -> object:
    try:
        return uuid.UUID(text)
    except ValueError:
        return text


def missing_reference(
    exc: BaseException, *, fields: Mapping[object, str] | None = None, note: str | None = None
) -> NotFound | None:
    """The NotFound for `exc` when it is (or was caused by) a foreign-key violation of a row referring
    to one that does not exist; None otherwise. `fields` names the field per key where one call writes
    many rows (`todos[3].chat_id`)."""
    for candidate in _chain(exc):
        if not isinstance(candidate, asyncpg.ForeignKeyViolationError):
            continue
        found = _MISSING.match(str(getattr(candidate, "detail", "") or ""))
        if found is None:
            return None
        key = _key(found["key"])
        known = FOREIGN_KEYS.get(str(getattr(candidate, "constraint_name", "") or ""))
        entity = known.entity if known is not None else found["table"].removesuffix("s")
        field = (fields or {}).get(key) or (known.field if known is not None else found["columns"])
        return NotFound(entity, key, field=field, note=note)
    return None


__all__ = ["FOREIGN_KEYS", "ForeignKey", "missing_reference"]
