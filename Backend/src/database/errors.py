"""Every error the data layer raises on purpose: one small tree, each class also the builtin a caller
would naturally catch (ValueError, LookupError, TimeoutError, ConnectionError, RuntimeError).

Agent code never needs to catch a SQLAlchemy or asyncpg exception for something it can fix or retry:

| error                  | builtin        | retryable | when                                                      |
| ---------------------- | -------------- | --------- | --------------------------------------------------------- |
| `InvalidInput`         | ValueError     | no        | a field breaks a rule of the schema (names field, allowed) |
| `UnknownSetting`       | TypeError      | no        | DatabaseConfig got a keyword it has no field for (a hint) |
| `StateConflict`        | ValueError     | no        | a state machine refuses it (an execution finishes once)   |
| `NotFound`             | LookupError    | no        | a referenced row does not exist (names it and the field)  |
| `SessionClosed`        | RuntimeError   | no        | a session used after its `async with` block ended        |
| `ManagerClosed`        | RuntimeError   | no        | a manager used after `close()`                            |
| `ReadOnlySession`      | PermissionError| no        | a write in `manager.session(readonly=True)`; nothing stored |
| `DatabaseUnavailable`  | ConnectionError| yes       | the server cannot be reached, or refused the login        |
| `ConnectionLost`       | ConnectionError| yes       | the connection broke during an operation                  |
| `DatabaseTimeout`      | TimeoutError   | yes       | an operation ran past a timeout setting (names it)        |
| `PoolExhausted`        | TimeoutError   | yes       | no pooled connection became free within DB_POOL_TIMEOUT   |

`retryable` says whether running the same unit of work again may succeed. A COMMIT interrupted by
`ConnectionLost` or `DatabaseTimeout` may still have committed on the server: retry only work that is
idempotent (docs/data-layer.md, "Retrying safely").
"""

from __future__ import annotations

from collections.abc import Iterable


class DataLayerError(Exception):
    """Base of every error the data layer raises on purpose."""

    retryable: bool = False


class InvalidInput(DataLayerError, ValueError):
    """A value a caller passed breaks a rule of the schema; nothing was sent to the database."""

    def __init__(self, field: str, problem: str, *, allowed: str | None = None) -> None:
        self.field = field
        self.problem = problem
        self.allowed = allowed
        self.errors: list[InvalidInput] = [self]
        """Every field's error, when several were found at once (see `combine`)."""
        message = f"{field}: {problem}"
        if allowed is not None:
            message += f" (allowed: {allowed})"
        super().__init__(message)

    @classmethod
    def combine(cls, errors: Iterable[InvalidInput]) -> InvalidInput:
        """One error for several fields: the first one's field, every message in the text."""
        found = list(errors)
        if len(found) == 1:
            return found[0]
        combined = cls(found[0].field, found[0].problem, allowed=found[0].allowed)
        combined.args = ("; ".join(str(e) for e in found),)
        combined.errors = found
        return combined


class UnknownSetting(DataLayerError, TypeError):
    """DatabaseConfig was given a keyword argument it has no field for (a typo such as `user=`): a
    TypeError, as Python raises for any unexpected keyword argument. The message names the key and the
    field it most likely meant."""

    def __init__(self, key: str, suggestion: str | None) -> None:
        self.key = key
        self.suggestion = suggestion
        hint = f"; did you mean {suggestion!r}?" if suggestion else ""
        super().__init__(f"DatabaseConfig got an unknown setting {key!r}{hint}")


class StateConflict(DataLayerError, ValueError):
    """The row exists but is in a state that does not allow the change (e.g. an execution finishes once)."""


class NotFound(DataLayerError, LookupError):
    """A row the call refers to does not exist."""

    def __init__(self, entity: str, key: object, *, field: str | None = None, note: str | None = None) -> None:
        self.entity = entity
        self.key = key
        self.field = field
        where = f" ({field})" if field else ""
        more = f"; {note}" if note else ""
        super().__init__(f"{entity} {key} does not exist{where}{more}")

    def __str__(self) -> str:  # LookupError/KeyError-style repr quoting would hide the sentence
        return str(self.args[0]) if self.args else ""


class SessionClosed(DataLayerError, RuntimeError):
    """A session was used after the `async with manager.session()` block that made it ended."""


class ManagerClosed(DataLayerError, RuntimeError):
    """The manager was used after `close()`."""


class ReadOnlySession(DataLayerError, PermissionError):
    """A write was attempted in `manager.session(readonly=True)`: an ORM flush is refused before anything is
    sent, raw SQL is refused by the server (a replica, or a read-only transaction on the primary)."""

    def __init__(self, what: str) -> None:
        super().__init__(
            f"{what}: this session is read-only (manager.session(readonly=True) reads from a replica); "
            "write with manager.session() or manager.transaction() instead"
        )

    def __str__(self) -> str:  # OSError's str() would show the args tuple's errno form otherwise
        return str(self.args[0]) if self.args else ""


class DatabaseUnavailable(DataLayerError, ConnectionError):
    """The server cannot be reached or refused the connection (names the server, never the password)."""

    retryable = True


class ConnectionLost(DatabaseUnavailable):
    """The connection broke while an operation was running; its transaction did not commit, unless the
    operation was the COMMIT itself (then it may have)."""


class DatabaseTimeout(DataLayerError, TimeoutError):
    """An operation ran past a time limit; `setting` names the limit, `operation` what was waiting."""

    retryable = True

    def __init__(self, message: str, *, setting: str, operation: str) -> None:
        self.setting = setting
        self.operation = operation
        super().__init__(message)


class PoolExhausted(DatabaseTimeout):
    """Every pooled connection stayed busy for DB_POOL_TIMEOUT seconds: the application, not the
    database, is the bottleneck (raise DB_POOL_SIZE / DB_MAX_OVERFLOW, or hold sessions for less time)."""
