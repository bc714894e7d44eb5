"""Command-line options that several commands share, each declared once.

`settings_options(...)` adds the named options to a command and hands the command one `settings`
argument (a `RunnerSettings`) built from them over the environment and `.env`; a bad value exits 2
naming the setting.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from src.app import render
from src.migrate import commands
from src.migrate.errors import MigrateError
from src.migrate.script import TransactionMode

F = TypeVar("F", bound=Callable[..., Any])

OPTIONS: dict[str, Callable[[F], F]] = {
    "database_url": click.option(
        "--database-url",
        metavar="URL",
        help="postgresql://user@host:port/db (env DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/"
        "DB_PASSWORD). Prefer the environment for passwords: a command line is visible to other users.",
    ),
    "migrations_dir": click.option(
        "--migrations-dir",
        type=click.Path(path_type=Path, file_okay=False),
        help="Folder of NNN_description.sql files (env MIGRATIONS_DIR; default Backend/database/migrations).",
    ),
    "ledger_table": click.option(
        "--ledger-table",
        metavar="SCHEMA.TABLE",
        help="Ledger table (env MIGRATIONS_TABLE; default public.migration_ledger).",
    ),
    "lock_wait": click.option(
        "--lock-wait",
        type=float,
        metavar="SECONDS",
        help="How long to wait for another runner's lock (env MIGRATE_LOCK_WAIT; default 300).",
    ),
    "lock_timeout": click.option(
        "--lock-timeout",
        type=float,
        metavar="SECONDS",
        help="How long a statement may wait for a table lock (env MIGRATE_LOCK_TIMEOUT; default 10; 0 = no limit).",
    ),
    "statement_timeout": click.option(
        "--statement-timeout",
        type=float,
        metavar="SECONDS",
        help="How long one statement may run (env MIGRATE_STATEMENT_TIMEOUT; default 0 = no limit).",
    ),
    "transaction": click.option(
        "--transaction",
        type=click.Choice([mode.value for mode in TransactionMode]),
        help="all: every pending file in one transaction, so a failure leaves the database as it was; per-file: "
        "each file commits on its own (env MIGRATE_TRANSACTION; default all).",
    ),
}

DATABASE = ("database_url", "migrations_dir", "ledger_table", "lock_wait", "lock_timeout", "statement_timeout")
"""The options of every command that works on the database and its ledger."""

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def _exit_2(error: MigrateError, kwargs: dict[str, Any]) -> NoReturn:
    render.fail(error, as_json=bool(kwargs.get("as_json")))


def settings_options(
    *names: str, on_error: Callable[[MigrateError, dict[str, Any]], NoReturn] = _exit_2
) -> Callable[[F], F]:
    """Add the shared options `names` to a command, and pass it `settings` built from them. A bad
    setting goes to `on_error` with the command's other arguments (default: the message, exit 2)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            try:
                settings = commands.settings(**given)
            except MigrateError as exc:
                on_error(exc, kwargs)
            return func(*args, settings=settings, **kwargs)

        decorated: Any = command
        for name in reversed(names):
            decorated = OPTIONS[name](decorated)
        return decorated  # type: ignore[no-any-return]

    return decorate
