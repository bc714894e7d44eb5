"""Split a migration into statements with PostgreSQL's own parser (pglast) and classify them.

Pure: text in, statements out. pglast is imported on first use, so runs with nothing to apply (the
common container start) never pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from src.migrate.errors import MigrationFileError
from src.migrate.files import MigrationFile


@dataclass(frozen=True)
class Statement:
    text: str
    offset: int
    """Character offset of the statement's first character in the file."""
    kind: str
    """The parse node's name, e.g. `CreateStmt`, `IndexStmt`."""
    transactional: bool
    """False when PostgreSQL refuses it inside a transaction block (CREATE INDEX CONCURRENTLY, VACUUM, ...)."""
    node: Any = field(default=None, compare=False, repr=False)
    """pglast's parse tree of the statement, for the linter and the invalid-index check."""


def line_and_column(text: str, offset: int) -> tuple[int, int]:
    """1-based line and column of a 0-based character offset."""
    offset = max(0, min(offset, len(text)))
    line = text.count("\n", 0, offset) + 1
    column = offset - (text.rfind("\n", 0, offset) + 1) + 1
    return line, column


def excerpt(text: str, offset: int) -> str:
    """The line holding `offset`, with a caret under the column, for error messages."""
    line, column = line_and_column(text, offset)
    source = text.split("\n")[line - 1]
    gutter = f"{line:>5} | "
    return f"{gutter}{source}\n{' ' * (len(gutter) - 2)}| {' ' * (column - 1)}^"


def _option_names(options: Any) -> set[str]:
    return {str(o.defname) for o in options or () if getattr(o, "defname", None)}


def _is_transactional(node: Any) -> bool:
    """Whether PostgreSQL accepts this statement inside a transaction block (see PreventInTransactionBlock)."""
    kind = type(node).__name__
    if kind in ("IndexStmt", "DropStmt"):
        return not node.concurrent
    if kind == "ReindexStmt":
        # REINDEX SCHEMA / SYSTEM / DATABASE (kinds 2-4) refuse a transaction block, as does CONCURRENTLY.
        return "concurrently" not in _option_names(node.params) and int(node.kind) < 2
    if kind == "VacuumStmt":
        return not node.is_vacuumcmd  # ANALYZE alone may run in a transaction; VACUUM may not
    if kind == "ClusterStmt":
        return node.relation is not None
    if kind in (
        "AlterSystemStmt",
        "CreatedbStmt",
        "DropdbStmt",
        "CreateTableSpaceStmt",
        "DropTableSpaceStmt",
        "CreateSubscriptionStmt",
        "DropSubscriptionStmt",
        "AlterSubscriptionStmt",
    ):
        return False
    if kind == "AlterTableStmt":
        for cmd in node.cmds or ():
            partition = getattr(getattr(cmd, "def_", None), "concurrent", False)
            if partition:  # ALTER TABLE ... DETACH PARTITION ... CONCURRENTLY
                return False
    return True


def syntax_error(file: MigrationFile, offset: int, message: str, after: str = "") -> MigrationFileError:
    """`file:line:column: message` and the line with a caret, whether pglast or the server found it."""
    line, column = line_and_column(file.sql, offset)
    text = f"{file.filename}:{line}:{column}: {message}\n{excerpt(file.sql, offset)}"
    return MigrationFileError(f"{text}\n{after}" if after else text)


# Every statement PostgreSQL refuses in a transaction block holds one of these words, and so does every
# transaction-control statement (see _is_transactional and TransactionStmt).
_NEEDS_PARSER = re.compile(
    r"\b(CONCURRENTLY|REINDEX|VACUUM|CLUSTER|SYSTEM|DATABASE|TABLESPACE|SUBSCRIPTION"
    r"|BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE)\b",
    re.IGNORECASE,
)
_LINE_COMMENT = re.compile(r"--[^\n]*")


def plainly_transactional(text: str) -> bool:
    """True only when `text` surely holds a statement, and every statement in it runs inside a
    transaction block and none is transaction control; False means "parse it to know".

    A cheap look at the words, for files that go to the server unparsed. It errs towards False: such a
    word inside a string, a comment or a name only costs a parse. Block comments (which nest) always
    do, so that a file of comments alone is never taken for one with statements.
    """
    if "/*" in text or _NEEDS_PARSER.search(text):
        return False
    return bool(_LINE_COMMENT.sub("", text).replace(";", "").strip())


def parse(file: MigrationFile) -> list[Statement]:
    """The file's statements in order; refuses syntax errors, empty files and transaction control."""
    import pglast
    from pglast.parser import ParseError

    text = file.sql
    try:
        raw = pglast.parse_sql(text)
    except ParseError as exc:
        message, index = (*exc.args, None)[:2]
        if isinstance(index, int):
            raise syntax_error(file, index, message) from None
        raise MigrationFileError(f"{file.filename}: {message}") from None
    statements: list[Statement] = []
    for item in raw:
        start = item.stmt_location or 0
        length = item.stmt_len or (len(text) - start)  # 0 means "to the end of the input"
        node = item.stmt
        kind = type(node).__name__
        if kind == "TransactionStmt":
            line, column = line_and_column(text, start)
            shown = " ".join(text[start : start + length].split()).upper() or "transaction control"
            raise MigrationFileError(
                f"{file.filename}:{line}:{column}: {shown} is not allowed in a migration: the runner "
                "runs the files in a transaction it owns (or statement by statement when one must run "
                "outside one); remove the transaction control\n" + excerpt(text, start)
            )
        body = text[start : start + length]
        stripped = body.lstrip()
        statements.append(
            Statement(
                text=stripped.rstrip(),
                offset=start + len(body) - len(stripped),
                kind=kind,
                transactional=_is_transactional(node),
                node=node,
            )
        )
    if not statements:
        raise MigrationFileError(
            f"{file.filename}: contains no SQL statements (only comments or white space); "
            "write the migration or delete the file"
        )
    return statements
