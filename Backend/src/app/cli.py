"""`migrate`: the command line. Each command parses its options, calls one function of
`src.migrate.commands`, renders the result (`render`) and exits with the result's code.

Exit codes are the table `src.migrate.errors.EXIT_CODES` (docs/migrations.md shows it). Expected errors
print one message to stderr and no traceback (`--debug` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import sys
import traceback
from collections.abc import Callable, Coroutine
from pathlib import Path
from types import FrameType
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from src.app import render, signals
from src.app.options import (
    DATABASE,
    OPTION_FLAGS,
    Seconds,
    Version,
    VersionRange,
    given_before_command,
    global_options,
    json_option,
    settings_options,
)
from src.migrate import commands
from src.migrate.errors import ConfigError, MigrateError
from src.migrate.ledger import LedgerRow
from src.migrate.settings import RunnerSettings
from src.postgres.settings import read_environment

if TYPE_CHECKING:
    from src.database.config import DatabaseConfig

T = TypeVar("T")


def run(
    make: Callable[[], Coroutine[Any, Any, T]], *, as_json: bool = False, console: render.Console | None = None
) -> T:
    """Run a coroutine, turning every expected error into its message and exit code (SIGTERM: `signals`)."""

    done: list[T] = []

    async def command() -> None:
        # The result is handed over here rather than returned: asyncio.run, on its way out, formats the
        # main task's repr (3.11's Runner, looking up its SIGINT handler), and a task holding an apply's
        # report formats every file in it, milliseconds for a few hundred files on every container start.
        with signals.running_task():
            done.append(await make())

    try:
        asyncio.run(command())
        return done[0]
    except MigrateError as exc:
        if console is not None:
            console.failed()
        render.fail(exc, as_json=as_json)
    except (KeyboardInterrupt, asyncio.CancelledError):
        signals.exit_interrupted()


PACKAGE = "agent-backend-db"


class _UsageError(click.UsageError):
    """A bad command line, shown as every expected error is: one line on stderr (not click's usage block)."""

    def show(self, file: Any = None) -> None:
        hint = f" (`{self.ctx.command_path} --help` lists the options)" if self.ctx is not None else ""
        click.echo(f"migrate: error: {self.format_message()}{hint}", err=True)


class _HealthUsageError(_UsageError):
    """A bad command line for `migrate health`, which exits 0 or 1 only (Docker's HEALTHCHECK reserves 2)."""

    exit_code = 1


# `migrate` alone prints the help (click 8.2+ raises this for it): shown as click shows it.
_HELP_ERRORS = tuple(c for c in [getattr(click.exceptions, "NoArgsIsHelpError", None)] if c is not None)


def _one_line(exc: click.UsageError, *, health: bool) -> click.UsageError:
    if isinstance(exc, (_UsageError, *_HELP_ERRORS)):
        return exc
    return (_HealthUsageError if health else _UsageError)(exc.format_message(), exc.ctx)


class _Health(click.Command):
    def make_context(self, *args: Any, **kwargs: Any) -> click.Context:
        try:
            return super().make_context(*args, **kwargs)
        except click.UsageError as exc:
            raise _one_line(exc, health=True) from exc


class _Migrate(click.Group):
    def make_context(self, info_name: str | None, args: list[str], *rest: Any, **kwargs: Any) -> click.Context:
        given = list(args)
        try:
            return super().make_context(info_name, args, *rest, **kwargs)
        except click.UsageError as exc:
            # A bad option before `health` (`migrate --lock-wait nan health`): still 0 or 1 only.
            raise _one_line(exc, health="health" in given) from exc

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except click.UsageError as exc:
            raise _one_line(exc, health=False) from exc

    # `migrate db` (the embedded dev server) is loaded when named or listed, not at every start: the
    # container's `migrate apply` never needs it (docs/benchmarks.md, the no-op apply).
    def get_command(self, ctx: click.Context, cmd_name: str) -> click.Command | None:
        if cmd_name == "db" and "db" not in self.commands:
            from src.app.devdb import db

            self.add_command(db)
        return super().get_command(ctx, cmd_name)

    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted({*super().list_commands(ctx), "db"})


@click.group(
    name="migrate", cls=_Migrate, context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 110}
)
@click.version_option(package_name=PACKAGE, prog_name="migrate", message="%(prog)s %(version)s")
@click.option("--debug", is_flag=True, help="Show the traceback of an error.")
@global_options
@click.pass_context
def main(ctx: click.Context, /, debug: bool, **before_command: Any) -> None:
    """Apply numbered raw-SQL migrations to PostgreSQL and report their state.

    With no database configured (no DATABASE_URL or DB_* variable), commands use an embedded PostgreSQL
    kept in .pgdata/ in the project (`migrate db` keeps it running for your app).

    The connection options (--database-url, --migrations-dir, --ledger-table, --lock-wait, --lock-timeout,
    --statement-timeout) may come before the command too (migrate --database-url URL status); the
    command's own option wins when both are given.
    """
    ctx.with_resource(signals.handled())
    name = ctx.invoked_subcommand
    command = main.get_command(ctx, name) if name else None
    if command is None:
        return
    takes = {p.name for p in command.params}
    stray = [OPTION_FLAGS[n] for n in given_before_command(ctx) if n not in takes]
    if stray:
        error = ConfigError(
            f"{', '.join(stray)}: given before `{name}`, which does not take {'it' if len(stray) == 1 else 'them'} "
            f"(`migrate {name} --help` lists its options)"
        )
        if name == "health":
            _not_healthy(error, ready=False)
        render.fail(error, as_json=False)


