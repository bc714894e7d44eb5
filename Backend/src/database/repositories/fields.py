"""Checking what callers ask to write, before any SQL is built from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

READ_ONLY = frozenset({"id", "created_at", "updated_at"})

MAX_LENGTHS = {"todo.title": 500, "chat.title": 500}
"""Text fields with a length CHECK in the migrations (ck_todos_title_length, ck_chats_title_length): checked
here first so that an oversized value is a ValueError naming the field, not a constraint violation that
aborts the caller's transaction."""


def no_nul(name: str, value: str) -> str:
    """PostgreSQL text cannot hold U+0000; say so instead of letting the server refuse the encoding."""
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character (U+0000), which PostgreSQL text cannot store")
    return value


def checked_text(name: str, value: str) -> str:
    """No NUL, and within the field's length limit, if it has one."""
    no_nul(name, value)
    limit = MAX_LENGTHS.get(name)
    if limit is not None and len(value) > limit:
        raise ValueError(f"{name} is {len(value)} characters long; at most {limit} are allowed")
    return value


def checked_json(name: str, value: Any) -> Any:
    """PostgreSQL jsonb cannot hold U+0000 in any string or key either; find it and name where it is."""

    def walk(item: Any, where: str) -> None:
        if isinstance(item, str):
            if "\x00" in item:
                raise ValueError(f"{where} contains a NUL character (U+0000), which PostgreSQL jsonb cannot store")
        elif isinstance(item, Mapping):
            for key, inner in item.items():
                walk(key, f"{where} key {str(key)[:40]!r}")
                walk(inner, f"{where}[{str(key)[:40]!r}]")
        elif isinstance(item, list | tuple):
            for index, inner in enumerate(item):
                walk(inner, f"{where}[{index}]")

    walk(value, name)
    return value


def checked_updates(updates: Mapping[str, Any], writable: Iterable[str], *, what: str) -> dict[str, Any]:
    """`updates` as column attribute names, refusing unknown and read-only fields by name.

    The JSON column is written as `metadata` by callers and mapped to the `metadata_` attribute.
    """
    allowed = set(writable)
    values: dict[str, Any] = {}
    for name, value in updates.items():
        if name in READ_ONLY:
            raise ValueError(f"{what}.{name} is read-only")
        if name not in allowed:
            raise ValueError(
                f"{what} has no field {name!r} that can be updated; writable: {', '.join(sorted(allowed))}"
            )
        if isinstance(value, str):
            checked_text(f"{what}.{name}", value)
        elif isinstance(value, Mapping | list | tuple):
            checked_json(f"{what}.{name}", value)
        values["metadata_" if name == "metadata" else name] = value
    if not values:
        raise ValueError(f"no fields to update for {what}")
    return values
