"""ORM objects a caller passed in, made into the rows a statement stored."""

from __future__ import annotations

from typing import Any, TypeVar

from sqlalchemy import inspect
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import make_transient_to_detached
from sqlalchemy.orm.attributes import set_committed_value

T = TypeVar("T")


def adopt(session: AsyncSession, given: T, stored: Any) -> T:
    """Make the caller's new ORM object `given` the row `stored` (what `session.add` and a flush would
    have made of it) without another statement: it takes the row's values and replaces `stored` in the
    session. `stored` must be an object nobody else holds (one the statement just loaded)."""
    session.expunge(stored)
    for column in inspect(type(given)).column_attrs:
        set_committed_value(given, column.key, getattr(stored, column.key))
    make_transient_to_detached(given)
    session.add(given)
    return given
