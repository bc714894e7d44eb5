"""`migrate`: the command line. Thin: read options, call the runner, print, exit with a documented code.

Exit codes: 0 success; 1 a migration's SQL failed; 2 bad option or setting; 3 cannot connect;
4 a migration file is malformed; 5 files and ledger disagree (drift); 6 lock wait ran out.
Expected errors print one message to stderr and no traceback (`--debug` shows it).
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import sys
import traceback
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator, Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import asyncpg
import click

from src.postgres.settings import ConnectionSettings, read_environment

if TYPE_CHECKING:
    from src.database.config import DatabaseConfig
from src.migrate import files as files_module
from src.migrate import runner, script
from src.migrate.connect import connect, wait_until_ready
from src.migrate.errors import EXIT_LINT, EXIT_NOT_IDEMPOTENT, ConfigError, ConnectionFailed, MigrateError
from src.migrate.files import MigrationFile
from src.migrate.lock import Holder
from src.migrate.plan import PROBLEM_STATES, Plan, State
from src.migrate.script import TransactionMode
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
    from src.postgres import embedded

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


@contextlib.asynccontextmanager
async def _connection(
    settings: RunnerSettings, command: str
) -> AsyncIterator[tuple[asyncpg.Connection, ConnectionSettings]]:
    """One connection to the configured (or embedded) database, with the runner's session settings."""
    with _database(settings) as where:
        conn = await connect(where, command=command, server_settings=settings.server_settings())
        try:
            yield conn, where
        finally:
            # After a lost connection, closing it can fail too; the error being raised says more.
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await conn.close()


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

    def note(self, message: str) -> None:
        if self.open_line:
            click.echo("")
        click.echo(f"    note: {message}", err=True)
        if self.open_line:
            click.echo("   ", nl=False)

    def transaction(self, files: Sequence[MigrationFile]) -> None:
        click.echo(f"  one transaction, {len(files)} files: all are applied or none")

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
@click.option(
    "--transaction",
    type=click.Choice([mode.value for mode in TransactionMode]),
    help="all: every pending file in one transaction, so a failure leaves the database as it was; per-file: "
    "each file commits on its own (env MIGRATE_TRANSACTION; default all).",
)
@click.option("--dry-run", is_flag=True, help="Show the plan and the SQL it would run; change nothing.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on stdout.")
def apply(
    target: int | None,
    allow_out_of_order: bool,
    transaction: str | None,
    dry_run: bool,
    as_json: bool,
    **kwargs: Any,
) -> None:
    """Apply every pending migration in order, recording each in the ledger.

    All pending files run in one transaction with their ledger rows (or one per file with --transaction
    per-file); a file PostgreSQL refuses in a transaction (CREATE INDEX CONCURRENTLY, ...) runs on its own
    between them.
    """
    settings = _settings(**_split_common(kwargs), transaction=transaction)
    options = runner.Options(
        ledger=settings.ledger,
        lock_wait=settings.lock_wait,
        target=target,
        allow_out_of_order=allow_out_of_order,
        transaction=settings.transaction,
    )

    async def go() -> None:
        files = _discover(settings)
        async with _connection(settings, "apply") as (conn, where):
            if dry_run:
                plan = await runner.read_plan(conn, files, options)
                _print_dry_run(plan, settings.transaction, as_json=as_json)
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


def _print_dry_run(plan: Plan, mode: TransactionMode, *, as_json: bool) -> None:
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
    transactional = {v: all(s.transactional for s in stmts) for v, stmts in statements.items()}
    for in_transaction, group in script.groups(plan.to_apply, transactional, mode):
        if not in_transaction:
            how = "outside a transaction, statement by statement"
        elif len(group) == 1:
            how = "in a transaction of its own"
        else:
            how = f"in one transaction, all {len(group)} files or none"
        names = (
            ", ".join(f.filename for f in group) if len(group) <= 3 else f"{group[0].filename} .. {group[-1].filename}"
        )
        click.echo(f"\n-- {names}: {how}")
        for file in group:
            stmts = statements[file.version]
            click.echo(f"\n-- {file.filename} ({len(stmts)} statement(s))")
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
        async with _connection(settings, "status") as (conn, where):
            plan = await runner.read_plan(conn, files, options)
            server_version = str(await conn.fetchval("SELECT current_setting('server_version')")).split()[0]
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