@main.command()
@settings_options(*DATABASE, "transaction", "dump_file")
@click.option(
    "--target",
    type=Version(),
    metavar="N",
    help="Apply pending migrations up to and including version N (an error beyond the last file).",
)
@click.option("--allow-out-of-order", is_flag=True, help="Apply pending files numbered below the newest applied.")
@click.option("--dry-run", is_flag=True, help="Show the plan and the SQL it would run; change nothing.")
@json_option
def apply(settings: RunnerSettings, target: int | None, allow_out_of_order: bool, dry_run: bool, as_json: bool) -> None:
    """Apply every pending migration in order, recording each in the ledger.

    All pending files run in one transaction with their ledger rows (or one per file with --transaction
    per-file); a file PostgreSQL refuses in a transaction (CREATE INDEX CONCURRENTLY, ...) runs on its own
    between them.
    """
    console = render.Console(progress=not as_json)
    if dry_run:
        plan = run(
            lambda: commands.dry_run(
                settings, target=target, allow_out_of_order=allow_out_of_order, events=render.Console(progress=False)
            ),
            as_json=as_json,
        )
        render.dry_run(plan, as_json=as_json)
        return
    report = run(
        lambda: commands.apply(settings, target=target, allow_out_of_order=allow_out_of_order, events=console),
        as_json=as_json,
        console=console,
    )
    render.apply(report, as_json=as_json)


@main.command()
@settings_options(*DATABASE, "dump_file")
@click.argument("output", required=False, type=click.Path(path_type=Path, dir_okay=False, allow_dash=True))
def dump(settings: RunnerSettings, output: Path | None) -> None:
    """Write the database's schema as SQL to OUTPUT (default: --dump-file / MIGRATE_DUMP_FILE, else stdout;
    `-`: stdout), by the server's own pg_dump --schema-only (the embedded server's, or one of the server's
    major version or newer on PATH or in /usr/lib/postgresql/*/bin). Stable for diffs: no version comments,
    no owners, not the runner's ledger tables. Exits 12 naming what is missing when there is no usable pg_dump.
    """
    path = None if output == Path("-") else (output or settings.dump_file)
    made = run(lambda: commands.dump(settings, path, events=render.Console()))
    render.dump(made)


@main.command()
@settings_options(*DATABASE)
@click.option("--to", "to", type=Version(), metavar="N", help="Roll back every applied migration numbered above N.")
@click.option(
    "--steps", type=click.IntRange(min=1), metavar="K", help="Roll back the last K applied migrations (default 1)."
)
@click.option("--dry-run", is_flag=True, help="Show which down files would run, and their SQL; change nothing.")
@json_option
def rollback(settings: RunnerSettings, to: int | None, steps: int | None, dry_run: bool, as_json: bool) -> None:
    """Undo the last applied migration (or the last K, or every one above N) by running its down file,
    NNN_name.down.sql, newest first.

    Each down file runs in a transaction of its own together with the deletion of its ledger row, under the
    same lock as apply. Before anything runs, a file on the way without a down file refuses the rollback
    (exit 11, naming every such file), as does a file gone from the folder or any drift (exit 5).
    """
    console = render.Console(progress=not as_json and not dry_run)
    report = run(
        lambda: commands.rollback(settings, to=to, steps=steps, dry_run=dry_run, events=console),
        as_json=as_json,
        console=console,
    )
    render.rollback(report, as_json=as_json)


