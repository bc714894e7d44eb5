"""One statement straight on a pooled asyncpg connection, its rows made into the session's ORM objects:
the fast path of the repository calls agent code makes most (get by id, insert, update, list).

Why: through SQLAlchemy's ORM execution a one-row read took 2.6x a raw asyncpg pool's time on this
machine, and a one-row write 2.5-3.5x ("ours, ORM path" in docs/benchmarks.md), almost all of it Python:
the execution context, the ORM loading machinery, the unit of work and, for a write, a BEGIN and a
COMMIT round trip. Here a
statement compiled once by SQLAlchemy (so the SQL, the bind casts and the column types stay SQLAlchemy's)
runs with asyncpg's own prepared-statement cache on a connection checked out of the engine's own pool (so
the idle ping, recycling and invalidation are the pool's), in autocommit: one round trip, and a write that
returns has been committed by the server, as a single-statement transaction.

The rows become ORM objects of the session, as a query's would: persistent, in its identity map, an
object the session already holds is the one returned (refreshed by an UPDATE ... RETURNING), and a change
made to one is flushed by the next commit. That takes a few of SQLAlchemy's internal names
(`Session._is_clean`, the identity map's `_add_unpresent`, the instance state's `key` and `session_id`,
the asyncpg adapter's `_handle_exception`); the whole suite runs through this path, so an upgrade that
changes them fails the tests, not production.

`usable(session)` says when this path may run: only when it cannot change what the caller sees of a
transaction. The session must have no transaction under way and nothing waiting to be flushed; outside
read-only sessions the caller must not own the transaction (`manager.transaction()`, `session.begin()`).
Sessions under transaction pooling never use it (their settings are SET LOCAL in each transaction), nor
does an engine whose statements something else listens to (`_watched`). In every other case the
repository runs its ORM statement, with the same result.
"""

from __future__ import annotations

import functools
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from sqlalchemy import bindparam, insert, inspect, select, update
from sqlalchemy import exc as sa_exc
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.engine import Dialect, Engine
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Mapper
from sqlalchemy.orm.attributes import set_committed_value
from sqlalchemy.orm.base import instance_state
from sqlalchemy.pool import PoolProxiedConnection
from sqlalchemy.sql import ClauseElement
from sqlalchemy.util import greenlet_spawn

from src.database import sessions, slowlog
from src.database.foreign_keys import missing_reference

M = TypeVar("M")

ENABLED = "agent_backend.direct"
"""`session.info` key: the manager's sessionmakers set it where this path is allowed (not under
transaction pooling)."""

_DIALECT: Dialect = asyncpg_dialect(paramstyle="numeric_dollar")  # type: ignore[no-untyped-call]
"""What statements are compiled for: the dialect every engine of the manager uses."""


@dataclass(frozen=True)
class Statement(Generic[M]):
    """A SQLAlchemy statement compiled once for asyncpg, whose result columns are `mapper`'s columns."""

    mapper: Mapper[M]
    sql: str
    binds: tuple[tuple[str, Callable[[Any], Any] | None], ...]
    """Each positional parameter ($1, $2, ...): its bind name and the column type's bind processor."""
    keys: tuple[str, ...]
    """The ORM attribute each result column goes to, in order."""
    results: tuple[tuple[str, Callable[[Any], Any]], ...]
    """The result columns whose type converts the driver's value (an enum from its text), by attribute."""
    identity: tuple[int, ...]
    """The positions of the primary key's columns among the result columns."""
    identity_class: type[Any]
    """The class identity-map keys name (the base class of a mapped hierarchy)."""


def columns(mapper: Mapper[Any]) -> list[Any]:
    """The mapper's columns in attribute order: what a statement of this module selects or returns."""
    return [prop.columns[0] for prop in mapper.column_attrs]


def compile_statement(mapper: Mapper[M], statement: ClauseElement) -> Statement[M]:
    """Compile `statement` (whose result columns must be `columns(mapper)`, in order) with named
    `bindparam`s; the statement's parameters are later given by those names."""
    compiled: Any = statement.compile(dialect=_DIALECT)
    binds = []
    for name in compiled.positiontup or ():
        bind = compiled.binds[name]
        binds.append((bind.key, bind.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)))
    keys, results = [], []
    for prop in mapper.column_attrs:
        keys.append(prop.key)
        processor = prop.columns[0].type.dialect_impl(_DIALECT).result_processor(_DIALECT, None)
        if processor is not None:
            results.append((prop.key, processor))
    primary = [mapper.get_property_by_column(column).key for column in mapper.primary_key]
    identity = tuple(keys.index(key) for key in primary)
    identity_class = mapper.identity_key_from_primary_key((None,) * len(primary))[0]
    return Statement(mapper, compiled.string, tuple(binds), tuple(keys), tuple(results), identity, identity_class)