@main.command()
@click.option(
    "--migrations-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of NNN_description.sql files (env MIGRATIONS_DIR).",
)
@click.argument("files", nargs=-1, type=click.Path(path_type=Path, dir_okay=False, exists=True))
def lint(migrations_dir: Path | None, files: tuple[Path, ...]) -> None:
    """Report statements that fail when rerun, and squawk's unsafe-change rules, as file:line:column.

    Checks every migration in the folder, or only FILES when given. Exits 7 when there are findings.
    Needs no database.
    """
    from src.migrate import lint as linter

    settings = _settings(migrations_dir=migrations_dir)

    async def go() -> list[linter.Finding]:
        chosen = [files_module.load(p) for p in files] if files else _discover(settings)
        return linter.lint(chosen)

    findings = _run(go)
    for finding in findings:
        click.echo(str(finding))
    if findings:
        click.echo(f"{len(findings)} finding(s).", err=True)
        sys.exit(EXIT_LINT)
    click.echo("No findings.")


@main.command()
@_common_options
@click.option("--rerun", is_flag=True, help="Also re-run each applied file in a rolled-back transaction.")
def verify(rerun: bool, **kwargs: Any) -> None:
    """Check names, checksums, order, lint and invalid indexes; with --rerun, prove every applied file is
    idempotent by running it again inside a transaction that is rolled back and comparing the catalog.

    Exits 5 on drift, 7 on lint findings, 8 when a rerun changes the catalog or an index is INVALID.
    --rerun takes the same locks the files take (each is held only for its own rolled-back transaction).
    """
    from src.migrate import lint as linter
    from src.migrate import verify as verifier

    settings = _settings(**_split_common(kwargs))
    options = runner.Options(ledger=settings.ledger)

    async def go() -> int:
        files = _discover(settings)
        click.echo(f"ok    names and versions: {len(files)} file(s)")
        findings = linter.lint(files)
        async with _connection(settings, "verify") as (conn, _):
            plan = await runner.read_plan(conn, files, options)
            invalid = await verifier.invalid_indexes(conn)
            rerun_result = await verifier.rerun(conn, plan) if rerun and not plan.problems else None
        code = 0
        if plan.problems:
            click.echo("FAIL  checksums and order:")
            for problem in plan.problems:
                click.echo(f"      {problem}")
            code = code or 5
        else:
            click.echo(
                f"ok    checksums and order: {plan.count(State.APPLIED)} applied, {plan.count(State.PENDING)} pending"
            )
        if findings:
            click.echo(f"FAIL  lint: {len(findings)} finding(s)")
            for finding in findings:
                click.echo(f"      {finding}")
            code = code or EXIT_LINT
        else:
            click.echo("ok    lint: no findings")
        if invalid:
            click.echo(
                f"FAIL  indexes: INVALID (left by an interrupted CREATE INDEX CONCURRENTLY): {', '.join(invalid)}"
            )
            code = code or EXIT_NOT_IDEMPOTENT
        else:
            click.echo("ok    indexes: none INVALID")
        if rerun_result is not None:
            skipped = (
                f"; skipped (cannot run in a transaction): {', '.join(rerun_result.skipped)}"
                if rerun_result.skipped
                else ""
            )
            if rerun_result.problems:
                click.echo(f"FAIL  rerun{skipped}:")
                for problem in rerun_result.problems:
                    click.echo(f"      {problem}")
                code = code or EXIT_NOT_IDEMPOTENT
            else:
                click.echo(
                    f"ok    rerun: {len(rerun_result.checked)} file(s) re-run, rolled back, catalog unchanged{skipped}"
                )
        elif rerun:
            click.echo("skip  rerun: fix the checksums and order first")
        return code

    code = _run(go)
    sys.exit(code)