@main.command()
@settings_options(*DATABASE)
@json_option
def status(settings: RunnerSettings, as_json: bool) -> None:
    """List every migration file and ledger row: applied (when, how long), pending, or drifted.

    Exits 5 when files and ledger disagree (an applied file edited, renamed or missing, a file out of order).
    """
    report = run(lambda: commands.status(settings, events=render.Console()), as_json=as_json)
    render.status(report, as_json=as_json)
    sys.exit(report.exit_code)


@main.command()
@settings_options(*DATABASE)
@click.option(
    "--limit",
    type=click.IntRange(0),
    default=20,
    show_default=True,
    metavar="N",
    help="Show the last N runs (0: all of them).",
)
@json_option
def history(settings: RunnerSettings, limit: int, as_json: bool) -> None:
    """Show the audit trail, newest first: every apply, rollback, repair, forget and baseline that took the
    lock, with who (database role, OS user, host, application name), when, what, how long and the outcome
    (a failed run too, with its error). Kept in the ledger's audit table (<ledger>_audit)."""
    report = run(lambda: commands.history(settings, limit=limit or None, events=render.Console()), as_json=as_json)
    render.history(report, as_json=as_json)


@main.command()
@settings_options("database_url")
@click.option(
    "--timeout",
    type=Seconds(),
    default=60.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this long (0: try once).",
)
def wait(settings: RunnerSettings, timeout: float) -> None:
    """Wait until the database accepts connections (for container entrypoints); exit 3 on timeout."""
    took = run(lambda: commands.wait(settings, give_up_after=timeout))
    assert settings.connection is not None
    click.echo(f"Database {settings.connection.describe()} accepts connections (after {took:.1f} s).")


@main.command()
@settings_options(*DATABASE)
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
@click.option(
    "--pending-only",
    is_flag=True,
    help="Judge only files the database has not applied; findings in applied files are information. "
    "Reads the ledger (the connection options apply).",
)
def lint(settings: RunnerSettings, files: tuple[Path, ...], pending_only: bool) -> None:
    """Report statements that fail when rerun, and squawk's unsafe-change rules, as file:line:column.

    Checks every migration in the folder, or only FILES when given, and exits 7 when there are findings.
    Needs no database, unless --pending-only: then files already applied are not judged (an applied file
    cannot be edited without breaking its checksum); their findings are shown as information.
    """
    report = run(lambda: commands.lint(settings, files, pending_only=pending_only, events=render.Console()))
    render.lint(report)
    sys.exit(report.exit_code)


@main.command()
@settings_options(*DATABASE)
@click.option(
    "--rerun",
    is_flag=True,
    help="Also prove each applied file idempotent where it stands, in a scratch database (needs CREATEDB).",
)
@click.option(
    "--all",
    "all_files",
    is_flag=True,
    help="Judge lint findings in applied files too (by default they are information).",
)
@click.option(
    "--roundtrip",
    is_flag=True,
    help="Also prove each pending file reversible: apply, roll back, apply again in a scratch database "
    "(needs CREATEDB), comparing the schema at each step.",
)
def verify(settings: RunnerSettings, rerun: bool, all_files: bool, roundtrip: bool) -> None:
    """Check names, checksums, order, lint and invalid indexes; with --rerun, prove every applied file is
    idempotent where it stands in the history: the applied files are applied one at a time to a scratch
    database on the same server (migrate_verify_<hex>, dropped at the end, also on an error or Ctrl-C), and
    each is run again right after (a transactional file in a transaction that is rolled back) with the
    catalog compared before and after. The real database is only read. --rerun needs the CREATEDB privilege
    (without it: one line naming it, exit 2); roles and other cluster-wide objects a file creates outlive
    the scratch database.

    Lint judges only the files not yet applied: an applied file cannot be edited without breaking its
    checksum, so its findings are shown as information (--all judges every file).

    With --roundtrip, every pending file is applied to a scratch database (after the applied ones), rolled
    back with its down file and applied again, and the catalog must be what it was before it after the
    rollback, and what the first apply gave after the second; then all pending files together the same way.

    Exit code: the most serious failing check wins, whatever order they are shown in: 5 drift (files and
    ledger disagree), then 8 (an INVALID index, or a rerun or round trip that changes the catalog or fails),
    then 7 (lint findings).
    """
    report = run(
        lambda: commands.verify(
            settings, rerun=rerun, all_files=all_files, roundtrip=roundtrip, events=render.Console()
        )
    )
    render.verify(report)
    sys.exit(report.exit_code)


