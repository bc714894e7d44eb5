"""Migration files: their names, their text and their checksums. Reads files; never touches a database.

A migration is a file named `NNN_description.sql`: three or more digits (the version, at most the
ledger's bigint), an underscore, and a description of letters, digits, `_` or `-`. Other files in the
folder (a README, dot-files) are ignored; a `.sql` file with any other name is an error, because a typo
there would silently skip a migration. A file of comments or white space alone is a valid migration
with no statements (a number kept after a squash, a placeholder), except the unedited `migrate new`
template.
"""

from __future__ import annotations

import hashlib
import os
import re
from dataclasses import dataclass
from pathlib import Path

from src.migrate.errors import ConfigError, MigrationFileError

FILENAME_PATTERN = re.compile(r"^(?P<version>[0-9]{3,})_(?P<name>[A-Za-z0-9][A-Za-z0-9_-]*)\.sql$")
BOM = "\ufeff"
MAX_VERSION = 2**63 - 1
"""The ledger's `version` is a bigint."""
# What a statement-less text may hold: white space (as PostgreSQL's lexer counts it), semicolons and
# `--` comments; block comments nest, so `_without_statements` counts their marks.
_BLANK = re.compile(r"(?:[ \t\n\r\f\v]+|;|--[^\n]*)*")
_COMMENT_MARKS = re.compile(r"/\*|\*/")


@dataclass(frozen=True)
class MigrationFile:
    version: int
    name: str
    path: Path
    sql: str
    """The file's text as it is run: UTF-8, leading BOM removed, CRLF read as LF."""
    checksum: str
    """SHA-256 of `sql`, so a BOM or line-ending change made by an editor is not drift."""

    @property
    def filename(self) -> str:
        return self.path.name

    @property
    def empty(self) -> bool:
        """The file holds no statement: only comments, white space or semicolons. It is applied as a
        no-op (only its ledger row is written), and the parser agrees: pglast finds no statement in it."""
        return _without_statements(self.sql)

    @property
    def unedited_template(self) -> bool:
        """Written by `migrate new` and still without a statement, the template's marker line in place."""
        return self.empty and (TEMPLATE_MARKER in self.sql or _OLD_TEMPLATE_MARKER in self.sql)


def _without_statements(text: str) -> bool:
    position = 0
    while True:
        blank = _BLANK.match(text, position)
        position = blank.end() if blank else position
        if position == len(text):
            return True
        if not text.startswith("/*", position):
            return False
        depth = 0
        for found in _COMMENT_MARKS.finditer(text, position):
            depth += 1 if found.group() == "/*" else -1
            if depth == 0:
                position = found.end()
                break
        else:
            return False  # an unterminated block comment: the parser will say so


def parse_filename(filename: str) -> tuple[int, str]:
    """`"007_add_index.sql"` -> `(7, "add_index")`; a `MigrationFileError` explains any other name."""
    match = FILENAME_PATTERN.match(filename)
    if match is None:
        raise MigrationFileError(
            f"{filename}: not a valid migration name; expected NNN_description.sql "
            "(3 or more digits, '_', then letters, digits, '_' or '-'), e.g. 008_add_todo_index.sql"
        )
    version = int(match["version"])
    if version > MAX_VERSION:
        raise MigrationFileError(
            f"{filename}: version {match['version']} is out of range; versions go from 0 to {MAX_VERSION} "
            "(the ledger's bigint): renumber the file"
        )
    return version, match["name"]


def normalize(raw: bytes, filename: str) -> str:
    """Decode a file as UTF-8 with a leading BOM dropped and CRLF (or lone CR) line ends read as LF."""
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise MigrationFileError(
            f"{filename}:{line}: not valid UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the file as UTF-8"
        ) from None
    text = text.removeprefix(BOM)
    if "\r" in text:
        text = text.replace("\r\n", "\n").replace("\r", "\n")
    nul = text.find("\0")
    if nul >= 0:
        line = text.count("\n", 0, nul) + 1
        column = nul - (text.rfind("\n", 0, nul) + 1) + 1
        raise MigrationFileError(
            f"{filename}:{line}:{column}: contains a NUL byte, which PostgreSQL does not accept in SQL text; "
            "remove it (write a zero byte in data as '\\x00'::bytea)"
        )
    return text


def checksum(text: str) -> str:
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def load(path: Path) -> MigrationFile:
    version, name = parse_filename(path.name)
    return _load(path, str(path), path.name, version, name)


