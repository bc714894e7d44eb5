"""What every domain's pydantic models share: field types that carry the SQL's rules, and the two
functions repositories use to turn what a caller passed (an ORM object, a pydantic model or a mapping)
into checked values before any SQL is built.

The rules here are the migrations' rules (NOT NULL, length and CHECK constraints, JSON shapes), written
once more in Python so that a bad value is a `ValueError` naming the field, raised before anything reaches
the server, instead of an `IntegrityError` that aborts the caller's transaction. A test generates values on
both sides of each rule and holds the two to the same verdict.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import AfterValidator, AwareDatetime, BaseModel, ConfigDict, StringConstraints, ValidationError
from sqlalchemy import inspect

from src.database.errors import InvalidInput

READ_ONLY = frozenset({"id", "created_at", "updated_at"})
"""Columns the database fills in; a caller never writes them."""


def _no_nul(value: str) -> str:
    # PostgreSQL text cannot hold U+0000; the server would refuse the whole statement.
    if "\x00" in value:
        raise ValueError("contains a NUL character (U+0000), which PostgreSQL text cannot store")
    return value


def _not_blank(value: str) -> str:
    # The SQL says btrim(x) <> '': btrim trims spaces only, so a tab or newline is not blank there either.
    if value.strip(" ") == "":
        raise ValueError("must not be empty or only spaces")
    return value


def _json_value(value: Any, where: str = "") -> None:
    """What jsonb can hold: objects with string keys, arrays, strings without NUL, finite numbers, booleans
    and null. Anything else (a datetime, a set, NaN) would fail in the driver or on the server."""
    if value is None or isinstance(value, bool | int):
        return
    if isinstance(value, float):
        if not math.isfinite(value):
            raise ValueError(f"{where or 'value'} is {value}, which JSON cannot hold")
        return
    if isinstance(value, str):
        if "\x00" in value:
            raise ValueError(f"{where or 'value'} contains a NUL character (U+0000), which jsonb cannot store")
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where or 'object'} has a key {key!r} that is not a string")
            if "\x00" in key:
                raise ValueError(f"{where or 'object'} has a key containing a NUL character (U+0000)")
            _json_value(inner, f"{where}[{key[:40]!r}]")
        return
    if isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _json_value(inner, f"{where}[{index}]")
        return
    raise ValueError(f"{where or 'value'} is a {type(value).__name__}, which JSON cannot hold")


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    _json_value(value)
    return value


def _json_any(value: Any) -> Any:
    _json_value(value)
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Text without NUL characters (any length)."""
JsonObject = Annotated[dict[str, Any], AfterValidator(_json_object)]
"""A JSON object (the `jsonb_typeof(x) = 'object'` CHECKs) that jsonb can store."""
JsonValue = Annotated[Any, AfterValidator(_json_any)]
"""Any JSON value jsonb can store."""
NonBlankText = Annotated[str, AfterValidator(_not_blank), AfterValidator(_no_nul)]
"""Text that is not empty or only spaces (the `btrim(x) <> ''` CHECKs)."""
Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
"""Text of at most 500 characters (the `char_length(x) <= 500` CHECKs; both count characters)."""
Title = Annotated[str, StringConstraints(max_length=500), AfterValidator(_not_blank), AfterValidator(_no_nul)]
"""A required title: not blank, at most 500 characters."""
Timestamp = AwareDatetime
"""A timezone-aware datetime: a naive one would be read in the server's time zone, silently."""


class CreateModel(BaseModel):
    """Base of the `XCreate` models: unknown fields are an error, not silently dropped."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


class UpdateModel(BaseModel):
    """Base of the `XUpdate` models: every field optional; only the fields set are written."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)

    not_null: ClassVar[frozenset[str]] = frozenset()
    """Fields whose column is NOT NULL: an explicit None for them is refused."""


class ReadModel(BaseModel):
    """Base of the read models, built from ORM objects with `model_validate(obj)`."""

    model_config = ConfigDict(from_attributes=True)


class SearchModel(BaseModel):
    """Base of the `XSearch` models: filters, all optional, combined with AND."""

    model_config = ConfigDict(extra="forbid", hide_input_in_errors=True)


C = TypeVar("C", bound=CreateModel)
U = TypeVar("U", bound=UpdateModel)
S = TypeVar("S", bound=SearchModel)

ATTRIBUTE_NAMES = {"metadata": "metadata_"}
"""Field name -> ORM attribute name where they differ (`metadata` is SQLAlchemy's own class attribute)."""
FIELD_NAMES = {attribute: field for field, attribute in ATTRIBUTE_NAMES.items()}


def invalid(exc: ValidationError, what: str) -> InvalidInput:
    """A pydantic ValidationError as one InvalidInput naming each field (`todo.priority`) and what is
    allowed; never the rejected value (it may be personal data)."""
    found = []
    for error in exc.errors(include_input=False, include_url=False):
        location = ".".join(str(part) for part in error["loc"])
        field = f"{what}.{location}" if location else what
        kind = error["type"]
        if kind == "extra_forbidden":
            found.append(InvalidInput(field, "is not a field", allowed=None))
            continue
        if kind == "missing":
            found.append(InvalidInput(field, "is required"))
            continue
        message = str(error["msg"])
        if message.startswith("Value error, "):
            message = message.removeprefix("Value error, ")
        found.append(InvalidInput(field, message[0].lower() + message[1:] if message else kind))
    return InvalidInput.combine(found)


