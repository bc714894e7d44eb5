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
from src.migrate.files import MigrationFile, down_path
from src.migrate.ledger import LedgerRow, LedgerTable
from src.migrate.plan import PROBLEM_STATES, Plan, State
from src.migrate.repeatable import RepeatableState
from src.migrate.script import TransactionMode
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

if TYPE_CHECKING:
    from src.migrate.dump import Dump
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
    ran = report.repeatables.ran if report.repeatables is not None else []
    if as_json:
        click.echo(
            json.dumps(
                {
                    "repeatables": [
                        {"file": a.file.filename, "checksum": a.file.checksum, "duration_ms": round(a.duration_ms, 3)}
                        for a in ran
                    ],
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
                    "dump_file": None if report.dump is None else str(report.dump.path),
                }
            )
        )
        return
    _apply_text(report)
    if report.dump is not None and report.dump.path is not None:
        click.echo(f"Wrote the schema to {shown_path(report.dump.path)}.")


def _apply_text(report: commands.ApplyReport) -> None:
    result = report.result
    ran = report.repeatables.ran if report.repeatables is not None else []
    total = len(result.plan.entries)
    if not result.applied:
        why = _below_target(result.plan, report.target)
        if why:
            click.echo(f"Nothing to apply: {why}.")
        else:
            click.echo(f"Nothing to apply: {total} migration(s) known, database is at version {version(result.head)}.")
    else:
        waited = f" (waited {result.lock_wait_s:.1f} s for the lock)" if (result.lock_wait_s or 0) >= 0.05 else ""
        click.echo(
            f"Applied {len(result.applied)} migration(s) in {ms(report.elapsed_ms)}{waited}; "
            f"database is at version {version(result.head)}."
        )
    if ran:
        click.echo(f"Ran {len(ran)} repeatable script(s): {', '.join(a.file.filename for a in ran)}.")


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
                    "would_run_repeatables": [
                        {
                            "file": f.filename,
                            "state": e.state.value,
                            "statements": [s.text for s in plan.repeatable_statements[f.filename]],
                        }
                        for e in plan.repeatables
                        if e.due and (f := e.file) is not None
                    ],
                }
            )
        )
        return
    scripts = plan.due_repeatables
    if not pending:
        why = _below_target(plan.plan, plan.target)
        click.echo(f"Dry run: nothing to apply; {why or f'database is at version {version(plan.head)}'}.")
        _dry_run_repeatables(plan)
        return
    also = f" and run {len(scripts)} repeatable script(s)" if scripts else ""
    click.echo(f"Dry run: would apply {len(pending)} migration(s){also}; nothing was changed.")
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
    _dry_run_repeatables(plan)


def _dry_run_repeatables(plan: commands.DryRun) -> None:
    entries = [e for e in plan.repeatables if e.due and e.file is not None]
    if not entries:
        return
    if not plan.plan.to_apply:
        click.echo(f"Would run {len(entries)} repeatable script(s); nothing was changed.")
    for entry in entries:
        why = "never run" if entry.state is RepeatableState.PENDING else "changed since it last ran"
        statements = plan.repeatable_statements[entry.filename]
        click.echo(
            f"\n-- {entry.filename}: repeatable script, {why}; in a transaction of its own, with its ledger row "
            f"({len(statements)} statement(s))"
        )
        for statement in statements:
            click.echo(statement.text + ";")


def history(report: commands.History, *, as_json: bool) -> None:
    if as_json:
        click.echo(
            json.dumps(
                {
                    "table": str(report.table),
                    "runs": [
                        {
                            "id": r.id,
                            "at": r.at.isoformat(),
                            "action": r.action,
                            "outcome": r.outcome,
                            "versions": r.versions,
                            "duration_ms": None if r.duration_ms is None else round(r.duration_ms, 3),
                            "database_role": r.done_by,
                            "os_user": r.os_user,
                            "hostname": r.hostname,
                            "application_name": r.application_name,
                            "note": r.note,
                            "error": r.error,
                            "before": r.before,
                            "after": r.after,
                        }
                        for r in report.rows
                    ],
                }
            )
        )
        return
    if not report.rows:
        click.echo(f"No runs recorded in {report.table} yet.")
        return
    click.echo(f"{'AT (UTC)':<19}  {'ACTION':<8}  {'OUTCOME':<7}  {'TOOK':>9}  {'VERSIONS':<12}  WHO")
    for r in report.rows:
        at = r.at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S")
        took = "" if r.duration_ms is None else ms(r.duration_ms)
        who = f"{r.done_by} ({r.os_user}@{r.hostname})" if r.os_user else f"{r.done_by} (@{r.hostname})"
        click.echo(f"{at:<19}  {r.action:<8}  {r.outcome:<7}  {took:>9}  {_versions(r.versions):<12}  {who}")
        said = (r.error or "").splitlines()[0] if r.error else r.note
        if said:
            click.echo(f"    {'error: ' if r.error else ''}{said}")
    click.echo(f"{len(report.rows)} run(s) shown, newest first, from {report.table}.")