@main.command()
@click.argument("name")
@settings_options("migrations_dir", "database_url", "ledger_table")
@click.option("--down", is_flag=True, help="Also create NNN_NAME.down.sql, the SQL `migrate rollback` runs.")
@click.option(
    "--from-models",
    is_flag=True,
    help="Write the SQL that brings the schema the migrations build to the ORM models (Alembic's comparison "
    "in a scratch database: needs the `models` extra, a database and CREATEDB); TODO comments mark what a "
    "person must finish.",
)
def new(settings: RunnerSettings, name: str, down: bool, from_models: bool) -> None:
    """Create the next NNN_NAME.sql from a template and say what to do next; needs no database.

    With --from-models, the file holds the idempotent SQL (CREATE TABLE IF NOT EXISTS, ADD COLUMN IF NOT
    EXISTS, CREATE INDEX IF NOT EXISTS, ...) that brings the schema the migration files build to the models
    in Backend/src/database/models, compared by Alembic's autogenerate in a scratch database on the
    configured server (or the embedded one); renames, type changes without a cast and other decisions are
    `-- TODO:` comments in it. No file is written when the models already match.
    """
    if from_models:
        from src.database.models import Base

        result = run(lambda: commands.new_from_models(settings, name, Base.metadata, events=render.Console()))
        render.from_models(result, settings.migrations_dir)
        return

    async def go() -> Path:
        return commands.new(settings, name, down=down)

    render.new(run(go), settings.migrations_dir, down=down)


@main.command()
@settings_options(*DATABASE)
@click.option(
    "--forget",
    "forget",
    type=VersionRange(),
    multiple=True,
    metavar="N[-M]",
    help="Forget the ledger row of version N (or of each version N to M) whose file was deleted; repeatable.",
)
@click.option("--yes", is_flag=True, help="With --forget: do not ask for confirmation.")
def repair(settings: RunnerSettings, forget: tuple[tuple[int, int], ...], yes: bool) -> None:
    """Accept the current files: record the checksum and name of every applied file that was edited or
    renamed. Runs no migration SQL; use it only when the database already matches the edited files.

    With --forget N, instead drop the ledger row of version N, whose file was deleted on purpose (after a
    squash, see docs/migrations.md): asks first (--yes does not), refuses while the file still exists.
    Every change keeps an audit row in the ledger's audit table (<ledger>_audit).
    """
    if not forget:
        render.repair(run(lambda: commands.repair(settings, events=render.Console())))
        return
    confirm = None if yes else _confirm_forget(settings)
    render.forgotten(run(lambda: commands.forget(settings, forget, confirm=confirm, events=render.Console())))


def _confirm_forget(settings: RunnerSettings) -> Callable[[list[LedgerRow]], bool]:
    def confirm(rows: list[LedgerRow]) -> bool:
        render.to_forget(rows, settings.ledger)
        try:
            return click.confirm("Forget these rows?", default=False, err=True)
        except click.Abort:  # no answer: stdin closed, or Ctrl-D
            click.echo("", err=True)
            return False

    return confirm


@main.command()
@settings_options(*DATABASE)
@click.option("--version", "version", type=Version(), required=True, metavar="N", help="The last version to adopt.")
def baseline(settings: RunnerSettings, version: int) -> None:
    """Adopt an existing database: record every file up to version N as applied, without running it.

    Only for a database the runner has never applied to (an empty ledger).
    """
    render.baseline(run(lambda: commands.baseline(settings, version, events=render.Console())))


ENV_HEALTH_HOST = "HEALTH_HOST"
ENV_HEALTH_PORT = "HEALTH_PORT"
DEFAULT_HEALTH_HOST = "127.0.0.1"
DEFAULT_HEALTH_PORT = 8000


def _health_port(given: int | None) -> int:
    if given is not None:
        return given
    raw = read_environment().get(ENV_HEALTH_PORT) or str(DEFAULT_HEALTH_PORT)
    if not raw.isdigit() or not 0 <= int(raw) <= 65535:
        render.fail(ConfigError(f"{ENV_HEALTH_PORT}: expected a port number, not {raw!r}"), as_json=False)
    return int(raw)


