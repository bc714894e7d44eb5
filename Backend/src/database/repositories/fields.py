"""Checking what callers ask to write, before any SQL is built from it."""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

READ_ONLY = frozenset({"id", "created_at", "updated_at"})


def no_nul(name: str, value: str) -> str:
    """PostgreSQL text cannot hold U+0000; say so instead of letting the server refuse the encoding."""
    if "\x00" in value:
        raise ValueError(f"{name} contains a NUL character (U+0000), which PostgreSQL text cannot store")
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
            no_nul(f"{what}.{name}", value)
        values["metadata_" if name == "metadata" else name] = value
    if not values:
        raise ValueError(f"no fields to update for {what}")
    return values
