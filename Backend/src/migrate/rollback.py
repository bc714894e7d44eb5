"""Planning a rollback: which applied files `migrate rollback` undoes, newest first, and why it refuses.
Pure: no I/O (the runner reads the ledger and runs the down files, see `runner.rollback`).

The default undoes the last applied file; `to` undoes every applied file numbered above it; `steps` the
last K. Before anything runs, the whole way is checked: a file on it that is gone from the folder, or that
has no down file (`NNN_name.down.sql`), refuses the rollback naming every such file, and so does a down
file on the way edited since its file was applied (until restored, or accepted with `migrate repair`),
and drift anywhere (the check `apply` makes).
"""

from __future__ import annotations

from dataclasses import dataclass

from src.migrate.errors import ConfigError, DriftError, NoDownScript
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerRow
from src.migrate.plan import Entry, Plan, State


@dataclass(frozen=True)
class Step:
    """One applied file to undo: its up file, the down file that undoes it, and its ledger row."""

    file: MigrationFile
    down: MigrationFile
    row: LedgerRow


@dataclass(frozen=True)
class RollbackPlan:
    plan: Plan
    steps: tuple[Step, ...]
    """Newest first, the order they run in."""

    @property
    def head(self) -> int | None:
        """The highest applied version once every step has run (None: nothing left applied)."""
        undone = {s.file.version for s in self.steps}
        left = [e.version for e in self.plan.entries if e.row is not None and e.version not in undone]
        return max(left) if left else None


def down_name(entry: Entry) -> str:
    return f"{entry.label.removesuffix('.sql')}.down.sql"


def choose(plan: Plan, *, to: int | None = None, steps: int | None = None) -> RollbackPlan:
    """The files to undo for `to` (every applied version above it) or `steps` (the last K applied; by
    default the last one, if any), or an error saying why nothing may run: a ConfigError for a bad
    selection, a DriftError for files gone from the folder, an edited down file on the way or drift `apply`
    refuses, NoDownScript naming every file on the way without a down file."""
    if to is not None and steps is not None:
        raise ConfigError("--to and --steps: give one of them (--to N undoes every file above N, --steps K the last K)")
    applied = sorted((e for e in plan.entries if e.row is not None), key=lambda e: e.version, reverse=True)
    if to is not None:
        chosen = [e for e in applied if e.version > to]
    elif steps is None:
        chosen = applied[:1]  # nothing applied: nothing to do, as for `apply` with nothing pending
    else:
        count = steps
        if count < 1:
            raise ConfigError(f"--steps {count}: expected 1 or more")
        if count > len(applied):
            raise ConfigError(f"--steps {count}: only {len(applied)} migration(s) are applied; nothing was changed")
        chosen = applied[:count]
    missing = [e for e in chosen if e.file is None]
    if missing:
        raise DriftError(
            f"cannot roll back {', '.join(e.label for e in missing)}: applied, but the file is gone from the "
            "migrations folder (and its down file with it); restore it. Nothing was changed"
        )
    undownable = [e for e in chosen if e.file is not None and e.file.down is None]
    if undownable:
        names = ", ".join(e.label for e in undownable)
        downs = ", ".join(down_name(e) for e in undownable)
        raise NoDownScript(
            f"cannot roll back {names}: no down script ({downs}); write one beside each file, or roll back "
            "fewer files (--to N). Nothing was changed"
        )
    edited = [p for e in chosen if e.state is State.DOWN_EDITED and (p := e.problem()) is not None]
    if edited:
        raise DriftError("\n".join(edited) + "\nrollback runs a down file only as it was when its file was applied")
    plan.raise_for_drift()
    result = []
    for entry in chosen:
        assert entry.file is not None
        assert entry.file.down is not None
        assert entry.row is not None
        assert entry.state is State.APPLIED
        result.append(Step(entry.file, entry.file.down, entry.row))
    return RollbackPlan(plan, tuple(result))
