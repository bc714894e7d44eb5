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


def _boolean_option(options: Any, name: str) -> bool | None:
    """A `WITH (name = value)` option as PostgreSQL's defGetBoolean reads it; None when absent or unclear."""
    for option in options or ():
        if getattr(option, "defname", None) != name:
            continue
        arg = option.arg
        if arg is None:
            return True  # `WITH (create_slot)` means true
        value = getattr(arg, "ival", getattr(arg, "boolval", getattr(arg, "sval", None)))
        if isinstance(value, bool) or value in (0, 1):
            return bool(value)
        return {"true": True, "on": True, "false": False, "off": False}.get(str(value).lower())
    return None


_NEVER_IN_A_TRANSACTION = frozenset(
    {
        "CreatedbStmt",  # CREATE DATABASE
        "DropdbStmt",  # DROP DATABASE
        "CreateTableSpaceStmt",  # CREATE TABLESPACE
        "DropTableSpaceStmt",  # DROP TABLESPACE
        "AlterSystemStmt",  # ALTER SYSTEM
        # REINDEX ... CONCURRENTLY, SCHEMA, SYSTEM and DATABASE always; REINDEX TABLE or INDEX when the
        # table or index is partitioned (each partition is reindexed in a transaction of its own).
        "ReindexStmt",
        # CLUSTER without a table, and CLUSTER of a partitioned table (a transaction per partition).
        "ClusterStmt",
        # DROP SUBSCRIPTION when the subscription has a replication slot (the usual case).
        "DropSubscriptionStmt",
    }
)


def _alter_subscription_is_transactional(node: Any) -> bool:
    from pglast.enums import AlterSubscriptionType as Alter

    kind = node.kind
    if kind == Alter.ALTER_SUBSCRIPTION_REFRESH:
        return False
    if kind in (
        Alter.ALTER_SUBSCRIPTION_SET_PUBLICATION,
        Alter.ALTER_SUBSCRIPTION_ADD_PUBLICATION,
        Alter.ALTER_SUBSCRIPTION_DROP_PUBLICATION,
    ):
        return _boolean_option(node.options, "refresh") is False  # refresh is the default
    if kind == Alter.ALTER_SUBSCRIPTION_OPTIONS:
        # Changing the slot's failover or two_phase property (PostgreSQL 17, 18) cannot be rolled back.
        return not {"failover", "two_phase"} & _option_names(node.options)
    return True


def _is_transactional(node: Any) -> bool:
    """Whether PostgreSQL accepts this statement inside a transaction block.

    Mirrors the callers of PreventInTransactionBlock in PostgreSQL's source (tcop/utility.c and
    commands/: dbcommands, tablespace, indexcmds, vacuum, cluster, discard, subscriptioncmds, tablecmds).
    Where the server's answer depends on the catalog, which the parse tree cannot show (is the table
    partitioned, has the subscription a slot), the statement is taken to need no transaction: it runs
    the same outside one, while running it inside one would fail.
    """
    kind = type(node).__name__
    if kind in _NEVER_IN_A_TRANSACTION:
        return False
    if kind in ("IndexStmt", "DropStmt"):  # CREATE / DROP INDEX CONCURRENTLY
        return not node.concurrent
    if kind == "VacuumStmt":
        return not node.is_vacuumcmd  # ANALYZE alone may run in a transaction; VACUUM may not
    if kind == "DiscardStmt":
        return int(node.target) != 0  # DISCARD ALL; DISCARD PLANS, SEQUENCES and TEMP may
    if kind == "AlterDatabaseStmt":
        return "tablespace" not in _option_names(node.options)  # ALTER DATABASE ... SET TABLESPACE
    if kind == "CreateSubscriptionStmt":
        # A replication slot is made unless create_slot is false; connect = false implies it is.
        options = node.options
        return _boolean_option(options, "connect") is False or _boolean_option(options, "create_slot") is False
    if kind == "AlterSubscriptionStmt":
        return _alter_subscription_is_transactional(node)
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
    r"\b(CONCURRENTLY|REINDEX|VACUUM|CLUSTER|SYSTEM|DATABASE|TABLESPACE|SUBSCRIPTION|DISCARD"
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
