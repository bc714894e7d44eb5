"""What the runner sends for files that run inside a transaction: pure text building, no I/O.

Pending files are grouped into transactions (all of them in one by default, or one per file; a file
that adds an enum value ends its transaction), and a group's files are sent a batch at a time: the
files' text and, at the end, their ledger rows, many files to one simple-query message. The server runs
a message's statements in order and stops at the first error, so the batch behaves exactly as if its
statements were sent one by one, at a fraction of the round trips. `Batch.locate` maps an error
position in the message back to a file and an offset in it.

The runner's own statements are immune to what the files do to the session: they name everything with
its schema, and run after `GUARD`, which gives the timeouts, search_path and role back their session
defaults for the runner's part of the transaction; `RESTORE` hands the files' values back to the next
batch, so a file's settings still hold for the files after it, as in `psql -1 -f` of them concatenated.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum
from typing import TYPE_CHECKING

from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable

if TYPE_CHECKING:
    from src.migrate.sql import Statement

BATCH_FILES = 100
"""Files per message at most: progress is reported as each batch commits to the server."""
BATCH_CHARS = 256 * 1024
"""Characters of SQL per message at most (a batch always holds at least one file)."""


# The server measures each file: after every file a statement stores the time (epoch seconds, as text, in a
# transaction-local custom setting, so a file that changes DateStyle or TimeZone cannot garble it), and the
# batch's one ledger INSERT at its end subtracts consecutive marks. Every name the runner's own statements
# use is schema-qualified, so a file's search_path cannot redirect them.
def _mark(index: int) -> str:
    now = "extract(epoch FROM pg_catalog.clock_timestamp())::pg_catalog.text"
    return f"SELECT pg_catalog.set_config('migrate.t{index}', {now}, true);\n"


def _since(index: int) -> str:
    return (
        f"1000 * (pg_catalog.current_setting('migrate.t{index}')::pg_catalog.numeric "
        f"- pg_catalog.current_setting('migrate.t{index - 1}')::pg_catalog.numeric)"
    )


GUARDED = ("statement_timeout", "lock_timeout", "idle_in_transaction_session_timeout", "search_path", "role")
"""Settings a file may change (SET or SET LOCAL) that the runner's own statements must not run under."""


def guard(runner_values: Mapping[str, str] | None = None) -> str:
    """Keep the files' values of the guarded settings, and give the rest of the transaction the runner's
    own values (`runner_values`, from `src.migrate.session`) or else the session's defaults, until
    `RESTORE`: the ledger's statements, the runner's queries between batches and the COMMIT run with
    those, whatever a file set."""
    values = runner_values or {}
    return (
        "SELECT "
        + ", ".join(
            f"pg_catalog.set_config('migrate.saved_{name}', pg_catalog.current_setting('{name}'), true)"
            for name in GUARDED
        )
        + ";\n"
        + "".join(f"SET LOCAL {name} TO {values.get(name, 'DEFAULT')};\n" for name in GUARDED)
    )


GUARD = guard()
"""`guard()` with the session's defaults for every guarded setting."""

RESTORE = (
    "SELECT "
    + ", ".join(
        f"pg_catalog.set_config('{name}', pg_catalog.current_setting('migrate.saved_{name}'), true)" for name in GUARDED
    )
    + ";\n"
)
"""Give the next file back what the files before it set (a SET LOCAL lasts to the commit, a SET beyond it)."""

_ENUM_WORD = re.compile(r"\bVALUE\b", re.IGNORECASE)
_LEXER_SETTING = re.compile(r"\bstandard_conforming_strings\b", re.IGNORECASE)
"""The one setting that changes how the server reads the text of a message: a file that sets it ends its
batch, so the files after it are read with what it left, as psql reads them."""


class TransactionMode(StrEnum):
    ALL = "all"
    """Every pending file in one transaction: a failure anywhere leaves the database as it was."""
    PER_FILE = "per-file"
    """Each file in its own transaction: files before a failing one stay applied."""


def literal(text: str) -> str:
    """A SQL string literal; the E'' form when a backslash appears, so it reads the same whatever
    `standard_conforming_strings` says."""
    quoted = text.replace("'", "''")
    if "\\" in quoted:
        return "E'" + quoted.replace("\\", "\\\\") + "'"
    return f"'{quoted}'"


def adds_enum_value(statements: Sequence[Statement]) -> bool:
    """Whether the statements add a value to an enum type (ALTER TYPE ... ADD VALUE). PostgreSQL refuses a
    new value in the transaction that added it (55P04, unless the type is new in that transaction too),
    so the transaction must commit before a later file can use it."""
    return any(s.kind == "AlterEnumStmt" and s.node is not None and not s.node.oldVal for s in statements)


def may_add_enum_value(text: str) -> bool:
    """False only when `text` surely adds no enum value (no word VALUE at all), for files not parsed."""
    return _ENUM_WORD.search(text) is not None


