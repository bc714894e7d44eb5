"""The runner's settings: each one a command-line option, an environment variable, or `.env` entry.

A command-line option wins over the environment, which wins over `.env`. Where to connect comes from
`src.postgres.settings` (the same `DATABASE_URL` / `DB_*` variables the data layer reads).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path

import src
from src import BACKEND_DIR
from src.migrate.ledger import DEFAULT_TABLE, LedgerTable
from src.migrate.script import TransactionMode
from src.migrate.session import SessionSettings
from src.postgres import datadir
from src.postgres import settings as connection
from src.postgres.settings import ConnectionSettings

ENV_DATABASE_URL = "MIGRATE_DATABASE_URL"
"""Where the runner connects, when it must differ from the application's `DATABASE_URL`: the server itself
(or a session-pooling PgBouncer) while the application goes through a transaction-pooling one."""
ENV_MIGRATIONS_DIR = "MIGRATIONS_DIR"
ENV_LEDGER_TABLE = "MIGRATIONS_TABLE"
ENV_LOCK_WAIT = "MIGRATE_LOCK_WAIT"
ENV_LOCK_TIMEOUT = "MIGRATE_LOCK_TIMEOUT"
ENV_STATEMENT_TIMEOUT = "MIGRATE_STATEMENT_TIMEOUT"
ENV_TRANSACTION = "MIGRATE_TRANSACTION"
ENV_DUMP_FILE = "MIGRATE_DUMP_FILE"

DEFAULT_LOCK_WAIT = 300.0
DEFAULT_LOCK_TIMEOUT = 10.0
DEFAULT_STATEMENT_TIMEOUT = 0.0

MAX_SECONDS = 2_147_483
"""The largest number of seconds any runner setting takes: PostgreSQL's limit for `lock_timeout` and
`statement_timeout` (2^31 - 1 ms, about 24.8 days), used for the runner's own waits too."""
BIGINT_MAX = 2**63 - 1
"""The largest migration version (the ledger's `version` is a bigint)."""


def _default_migrations_dir() -> Path:
    # An installed wheel carries the SQL files as the data package src.database.migrations (pyproject.toml
    # maps it onto Backend/database/migrations); a checkout has them only where they are written.
    packaged = Path(src.__file__).resolve().parent / "database" / "migrations"
    return packaged if packaged.is_dir() else BACKEND_DIR / "database" / "migrations"


DEFAULT_MIGRATIONS_DIR = _default_migrations_dir()
"""Backend/database/migrations in a checkout; the copy inside the package when installed from a wheel."""


@dataclass(frozen=True)
class RunnerSettings:
    connection: ConnectionSettings | None
    """Where to connect; None means no database is configured, so the embedded server is used."""
    embedded_dir: Path
    """Data directory of the embedded server (`EMBEDDED_PGDATA`, default `.pgdata` in the project)."""
    migrations_dir: Path
    """Folder of NNN_description.sql files (`MIGRATIONS_DIR`, default DEFAULT_MIGRATIONS_DIR)."""
    ledger: LedgerTable
    """The ledger table (`MIGRATIONS_TABLE`, default public.migration_ledger)."""
    lock_wait: float
    """Seconds to wait for another runner's lock (`MIGRATE_LOCK_WAIT`, default 300)."""
    lock_timeout: float
    """Seconds a migration statement may wait for a table lock (`MIGRATE_LOCK_TIMEOUT`, default 10; 0 = no
    limit), so a migration never queues behind a long transaction while blocking everyone behind it."""
    statement_timeout: float
    """Seconds one migration statement may run (`MIGRATE_STATEMENT_TIMEOUT`, default 0 = no limit)."""
    transaction: TransactionMode = TransactionMode.ALL
    """`all` (default): the pending files and their ledger rows in one transaction, so a failure anywhere
    leaves everything as it was; `per-file`: each file commits on its own (`MIGRATE_TRANSACTION`)."""
    dump_file: Path | None = None
    """Where `apply` writes the schema (`migrate dump`) after every successful run (`MIGRATE_DUMP_FILE`;
    None: it writes none)."""

    def session(self) -> SessionSettings:
        """The values the runner sets (SET LOCAL) in each transaction it opens (see `src.migrate.session`)."""
        return SessionSettings(
            lock_timeout_ms=_milliseconds(self.lock_timeout), statement_timeout_ms=_milliseconds(self.statement_timeout)
        )


