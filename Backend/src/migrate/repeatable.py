"""Planning repeatable scripts (`R__name.sql`: views, functions, grants): which run at the next `apply`.
Pure: no I/O (the runner reads their rows and runs them, see `runner.apply_repeatables`).

A repeatable script runs after the numbered files, in file-name order, whenever its checksum differs from
the one it last ran with (or it never ran), each in a transaction of its own with its row in the
ledger's `<ledger>_repeatable` table. A script deleted from the folder is not undone: its row stays, and
status shows it as `gone`.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from enum import StrEnum

from src.migrate.files import MigrationFile
from src.migrate.ledger import RepeatableRow


class RepeatableState(StrEnum):
    APPLIED = "applied"
    """Ran with the file's current checksum: nothing to do."""
    PENDING = "pending"
    """Never ran: runs at the next apply."""
    CHANGED = "changed"
    """Edited since it last ran: runs again at the next apply."""
    GONE = "gone"
    """Ran once, and the file is gone from the folder (what it made is left as it is)."""


DUE = frozenset({RepeatableState.PENDING, RepeatableState.CHANGED})


@dataclass(frozen=True)
class RepeatableEntry:
    filename: str
    state: RepeatableState
    file: MigrationFile | None
    row: RepeatableRow | None

    @property
    def due(self) -> bool:
        return self.state in DUE


def plan_repeatables(files: Sequence[MigrationFile], rows: Sequence[RepeatableRow]) -> list[RepeatableEntry]:
    """Every repeatable script and row, by file name."""
    by_file = {f.filename: f for f in files}
    by_row = {r.filename: r for r in rows}
    entries = []
    for name in sorted(by_file.keys() | by_row.keys()):
        file, row = by_file.get(name), by_row.get(name)
        if file is None:
            state = RepeatableState.GONE
        elif row is None:
            state = RepeatableState.PENDING
        elif row.checksum != file.checksum:
            state = RepeatableState.CHANGED
        else:
            state = RepeatableState.APPLIED
        entries.append(RepeatableEntry(name, state, file, row))
    return entries


def due(entries: Sequence[RepeatableEntry]) -> list[MigrationFile]:
    """The scripts the next apply runs, in the order it runs them."""
    return [e.file for e in entries if e.due and e.file is not None]