def groups(
    files: Sequence[MigrationFile],
    transactional: Mapping[int, bool],
    mode: TransactionMode,
    commit_after: Collection[int] = (),
) -> Iterator[tuple[bool, tuple[MigrationFile, ...]]]:
    """(runs in a transaction, files) in order. A file that must run outside a transaction is a group of
    its own, so in `all` mode it ends the transaction before it and starts a new one after it; a file
    whose version is in `commit_after` (it adds an enum value) ends its transaction."""
    pending: list[MigrationFile] = []
    for file in files:
        if not transactional[file.version]:
            if pending:
                yield True, tuple(pending)
                pending = []
            yield False, (file,)
        elif mode is TransactionMode.PER_FILE:
            yield True, (file,)
        else:
            pending.append(file)
            if file.version in commit_after:
                yield True, tuple(pending)
                pending = []
    if pending:
        yield True, tuple(pending)


@dataclass(frozen=True)
class Segment:
    file: MigrationFile
    start: int
    """Character offset of the file's first character in the batch's text."""


@dataclass(frozen=True)
class Batch:
    files: tuple[MigrationFile, ...]
    text: str
    segments: tuple[Segment, ...]
    restores: bool
    """Whether it starts with `RESTORE` (every batch of a transaction but the first): the settings the
    files before it set are given back before its first file."""

    def locate(self, position: int) -> tuple[MigrationFile, int] | None:
        """The file and 0-based offset in it of a server error position (1-based, in characters of the
        batch's text); None when it falls in the runner's own statements."""
        segment = self.segment_at(position)
        if segment is None:
            return None
        inside = position - 1 - segment.start
        return (segment.file, inside) if inside < len(segment.file.sql) else None

    def segment_at(self, position: int) -> Segment | None:
        """The file at or last before a server error position; None when it is before the first file."""
        offset = position - 1
        for segment in reversed(self.segments):
            if offset >= segment.start:
                return segment
        return None


def ledger_insert(table: LedgerTable, files: Sequence[MigrationFile], hostname: str) -> str:
    """One INSERT of the rows of `files`, the files of one batch (after `_mark(0)` .. `_mark(len(files))`)."""
    host = literal(hostname)
    # The down_checksum column is named only when a file has a down file: a ledger made before down files
    # then needs no upgrade (the runner upgrades it first when one does).
    downs = any(file.down_checksum is not None for file in files)

    def down(file: MigrationFile) -> str:
        if not downs:
            return ""
        return f", {literal(file.down_checksum)}" if file.down_checksum is not None else ", NULL"

    rows = ",\n".join(
        f"({file.version}, {literal(file.name)}, {literal(file.checksum)}, {_since(index)}, {host}{down(file)})"
        for index, file in enumerate(files, start=1)
    )
    columns = "version, name, checksum, duration_ms, hostname" + (", down_checksum" if downs else "")
    return f"INSERT INTO {table.qualified} ({columns}) VALUES\n{rows};\n"


def _batch(
    segments: list[Segment], parts: list[str], table: LedgerTable, hostname: str, restores: bool, guard_text: str
) -> Batch:
    files = tuple(s.file for s in segments)
    text = "".join(parts) + guard_text + ledger_insert(table, files, hostname)
    return Batch(files, text, tuple(segments), restores)


def batches(files: Sequence[MigrationFile], table: LedgerTable, hostname: str, guard_text: str = GUARD) -> list[Batch]:
    """The messages that apply `files` (one transaction's worth) with their ledger rows, in order.

    A batch is: (`RESTORE`,) a time mark, then each file followed by its own mark, then `GUARD` and the
    batch's ledger rows in one INSERT, so its rows are written together or not at all and with the
    runner's settings, not the files'. The runner's queries between batches run under `GUARD` too.
    """
    result: list[Batch] = []
    segments: list[Segment] = []
    parts: list[str] = []
    size = 0
    for file in files:
        full = len(segments) >= BATCH_FILES or (bool(segments) and size + len(file.sql) > BATCH_CHARS)
        if full:
            result.append(_batch(segments, parts, table, hostname, bool(result), guard_text))
            segments = []
        if not segments:
            parts = [RESTORE, _mark(0)] if result else [_mark(0)]
            size = sum(len(p) for p in parts)
        segments.append(Segment(file, size))
        # The newline ends a trailing `--` comment and the semicolon a last statement written without one.
        tail = "\n;\n" + _mark(len(segments))
        parts += [file.sql, tail]
        size += len(file.sql) + len(tail)
        if _LEXER_SETTING.search(file.sql):
            result.append(_batch(segments, parts, table, hostname, bool(result), guard_text))
            segments = []
    if segments:
        result.append(_batch(segments, parts, table, hostname, bool(result), guard_text))
    return result