@main.command()
@click.argument("name")
@click.option(
    "--migrations-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder of NNN_description.sql files (env MIGRATIONS_DIR).",
)
def new(name: str, migrations_dir: Path | None) -> None:
    """Create the next NNN_NAME.sql from a template; needs no database."""
    from src.migrate.files import new_file

    settings = _settings(migrations_dir=migrations_dir)
    path = _run(lambda: _async(new_file, settings.migrations_dir, name))
    click.echo(f"Created {_shown_path(path)}; write the migration, then `migrate lint` and `migrate apply`.")


async def _async(func: Callable[..., T], *args: Any) -> T:
    return func(*args)


@main.command()
@_common_options
def repair(**kwargs: Any) -> None:
    """Accept the current files: record the checksum and name of every applied file that was edited or
    renamed. Runs no migration SQL; use it only when the database already matches the edited files."""
    from src.migrate.repair import repair as do_repair

    settings = _settings(**_split_common(kwargs))
    options = runner.Options(ledger=settings.ledger, lock_wait=settings.lock_wait)

    async def go() -> None:
        files = _discover(settings)
        async with _connection(settings, "repair") as (conn, _):
            repaired = await do_repair(conn, files, options)
        for item in repaired:
            click.echo(
                f"  {item.file.filename}: recorded checksum {item.file.checksum} (was {item.old_checksum})"
                + (f", name {item.file.name!r} (was {item.old_name!r})" if item.old_name != item.file.name else "")
            )
        click.echo(f"Repaired {len(repaired)} ledger row(s)." if repaired else "Nothing to repair.")

    _run(go)


@main.command()
@_common_options
@click.option("--version", "version", type=int, required=True, metavar="N", help="The last version to adopt.")
def baseline(version: int, **kwargs: Any) -> None:
    """Adopt an existing database: record every file up to version N as applied, without running it.

    Only for a database the runner has never applied to (an empty ledger).
    """
    from src.migrate.repair import baseline as do_baseline

    settings = _settings(**_split_common(kwargs))
    options = runner.Options(ledger=settings.ledger, lock_wait=settings.lock_wait)

    async def go() -> None:
        files = _discover(settings)
        async with _connection(settings, "baseline") as (conn, _):
            adopted = await do_baseline(conn, files, options, version)
        for file in adopted:
            click.echo(f"  {file.filename}: recorded as applied (baseline), not run")
        click.echo(f"Baselined {len(adopted)} migration(s); database is at version {adopted[-1].version:03d}.")

    _run(go)


ENV_HEALTH_HOST = "HEALTH_HOST"
ENV_HEALTH_PORT = "HEALTH_PORT"
DEFAULT_HEALTH_HOST = "127.0.0.1"
DEFAULT_HEALTH_PORT = 8000


def _database_config(**fields: Any) -> DatabaseConfig:
    """DatabaseConfig from the environment (plus `fields`), with a bad setting as a ConfigError naming it."""
    from pydantic import ValidationError

    from src.database.config import DatabaseConfig

    try:
        return DatabaseConfig(**fields)
    except ValidationError as exc:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in exc.errors())
        raise ConfigError(problems) from None


