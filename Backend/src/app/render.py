"""What the `migrate` commands show: each result as text for people or JSON for machines, live progress,
and errors. Text goes to stdout, notes and errors to stderr; `--json` output is one object on stdout."""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from collections import Counter
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from src import BACKEND_DIR
from src.migrate import commands, runner
from src.migrate.errors import MigrateError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerRow, LedgerTable
from src.migrate.plan import PROBLEM_STATES, Plan, State
from src.migrate.script import TransactionMode
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

if TYPE_CHECKING:
    from src.migrate.lint import Finding
    from src.migrate.lock import Holder
    from src.migrate.repair import Forgotten, Repaired
    from src.postgres.embedded import EmbeddedServer


def shown_path(path: Path) -> str:
    """A path relative to the current directory when it is inside it, for shorter messages."""
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def ms(value: float) -> str:
    return f"{value:.1f} ms" if value < 1000 else f"{value / 1000:.2f} s"


def version(value: int | None) -> str:
    return "none (nothing applied)" if value is None else f"{value:03d}"


def debug() -> bool:
    """Whether `migrate --debug` was given."""
    ctx = click.get_current_context(silent=True)
    root = ctx.find_root() if ctx is not None else None
    return bool(root is not None and root.params.get("debug"))


def fail(error: MigrateError, *, as_json: bool) -> NoReturn:
    """Show an expected error (one message, no traceback unless --debug) and exit with its code."""
    if debug():
        traceback.print_exception(error)
    if as_json:
        body: dict[str, object] = {"type": type(error).__name__, "message": str(error), "exit_code": error.exit_code}
        if error.diagnostic is not None:
            # sqlstate, file, line, column, detail, hint, context: whichever side (server or pglast) found it.
            parts = dataclasses.asdict(error.diagnostic)
            del parts["message"]  # the server's alone; "message" above holds it with the rest
            body.update(parts)
        click.echo(json.dumps({"error": body}))
    click.echo(f"migrate: error: {error}", err=True)
    sys.exit(error.exit_code)


class Console(commands.Events):
    """Shows each file as it starts and its time as it ends, so a slow or failing file is visible."""

    def __init__(self, *, progress: bool = True) -> None:
        self.progress = progress
        self.open_line = False

    def using_embedded(self, server: EmbeddedServer) -> None:
        for note in server.recovered:  # what a dead server left in the folder, cleared before starting
            click.echo(f"migrate: {note}", err=True)
        kept = " (the dev server of `migrate db start`, left running)" if server.kept else ""
        click.echo(
            f"migrate: no database configured (DATABASE_URL or DB_*), using embedded PostgreSQL "
            f"{server.major_version} in {shown_path(server.data_dir)}{kept}",
            err=True,
        )

    def connected(self, where: ConnectionSettings, ledger: LedgerTable) -> None:
        if self.progress:
            click.echo(f"Database {where.describe()}, ledger {ledger}")

    def lock_busy(self, holder: Holder | None) -> None:
        if self.progress:
            who = f" held by {holder}" if holder is not None else ""
            click.echo(f"Waiting for the migration lock{who} ...", err=True)

    def note(self, message: str) -> None:
        if not self.progress:
            return
        if self.open_line:
            click.echo("")
        click.echo(f"    note: {message}", err=True)
        if self.open_line:
            click.echo("   ", nl=False)

    def transaction(self, files: Sequence[MigrationFile]) -> None:
        if self.progress:
            click.echo(f"  one transaction, {len(files)} files: all are applied or none")

    def starting(self, file: MigrationFile, transactional: bool) -> None:
        if self.progress:
            mode = " (no statements)" if file.empty else "" if transactional else " (outside a transaction)"
            click.echo(f"  {file.filename}{mode} ", nl=False)
            self.open_line = True

    def finished(self, applied: runner.Applied) -> None:
        if self.progress:
            click.echo(f"... {ms(applied.duration_ms)}")
            self.open_line = False

    def failed_at(self, file: MigrationFile | None, ran: Sequence[MigrationFile]) -> None:
        """Mark the file the error is in; the files sent with it before it ran, and were rolled back with it."""
        if not self.progress:
            return
        if file is None:
            if self.open_line and len(ran) > 1:
                click.echo(f"FAILED (in one of the {len(ran)} files sent together from here)")
                self.open_line = False
            self.failed()
            return
        for earlier in ran:
            if not self.open_line:
                click.echo(f"  {earlier.filename} ", nl=False)
            click.echo("... ran")
            self.open_line = False
        if not self.open_line:
            click.echo(f"  {file.filename} ", nl=False)
            self.open_line = True
        self.failed()

    def failed(self) -> None:
        """The command failed: close the file's progress line."""
        if self.open_line:
            click.echo("FAILED")
            self.open_line = False