@main.command("serve-health")
@click.option("--host", metavar="HOST", help=f"Address to listen on (env {ENV_HEALTH_HOST}; default 127.0.0.1).")
@click.option(
    "--port",
    type=click.IntRange(0, 65535),
    metavar="PORT",
    help=f"Port to listen on (env {ENV_HEALTH_PORT}; default 8000).",
)
@settings_options("migrations_dir", "ledger_table")
@click.option("--access-log", is_flag=True, help="Log every request (off by default: probes poll forever).")
def serve_health(settings: RunnerSettings, host: str | None, port: int | None, access_log: bool) -> None:
    """Serve GET /health and GET /ready over HTTP (uvicorn) until stopped.

    /health: 200 while the database answers, else 503. /ready: 200 when the database answers and no
    migration is pending, edited, renamed or missing, else 503 with the reasons. Both JSON, both within
    DB_HEALTH_CHECK_TIMEOUT. The database settings are the data layer's (DATABASE_URL, DB_*).
    """
    import uvicorn

    from src.app.health import HealthApp

    class Server(uvicorn.Server):
        """uvicorn's server, telling which signal stopped it (`uvicorn.run` swallows it and exits 0)."""

        stopped_by: int | None = None

        def handle_exit(self, sig: int, frame: FrameType | None) -> None:
            self.stopped_by = self.stopped_by or sig
            super().handle_exit(sig, frame)

    host = host or read_environment().get(ENV_HEALTH_HOST) or DEFAULT_HEALTH_HOST
    port = _health_port(port)
    try:
        with commands.database(settings, render.Console()) as where:
            # The embedded server: its location, the other settings as configured.
            located = settings.connection is None
            fields = {"host": where.host, "port": where.port, "database": where.database, "username": where.user}
            config = _database_config(**(fields if located else {}))
            app = HealthApp(config=config, migrations_dir=settings.migrations_dir, ledger=settings.ledger)
            click.echo(f"Serving /health and /ready for {config.describe()} on http://{host}:{port}", err=True)
            # The app logs when health or readiness changes (not every poll), in uvicorn's style.
            logging.basicConfig(level=logging.INFO, format="%(levelname)-9s %(name)s: %(message)s")
            server = Server(
                uvicorn.Config(app, host=host, port=port, access_log=access_log, lifespan="on", log_level="info")
            )
            with contextlib.suppress(KeyboardInterrupt):  # the signal it stopped on, raised again
                server.run()
            if not server.started:
                sys.exit(uvicorn.config.STARTUP_FAILURE)  # as `uvicorn.run` does: port taken, or the app failed
    except MigrateError as exc:
        render.fail(exc, as_json=False)
    if server.stopped_by is not None:  # the embedded server, if one was started, is stopped by now
        signals.exit_interrupted(server.stopped_by)


def _database_config(**fields: Any) -> DatabaseConfig:
    """DatabaseConfig from the environment (plus `fields`), with a bad setting as a ConfigError naming it."""
    from pydantic import ValidationError

    from src.database.config import DatabaseConfig

    try:
        return DatabaseConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems) from None
    except ValueError as exc:  # the base reader names the variable
        raise ConfigError(str(exc)) from None


def _not_healthy(error: MigrateError, ready: bool) -> NoReturn:
    if render.debug():
        traceback.print_exception(error)
    click.echo(f"migrate: not {'ready' if ready else 'healthy'}: {error}", err=True)
    sys.exit(1)


@main.command(cls=_Health)
@click.option("--ready", is_flag=True, help="Check readiness: the database answers and no migration is pending.")
@click.option(
    "--url",
    metavar="URL",
    help="Ask a running health server (e.g. http://127.0.0.1:8000) instead of connecting to the database.",
)
@click.option(
    "--timeout",
    type=Seconds(positive=True),
    default=5.0,
    show_default=True,
    metavar="SECONDS",
    help="Give up after this (more than 0).",
)
@settings_options(
    "database_url", "migrations_dir", "ledger_table", on_error=lambda exc, kwargs: _not_healthy(exc, kwargs["ready"])
)
def health(settings: RunnerSettings, ready: bool, url: str | None, timeout: float) -> None:
    """Exit 0 when the database is healthy (with --ready: and fully migrated), 1 otherwise.

    For a Docker HEALTHCHECK: every failure, a bad option or setting included, exits 1 (Docker reserves 2).
    """
    try:
        if url is not None:
            from src.app.probe import ask_server

            probe = ask_server(url, ready=ready, timeout=timeout)
        else:
            probe = asyncio.run(commands.health(settings, ready=ready, give_up_after=timeout))
    except MigrateError as exc:
        _not_healthy(exc, ready)
    if not probe.ok:
        click.echo(f"migrate: not {'ready' if ready else 'healthy'}: {probe.message}", err=True)
        sys.exit(1)
    click.echo(f"{'ready' if ready else 'healthy'}: {probe.message}")


if __name__ == "__main__":  # pragma: no cover
    main()
