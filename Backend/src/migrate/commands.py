"""The runner as a library: one function per `migrate` command, each returning a result object.

    from src.migrate import commands

    settings = commands.settings()                 # the environment and .env, as the CLI reads them
    report = await commands.apply(settings)        # an ApplyReport; raises a MigrateError on failure
    print([a.file.filename for a in report.applied], report.head)

Nothing here prints or exits. The CLI (`src.app.cli`) renders these results and exits with their
`exit_code`; the health app and the tests call the same functions. When `settings.connection` is None
(no database configured), a database command starts the embedded server (or joins the one already
running on its data folder) for the length of the call and tells `events.using_embedded`.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator, Callable, Collection, Iterator, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg

from src.migrate import files as files_module
from src.migrate import ledger, runner, script
from src.migrate.connect import connect, wait_until_ready
from src.migrate.errors import ConfigError, ConnectionFailed, Exit, ReadOnlyServer
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerRow, LedgerTable
from src.migrate.plan import Plan, State
from src.migrate.repeatable import RepeatableEntry
from src.migrate.script import TransactionMode
from src.migrate.settings import RunnerSettings, resolve
from src.postgres.settings import ConnectionSettings, read_environment

if TYPE_CHECKING:
    from sqlalchemy import MetaData

    from src.migrate.audit import AuditRow
    from src.migrate.autogen import Generated
    from src.migrate.dump import Dump
    from src.migrate.lint import Finding
    from src.migrate.lock import Holder
    from src.migrate.repair import Forgotten, Repaired, VersionRange
    from src.migrate.rollback import RollbackPlan
    from src.migrate.sql import Statement
    from src.migrate.verify import RerunResult, RoundtripResult
    from src.postgres.embedded import EmbeddedServer


class Events:
    """What a command tells while it works; every method does nothing here. Subclass it to show progress
    (the CLI prints each file as it starts and its time as it ends)."""

    def using_embedded(self, server: EmbeddedServer) -> None:
        """No database is configured, so the command runs on the embedded server in `server.data_dir`."""

    def connected(self, where: ConnectionSettings, ledger: LedgerTable) -> None:
        """`apply` is connected and about to look for pending files."""

    def lock_busy(self, holder: Holder | None) -> None:
        """Another runner holds the migration lock; this one waits (up to `lock_wait`)."""

    def note(self, message: str) -> None:
        """Something the user should know that is not an error (an INVALID index dropped and rebuilt)."""

    def transaction(self, files: Sequence[MigrationFile]) -> None:
        """Several files are about to run in one transaction: all of them are applied, or none."""

    def starting(self, file: MigrationFile, transactional: bool) -> None:
        """A file starts (`transactional` False: it runs outside a transaction, statement by statement)."""

    def finished(self, applied: runner.Applied) -> None:
        """A file was applied (in a shared transaction: its part of it ran, the commit is still to come)."""

    def failed_at(self, file: MigrationFile | None, ran: Sequence[MigrationFile]) -> None:
        """`apply` stops at an error in `file` (None: in one of `ran`, which one is unknown); otherwise `ran`
        are the files sent with it, before it, which ran and were rolled back with it."""


_QUIET = Events()


def settings(**options: Any) -> RunnerSettings:
    """The settings a command runs with: `options` (the command line's names: database_url, migrations_dir,
    ledger_table, lock_wait, lock_timeout, statement_timeout, transaction; None = not given) over the
    environment over `.env`. A bad value is a ConfigError naming the setting."""
    try:
        return resolve(read_environment(), **options)
    except ValueError as exc:
        raise ConfigError(str(exc)) from None


@contextlib.contextmanager
def database(settings: RunnerSettings, events: Events = _QUIET) -> Iterator[ConnectionSettings]:
    """The configured server, or else the embedded one: the dev server `migrate db start` keeps running
    (used and left running), or one started here and stopped on exit, an exception or Ctrl-C included.

    SIGINT and SIGTERM that arrive while the server starts or stops are held until it is up (and this
    function's cleanup in place) or down, so an interrupt never leaves a server nobody stops.
    """
    if settings.connection is not None:
        yield settings.connection
        return
    from src.postgres import embedded

    with embedded.DeferredSignals() as starting:
        try:
            server = embedded.start(settings.embedded_dir)
        except (embedded.DataDirError, embedded.NotInstalled) as exc:
            raise ConfigError(str(exc)) from exc
        except embedded.EmbeddedServerError as exc:
            raise ConnectionFailed(str(exc)) from exc
    try:
        starting.deliver()
        events.using_embedded(server)
        yield server.settings()
    finally:
        with embedded.DeferredSignals() as stopping:
            server.stop()
        stopping.deliver()


@contextlib.asynccontextmanager
async def connection(
    settings: RunnerSettings, command: str, events: Events = _QUIET
) -> AsyncIterator[tuple[asyncpg.Connection, ConnectionSettings]]:
    """One connection with the runner's session settings, named `migrate COMMAND host:pid` on the server."""
    with database(settings, events) as where:
        conn = await connect(where, command=command)
        try:
            yield conn, where
        finally:
            # After a lost connection, closing it can fail too; the error being raised says more.
            with contextlib.suppress(asyncpg.InterfaceError, OSError):
                await conn.close()


def _lock_connection(where: ConnectionSettings, command: str) -> runner.LockConnector:
    """Opens the connection that holds the migration lock while a run's transactions come and go."""

    async def connect_for_lock() -> asyncpg.Connection:
        return await connect(where, command=f"{command} lock")

    return connect_for_lock


def check_target(files: Sequence[MigrationFile], target: int | None, migrations_dir: Path) -> None:
    """Refuse a `--target` beyond the last file (a ConfigError naming the highest version), which would
    otherwise apply everything without a word."""
    if target is None:
        return
    if not files:
        raise ConfigError(f"--target {target}: there are no migration files in {migrations_dir}")
    last = files[-1]
    if target > last.version:
        raise ConfigError(
            f"--target {target}: no migration is numbered that high; the highest is {last.version:03d} "
            f"({last.filename})"
        )


def _options(settings: RunnerSettings, **overrides: Any) -> runner.Options:
    return runner.Options(
        ledger=settings.ledger,
        lock_wait=settings.lock_wait,
        transaction=settings.transaction,
        session=settings.session(),
        **overrides,
    )


@dataclass(frozen=True)
class ApplyReport:
    """What `apply` did."""

    result: runner.ApplyResult
    database: str
    """`user@host:port/database` (never the password)."""
    ledger: LedgerTable
    elapsed_ms: float
    """From connected to done: planning, the lock wait and the files."""
    target: int | None = None
    """The `target` asked for (None: every pending file)."""
    repeatables: runner.RepeatablesResult | None = None
    """The repeatable scripts' run; None when the folder has none, or `target` left numbered files pending."""
    dump: Dump | None = None
    """The schema written to `settings.dump_file` after the run (None: no dump file is set)."""

    @property
    def applied(self) -> list[runner.Applied]:
        return self.result.applied

    @property
    def head(self) -> int | None:
        return self.result.head

    @property
    def exit_code(self) -> Exit:
        return Exit.OK


async def apply(
    settings: RunnerSettings,
    *,
    target: int | None = None,
    allow_out_of_order: bool = False,
    events: Events = _QUIET,
) -> ApplyReport:
    """Apply every pending migration (up to `target`) in order, each recorded in the ledger; then, when
    `settings.dump_file` is set, write the schema there (`dump`; a failure there is a DumpFailed, the
    migrations staying applied)."""
    folder = files_module.discover_all(settings.migrations_dir)
    files = folder.migrations
    check_target(files, target, settings.migrations_dir)
    options = _options(settings, target=target, allow_out_of_order=allow_out_of_order)
    async with connection(settings, "apply", events) as (conn, where):
        options = replace(options, transaction_pooled=where.transaction_pooling)
        events.connected(where, settings.ledger)
        started = time.perf_counter()
        lock_connection = _lock_connection(where, "apply")
        try:
            result = await runner.apply(conn, files, options, events, lock_connection=lock_connection)
        except ReadOnlyServer as exc:
            raise ReadOnlyServer(f"{where.describe()}: {exc}") from None
        repeatables = None
        if folder.repeatables and _all_applied(result.plan, result.applied):
            repeatables = await runner.apply_repeatables(
                conn, folder.repeatables, options, events, lock_connection=lock_connection
            )
        elapsed_ms = (time.perf_counter() - started) * 1000
        written = None
        if settings.dump_file is not None:
            written = await _dump_to(conn, where, settings, settings.dump_file, after=result.applied)
    return ApplyReport(result, where.describe(), settings.ledger, elapsed_ms, target, repeatables, written)


async def _dump_to(
    conn: asyncpg.Connection,
    where: ConnectionSettings,
    settings: RunnerSettings,
    path: Path,
    after: Sequence[runner.Applied] | None = None,
) -> Dump:
    from dataclasses import replace

    from src.migrate import dump as dumper
    from src.migrate.errors import DumpFailed

    try:
        made = await dumper.dump(conn, where, settings.ledger)
        dumper.write(made.sql, path)
    except (DumpFailed, OSError) as exc:
        message = f"{exc}" if isinstance(exc, DumpFailed) else f"cannot write the schema to {path}: {exc}"
        if after:
            message += f" (the {len(after)} migration(s) applied stay applied)"
        raise DumpFailed(message) from exc
    return replace(made, path=path)


async def dump(settings: RunnerSettings, path: Path | None = None, *, events: Events = _QUIET) -> Dump:
    """The database's schema as SQL (`src.migrate.dump`), written to `path` when given (else returned only)."""
    from src.migrate import dump as dumper

    async with connection(settings, "dump", events) as (conn, where):
        if path is not None:
            return await _dump_to(conn, where, settings, path)
        return await dumper.dump(conn, where, settings.ledger)


def _all_applied(plan: Plan, applied: Sequence[runner.Applied]) -> bool:
    """Whether no numbered file is left pending: repeatable scripts are written for the schema the last
    file gives, so they wait while `--target` holds files back."""
    done = {a.file.version for a in applied}
    return not any(e.state is State.PENDING and e.version not in done for e in plan.entries)


@dataclass(frozen=True)
class DryRunGroup:
    """Files that would run together: in one transaction, or (one file) outside any."""

    in_transaction: bool
    files: list[MigrationFile]


@dataclass(frozen=True)
class DryRun:
    """What `apply` would do, and the SQL it would send; nothing was changed."""

    plan: Plan
    mode: TransactionMode
    statements: dict[int, list[Statement]]
    """Each pending file's statements, by version."""
    groups: list[DryRunGroup]
    target: int | None = None
    repeatables: list[RepeatableEntry] = field(default_factory=list)
    """Every repeatable script and row; the `due` ones run after the numbered files."""
    repeatable_statements: dict[str, list[Statement]] = field(default_factory=dict)
    """Each due repeatable script's statements, by file name."""

    @property
    def head(self) -> int | None:
        return self.plan.head

    @property
    def due_repeatables(self) -> list[MigrationFile]:
        return [e.file for e in self.repeatables if e.due and e.file is not None]

    @property
    def exit_code(self) -> Exit:
        return Exit.OK

    def transactional(self, file: MigrationFile) -> bool:
        return all(s.transactional for s in self.statements[file.version])

    def adds_enum_value(self, file: MigrationFile) -> bool:
        """Whether the file adds an enum value, so its transaction commits after it (in `all` mode)."""
        return script.adds_enum_value(self.statements[file.version])


async def dry_run(
    settings: RunnerSettings, *, target: int | None = None, allow_out_of_order: bool = False, events: Events = _QUIET
) -> DryRun:
    """The plan `apply` would carry out now, grouped into transactions as it would run them."""
    from src.migrate import sql

    folder = files_module.discover_all(settings.migrations_dir)
    files = folder.migrations
    check_target(files, target, settings.migrations_dir)
    options = _options(settings, target=target, allow_out_of_order=allow_out_of_order)
    async with connection(settings, "apply", events) as (conn, _):
        plan = await runner.read_plan(conn, files, options)
        repeatables = await runner.read_repeatables(conn, folder.repeatables, options)
    plan.raise_for_drift()
    if not _all_applied(plan, [runner.Applied(f, 0.0, True) for f in plan.to_apply]):
        repeatables = [e for e in repeatables if not e.due]  # held back with the files --target leaves
    statements = {f.version: sql.parse(f) for f in plan.to_apply}
    transactional = {v: all(s.transactional for s in stmts) for v, stmts in statements.items()}
    enum_files = {v for v, stmts in statements.items() if script.adds_enum_value(stmts)}
    groups = [
        DryRunGroup(in_transaction, list(group))
        for in_transaction, group in script.groups(plan.to_apply, transactional, settings.transaction, enum_files)
    ]
    repeatable_statements = {
        e.filename: runner.repeatable_statements(e.file) for e in repeatables if e.due and e.file is not None
    }
    return DryRun(plan, settings.transaction, statements, groups, target, repeatables, repeatable_statements)


@dataclass(frozen=True)
class RollbackReport:
    """What `rollback` did, or with `dry_run` would do (then nothing ran and `statements` holds the SQL)."""

    plan: RollbackPlan
    rolled_back: list[runner.Applied]
    """The down files that ran, newest first (empty for a dry run)."""
    database: str
    ledger: LedgerTable
    elapsed_ms: float
    lock_wait_s: float | None = None
    dry_run: bool = False
    statements: dict[int, list[Statement]] = field(default_factory=dict)
    """With `dry_run`: each down file's statements, by version."""

    @property
    def head(self) -> int | None:
        return self.plan.head

    @property
    def exit_code(self) -> Exit:
        return Exit.OK

    def transactional(self, down: MigrationFile) -> bool:
        return all(s.transactional for s in self.statements[down.version])


async def rollback(
    settings: RunnerSettings,
    *,
    to: int | None = None,
    steps: int | None = None,
    dry_run: bool = False,
    events: Events = _QUIET,
) -> RollbackReport:
    """Undo the last applied migration (`steps` K: the last K; `to` N: every one above N) by running the down
    files newest first, each in its own transaction with its ledger row's deletion, under the runner's lock.
    Refuses, before anything runs, a file on the way without a down file (NoDownScript, exit 11), gone from
    the folder, or any drift. `dry_run` shows what would run and changes nothing."""
    from src.migrate import rollback as planner
    from src.migrate import sql

    files = files_module.discover(settings.migrations_dir)
    options = _options(settings)
    async with connection(settings, "rollback", events) as (conn, where):
        if dry_run:
            chosen = planner.choose(await runner.read_plan(conn, files, options), to=to, steps=steps)
            statements = {s.down.version: sql.parse(s.down) for s in chosen.steps}
            return RollbackReport(chosen, [], where.describe(), settings.ledger, 0.0, None, True, statements)
        events.connected(where, settings.ledger)
        started = time.perf_counter()
        result = await runner.rollback(
            conn,
            files,
            options,
            to=to,
            steps=steps,
            progress=events,
            lock_connection=_lock_connection(where, "rollback"),
        )
        elapsed_ms = (time.perf_counter() - started) * 1000
    where_text = where.describe()
    return RollbackReport(result.plan, result.rolled_back, where_text, settings.ledger, elapsed_ms, result.lock_wait_s)


@dataclass(frozen=True)
class Status:
    """Every migration file and ledger row, and where they are."""

    plan: Plan
    database: str
    server_version: str
    migrations_dir: Path
    ledger: LedgerTable
    repeatables: list[RepeatableEntry] = field(default_factory=list)

    @property
    def applied(self) -> int:
        return sum(1 for e in self.plan.entries if e.row is not None)

    @property
    def pending(self) -> int:
        return sum(1 for e in self.plan.entries if e.row is None and e.file is not None)

    @property
    def exit_code(self) -> Exit:
        return Exit.DRIFT if self.plan.problems else Exit.OK


async def status(settings: RunnerSettings, *, events: Events = _QUIET) -> Status:
    folder = files_module.discover_all(settings.migrations_dir)
    async with connection(settings, "status", events) as (conn, where):
        plan = await runner.read_plan(conn, folder.migrations, _options(settings))
        repeatables = await runner.read_repeatables(conn, folder.repeatables, _options(settings))
        # From the startup message: no query (and no prepared statement a pooler could mix up).
        server_version = conn.get_settings().server_version.split()[0]
    return Status(plan, where.describe(), server_version, settings.migrations_dir, settings.ledger, repeatables)


def _judge(
    findings: Sequence[Finding], files: Sequence[MigrationFile], applied: Collection[int]
) -> tuple[list[Finding], list[Finding]]:
    """(judged, information): findings in files whose version is `applied` are information only, since an
    applied file cannot be edited without breaking its checksum."""
    settled = {f.filename for f in files if f.version in applied}
    return [f for f in findings if f.file not in settled], [f for f in findings if f.file in settled]


@dataclass(frozen=True)
class LintReport:
    findings: list[Finding]
    """The findings that count (exit 7)."""
    notes: list[Finding] = field(default_factory=list)
    """For information only (a file without statements); they never fail the command."""
    information: list[Finding] = field(default_factory=list)
    """Findings in files already applied (with `pending_only`): shown, not judged."""
    pending_only: bool = False

    @property
    def exit_code(self) -> Exit:
        return Exit.LINT if self.findings else Exit.OK


async def lint(
    settings: RunnerSettings, paths: Sequence[Path] = (), *, pending_only: bool = False, events: Events = _QUIET
) -> LintReport:
    """Lint every migration in the folder, or only `paths`. Needs no database, unless `pending_only`: then
    the ledger is read and only files not yet applied are judged (the others' findings are information)."""
    from src.migrate import lint as linter

    chosen = [files_module.load(p) for p in paths] if paths else files_module.discover(settings.migrations_dir)
    findings, notes = linter.lint(chosen), linter.notes(chosen)
    if not pending_only:
        return LintReport(findings, notes)
    async with connection(settings, "lint", events) as (conn, _), conn.transaction():
        applied = {row.version for row in await ledger.read(conn, settings.ledger)}
    judged, information = _judge(findings, chosen, applied)
    return LintReport(judged, notes, information, pending_only=True)


@dataclass(frozen=True)
class Verification:
    """The outcome of each check `verify` makes."""

    files: int
    plan: Plan
    findings: list[Finding]
    """Lint findings that count: in files not yet applied (in every file with `all_files`)."""
    invalid_indexes: list[str]
    rerun: RerunResult | None
    """None when no rerun was asked for, or when drift kept it from running (`rerun_requested` tells)."""
    rerun_requested: bool = False
    information: list[Finding] = field(default_factory=list)
    """Lint findings in applied files, shown but not judged (empty with `all_files`)."""
    all_files: bool = False
    roundtrip: RoundtripResult | None = None
    """None when no round trip was asked for, or when drift kept it from running."""
    roundtrip_requested: bool = False
    repeatables: list[RepeatableEntry] = field(default_factory=list)

    @property
    def exit_code(self) -> Exit:
        """The most serious failing check's code, whatever the order they are shown in: drift (5: `apply`
        refuses to run), then a database that is not what the files say (8: an INVALID index, a rerun or
        round trip that changes the catalog or fails), then lint findings (7: how files are written)."""
        if self.plan.problems:
            return Exit.DRIFT
        if self.invalid_indexes or any(r is not None and r.problems for r in (self.rerun, self.roundtrip)):
            return Exit.NOT_IDEMPOTENT
        if self.findings:
            return Exit.LINT
        return Exit.OK


async def verify(
    settings: RunnerSettings,
    *,
    rerun: bool = False,
    all_files: bool = False,
    roundtrip: bool = False,
    events: Events = _QUIET,
) -> Verification:
    """Names, checksums and order, lint, INVALID indexes; with `rerun`, every applied file is applied to a
    scratch database in order and run again right after, where it stands in the history, and the catalog
    must not change (see `src.migrate.verify`; a role without CREATEDB is a ConfigError). With `roundtrip`,
    every pending file is applied, rolled back and applied again in a scratch database, the catalog compared
    at each step. Lint judges the files not yet applied (findings in applied ones are information), or every
    file with `all_files`."""
    from src.migrate import lint as linter
    from src.migrate import verify as verifier

    folder = files_module.discover_all(settings.migrations_dir)
    files = folder.migrations
    findings = linter.lint(files)
    async with connection(settings, "verify", events) as (conn, where):
        options = _options(settings)
        plan = await runner.read_plan(conn, files, options)
        repeatables = await runner.read_repeatables(conn, folder.repeatables, options)
        async with conn.transaction():
            invalid = await verifier.invalid_indexes(conn)
        rerun_result = roundtrip_result = None
        if rerun and not plan.problems:
            rerun_result = await verifier.rerun(conn, plan, where, options, note=events.note)
        if roundtrip and not plan.problems:
            roundtrip_result = await verifier.roundtrip(conn, plan, where, options, note=events.note)
    applied = () if all_files else {e.version for e in plan.entries if e.row is not None}
    judged, information = _judge(findings, files, applied)
    return Verification(
        len(files),
        plan,
        judged,
        invalid,
        rerun_result,
        rerun_requested=rerun,
        information=information,
        all_files=all_files,
        roundtrip=roundtrip_result,
        roundtrip_requested=roundtrip,
        repeatables=repeatables,
    )


def new(settings: RunnerSettings, name: str, *, down: bool = False) -> Path:
    """Write the next-numbered migration file from the template (with `down`, its down file too); needs no
    database."""
    return files_module.new_file(settings.migrations_dir, name, down=down)


@dataclass(frozen=True)
class FromModels:
    """What `new --from-models` found and wrote."""

    generated: Generated
    path: Path | None
    """The file written; None when the models already match (nothing to write)."""

    @property
    def exit_code(self) -> Exit:
        return Exit.OK


async def new_from_models(
    settings: RunnerSettings, name: str, metadata: MetaData, *, events: Events = _QUIET
) -> FromModels:
    """Write the next-numbered file with the idempotent SQL that brings the schema the migration files build
    to `metadata` (the ORM models), compared by Alembic in a scratch database (`src.migrate.autogen`); what
    the comparison cannot decide is in it as `-- TODO:` comments. Nothing is written when they match.
    Needs Alembic (the `models` extra; without it a ConfigError) and the CREATEDB privilege."""
    from src.migrate import autogen

    autogen.require_alembic()  # before connecting: the one line naming the extra, whatever the database
    files = files_module.discover(settings.migrations_dir)
    async with connection(settings, "new", events) as (conn, where):
        generated = await autogen.generate(
            conn,
            where,
            files,
            _options(settings),
            metadata,
            note=events.note,
        )
    if generated.empty:
        return FromModels(generated, None)
    path = files_module.new_file(settings.migrations_dir, name, lambda filename: autogen.file_text(filename, generated))
    return FromModels(generated, path)


async def repair(settings: RunnerSettings, *, events: Events = _QUIET) -> list[Repaired]:
    """Record the current checksum and name of every applied file that was edited or renamed."""
    from src.migrate.repair import repair as do_repair

    files = files_module.discover(settings.migrations_dir)
    async with connection(settings, "repair", events) as (conn, where):
        return await do_repair(conn, files, _options(settings), lock_connection=_lock_connection(where, "repair"))


async def forget(
    settings: RunnerSettings,
    versions: Sequence[VersionRange],
    *,
    confirm: Callable[[list[LedgerRow]], bool] | None = None,
    events: Events = _QUIET,
) -> list[Forgotten]:
    """Drop the ledger rows of deleted files (`versions`: ranges, both ends included), each kept in an audit
    row. Refuses a version whose file still exists, or that has no row. `confirm` is asked first with the
    rows (None: confirmed); answering no changes nothing (a ConfigError)."""
    from src.migrate.repair import forget as do_forget

    files = files_module.discover(settings.migrations_dir)
    async with connection(settings, "repair", events) as (conn, where):
        return await do_forget(
            conn, files, _options(settings), versions, confirm, lock_connection=_lock_connection(where, "repair")
        )


async def baseline(settings: RunnerSettings, version: int, *, events: Events = _QUIET) -> list[MigrationFile]:
    """Record every file up to `version` as applied without running it (an empty ledger only)."""
    from src.migrate.repair import baseline as do_baseline

    files = files_module.discover(settings.migrations_dir)
    async with connection(settings, "baseline", events) as (conn, where):
        return await do_baseline(
            conn,
            files,
            _options(settings),
            version,
            note=events.note,
            lock_connection=_lock_connection(where, "baseline"),
        )


@dataclass(frozen=True)
class History:
    """The audit trail, newest first (`src.migrate.audit`)."""

    rows: list[AuditRow]
    table: LedgerTable
    """The audit table read."""

    @property
    def exit_code(self) -> Exit:
        return Exit.OK


async def history(settings: RunnerSettings, *, limit: int | None = 20, events: Events = _QUIET) -> History:
    """The last `limit` runs of apply, rollback, repair, forget and baseline (None: all), newest first."""
    from src.migrate import audit

    async with connection(settings, "history", events) as (conn, _):
        return History(await audit.read(conn, settings.ledger, limit=limit), settings.ledger.audit)


async def wait(settings: RunnerSettings, *, give_up_after: float) -> float:
    """Wait until the configured database accepts connections; the seconds it took."""
    if settings.connection is None:
        raise ConfigError("migrate wait needs a configured database (DATABASE_URL or DB_*)")
    return await wait_until_ready(settings.connection, give_up_after=give_up_after)


@dataclass(frozen=True)
class Probe:
    """One health or readiness check's answer."""

    ok: bool
    message: str
    details: list[str] = field(default_factory=list)


async def health(settings: RunnerSettings, *, ready: bool, give_up_after: float) -> Probe:
    """Whether the configured database answers (with `ready`: and every migration file is applied),
    within `give_up_after` seconds whatever the server does."""
    import asyncio

    if settings.connection is None:
        raise ConfigError("migrate health needs a configured database (DATABASE_URL or DB_*) or --url")
    where = settings.connection
    files = files_module.discover(settings.migrations_dir) if ready else []
    started = time.perf_counter()

    async def check() -> Probe:
        conn = await connect(where, command="health")
        try:
            version = conn.get_settings().server_version.split()[0]
            took = (time.perf_counter() - started) * 1000
            answered = f"database {where.describe()} answers (PostgreSQL {version}, {took:.1f} ms)"
            if not ready:
                return Probe(True, answered)
            plan = await runner.read_plan(conn, files, _options(settings))
        finally:
            conn.terminate()  # nothing to flush; don't wait on a server that may be slow to say goodbye
        reasons = plan.not_ready_because()
        if reasons:
            return Probe(False, "; ".join(reasons), reasons)
        head = "none" if plan.head is None else f"{plan.head:03d}"
        return Probe(True, f"{answered}; all {len(files)} migration(s) applied, at version {head}")

    try:
        return await asyncio.wait_for(check(), give_up_after)
    except TimeoutError:
        return Probe(False, f"database {where.describe()} gave no answer within {give_up_after:g} s (--timeout)")


__all__ = [
    "ApplyReport",
    "DryRun",
    "DryRunGroup",
    "Events",
    "FromModels",
    "History",
    "LintReport",
    "Probe",
    "RollbackReport",
    "Status",
    "Verification",
    "apply",
    "baseline",
    "check_target",
    "connection",
    "database",
    "dry_run",
    "dump",
    "forget",
    "health",
    "history",
    "lint",
    "new",
    "new_from_models",
    "repair",
    "rollback",
    "settings",
    "status",
    "verify",
    "wait",
]