def apply(report: commands.ApplyReport, *, as_json: bool) -> None:
    result = report.result
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
                            "empty": a.file.empty,
                        }
                        for a in result.applied
                    ],
                    "head": result.head,
                    "lock_wait_s": None if result.lock_wait_s is None else round(result.lock_wait_s, 3),
                    "elapsed_ms": round(report.elapsed_ms, 3),
                }
            )
        )
        return
    total = len(result.plan.entries)
    if not result.applied:
        why = _below_target(result.plan, report.target)
        if why:
            click.echo(f"Nothing to apply: {why}.")
            return
        click.echo(f"Nothing to apply: {total} migration(s) known, database is at version {version(result.head)}.")
        return
    waited = f" (waited {result.lock_wait_s:.1f} s for the lock)" if (result.lock_wait_s or 0) >= 0.05 else ""
    click.echo(
        f"Applied {len(result.applied)} migration(s) in {ms(report.elapsed_ms)}{waited}; "
        f"database is at version {version(result.head)}."
    )


def _below_target(plan: Plan, target: int | None) -> str | None:
    """Why `--target` leaves nothing to do, when it is the reason (None otherwise)."""
    if target is None:
        return None
    head = plan.head
    if head is not None and target <= head:
        return (
            f"--target {target} is at or below the database's version {version(head)}; apply only moves forward "
            "(to undo a change, write a new migration that reverses it)"
        )
    if any(e.state is State.PENDING for e in plan.entries):
        return f"no pending migration is numbered {target} or below (--target {target})"
    return None


def dry_run(plan: commands.DryRun, *, as_json: bool) -> None:
    pending = plan.plan.to_apply
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
                            "transactional": plan.transactional(f),
                            "adds_enum_value": plan.adds_enum_value(f),
                            "statements": [s.text for s in plan.statements[f.version]],
                            "empty": f.empty,
                        }
                        for f in pending
                    ],
                }
            )
        )
        return
    if not pending:
        why = _below_target(plan.plan, plan.target)
        click.echo(f"Dry run: nothing to apply; {why or f'database is at version {version(plan.head)}'}.")
        return
    click.echo(f"Dry run: would apply {len(pending)} migration(s); nothing was changed.")
    for group in plan.groups:
        files = group.files
        if not group.in_transaction:
            how = "outside a transaction, statement by statement"
        elif len(files) == 1:
            how = "in a transaction of its own"
        else:
            how = f"in one transaction, all {len(files)} files or none"
        ends_early = files[-1] is not pending[-1] and plan.adds_enum_value(files[-1])
        if group.in_transaction and plan.mode is TransactionMode.ALL and ends_early:
            how += (
                f"; it commits after {files[-1].filename}, which adds an enum value (later files can use it "
                "only once committed)"
            )
        names = (
            ", ".join(f.filename for f in files) if len(files) <= 3 else f"{files[0].filename} .. {files[-1].filename}"
        )
        click.echo(f"\n-- {names}: {how}")
        for file in files:
            statements = plan.statements[file.version]
            if not statements:
                empty = "no statements (only comments or white space); only its ledger row is written"
                click.echo(f"\n-- {file.filename}: {empty}")
                continue
            click.echo(f"\n-- {file.filename} ({len(statements)} statement(s))")
            for statement in statements:
                click.echo(statement.text + ";")


