"""What the `migrate` commands show: each result as text for people or JSON for machines, live progress,
and errors. Text goes to stdout, notes and errors to stderr; `--json` output is one object on stdout."""

from __future__ import annotations

import dataclasses
import json
import sys
import traceback
from collections.abc import Sequence
from datetime import UTC
from pathlib import Path
from typing import TYPE_CHECKING, NoReturn

import click

from src.migrate import commands, runner
from src.migrate.errors import MigrateError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.lock import Holder
from src.migrate.plan import PROBLEM_STATES, State
from src.migrate.script import TransactionMode
from src.postgres.settings import ConnectionSettings

if TYPE_CHECKING:
    from src.migrate.repair import Repaired
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
        click.echo(
            f"migrate: no database configured (DATABASE_URL or DB_*), using embedded PostgreSQL "
            f"{server.major_version} in {shown_path(server.data_dir)}",
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
        click.echo(f"Nothing to apply: {total} migration(s) known, database is at version {version(result.head)}.")
        return
    waited = f" (waited {result.lock_wait_s:.1f} s for the lock)" if (result.lock_wait_s or 0) >= 0.05 else ""
    click.echo(
        f"Applied {len(result.applied)} migration(s) in {ms(report.elapsed_ms)}{waited}; "
        f"database is at version {version(result.head)}."
    )


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
        click.echo(f"Dry run: nothing to apply; database is at version {version(plan.head)}.")
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
    if report.findings:
        click.echo(f"{len(report.findings)} finding(s).", err=True)
    else:
        click.echo("No findings.")


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
    if report.findings:
        click.echo(f"FAIL  lint: {len(report.findings)} finding(s)")
        for finding in report.findings:
            click.echo(f"      {finding}")
    else:
        click.echo("ok    lint: no findings")
    if report.invalid_indexes:
        click.echo(
            "FAIL  indexes: INVALID (left by an interrupted CREATE INDEX CONCURRENTLY): "
            + ", ".join(report.invalid_indexes)
        )
    else:
        click.echo("ok    indexes: none INVALID")
    rerun = report.rerun
    if rerun is not None:
        skipped = f"; skipped (cannot run in a transaction): {', '.join(rerun.skipped)}" if rerun.skipped else ""
        if rerun.problems:
            click.echo(f"FAIL  rerun{skipped}:")
            for problem in rerun.problems:
                click.echo(f"      {problem}")
        else:
            click.echo(f"ok    rerun: {len(rerun.checked)} file(s) re-run, rolled back, catalog unchanged{skipped}")
    elif report.rerun_requested:
        click.echo("skip  rerun: fix the checksums and order first")


def new(path: Path) -> None:
    click.echo(f"Created {shown_path(path)}; write the migration, then `migrate lint` and `migrate apply`.")


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
