"""`migrate`: the command line. Thin: read options, call the runner, print, exit with a documented code.

Exit codes: 0 success; 1 a migration's SQL failed; 2 bad option or setting; 3 cannot connect;
4 a migration file is malformed; 5 files and ledger disagree (drift); 6 lock wait ran out.
Expected errors print one message to stderr and no traceback (`--debug` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import sys
import traceback
from collections.abc import Callable, Coroutine, Iterator
from datetime import UTC
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from src.database.connection import ConnectionSettings, read_environment
from src.migrate import files as files_module
from src.migrate import runner
from src.migrate.connect import connect, wait_until_ready
from src.migrate.errors import ConfigError, ConnectionFailed, MigrateError
from src.migrate.files import MigrationFile
from src.migrate.lock import Holder
from src.migrate.plan import PROBLEM_STATES, Plan
from src.migrate.settings import RunnerSettings, resolve

T = TypeVar("T")
F = TypeVar("F", bound=Callable[..., Any])


def _shown_path(path: Path) -> str:
    """A path relative to the current directory when it is inside it, for shorter messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def _fail(error: MigrateError, *, as_json: bool) -> NoReturn:
    if _debug():
        traceback.print_exception(error)
    if as_json:
        click.echo(
            json.dumps({"error": {"type": type(error).__name__, "message": str(error), "exit_code": error.exit_code}})
        )
    click.echo(f"migrate: error: {error}", err=True)
    sys.exit(error.exit_code)


def _debug() -> bool:
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug"))


def _run(make: Callable[[], Coroutine[Any, Any, T]], *, as_json: bool = False) -> T:
    """Run a coroutine, turning every expected error into its message and exit code."""
    try:
        return asyncio.run(make())
    except MigrateError as exc:
        _fail(exc, as_json=as_json)
    except KeyboardInterrupt:
        click.echo("migrate: interrupted", err=True)
        sys.exit(130)


def _settings(**options: Any) -> RunnerSettings:
    try:
        return resolve(read_environment(), **options)
    except ValueError as exc:
        _fail(ConfigError(str(exc)), as_json=bool(options.get("as_json")))


@contextlib.contextmanager
def _database(settings: RunnerSettings) -> Iterator[ConnectionSettings]:
    """The configured server, or the embedded one (started here, stopped on exit) when none is configured."""
    if settings.connection is not None:
        yield settings.connection
        return
    from src.database import embedded

    try:
        server = embedded.start(settings.embedded_dir)
    except embedded.EmbeddedServerError as exc:
        raise ConnectionFailed(str(exc)) from exc
    click.echo(
        f"migrate: no database configured (DATABASE_URL or DB_*), using embedded PostgreSQL "
        f"{server.major_version} in {_shown_path(server.data_dir)}",
        err=True,
    )
    try:
        yield server.settings()
    finally:
        server.stop()


def _common_options(func: F) -> F:
    options = [
        click.option(
            "--database-url",
            metavar="URL",
            help="postgresql://user@host:port/db (env DATABASE_URL, or DB_HOST/DB_PORT/DB_NAME/DB_USER/"
            "DB_PASSWORD). Prefer the environment for passwords: a command line is visible to other users.",
        ),
        click.option(
            "--migrations-dir",
            type=click.Path(path_type=Path, file_okay=False),
            help="Folder of NNN_description.sql files (env MIGRATIONS_DIR; default Backend/database/migrations).",
        ),
        click.option(
            "--ledger-table",
            metavar="SCHEMA.TABLE",
            help="Ledger table (env MIGRATIONS_TABLE; default public.migration_ledger).",
        ),
        click.option(
            "--lock-wait",
            type=float,
            metavar="SECONDS",
            help="How long to wait for another runner's lock (env MIGRATE_LOCK_WAIT; default 300).",
        ),
        click.option(
            "--lock-timeout",
            type=float,
            metavar="SECONDS",
            help="How long a statement may wait for a table lock (env MIGRATE_LOCK_TIMEOUT; default 10; 0 = no limit).",
        ),
        click.option(
            "--statement-timeout",
            type=float,
            metavar="SECONDS",
            help="How long one statement may run (env MIGRATE_STATEMENT_TIMEOUT; default 0 = no limit).",
        ),
    ]
    for option in reversed(options):
        func = option(func)
    return func


def _split_common(kwargs: dict[str, Any]) -> dict[str, Any]:
    names = (
        "database_url",
        "migrations_dir",
        "ledger_table",
        "lock_wait",
        "lock_timeout",
        "statement_timeout",
    )
    return {name: kwargs.pop(name) for name in names}


