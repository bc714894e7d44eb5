"""Planning: compare the files with the ledger and decide what to apply. Pure: no I/O, easy to test.

Every version ends in one state. `applied` and `pending` are normal; the others are drift, which
`status` and `verify` report and `apply` and `rollback` refuse (before touching anything; `apply`
applies despite an edited down file, which only a rollback would run):
    edited        an applied file's checksum differs from the ledger's
    renamed       an applied file's description differs from the ledger's
    down edited   an applied file's down file differs from (or was deleted since) the one it was applied
                  with; a down file added after the apply is not drift (the ledger recorded none)
    missing       the ledger has a version whose file is gone
    out of order  a pending file is numbered below the newest applied version
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from src.migrate.errors import DriftError
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerRow


class State(StrEnum):
    APPLIED = "applied"
    PENDING = "pending"
    EDITED = "edited"
    RENAMED = "renamed"
    DOWN_EDITED = "down edited"
    MISSING = "missing"
    OUT_OF_ORDER = "out of order"


PROBLEM_STATES = frozenset({State.EDITED, State.RENAMED, State.DOWN_EDITED, State.MISSING, State.OUT_OF_ORDER})


@dataclass(frozen=True)
class Entry:
    version: int
    name: str
    state: State
    file: MigrationFile | None
    row: LedgerRow | None

    @property
    def label(self) -> str:
        return self.file.filename if self.file is not None else f"{self.version:03d}_{self.name}.sql"

    def problem(self) -> str | None:
        """What is wrong with this entry and what to do about it, or None."""
        if self.state is State.EDITED:
            assert self.file is not None
            assert self.row is not None
            return (
                f"{self.label}: edited after it was applied (ledger checksum {self.row.checksum}, file now "
                f"{self.file.checksum}); restore the applied text, or if the edit is deliberate and the "
                "database already matches it, record the new checksum with `migrate repair`"
            )
        if self.state is State.RENAMED:
            assert self.row is not None
            return (
                f"{self.label}: version {self.version} was applied as {self.row.name!r}; rename the file "
                "back, or record the new name with `migrate repair`"
            )
        if self.state is State.DOWN_EDITED:
            assert self.file is not None
            assert self.row is not None
            down = f"{self.file.filename.removesuffix('.sql')}.down.sql"
            now = f"file now {self.file.down_checksum}" if self.file.down is not None else "file now deleted"
            return (
                f"{down}: edited after {self.label} was applied (ledger down checksum {self.row.down_checksum}, "
                f"{now}); restore the down file as it was, or if the change is deliberate, record it with "
                "`migrate repair`"
            )
        if self.state is State.MISSING:
            assert self.row is not None
            return (
                f"{self.label}: applied on {self.row.applied_at:%Y-%m-%d %H:%M:%S%z} but the file is gone "
                "from the migrations folder; restore it"
            )
        if self.state is State.OUT_OF_ORDER:
            return (
                f"{self.label}: numbered below the newest applied version; give it a number above every "
                "applied one, or pass --allow-out-of-order to apply it anyway"
            )
        return None


@dataclass(frozen=True)
class Plan:
    entries: tuple[Entry, ...]
    to_apply: tuple[MigrationFile, ...]

    @property
    def head(self) -> int | None:
        """The highest applied version, or None on a fresh database."""
        applied = [e.version for e in self.entries if e.row is not None]
        return max(applied) if applied else None

    @property
    def problems(self) -> list[str]:
        """Every drift, for `status` and `verify`."""
        return [p for e in self.entries if (p := e.problem()) is not None]

    @property
    def blocking(self) -> list[str]:
        """The drift `apply` refuses: all of it but an edited down file, which only `rollback` runs (and
        refuses when it is on its way)."""
        return [p for e in self.entries if e.state is not State.DOWN_EDITED and (p := e.problem()) is not None]

    def count(self, state: State) -> int:
        return sum(1 for e in self.entries if e.state is state)

    def not_ready_because(self) -> list[str]:
        """Why an app built from these files should not serve yet: migrations pending, or drift. Empty
        when the database is exactly at the files' version (what a readiness probe asks)."""
        pending = [e.label for e in self.entries if e.state is State.PENDING]
        reasons = []
        if pending:
            shown = ", ".join(pending[:5]) + (f" and {len(pending) - 5} more" if len(pending) > 5 else "")
            reasons.append(f"{len(pending)} migration(s) pending ({shown}); run `migrate apply`")
        return reasons + self.blocking

    def raise_for_drift(self) -> None:
        problems = self.blocking
        if problems:
            raise DriftError("\n".join(problems))


def make_plan(
    files: Sequence[MigrationFile],
    rows: Sequence[LedgerRow],
    *,
    target: int | None = None,
    allow_out_of_order: bool = False,
) -> Plan:
    """Merge files and ledger rows by version; `to_apply` is what `apply` would run, in order.

    With `allow_out_of_order`, a file numbered below the newest applied one is applied (in version
    order) instead of being reported. `target` limits the plan to versions up to and including it.
    """
    by_file = {f.version: f for f in files}
    by_row = {r.version: r for r in rows}
    head = max(by_row, default=None)
    entries: list[Entry] = []
    to_apply: list[MigrationFile] = []
    for version in sorted(by_file.keys() | by_row.keys()):
        file, row = by_file.get(version), by_row.get(version)
        if file is not None and row is not None:
            if file.checksum != row.checksum:
                state = State.EDITED
            elif file.name != row.name:
                state = State.RENAMED
            elif row.down_checksum is not None and row.down_checksum != file.down_checksum:
                state = State.DOWN_EDITED
            else:
                state = State.APPLIED
            entries.append(Entry(version, file.name, state, file, row))
        elif row is not None:
            entries.append(Entry(version, row.name, State.MISSING, None, row))
        else:
            assert file is not None
            late = head is not None and version < head
            state = State.OUT_OF_ORDER if late and not allow_out_of_order else State.PENDING
            entries.append(Entry(version, file.name, state, file, None))
            if state is State.PENDING and (target is None or version <= target):
                to_apply.append(file)
    return Plan(tuple(entries), tuple(to_apply))