def _versions(versions: Sequence[int]) -> str:
    if not versions:
        return "-"
    shown = ",".join(f"{v:03d}" for v in versions[:3])
    return shown + (f" +{len(versions) - 3}" if len(versions) > 3 else "")


def dump(made: Dump) -> None:
    """The schema on stdout, or where it was written on stderr."""
    if made.path is None:
        click.echo(made.sql, nl=False)
        return
    click.echo(
        f"Wrote the schema to {shown_path(made.path)} (pg_dump {made.program}, PostgreSQL {made.server_version}).",
        err=True,
    )


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
                            "down": _down_filename(e.file),
                        }
                        for e in plan.entries
                    ],
                    "repeatables": [
                        {
                            "file": e.filename,
                            "state": e.state.value,
                            "checksum": e.file.checksum if e.file else None,
                            "applied_at": e.row.applied_at.isoformat() if e.row else None,
                            "duration_ms": e.row.duration_ms if e.row else None,
                        }
                        for e in report.repeatables
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
    if report.repeatables:
        click.echo("")
        width = max(len(e.filename) for e in report.repeatables)
        click.echo(f"{'REPEATABLE':<13} {'FILE':<{width}}  {'LAST RUN (UTC)':<19}  {'TOOK':>9}")
        for r in report.repeatables:
            ran_at = r.row.applied_at.astimezone(UTC).strftime("%Y-%m-%d %H:%M:%S") if r.row else ""
            took = ms(r.row.duration_ms) if r.row else ""
            click.echo(f" {r.state.value:<12} {r.filename:<{width}}  {ran_at:<19}  {took:>9}")
    click.echo("")
    due = sum(1 for r in report.repeatables if r.due)
    scripts = f", {due} repeatable script(s) to run" if due else ""
    click.echo(
        f"{report.applied} applied, {report.pending} pending{scripts}; database is at version {version(plan.head)}."
    )
    for problem in plan.problems:
        click.echo(f"problem: {problem}", err=True)


def _down_filename(file: MigrationFile | None) -> str | None:
    return file.down.filename if file is not None and file.down is not None else None


def rollback(report: commands.RollbackReport, *, as_json: bool) -> None:
    steps = report.plan.steps
    if as_json:
        body: dict[str, object] = {
            "dry_run": report.dry_run,
            "head": report.head,
            "elapsed_ms": round(report.elapsed_ms, 3),
            "lock_wait_s": None if report.lock_wait_s is None else round(report.lock_wait_s, 3),
        }
        if report.dry_run:
            body["would_roll_back"] = [
                {
                    "version": s.file.version,
                    "file": s.file.filename,
                    "down": s.down.filename,
                    "transactional": report.transactional(s.down),
                    "statements": [t.text for t in report.statements[s.down.version]],
                }
                for s in steps
            ]
        else:
            body["rolled_back"] = [
                {
                    "version": a.file.version,
                    "file": a.file.filename.removesuffix(".down.sql") + ".sql",
                    "down": a.file.filename,
                    "duration_ms": round(a.duration_ms, 3),
                    "transactional": a.transactional,
                }
                for a in report.rolled_back
            ]
        click.echo(json.dumps(body))
        return
    if not steps:
        click.echo(f"Nothing to roll back: database is at version {version(report.head)}.")
        return
    if report.dry_run:
        click.echo(
            f"Dry run: would roll back {len(steps)} migration(s), newest first, to version {version(report.head)}; "
            "nothing was changed."
        )
        for step in steps:
            statements = report.statements[step.down.version]
            how = "in a transaction of its own" if report.transactional(step.down) else "outside a transaction"
            click.echo(
                f"\n-- {step.down.filename}: undoes {step.file.filename}, {how}, with its ledger row's deletion "
                f"({len(statements)} statement(s))"
            )
            for statement in statements:
                click.echo(statement.text + ";")
        return
    waited = f" (waited {report.lock_wait_s:.1f} s for the lock)" if (report.lock_wait_s or 0) >= 0.05 else ""
    click.echo(
        f"Rolled back {len(report.rolled_back)} migration(s) in {ms(report.elapsed_ms)}{waited}; "
        f"database is at version {version(report.head)}."
    )


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
    trip = report.roundtrip
    if trip is not None:
        if trip.problems:
            click.echo("FAIL  roundtrip:")
            for problem in trip.problems:
                click.echo(f"      {problem}")
        elif not trip.checked:
            click.echo("ok    roundtrip: no pending file to apply, roll back and apply again")
        else:
            together = ", then all of them together," if trip.together else ""
            click.echo(
                f"ok    roundtrip: {len(trip.checked)} pending file(s) applied, rolled back and applied again"
                f"{together} in a scratch database, schema identical at each step"
            )
    elif report.roundtrip_requested:
        click.echo("skip  roundtrip: fix the checksums and order first")
    if report.repeatables:
        due = sum(1 for r in report.repeatables if r.due)
        gone = sum(1 for r in report.repeatables if r.state is RepeatableState.GONE)
        parts = [f"{len(report.repeatables) - gone} script(s)", f"{due} to run at the next apply"]
        if gone:
            parts.append(f"{gone} gone from the folder (what they made is left as it is)")
        click.echo(f"ok    repeatables: {', '.join(parts)}")


MODELS_DIR = BACKEND_DIR / "src" / "database" / "models"
DRIFT_CHECK = BACKEND_DIR / "tests" / "database" / "test_models.py"


def new(path: Path, migrations_dir: Path, *, down: bool = False) -> None:
    """The file made (and its down file), and what to do next."""
    folder = "" if migrations_dir == DEFAULT_MIGRATIONS_DIR else f" --migrations-dir {shown_path(migrations_dir)}"
    if down:
        undo = shown_path(down_path(path))
        click.echo(f"Created {shown_path(path)} and {undo}. Next:")
        click.echo(f"  0. Write in {undo} the SQL that undoes it; `migrate verify --roundtrip{folder}` proves it.")
    else:
        click.echo(f"Created {shown_path(path)}. Next:")
    click.echo("  1. Write the SQL in it: idempotent (IF NOT EXISTS, OR REPLACE, IF EXISTS), no BEGIN/COMMIT.")
    click.echo(f"  2. If it changes the schema, update the models in {shown_path(MODELS_DIR)} to match.")
    click.echo(f"  3. migrate lint {shown_path(path)}")
    click.echo(f"  4. migrate apply{folder}")
    click.echo(f"  5. Check the models still match the SQL: pytest {shown_path(DRIFT_CHECK)}")


def from_models(result: commands.FromModels, migrations_dir: Path) -> None:
    """The file `new --from-models` wrote (or that none was needed), and the TODOs left in it."""
    generated = result.generated
    if result.path is None:
        click.echo("The models match the schema the migrations build; no file written.")
        return
    folder = "" if migrations_dir == DEFAULT_MIGRATIONS_DIR else f" --migrations-dir {shown_path(migrations_dir)}"
    click.echo(
        f"Created {shown_path(result.path)}: {len(generated.statements)} statement(s) from the models, "
        f"{len(generated.todos)} TODO(s) for a person."
    )
    for todo in generated.todos:
        click.echo(f"  TODO: {todo}")
    click.echo(f"Next: review it, migrate lint {shown_path(result.path)}, migrate apply{folder}.")


def repair(repaired: list[Repaired]) -> None:
    for item in repaired:
        if item.down:
            now = item.file.down_checksum or "none (the down file was deleted)"
            click.echo(f"  {item.file.filename}: recorded down-file checksum {now} (was {item.old_down_checksum})")
            continue
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