def _milliseconds(seconds: float) -> int:
    """Whole milliseconds for the server; a positive limit below half a millisecond is 1 ms, not 0 (no limit)."""
    return max(1, round(seconds * 1000)) if seconds > 0 else 0


def check_seconds(value: str | float, *, positive: bool = False) -> float:
    """`value` as seconds, or a ValueError saying what is allowed: a finite number from 0 (above 0 when
    `positive`) to MAX_SECONDS. NaN, infinities and huge values are refused, never passed on."""
    allowed = f"a number of seconds {'more than 0 and at most' if positive else 'from 0 to'} {MAX_SECONDS}"
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        raise ValueError(f"expected {allowed}, not {value!r}") from None
    if not math.isfinite(seconds) or seconds > MAX_SECONDS or seconds < 0 or (positive and seconds == 0):
        raise ValueError(f"expected {allowed}, not {value!r}")
    return seconds


def _seconds(given: float | None, environ: Mapping[str, str], variable: str, default: float) -> float:
    """A seconds setting: the given value, else the environment's; an error names `variable` (the
    command line checks its options itself, with the same rule, before they get here)."""
    try:
        return check_seconds(given if given is not None else _env(environ, variable) or default)
    except ValueError as exc:
        raise ValueError(f"{variable}: {exc}") from None


def resolve(
    environ: Mapping[str, str],
    *,
    database_url: str | None = None,
    migrations_dir: Path | None = None,
    ledger_table: str | None = None,
    lock_wait: float | None = None,
    lock_timeout: float | None = None,
    statement_timeout: float | None = None,
    transaction: str | None = None,
    dump_file: Path | None = None,
) -> RunnerSettings:
    """Combine command-line values (None = not given) with the environment; ValueError names a bad setting."""

    def env(name: str) -> str | None:
        return _env(environ, name)

    return RunnerSettings(
        connection=_connection(environ, database_url),
        embedded_dir=Path(env(datadir.ENV_DATA_DIR) or datadir.DEFAULT_DATA_DIR),
        migrations_dir=resolve_migrations_dir(environ, migrations_dir),
        ledger=resolve_ledger(environ, ledger_table),
        lock_wait=_seconds(lock_wait, environ, ENV_LOCK_WAIT, DEFAULT_LOCK_WAIT),
        lock_timeout=_seconds(lock_timeout, environ, ENV_LOCK_TIMEOUT, DEFAULT_LOCK_TIMEOUT),
        statement_timeout=_seconds(statement_timeout, environ, ENV_STATEMENT_TIMEOUT, DEFAULT_STATEMENT_TIMEOUT),
        transaction=_transaction_mode(transaction or env(ENV_TRANSACTION) or TransactionMode.ALL.value),
        dump_file=dump_file or (Path(d) if (d := env(ENV_DUMP_FILE)) else None),
    )


def _connection(environ: Mapping[str, str], given: str | None) -> ConnectionSettings | None:
    """`--database-url`, else `MIGRATE_DATABASE_URL`, else the application's DATABASE_URL / DB_* settings."""
    if given is not None:
        return connection.from_environment(environ, url=given, url_setting="--database-url")
    own = _env(environ, ENV_DATABASE_URL)
    if own is not None:
        return connection.from_environment(environ, url=own, url_setting=ENV_DATABASE_URL)
    return connection.from_environment(environ)


def resolve_migrations_dir(environ: Mapping[str, str], given: Path | None = None) -> Path:
    """The migrations folder: `given` (the command-line value), else `MIGRATIONS_DIR`, else the default."""
    return given or Path(_env(environ, ENV_MIGRATIONS_DIR) or DEFAULT_MIGRATIONS_DIR)


def resolve_ledger(environ: Mapping[str, str], given: str | None = None) -> LedgerTable:
    """The ledger table: `given`, else `MIGRATIONS_TABLE`, else public.migration_ledger."""
    return LedgerTable.parse(given or _env(environ, ENV_LEDGER_TABLE) or DEFAULT_TABLE)


def _env(environ: Mapping[str, str], name: str) -> str | None:
    """An empty variable counts as unset, as `FOO=` in a compose file or .env usually means "default"."""
    return environ.get(name) or None


def _transaction_mode(value: str) -> TransactionMode:
    try:
        return TransactionMode(value.strip().lower())
    except ValueError:
        choices = " or ".join(repr(m.value) for m in TransactionMode)
        raise ValueError(f"{ENV_TRANSACTION}: expected {choices}, not {value!r}") from None