def _load(path: Path, where: str, filename: str, version: int, name: str) -> MigrationFile:
    # `where` and `filename` are `path` as strings, which discover has already: pathlib's conversions,
    # per file, were a quarter of reading 1,000 files at every container start.
    try:
        with open(where, "rb") as handle:
            raw = handle.read()
    except OSError as exc:
        raise MigrationFileError(f"{filename}: cannot be read: {exc.strerror}") from None
    text = normalize(raw, filename)
    return MigrationFile(version=version, name=name, path=path, sql=text, checksum=checksum(text))


def discover(directory: Path) -> list[MigrationFile]:
    """Every migration in `directory`, ordered by version; refuses bad names and duplicate versions.

    All problems with names are reported together, so one run shows everything to fix.
    """
    # One scandir instead of a stat per file: this runs at every container start, over every file.
    try:
        with os.scandir(directory) as found:
            entries = sorted(found, key=lambda e: e.name)
    except (FileNotFoundError, NotADirectoryError):
        what = "is not a folder" if directory.exists() else "does not exist"
        raise ConfigError(
            f"migrations folder {directory} {what}; set --migrations-dir or MIGRATIONS_DIR to the folder "
            "that holds the NNN_description.sql files"
        ) from None
    except OSError as exc:
        raise ConfigError(f"migrations folder {directory} cannot be read: {exc.strerror}") from None
    problems: list[str] = []
    by_version: dict[int, list[tuple[os.DirEntry[str], str]]] = {}
    for entry in entries:
        filename = entry.name
        if filename.startswith(".") or not filename.lower().endswith(".sql"):
            continue
        try:
            version, name = parse_filename(filename)
        except MigrationFileError as exc:
            problems.append(str(exc))
            continue
        if not entry.is_file():
            problems.append(f"{filename}: is not a regular file")
            continue
        by_version.setdefault(version, []).append((entry, name))
    for version, named in sorted(by_version.items()):
        if len(named) > 1:
            names = ", ".join(entry.name for entry, _ in named)
            problems.append(f"{names}: {len(named)} files share version {version}; renumber all but one")
    if problems:
        raise MigrationFileError("\n".join(problems))
    first = [(version, *named[0]) for version, named in sorted(by_version.items())]
    return [_load(directory / entry.name, entry.path, entry.name, version, name) for version, entry, name in first]


TEMPLATE_MARKER = "migrate:template"
"""A line of `migrate new`'s template: a file holding it and no statement is refused, so an unedited
template never applies (a file of comments alone is otherwise a valid, empty migration)."""
_OLD_TEMPLATE_MARKER = "Until it holds a statement, `migrate apply` refuses it"
"""What the template said before it had the marker: files made then are still refused while unedited."""
TEMPLATE = """\
-- {filename}: describe the change here.
--
-- The runner runs this file in a transaction together with its ledger row (or statement by statement
-- outside one, when it holds CREATE INDEX CONCURRENTLY or another statement PostgreSQL refuses in a
-- transaction). Keep it idempotent: running it again must change nothing. `migrate lint` checks. E.g.:
--   CREATE TABLE IF NOT EXISTS tasks.example (id uuid PRIMARY KEY DEFAULT gen_random_uuid());
--   ALTER TABLE tasks.example ADD COLUMN IF NOT EXISTS note text;
--   CREATE INDEX IF NOT EXISTS ix_example_note ON tasks.example (note);
--   COMMENT ON TABLE tasks.example IS 'What it holds.';
-- While the next line is here and the file holds no statement, `migrate apply` refuses the file, so an
-- unedited template never applies; delete it to keep an empty migration on purpose (a placeholder).
-- {marker}
"""


def new_file(directory: Path, description: str) -> Path:
    """Write the next-numbered migration from the template; the number keeps the folder's zero-padding."""
    slug = re.sub(r"[^a-z0-9]+", "_", description.lower()).strip("_")
    if not slug:
        raise MigrationFileError(f"{description!r}: a migration name needs letters or digits")
    existing = discover(directory)
    version = existing[-1].version + 1 if existing else 1
    width = max(3, len(existing[-1].filename.split("_", 1)[0])) if existing else 3
    path = directory / f"{version:0{width}d}_{slug}.sql"
    path.write_text(TEMPLATE.format(filename=path.name, marker=TEMPLATE_MARKER), encoding="utf-8")
    return path
