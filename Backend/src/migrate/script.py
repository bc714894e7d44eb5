"""What the runner sends for files that run inside a transaction: pure text building, no I/O.

Pending files are grouped into transactions (all of them in one by default, or one per file), and a
group's files are sent a batch at a time: each file's text followed by its ledger row, many files to
one simple-query message. The server runs a message's statements in order and stops at the first
error, so the batch behaves exactly as if its statements were sent one by one, at a fraction of the
round trips. `Batch.locate` maps an error position in the message back to a file and an offset in it.
"""

from __future__ import annotations

from collections.abc import Iterator, Mapping, Sequence
from dataclasses import dataclass
from enum import StrEnum

from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable

BATCH_FILES = 100
"""Files per message at most: progress is reported as each batch commits to the server."""
BATCH_CHARS = 256 * 1024
"""Characters of SQL per message at most (a batch always holds at least one file)."""

# The moment the previous file of the transaction ended, in epoch seconds, so each ledger row can say
# how long its own file took although a whole batch arrives in one message. Transaction-local, and
# kept as a number so a file that changes DateStyle or TimeZone cannot garble it.
_MARK = "migrate.file_started"
_SET_MARK = f"SELECT set_config('{_MARK}', extract(epoch FROM clock_timestamp())::text, true);\n"
_SINCE_MARK = (
    f"1000 * (extract(epoch FROM clock_timestamp()) - "
    f"coalesce(nullif(current_setting('{_MARK}', true), '')::numeric, extract(epoch FROM statement_timestamp())))"
)


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


def groups(
    files: Sequence[MigrationFile], transactional: Mapping[int, bool], mode: TransactionMode
) -> Iterator[tuple[bool, tuple[MigrationFile, ...]]]:
    """(runs in a transaction, files) in order. A file that must run outside a transaction is a group of
    its own, so in `all` mode it ends the transaction before it and starts a new one after it."""
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

    def locate(self, position: int) -> tuple[MigrationFile, int] | None:
        """The file and 0-based offset in it of a server error position (1-based, in characters of the
        batch's text); None when it falls in the runner's own statements."""
        offset = position - 1
        for segment in reversed(self.segments):
            if offset >= segment.start:
                inside = offset - segment.start
                return (segment.file, inside) if inside < len(segment.file.sql) else None
        return None


def ledger_insert(table: LedgerTable, file: MigrationFile, hostname: str) -> str:
    return (
        f"INSERT INTO {table.qualified} (version, name, checksum, duration_ms, hostname) VALUES "
        f"({file.version}, {literal(file.name)}, {literal(file.checksum)}, {_SINCE_MARK}, {literal(hostname)});\n"
    )


def batches(files: Sequence[MigrationFile], table: LedgerTable, hostname: str) -> list[Batch]:
    """The messages that apply `files` (one transaction's worth) with their ledger rows, in order."""
    result: list[Batch] = []
    parts: list[str] = [_SET_MARK]
    size = len(_SET_MARK)
    segments: list[Segment] = []
    for file in files:
        full = len(segments) >= BATCH_FILES or (bool(segments) and size + len(file.sql) > BATCH_CHARS)
        if full:
            result.append(Batch(tuple(s.file for s in segments), "".join(parts), tuple(segments)))
            parts, size, segments = [], 0, []
        segments.append(Segment(file, size))
        # The newline ends a trailing `--` comment and the semicolon a last statement written without one.
        tail = "\n;\n" + ledger_insert(table, file, hostname) + _SET_MARK
        parts += [file.sql, tail]
        size += len(file.sql) + len(tail)
    if segments:
        result.append(Batch(tuple(s.file for s in segments), "".join(parts), tuple(segments)))
    return result