def status(report: commands.Status, *, as_json: bool) -> None:
    plan = report.plan
    if as_json:
        click.echo(
            json.dumps(
                {
                    "database": report.database,
                    "server_version": report.server_version,
                    "ledger": str(report.ledger),
                    "migrations_dir": str(report.migrations_dir),
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
    click.echo(f"Database    {report.database} (PostgreSQL {report.server_version})")
    click.echo(f"Migrations  {shown_path(report.migrations_dir)}")
    click.echo(f"Ledger      {report.ledger}")
    click.echo("")
    width = max([len(e.label) for e in plan.entries] + [4])
    click.echo(f"{'STATE':<13} {'FILE':<{width}}  {'APPLIED AT (UTC)':<19}  {'TOOK':>9}")
    for e in plan.entries:
        applied_at = e.row.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if e.row else ""
        took = (ms(e.row.duration_ms) if e.row.kind == "applied" else "baseline") if e.row else ""
        marker = "!" if e.state in PROBLEM_STATES else " "
        click.echo(f"{marker}{e.state.value:<12} {e.label:<{width}}  {applied_at:<19}  {took:>9}")
    click.echo("")
    click.echo(f"{report.applied} applied, {report.pending} pending; database is at version {version(plan.head)}.")
    for problem in plan.problems:
        click.echo(f"problem: {problem}", err=True)


def lint(report: commands.LintReport) -> None:
    for finding in report.findings:
        click.echo(str(finding))
    for note in report.notes:
        click.echo(f"info: {note}")
    for finding in report.information:
        click.echo(f"info: {finding}")
    settled = ""
    if report.information:
        settled = (
            f"; {len(report.information)} more in applied files, shown as information (an applied file cannot "
            "change without breaking its checksum)"
        )
    if report.findings:
        click.echo(f"{len(report.findings)} finding(s){settled}.", err=True)
    elif report.pending_only:
        click.echo(f"No findings in files not yet applied{settled}.")
    else:
        click.echo("No findings.")


def _by_rule(findings: Sequence[Finding]) -> str:
    counts = Counter(f.rule for f in findings)
    return ", ".join(f"{rule} x{n}" for rule, n in sorted(counts.items(), key=lambda item: (-item[1], item[0])))


def verify(report: commands.Verification) -> None:
    plan = report.plan
    click.echo(f"ok    names and versions: {report.files} file(s)")
    if plan.problems:
        click.echo("FAIL  checksums and order:")
        for problem in plan.problems:
            click.echo(f"      {problem}")
    else:
        click.echo(
            f"ok    checksums and order: {plan.count(State.APPLIED)} applied, {plan.count(State.PENDING)} pending"
        )
    judged = "" if report.all_files else " in files not yet applied"
    if report.findings:
        click.echo(f"FAIL  lint: {len(report.findings)} finding(s){judged}")
        for finding in report.findings:
            click.echo(f"      {finding}")
    else:
        click.echo(f"ok    lint: no findings{judged}")
    if report.information:
        files = len({f.file for f in report.information})
        click.echo(
            f"info  lint: {len(report.information)} finding(s) in {files} applied file(s), not judged (an applied "
            f"file cannot change without breaking its checksum; --all judges them, `migrate lint` lists them): "
            f"{_by_rule(report.information)}"
        )
    if report.invalid_indexes:
        click.echo(
            "FAIL  indexes: INVALID (left by an interrupted CREATE INDEX CONCURRENTLY): "
            + ", ".join(report.invalid_indexes)
        )
    else:
        click.echo("ok    indexes: none INVALID")
    rerun = report.rerun
    if rerun is not None:
        if rerun.problems:
            click.echo("FAIL  rerun:")
            for problem in rerun.problems:
                click.echo(f"      {problem}")
        else:
            click.echo(
                f"ok    rerun: {len(rerun.checked)} file(s) re-run where each stands in the history (in a scratch "
                "database), catalog unchanged"
            )
    elif report.rerun_requested:
        click.echo("skip  rerun: fix the checksums and order first")


MODELS_DIR = BACKEND_DIR / "src" / "database" / "models"
DRIFT_CHECK = BACKEND_DIR / "tests" / "database" / "test_models.py"


def new(path: Path, migrations_dir: Path) -> None:
    """The file made, and what to do next."""
    folder = "" if migrations_dir == DEFAULT_MIGRATIONS_DIR else f" --migrations-dir {shown_path(migrations_dir)}"
    click.echo(f"Created {shown_path(path)}. Next:")
    click.echo("  1. Write the SQL in it: idempotent (IF NOT EXISTS, OR REPLACE, IF EXISTS), no BEGIN/COMMIT.")
    click.echo(f"  2. If it changes the schema, update the models in {shown_path(MODELS_DIR)} to match.")
    click.echo(f"  3. migrate lint {shown_path(path)}")
    click.echo(f"  4. migrate apply{folder}")
    click.echo(f"  5. Check the models still match the SQL: pytest {shown_path(DRIFT_CHECK)}")


def repair(repaired: list[Repaired]) -> None:
    for item in repaired:
        click.echo(
            f"  {item.file.filename}: recorded checksum {item.file.checksum} (was {item.old_checksum})"
            + (f", name {item.file.name!r} (was {item.old_name!r})" if item.old_name != item.file.name else "")
        )
    click.echo(f"Repaired {len(repaired)} ledger row(s)." if repaired else "Nothing to repair.")


def baseline(adopted: list[MigrationFile]) -> None:
    for file in adopted:
        click.echo(f"  {file.filename}: recorded as applied (baseline), not run")
    click.echo(f"Baselined {len(adopted)} migration(s); database is at version {adopted[-1].version:03d}.")


def to_forget(rows: Sequence[LedgerRow], ledger: LedgerTable) -> None:
    """What `repair --forget` is about to drop, before it asks."""
    click.echo(f"These ledger rows of {ledger} have no file any more and would be forgotten:", err=True)
    for row in rows:
        when = row.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S UTC")
        click.echo(f"  {row.version:03d}_{row.name}.sql  {row.kind} {when} by {row.applied_by}", err=True)
    click.echo(f"No SQL runs; each row is kept in {ledger.audit}. The database keeps what those files did.", err=True)


def forgotten(rows: Sequence[Forgotten]) -> None:
    for item in rows:
        click.echo(f"  {item.label}: ledger row forgotten (kept in the audit table)")
    click.echo(f"Forgot {len(rows)} ledger row(s).")
