"""Command-line options that several commands share, each declared once.

`settings_options(...)` adds the named options to a command and hands the command one `settings`
argument (a `RunnerSettings`) built from them over the environment and `.env`; a bad value exits 2
naming the setting. The connection options (`DATABASE`) are also accepted before the command
(`migrate --database-url URL apply`, `global_options`); the command's own wins when both are given.

Numbers are checked when the command line is parsed (`Seconds`, `Version`, `VersionRange`): NaN,
infinities, negative or out-of-range values are a usage error naming the option and the allowed range.
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
from src.migrate.settings import BIGINT_MAX, check_seconds

F = TypeVar("F", bound=Callable[..., Any])


class Seconds(click.ParamType):  # type: ignore[type-arg]
    """A number of seconds from 0 (above 0 with `positive`) up to settings.MAX_SECONDS; the same rule as
    the environment's (`settings.check_seconds`)."""

    name = "seconds"

    def __init__(self, *, positive: bool = False) -> None:
        self.positive = positive

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> float:
        try:
            return check_seconds(value, positive=self.positive)
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


def _version(text: str) -> int:
    """A migration version: a whole number from 0 to the bigint maximum, or a ValueError saying so."""
    cleaned = text.strip()
    if not cleaned.isdigit() or not cleaned.isascii() or int(cleaned) > BIGINT_MAX:
        raise ValueError(f"expected a migration version, a whole number from 0 to {BIGINT_MAX}, not {text!r}")
    return int(cleaned)


class Version(click.ParamType):  # type: ignore[type-arg]
    """A migration version (0 to 2^63 - 1, the ledger's bigint)."""

    name = "version"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> int:
        if isinstance(value, int) and not isinstance(value, bool) and 0 <= value <= BIGINT_MAX:
            return value
        try:
            return _version(str(value))
        except ValueError as exc:
            self.fail(str(exc), param, ctx)


class VersionRange(click.ParamType):  # type: ignore[type-arg]
    """`N` or `N-M` (both included): versions, as `repair --forget` takes them."""

    name = "versions"

    def convert(self, value: Any, param: click.Parameter | None, ctx: click.Context | None) -> tuple[int, int]:
        if isinstance(value, tuple):
            return value
        first, dash, last = str(value).partition("-")
        try:
            low = _version(first)
            high = _version(last) if dash else low
        except ValueError as exc:
            self.fail(f"{exc} (N, or N-M for a range)", param, ctx)
        if high < low:
            self.fail(f"{value!r} is an empty range; write the lower version first (e.g. 2-49)", param, ctx)
        return low, high


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
        type=Seconds(),
        metavar="SECONDS",
        help="How long to wait for another runner's lock (env MIGRATE_LOCK_WAIT; default 300).",
    ),
    "lock_timeout": click.option(
        "--lock-timeout",
        type=Seconds(),
        metavar="SECONDS",
        help="How long a statement may wait for a table lock (env MIGRATE_LOCK_TIMEOUT; default 10; 0 = no limit).",
    ),
    "statement_timeout": click.option(
        "--statement-timeout",
        type=Seconds(),
        metavar="SECONDS",
        help="How long one statement may run (env MIGRATE_STATEMENT_TIMEOUT; default 0 = no limit).",
    ),
    "transaction": click.option(
        "--transaction",
        type=click.Choice([mode.value for mode in TransactionMode]),
        help="all: every pending file in one transaction, so a failure leaves the database as it was; per-file: "
        "each file commits on its own (env MIGRATE_TRANSACTION; default all).",
    ),
    "dump_file": click.option(
        "--dump-file",
        type=click.Path(path_type=Path, dir_okay=False),
        metavar="PATH",
        help="After every successful apply, write the schema there as `migrate dump` does, for reviews to see "
        "the change in the diff (env MIGRATE_DUMP_FILE; default: none).",
    ),
}

OPTION_FLAGS = {name: "--" + name.replace("_", "-") for name in OPTIONS}
"""Each shared option's flag, by its parameter name (`database_url` -> `--database-url`)."""

DATABASE = ("database_url", "migrations_dir", "ledger_table", "lock_wait", "lock_timeout", "statement_timeout")
"""The options of every command that works on the database and its ledger; also accepted before the
command (`global_options`)."""

json_option = click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")


def _exit_2(error: MigrateError, kwargs: dict[str, Any]) -> NoReturn:
    render.fail(error, as_json=bool(kwargs.get("as_json")))


def global_options(func: F) -> F:
    """Add the DATABASE options to the `migrate` group itself, so they may come before the command."""
    for name in reversed(DATABASE):
        func = OPTIONS[name](func)
    return func


def given_before_command(ctx: click.Context | None = None) -> dict[str, Any]:
    """The DATABASE options given before the command (`migrate --database-url URL status`): name -> value."""
    ctx = ctx or click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    params = root.params if root is not None else {}
    return {name: params[name] for name in DATABASE if params.get(name) is not None}


def settings_options(
    *names: str, on_error: Callable[[MigrateError, dict[str, Any]], NoReturn] = _exit_2
) -> Callable[[F], F]:
    """Add the shared options `names` to a command, and pass it `settings` built from them. A bad
    setting goes to `on_error` with the command's other arguments (default: the message, exit 2)."""

    def decorate(func: F) -> F:
        @functools.wraps(func)
        def command(*args: Any, **kwargs: Any) -> Any:
            given = {name: kwargs.pop(name) for name in names}
            before = given_before_command()
            # The command's own option wins; one given only before the command fills in.
            given = {name: before.get(name) if value is None else value for name, value in given.items()}
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