@main.command("serve-health")
@click.option("--host", metavar="HOST", help=f"Address to listen on (env {ENV_HEALTH_HOST}; default 127.0.0.1).")
@click.option("--port", type=int, metavar="PORT", help=f"Port to listen on (env {ENV_HEALTH_PORT}; default 8000).")
@click.option(
    "--migrations-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder /ready compares with the ledger (env MIGRATIONS_DIR).",
)
@click.option("--ledger-table", metavar="SCHEMA.TABLE", help="Ledger table (env MIGRATIONS_TABLE).")
@click.option("--access-log", is_flag=True, help="Log every request (off by default: probes poll forever).")
def serve_health(
    host: str | None, port: int | None, migrations_dir: Path | None, ledger_table: str | None, access_log: bool
) -> None:
    """Serve GET /health and GET /ready over HTTP (uvicorn) until stopped.

    /health: 200 while the database answers, else 503. /ready: 200 when the database answers and no
    migration is pending, edited, renamed or missing, else 503 with the reasons. Both JSON, both within
    DB_HEALTH_CHECK_TIMEOUT. The database settings are the data layer's (DATABASE_URL, DB_*).
    """
    import uvicorn

    from src.database.health import HealthApp

    settings = _settings(migrations_dir=migrations_dir, ledger_table=ledger_table)
    environ = read_environment()
    host = host or environ.get(ENV_HEALTH_HOST) or DEFAULT_HEALTH_HOST
    if port is None:
        raw_port = environ.get(ENV_HEALTH_PORT) or str(DEFAULT_HEALTH_PORT)
        if not raw_port.isdigit() or not 0 <= int(raw_port) <= 65535:
            _fail(ConfigError(f"{ENV_HEALTH_PORT}: expected a port number, not {raw_port!r}"), as_json=False)
        port = int(raw_port)

    def serve() -> None:
        with _database(settings) as where:
            if settings.connection is None:  # the embedded server: its location, other settings as configured
                fields = {"host": where.host, "port": where.port, "database": where.database, "username": where.user}
                config = _database_config(**fields)
            else:
                config = _database_config()
            app = HealthApp(config=config, migrations_dir=settings.migrations_dir, ledger=settings.ledger)
            click.echo(f"Serving /health and /ready for {config.describe()} on http://{host}:{port}", err=True)
            # The app logs when health or readiness changes (not every poll), in uvicorn's style.
            logging.basicConfig(level=logging.INFO, format="%(levelname)-9s %(name)s: %(message)s")
            uvicorn.run(app, host=host, port=port, access_log=access_log, lifespan="on", log_level="info")

    try:
        serve()
    except MigrateError as exc:
        _fail(exc, as_json=False)


@main.command()
@click.option("--ready", is_flag=True, help="Check readiness: the database answers and no migration is pending.")
@click.option(
    "--url",
    metavar="URL",
    help="Ask a running health server (e.g. http://127.0.0.1:8000) instead of connecting to the database.",
)
@click.option("--timeout", type=float, default=5.0, show_default=True, metavar="SECONDS", help="Give up after this.")
@click.option("--database-url", metavar="URL", help="As for `apply` (env DATABASE_URL or DB_*).")
@click.option(
    "--migrations-dir",
    type=click.Path(path_type=Path, file_okay=False),
    help="Folder --ready compares with the ledger (env MIGRATIONS_DIR).",
)
@click.option("--ledger-table", metavar="SCHEMA.TABLE", help="Ledger table (env MIGRATIONS_TABLE).")
def health(
    ready: bool,
    url: str | None,
    timeout: float,
    database_url: str | None,
    migrations_dir: Path | None,
    ledger_table: str | None,
) -> None:
    """Exit 0 when the database is healthy (with --ready: and fully migrated), 1 otherwise.

    For a Docker HEALTHCHECK: every failure, a bad setting included, exits 1 (Docker reserves 2).
    """
    from src.migrate import probe

    what = "ready" if ready else "healthy"
    try:
        if url is not None:
            ok, message = probe.ask_server(url, ready=ready, timeout=timeout)
        else:
            settings = resolve(
                read_environment(), database_url=database_url, migrations_dir=migrations_dir, ledger_table=ledger_table
            )
            ok, message = asyncio.run(probe.ask_database(settings, ready=ready, give_up_after=timeout))
    except (MigrateError, ValueError) as exc:
        if _debug():
            traceback.print_exception(exc)
        ok, message = False, str(exc)
    if not ok:
        click.echo(f"migrate: not {what}: {message}", err=True)
        sys.exit(1)
    click.echo(f"{what}: {message}")


if __name__ == "__main__":  # pragma: no cover
    main()