def _values(mapper: Mapper[Any], keys: tuple[str, ...]) -> dict[str, Any]:
    """A bind per attribute written, named `v_<key>` (a bind may not share a column's name in SET/VALUES)."""
    return {key: bindparam(f"v_{key}", type_=mapper.column_attrs[key].columns[0].type) for key in keys}


@functools.lru_cache(maxsize=512)
def _insert(mapper: Mapper[Any], keys: tuple[str, ...]) -> Statement[Any]:
    return compile_statement(mapper, insert(mapper).values(_values(mapper, keys)).returning(*columns(mapper)))


@functools.lru_cache(maxsize=512)
def _update(mapper: Mapper[Any], keys: tuple[str, ...]) -> Statement[Any]:
    (key_column,) = mapper.primary_key
    query = update(mapper).where(key_column == bindparam("row_id")).values(_values(mapper, keys))
    return compile_statement(mapper, query.returning(*columns(mapper)))


@functools.lru_cache(maxsize=64)
def _by_key(mapper: Mapper[Any]) -> Statement[Any]:
    (key_column,) = mapper.primary_key
    return compile_statement(mapper, select(*columns(mapper)).where(key_column == bindparam("row_id")))


async def get_one(session: AsyncSession, model: type[M], row_id: object) -> M | None:
    """The `model` row whose primary key is `row_id`, or None; the session's own object when it holds
    that row already (no statement then), as `session.get` does."""
    mapper: Mapper[M] = inspect(model)
    held: M | None = session.sync_session.identity_map.get(mapper.identity_key_from_primary_key((row_id,)))
    if held is not None:
        return held
    found = await fetch(session, _by_key(mapper), {"row_id": row_id})
    return found[0] if found else None


async def insert_one(session: AsyncSession, model: type[M], values: Mapping[str, Any]) -> M:
    """INSERT one row of `model` with `values` (ORM attribute names; the database's defaults fill the
    rest) RETURNING it, committed when this returns. A foreign key naming a missing row: NotFound."""
    mapper: Mapper[M] = inspect(model)
    statement: Statement[M] = _insert(mapper, tuple(values))
    (stored,) = await _write(session, statement, {f"v_{key}": value for key, value in values.items()})
    return stored


async def update_one(session: AsyncSession, model: type[M], row_id: object, values: Mapping[str, Any]) -> M | None:
    """UPDATE the `model` row whose primary key is `row_id` with `values` (at least one) RETURNING it,
    committed when this returns; None when no row has that key."""
    mapper: Mapper[M] = inspect(model)
    statement: Statement[M] = _update(mapper, tuple(values))
    params = {"row_id": row_id, **{f"v_{key}": value for key, value in values.items()}}
    stored = await _write(session, statement, params, refresh=True)
    return stored[0] if stored else None


async def _write(
    session: AsyncSession, statement: Statement[M], params: dict[str, Any], *, refresh: bool = False
) -> list[M]:
    try:
        return await fetch(session, statement, params, refresh=refresh)
    except Exception as exc:
        missing = missing_reference(exc)
        if missing is not None:
            raise missing from None
        raise


def usable(session: AsyncSession, *, write: bool) -> bool:
    """Whether a repository call may take this path in `session` now (see the module's docstring)."""
    sync: Any = session.sync_session
    info = sync.info
    if not info.get(ENABLED) or sync.ended or sync.get_transaction() is not None or not sync._is_clean():
        return False
    if write and (info.get(sessions.READONLY) or info.get(sessions.OWNED_BY_CALLER)):
        return False
    return not _watched(sync.bind)


def _watched(engine: Engine) -> bool:
    """Whether something besides the slow-statement log listens to the statements `engine` runs (a
    tracer, a query counter): those see only what SQLAlchemy executes, so then every call takes the
    ORM path, and they see every statement."""
    dispatch = engine.dispatch
    own = 1 if slowlog.installed(engine) else 0
    return len(dispatch.before_cursor_execute) > own or len(dispatch.after_cursor_execute) > own


def _release(raw: PoolProxiedConnection, error: BaseException | None) -> None:
    # In SQLAlchemy's greenlet: returning a connection may close it (an overflow one), which awaits.
    if error is not None:
        raw.invalidate(error)
    raw.close()