def _allowed_fields(model: type[BaseModel]) -> str:
    return ", ".join(sorted(model.model_fields))


def _from_orm(obj: Any, model: type[BaseModel]) -> dict[str, Any]:
    """The attributes a caller set on a new ORM object (unset ones are left to the database's defaults)."""
    state = inspect(obj)
    if state.persistent or state.deleted:
        raise InvalidInput(type(obj).__name__.lower(), "is already stored; pass a new object, or use an update")
    values = {}
    for field in model.model_fields:
        attribute = ATTRIBUTE_NAMES.get(field, field)
        if attribute in state.dict:
            values[field] = state.dict[attribute]
    return values


def creation(data: object, model: type[C], orm_class: type[Any], *, what: str) -> C:
    """`data` (an `orm_class` instance, a pydantic model or a mapping) checked against `model`.

    Unknown fields and read-only ones (id, created_at, updated_at) are errors naming the writable fields.
    """
    if isinstance(data, orm_class):
        fields = _from_orm(data, model)
    elif isinstance(data, BaseModel):
        fields = data.model_dump(exclude_unset=True)
    elif isinstance(data, Mapping):
        fields = dict(data)
    else:
        raise InvalidInput(
            what,
            f"expected a {orm_class.__name__}, a {model.__name__} or a mapping, not {type(data).__name__}",
        )
    for name in fields:
        if name in READ_ONLY:
            raise InvalidInput(f"{what}.{name}", "is set by the database", allowed=_allowed_fields(model))
        if name not in model.model_fields:
            raise InvalidInput(f"{what}.{name}", "is not a field", allowed=_allowed_fields(model))
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise invalid(exc, what) from None


def changes(data: object, model: type[U], *, what: str) -> dict[str, Any]:
    """The fields `data` (a pydantic model or a mapping) sets, checked against `model`, as ORM attribute
    names; only the fields given are returned (an explicit None is kept: it clears the column)."""
    if isinstance(data, BaseModel):
        fields = data.model_dump(exclude_unset=True)
    elif isinstance(data, Mapping):
        fields = dict(data)
    else:
        raise InvalidInput(what, f"expected a {model.__name__} or a mapping of fields, not {type(data).__name__}")
    for name in fields:
        if name in READ_ONLY:
            raise InvalidInput(f"{what}.{name}", "is read-only", allowed=_allowed_fields(model))
        if name not in model.model_fields:
            raise InvalidInput(f"{what}.{name}", "is not a field that can be updated", allowed=_allowed_fields(model))
    try:
        checked = model.model_validate(fields)
    except ValidationError as exc:
        raise invalid(exc, what) from None
    values = checked.model_dump(exclude_unset=True)
    for name, value in values.items():
        if value is None and name in model.not_null:
            raise InvalidInput(f"{what}.{name}", "cannot be null (the column is NOT NULL)")
    if not values:
        raise InvalidInput(what, "no fields to update", allowed=_allowed_fields(model))
    return {ATTRIBUTE_NAMES.get(name, name): value for name, value in values.items()}


def search(data: object, model: type[S], *, what: str) -> S:
    """`data` (a `model`, a mapping, or None for no filter) checked against `model`."""
    if data is None:
        return model()
    if isinstance(data, model):
        return data
    if isinstance(data, BaseModel):
        data = data.model_dump(exclude_unset=True)
    if not isinstance(data, Mapping):
        raise InvalidInput(what, f"expected a {model.__name__} or a mapping of filters, not {type(data).__name__}")
    try:
        return model.model_validate(dict(data))
    except ValidationError as exc:
        raise invalid(exc, what) from None


E = TypeVar("E", bound=Enum)


def member(enum_class: type[E], value: object, field: str) -> E:
    """`value` as a member of `enum_class`; an InvalidInput listing the allowed values otherwise."""
    try:
        return enum_class(value)
    except ValueError:
        allowed = ", ".join(str(m.value) for m in enum_class)
        raise InvalidInput(field, f"{str(value)[:60]!r} is not one of the allowed values", allowed=allowed) from None


def identifier(value: object, field: str) -> UUID:
    """An id as a UUID (a UUID or its text form); an InvalidInput otherwise."""
    if isinstance(value, UUID):
        return value
    if isinstance(value, str):
        try:
            return UUID(value)
        except ValueError:
            pass
    raise InvalidInput(field, "is not a UUID", allowed="a uuid.UUID or its text form")


def attributes(model: BaseModel) -> dict[str, Any]:
    """A checked Create model's fields as ORM constructor arguments (only the fields that were set, so the
    database's defaults apply to the rest)."""
    return {ATTRIBUTE_NAMES.get(k, k): v for k, v in model.model_dump(exclude_unset=True).items()}


__all__ = [
    "READ_ONLY",
    "CreateModel",
    "JsonObject",
    "JsonValue",
    "NonBlankText",
    "ReadModel",
    "SearchModel",
    "Text",
    "Text500",
    "Timestamp",
    "Title",
    "UpdateModel",
    "attributes",
    "changes",
    "creation",
    "identifier",
    "invalid",
    "member",
    "search",
]
