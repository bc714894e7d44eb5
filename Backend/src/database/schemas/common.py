"""What every domain's pydantic models share: field types that carry the SQL's rules, and the two
functions repositories use to turn what a caller passed (an ORM object, a pydantic model or a mapping)
into checked values before any SQL is built.

The rules here are the migrations' rules (NOT NULL, length and CHECK constraints, JSON shapes), written
once more in Python so that a bad value is a `ValueError` naming the field, raised before anything reaches
the server, instead of an `IntegrityError` that aborts the caller's transaction. A test generates values on
both sides of each rule and holds the two to the same verdict.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Collection, Mapping
from enum import Enum
from typing import Annotated, Any, ClassVar, TypeVar
from uuid import UUID

from pydantic import (
    AfterValidator,
    AwareDatetime,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    StringConstraints,
    ValidationError,
)
from sqlalchemy import inspect

from src.database.errors import InvalidInput

READ_ONLY = frozenset({"id", "created_at", "updated_at"})
"""Columns the database fills in; a caller never writes them."""


_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")
"""U+0000 (PostgreSQL text and jsonb cannot hold it) and lone surrogates (not UTF-8: the driver cannot
encode them); one regex scan finds either, as fast as `in` on long text."""


def _unstorable(value: str) -> str | None:
    found = _UNSTORABLE.search(value)
    if found is None:
        return None
    if found.group() == "\x00":
        return "a NUL character (U+0000), which PostgreSQL text cannot store"
    return f"a lone surrogate (U+{ord(found.group()):04X}), which is not valid UTF-8"


def _no_nul(value: str) -> str:
    problem = _unstorable(value)
    if problem is not None:
        raise ValueError(f"contains {problem}")
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
        problem = _unstorable(value)
        if problem is not None:
            raise ValueError(f"{where or 'value'} contains {problem}")
        return
    if isinstance(value, Mapping):
        for key, inner in value.items():
            if not isinstance(key, str):
                raise ValueError(f"{where or 'object'} has a key {key!r} that is not a string")
            problem = _unstorable(key)
            if problem is not None:
                raise ValueError(f"{where or 'object'} has a key containing {problem}")
            _json_value(inner, f"{where}[{key[:40]!r}]")
        return
    if isinstance(value, list | tuple):
        for index, inner in enumerate(value):
            _json_value(inner, f"{where}[{index}]")
        return
    raise ValueError(f"{where or 'value'} is a {type(value).__name__}, which JSON cannot hold")


def _an_object(value: Any) -> Any:
    # Before pydantic's own dict check, whose "input should be a valid dictionary" names no JSON rule.
    if not isinstance(value, Mapping):
        raise ValueError(f"must be a JSON object (a dict), not {type(value).__name__}")
    return value


def _json_object(value: dict[str, Any]) -> dict[str, Any]:
    _json_value(value)
    return value


def _json_any(value: Any) -> Any:
    _json_value(value)
    return value


def _not_null(value: Any) -> Any:
    # Python None is SQL NULL here (as for the nullable JSON columns); JSON's own null is not stored.
    if value is None:
        raise ValueError("cannot be null (the column is NOT NULL); give {} for none")
    return value


Text = Annotated[str, AfterValidator(_no_nul)]
"""Text without NUL characters (any length)."""
JsonObject = Annotated[dict[str, Any], BeforeValidator(_an_object), AfterValidator(_json_object)]
"""A JSON object (the `jsonb_typeof(x) = 'object'` CHECKs) that jsonb can store."""
JsonValue = Annotated[Any, AfterValidator(_json_any)]
"""Any JSON value jsonb can store; None is SQL NULL."""
JsonNotNull = Annotated[Any, BeforeValidator(_not_null), AfterValidator(_json_any)]
"""Any JSON value jsonb can store, for a NOT NULL column: None (SQL NULL) is refused."""
NonBlankText = Annotated[str, AfterValidator(_not_blank), AfterValidator(_no_nul)]
"""Text that is not empty or only spaces (the `btrim(x) <> ''` CHECKs)."""
Text500 = Annotated[str, StringConstraints(max_length=500), AfterValidator(_no_nul)]
"""Text of at most 500 characters (the `char_length(x) <= 500` CHECKs; both count characters)."""
Title = Annotated[str, StringConstraints(max_length=500), AfterValidator(_not_blank), AfterValidator(_no_nul)]
"""A required title: not blank, at most 500 characters."""
SearchText = Annotated[str, StringConstraints(min_length=1, max_length=200), AfterValidator(_no_nul)]
"""A piece of text to look for (case-insensitive; `%` and `_` are matched literally)."""
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


M = TypeVar("M", bound=BaseModel)
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


def _a(name: str) -> str:
    return f"an {name}" if name[:1] in "AEIOU" else f"a {name}"


def _allowed_fields(model: type[BaseModel]) -> str:
    return ", ".join(sorted(name for name in model.model_fields if name not in READ_ONLY))


def _unknown(field: str, name: str, model: type[BaseModel], problem: str) -> InvalidInput:
    """An unknown field, with the nearest writable name when there is one (`titel` -> did you mean `title`?)."""
    close = difflib.get_close_matches(name, [f for f in model.model_fields if f not in READ_ONLY], n=1)
    if close:
        problem += f"; did you mean {close[0]!r}?"
    return InvalidInput(field, problem, allowed=_allowed_fields(model))


def _from_orm(obj: Any, model: type[BaseModel], what: str, ignore: Collection[str]) -> dict[str, Any]:
    """The attributes a caller set on a new ORM object (unset ones are left to the database's defaults).

    An attribute set that `model` has no field for is an error (it would not be written), unless it is in
    `ignore`: the repository function handles it itself."""
    state = inspect(obj)
    if state.persistent or state.deleted or state.detached:
        raise InvalidInput(what, "is already stored; pass a new object, or use an update")
    values = {}
    relationships = state.mapper.relationships
    for attribute in state.mapper.attrs.keys():  # noqa: SIM118 - attrs is not a dict; keys() lists the mapped names
        if attribute not in state.dict:
            continue
        value = state.dict[attribute]
        field = FIELD_NAMES.get(attribute, attribute)
        if field in READ_ONLY:
            raise InvalidInput(f"{what}.{field}", "is set by the database", allowed=_allowed_fields(model))
        if attribute in relationships:
            raise InvalidInput(f"{what}.{attribute}", f"is not written through the object; set {attribute}_id instead")
        if field in model.model_fields:
            values[field] = value
        elif attribute not in ignore:
            raise _unknown(f"{what}.{field}", field, model, f"is not written from a new {type(obj).__name__}")
    return values


def checked(data: object, model: type[M], *, what: str) -> M:
    """`data` (a `model` instance, another pydantic model or a mapping of fields) validated by `model`;
    InvalidInput naming each bad field (unknown ones with a did-you-mean), before any SQL is sent.
    The result's `model_fields_set` is the fields `data` gave."""
    if isinstance(data, BaseModel):
        fields = data.model_dump(exclude_unset=True)
    elif isinstance(data, Mapping):
        fields = dict(data)
    else:
        raise InvalidInput(what, f"expected {_a(model.__name__)} or a mapping of its fields, not {type(data).__name__}")
    return _validated(fields, model, what)


def _validated(fields: dict[str, Any], model: type[M], what: str) -> M:
    for name in fields:
        if name in READ_ONLY:
            raise InvalidInput(f"{what}.{name}", "is set by the database", allowed=_allowed_fields(model))
        if name not in model.model_fields:
            raise _unknown(f"{what}.{name}", str(name), model, "is not a field")
    try:
        return model.model_validate(fields)
    except ValidationError as exc:
        raise invalid(exc, what) from None


def creation(data: object, model: type[C], orm_class: type[Any], *, what: str, ignore: Collection[str] = ()) -> C:
    """`data` (an `orm_class` instance, a pydantic model or a mapping) checked against `model`.

    Unknown fields and read-only ones (id, created_at, updated_at) are errors naming the writable fields.
    `ignore`: attributes of an `orm_class` object the caller reads itself (not in `model`, not refused).
    """
    if isinstance(data, orm_class):
        return _validated(_from_orm(data, model, what, ignore), model, what)
    if not isinstance(data, BaseModel | Mapping):
        raise InvalidInput(
            what, f"expected {_a(orm_class.__name__)}, {_a(model.__name__)} or a mapping, not {type(data).__name__}"
        )
    return checked(data, model, what=what)


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
            raise _unknown(f"{what}.{name}", str(name), model, "is not a field that can be updated")
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


def json_object(value: object, field: str) -> dict[str, Any]:
    """`value` as a JSON object jsonb can store (a value passed outside a model, such as a containment
    filter); InvalidInput naming `field` otherwise."""
    try:
        return _json_object(dict(_an_object(value)))
    except ValueError as exc:
        raise InvalidInput(field, str(exc)) from None


def attributes(model: BaseModel) -> dict[str, Any]:
    """A checked Create model's fields as ORM constructor arguments (only the fields that were set, so the
    database's defaults apply to the rest)."""
    return {ATTRIBUTE_NAMES.get(k, k): v for k, v in model.model_dump(exclude_unset=True).items()}


__all__ = [
    "READ_ONLY",
    "CreateModel",
    "JsonNotNull",
    "JsonObject",
    "JsonValue",
    "NonBlankText",
    "ReadModel",
    "SearchModel",
    "SearchText",
    "Text",
    "Text500",
    "Timestamp",
    "Title",
    "UpdateModel",
    "attributes",
    "changes",
    "checked",
    "creation",
    "identifier",
    "invalid",
    "json_object",
    "member",
    "search",
]