async def fetch(
    session: AsyncSession, statement: Statement[M], params: dict[str, Any], *, refresh: bool = False
) -> list[M]:
    """Run `statement` with `params` on a pooled connection of the session's engine and return its rows
    as persistent objects of `session` (`refresh`: an object the session holds takes the new values).
    Errors are SQLAlchemy's, as its own execution raises them (IntegrityError, OperationalError, ...),
    without parameter values; a connection that failed is invalidated, not reused."""
    engine: Engine = session.sync_session.bind  # type: ignore[assignment]
    args = [
        value if processor is None or value is None else processor(value)
        for name, processor in statement.binds
        for value in [params[name]]
    ]
    raw = await greenlet_spawn(engine.raw_connection)
    failed = False
    invalid: BaseException | None = None
    """The failure that leaves the connection unfit for reuse: a disconnect, or anything not the server's."""
    started = time.perf_counter()
    try:
        driver: Any = raw.driver_connection
        records = await driver.fetch(statement.sql, *args)
    except Exception as error:
        failed = True
        failure = _translated(engine, raw, statement.sql, error)
        if not isinstance(failure, sa_exc.DBAPIError) or failure.connection_invalidated:
            invalid = failure
        raise failure from error
    except BaseException as error:  # cancelled mid-statement: the connection's state is unknown
        failed, invalid = True, error
        raise
    finally:
        await greenlet_spawn(_release, raw, invalid)
        slowlog.observe(engine, statement.sql, (time.perf_counter() - started) * 1000, failed=failed)
    return _adopt(session, statement, records, refresh=refresh)


def _translated(engine: Engine, raw: PoolProxiedConnection, sql: str, error: Exception) -> BaseException:
    """The exception SQLAlchemy's own execution would raise for the driver's `error`."""
    dialect = engine.dialect
    adapter: Any = raw.dbapi_connection
    try:
        adapter._handle_exception(error)  # raises the DBAPI-style error the asyncpg dialect makes of it
    except Exception as dbapi_error:
        dbapi: Any = dialect.loaded_dbapi
        if not isinstance(dbapi_error, dbapi.Error):
            return dbapi_error  # not the driver's (a timeout): faults.translate names it at the boundary
        invalidated = dialect.is_disconnect(dbapi_error, adapter, None)
        wrapped: BaseException = sa_exc.DBAPIError.instance(
            sql,
            None,
            dbapi_error,
            dbapi.Error,
            hide_parameters=True,
            connection_invalidated=invalidated,
            dialect=dialect,
        )
        return wrapped
    return error


def _converted(values: dict[str, Any], results: tuple[tuple[str, Callable[[Any], Any]], ...]) -> dict[str, Any]:
    """`values` with each converting column's value converted (in place)."""
    for key, processor in results:
        value = values[key]
        if value is not None:
            values[key] = processor(value)
    return values


def _adopt(session: AsyncSession, statement: Statement[M], records: Sequence[Any], *, refresh: bool) -> list[M]:
    """The records as the session's persistent objects, as SQLAlchemy's loading makes them."""
    sync: Any = session.sync_session
    identity_map = sync.identity_map
    held_by_key, add = identity_map.get, identity_map._add_unpresent
    new_instance = statement.mapper.class_manager.new_instance
    identity_class, session_id = statement.identity_class, sync.hash_key
    keys, results, positions = statement.keys, statement.results, statement.identity
    objects: list[M] = []
    for record in records:
        identity = (identity_class, tuple([record[i] for i in positions]), None)
        held = held_by_key(identity)
        if held is not None:
            if refresh:
                for key, value in _converted(dict(zip(keys, record, strict=True)), results).items():
                    set_committed_value(held, key, value)
            objects.append(held)
            continue
        # What SQLAlchemy's loading.py does for a row it loads, less what is a no-op for a new object:
        # its values count as loaded (set in its __dict__, so no change is recorded), it belongs to this
        # session and sits in its identity map.
        obj = new_instance()
        values = obj.__dict__
        values.update(zip(keys, record, strict=False))  # a record has exactly the keys (compile_statement)
        _converted(values, results)
        state: Any = instance_state(obj)
        state.key = identity
        state.session_id = session_id
        add(state, identity)
        objects.append(obj)
    return objects


__all__ = [
    "ENABLED",
    "Statement",
    "columns",
    "compile_statement",
    "fetch",
    "get_one",
    "insert_one",
    "update_one",
    "usable",
]