def _discover(settings: RunnerSettings) -> list[MigrationFile]:
    return files_module.discover(settings.migrations_dir)


@click.group(context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110})
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
def main(debug: bool) -> None:
    """Apply numbered raw-SQL migrations to PostgreSQL and report their state.

    With no database configured (no DATABASE_URL or DB_* variable), commands use an embedded PostgreSQL
    kept in .pgdata/ in the project.
    """


class _ConsoleProgress:
    """Prints each file as it starts and its time as it ends, so a slow or failing file is visible."""

    def __init__(self) -> None:
        self.open_line = False

    def lock_busy(self, holder: Holder | None) -> None:
        who = f" held by {holder}" if holder is not None else ""
        click.echo(f"Waiting for the migration lock{who} ...", err=True)

    def starting(self, file: MigrationFile, transactional: bool) -> None:
        mode = "" if transactional else " (outside a transaction)"
        click.echo(f"  {file.filename}{mode} ", nl=False)
        self.open_line = True

    def finished(self, applied: runner.Applied) -> None:
        click.echo(f"... {_ms(applied.duration_ms)}")
        self.open_line = False


def _ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def _version(version: int | None) -> str:
    return "none (nothing applied)" if version is None else f"{version:03d}"


@main.command()
@_common_options
@click.option("--target", type=int, metavar="N", help="Apply pending migrations up to and including version N.")
@click.option("--allow-out-of-order", is_flag=True, help="Apply pending files numbered below the newest applied.")
@click.option("--dry-run", is_flag=True, help="Show the plan and the SQL it would run; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def apply(target: int | None, allow_out_of_order: bool, dry_run: bool, as_json: bool, **kwargs: Any) -> None:
    """Apply every pending migration, in order, each in its own transaction with its ledger row."""
    settings = _settings(**_split_common(kwargs))
    options = runner.Options(
        ledger=settings.ledger,
        lock_wait=settings.lock_wait,
        target=target,
        allow_out_of_order=allow_out_of_order,
    )

    async def go() -> None:
        files = _discover(settings)
        with _database(settings) as where:
            conn = await connect(where, command="apply", server_settings=settings.server_settings())
            try:
                if dry_run:
                    plan = await runner.read_plan(conn, files, options)
                    _print_dry_run(plan, as_json=as_json)
                    return
                progress = None if as_json else _ConsoleProgress()
                if not as_json:
                    click.echo(f"Database {where.describe()}, ledger {settings.ledger}")
                started = asyncio.get_running_loop().time()
                try:
                    result = await runner.apply(conn, files, options, progress)
                except MigrateError:
                    if progress is not None and progress.open_line:
                        click.echo("FAILED")
                    raise
                elapsed_ms = (asyncio.get_running_loop().time() - started) * 1000
            finally:
                await conn.close()
        _print_apply(result, elapsed_ms, as_json=as_json)

    _run(go, as_json=as_json)


def _print_apply(result: runner.ApplyResult, elapsed_ms: float, *, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "applied": [
                        {
                            "version": a.file.version,
                            "name": a.file.name,
                            "file": a.file.filename,
                            "duration_ms": round(a.duration_ms, 3),
                            "transactional": a.transactional,
                        }
                        for a in result.applied
                    ],
                    "head": result.head,
                    "lock_wait_s": None if result.lock_wait_s is None else round(result.lock_wait_s, 3),
                    "elapsed_ms": round(elapsed_ms, 3),
                }
            )
        )
        return
    total = len(result.plan.entries)
    if not result.applied:
        click.echo(f"Nothing to apply: {total} migration(s) known, database is at version {_version(result.head)}.")
        return
    waited = f" (waited {result.lock_wait_s:.1f} s for the lock)" if (result.lock_wait_s or 0) >= 0.05 else ""
    click.echo(
        f"Applied {len(result.applied)} migration(s) in {_ms(elapsed_ms)}{waited}; "
        f"database is at version {_version(result.head)}."
    )


def _print_dry_run(plan: Plan, *, as_json: bool) -> None:
    from src.migrate import sql

    plan.raise_for_drift()
    statements = {f.version: sql.parse(f) for f in plan.to_apply}
    if as_json:
        click.echo(
            json.dumps(
                {
                    "dry_run": True,
                    "head": plan.head,
                    "would_apply": [
                        {
                            "version": f.version,
                            "file": f.filename,
                            "transactional": all(s.transactional for s in statements[f.version]),
                            "statements": [s.text for s in statements[f.version]],
                        }
                        for f in plan.to_apply
                    ],
                }
            )
        )
        return
    if not plan.to_apply:
        click.echo(f"Dry run: nothing to apply; database is at version {_version(plan.head)}.")
        return
    click.echo(f"Dry run: would apply {len(plan.to_apply)} migration(s); nothing was changed.")
    for file in plan.to_apply:
        stmts = statements[file.version]
        mode = "one transaction" if all(s.transactional for s in stmts) else "outside a transaction"
        click.echo(f"\n-- {file.filename} ({len(stmts)} statement(s), {mode})")
        for statement in stmts:
            click.echo(statement.text + ";")


@main.command()
@_common_options
@click.option("--json", "as_json", is_flag=True, help="Print the status as JSON on stdout.")
def status(as_json: bool, **kwargs: Any) -> None:
    """List every migration file and ledger row: applied (when, how long), pending, or drifted.

    Exits 5 when files and ledger disagree (an applied file edited, renamed or missing, a file out of order).
    """
    settings = _settings(**_split_common(kwargs))
    options = runner.Options(ledger=settings.ledger)

    async def go() -> tuple[Plan, str, str]:
        files = _discover(settings)
        with _database(settings) as where:
            conn = await connect(where, command="status")
            try:
                plan = await runner.read_plan(conn, files, options)
                server_version = str(await conn.fetchval("SELECT current_setting('server_version')")).split()[0]
            finally:
                await conn.close()
        return plan, where.describe(), server_version

    plan, where, server_version = _run(go, as_json=as_json)
    _print_status(plan, where, server_version, settings, as_json=as_json)
    problems = plan.problems
    if problems:
        sys.exit(5)


def _print_status(plan: Plan, where: str, server_version: str, settings: RunnerSettings, *, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "database": where,
                    "server_version": server_version,
                    "ledger": str(settings.ledger),
                    "migrations_dir": str(settings.migrations_dir),
                    "head": plan.head,
                    "migrations": [
                        {
                            "version": e.version,
                            "name": e.name,
                            "file": e.label,
                            "state": e.state.value,
                            "checksum": e.file.checksum if e.file else None,
                            "applied_at": e.row.applied_at.isoformat() if e.row else None,
                            "duration_ms": e.row.duration_ms if e.row else None,
                            "applied_by": e.row.applied_by if e.row else None,
                            "kind": e.row.kind if e.row else None,
                        }
                        for e in plan.entries
                    ],
                    "problems": plan.problems,
                }
            )
        )
        return
    click.echo(f"Database    {where} (PostgreSQL {server_version})")
    click.echo(f"Migrations  {_shown_path(settings.migrations_dir)}")
    click.echo(f"Ledger      {settings.ledger}")
    click.echo("")
    width = max([len(e.label) for e in plan.entries] + [4])
    click.echo(f"{'STATE':<13} {'FILE':<{width}}  {'APPLIED AT (UTC)':<19}  {'TOOK':>9}")
    for e in plan.entries:
        applied_at = e.row.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if e.row else ""
        took = (_ms(e.row.duration_ms) if e.row.kind == "applied" else "baseline") if e.row else ""
        marker = "!" if e.state in PROBLEM_STATES else " "
        click.echo(f"{marker}{e.state.value:<12} {e.label:<{width}}  {applied_at:<19}  {took:>9}")
    applied = sum(1 for e in plan.entries if e.row is not None)
    pending = sum(1 for e in plan.entries if e.row is None and e.file is not None)
    click.echo("")
    click.echo(f"{applied} applied, {pending} pending; database is at version {_version(plan.head)}.")
    for problem in plan.problems:
        click.echo(f"problem: {problem}", err=True)


@main.command()
@click.option("--database-url", metavar="URL", help="As for `apply` (env DATABASE_URL or DB_*).")
@click.option(
    "--timeout",
    type=float,
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long.",
)
def wait(database_url: str | None, timeout: float) -> None:
    """Wait until the database accepts connections (for container entrypoints); exit 3 on timeout."""
    settings = _settings(database_url=database_url)

    async def go() -> float:
        if settings.connection is None:
            raise ConfigError("migrate wait needs a configured database (DATABASE_URL or DB_*)")
        return await wait_until_ready(settings.connection, give_up_after=timeout)

    took = _run(go)
    assert settings.connection is not None
    click.echo(f"Database {settings.connection.describe()} accepts connections (after {took:.1f} s).")


if __name__ == "__main__":  # pragma: no cover
    main()
