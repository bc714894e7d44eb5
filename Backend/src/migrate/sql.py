"""Split a migration into statements with PostgreSQL's own parser (pglast) and classify them.

Pure: text in, statements out. pglast is imported on first use, so runs with nothing to apply (the
common container start) never pay for it.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from src.migrate.errors import Diagnostic, MigrationFileError
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


SYNTAX_ERROR = "42601"
"""The SQLSTATE of a syntax error; pglast's parse errors are given it too, so every syntax error has one."""


def syntax_error(file: MigrationFile, offset: int, message: str, after: str = "") -> MigrationFileError:
    """`file:line:column: ERROR 42601: message` and the line with a caret, as the server reports one."""
    line, column = line_and_column(file.sql, offset)
    text = f"{file.filename}:{line}:{column}: ERROR {SYNTAX_ERROR}: {message}\n{excerpt(file.sql, offset)}"
    found = Diagnostic(SYNTAX_ERROR, message, file.filename, line, column)
    return MigrationFileError(f"{text}\n{after}" if after else text, diagnostic=found)


# Every statement PostgreSQL refuses in a transaction block holds one of these words, and so does every
# transaction-control statement and COPY (see _is_transactional, TransactionStmt and _psql_only).
_NEEDS_PARSER = re.compile(
    r"\b(CONCURRENTLY|REINDEX|VACUUM|CLUSTER|SYSTEM|DATABASE|TABLESPACE|SUBSCRIPTION|DISCARD|COPY"
    r"|BEGIN|START|COMMIT|END|ROLLBACK|ABORT|SAVEPOINT|RELEASE|PREPARE|standard_conforming_strings)\b",
    re.IGNORECASE,
)
_LINE_COMMENT = re.compile(r"--[^\n]*")
# What opens a string, quoted identifier, dollar quote or comment (PostgreSQL's lexer: scan.l).
# Identifier characters are ASCII letters, digits and _ (and $ after the first), and every character from
# \x80 up. Written as the ASCII characters they are not: `[...\x80-\U0010ffff]` means the same, but
# compiling it takes milliseconds each, a cost every `migrate` start paid (tests/migrate/test_sql.py checks
# the two spellings agree on every code point).
_START_CHAR = r"[^\x00-\x40\x5b-\x5e\x60\x7b-\x7f]"  # [A-Za-z_\x80-\U0010ffff]
_WORD_CHAR = r"[^\x00-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # [A-Za-z0-9_\x80-\U0010ffff]
_REST_CHAR = r"[^\x00-\x23\x25-\x2f\x3a-\x40\x5b-\x5e\x60\x7b-\x7f]"  # [A-Za-z0-9_$\x80-\U0010ffff]
_DOLLAR_TAG = rf"\$(?:{_START_CHAR}{_WORD_CHAR}*)?\$"
_OPENER = re.compile(rf"[Ee]'|'|\"|--|/\*|{_DOLLAR_TAG}")
_IDENTIFIER_CHAR = re.compile(_WORD_CHAR)
_IDENTIFIER_REST = re.compile(f"{_REST_CHAR}*")
_CLOSED = {
    "'": re.compile(r"'(?:[^']|'')*'"),
    "E'": re.compile(r"[Ee]'(?:[^'\\]|\\.|'')*'", re.DOTALL),
    '"': re.compile(r'"(?:[^"]|"")*"'),
}


def _quotes_closed(text: str) -> bool:
    """Whether every string, quoted identifier and dollar quote in `text` ends in it (no block comment).

    The runner sends a transaction's files in one message, each followed by its ledger row: a quote left
    open at the end of one file would swallow that row and run on into the next file.
    """
    position = 0
    while (found := _OPENER.search(text, position)) is not None:
        start, opener = found.start(), found.group()
        after_word = start > 0 and _IDENTIFIER_CHAR.match(text[start - 1]) is not None
        if opener.startswith("$") and after_word:  # a `$` inside a name (a$b) or after a number
            position = _IDENTIFIER_REST.match(text, start).end()  # type: ignore[union-attr]
            continue
        if opener[0] in "Ee" and after_word:  # the end of a word (CASE'x'), then a plain string
            start, opener = start + 1, "'"
        if opener == "--":
            end = text.find("\n", start)
            position = len(text) if end < 0 else end + 1
        elif opener == "/*":
            return False
        elif opener.startswith("$"):
            end = text.find(opener, found.end())
            if end < 0:
                return False
            position = end + len(opener)
        else:
            closed = _CLOSED["E'" if opener[0] in "Ee" else opener].match(text, start)
            if closed is None:
                return False
            position = closed.end()
    return True


def plainly_transactional(text: str) -> bool:
    """True only when `text` surely holds a statement, and every statement in it runs inside a
    transaction block, none is transaction control, COPY or psql's, and every quote in it is closed;
    False means "parse it to know".

    A cheap look at the words, for files that go to the server unparsed. It errs towards False: such a
    word inside a string, a comment or a name only costs a parse. Block comments (which nest) and
    backslashes (psql's meta-commands start with one) always do, so that a file of comments alone is
    never taken for one with statements, and psql's input is refused naming its line.
    """
    if "/*" in text or "\\" in text or _NEEDS_PARSER.search(text) or not _quotes_closed(text):
        return False
    return bool(_LINE_COMMENT.sub("", text).replace(";", "").strip())


def _refuse(file: MigrationFile, offset: int, message: str) -> MigrationFileError:
    line, column = line_and_column(file.sql, offset)
    return MigrationFileError(f"{file.filename}:{line}:{column}: {message}\n{excerpt(file.sql, offset)}")


def _psql_only(file: MigrationFile, offset: int, node: Any) -> MigrationFileError | None:
    """The refusal of a statement only psql can run: COPY from or to the client."""
    if type(node).__name__ != "CopyStmt" or node.filename is not None:
        return None
    if node.is_from:
        return _refuse(
            file,
            offset,
            "COPY ... FROM STDIN reads rows psql sends after the statement; the runner sends none, so it "
            "would wait for ever. Load the rows with INSERT ... VALUES, or COPY ... FROM a file the server "
            "can read",
        )
    return _refuse(
        file,
        offset,
        "COPY ... TO STDOUT writes rows for psql to show; the runner reads none. Write them to a file the "
        "server can write (COPY ... TO 'path'), or leave the statement out",
    )


_OFF = ("off", "false", "no", "0", "of", "fa", "f", "n")


def _lexer_setting(node: Any) -> bool | None:
    """What a statement sets standard_conforming_strings to: False (off), True (on, or RESET), or None
    when it is not such a statement."""
    if type(node).__name__ != "VariableSetStmt" or (node.name or "").lower() not in (
        "standard_conforming_strings",
        "all",
    ):
        return None
    if (node.name or "").lower() == "all" or not node.args:  # RESET ALL, RESET / SET ... TO DEFAULT
        return True
    values = [getattr(arg.val, "sval", getattr(arg.val, "ival", None)) for arg in node.args]
    return not any(str(value).lower() in _OFF for value in values)


def _backslash_string(file: MigrationFile, start: int, text: str) -> MigrationFileError | None:
    """The refusal of a plain '...' string holding a backslash, in a statement read while the file has
    standard_conforming_strings off: the server reads the whole message with the setting it had before
    the SET ran, so the string would store other text than under psql. E'...' strings read the same
    either way, which is how pg_dump wrote them when it turned the setting off."""
    import pglast

    for token in pglast.parser.scan(text):
        literal = text[token.start : token.end + 1]
        if token.name == "SCONST" and literal.startswith("'") and "\\" in literal:
            return _refuse(
                file,
                start + token.start,
                "a '...' string with a backslash after SET standard_conforming_strings = off: the runner "
                "sends many statements in one message, and the server reads it with the setting it had "
                "before, so the backslash would not mean what it means under psql. Write the string as "
                "E'...' (an escape string, which reads the same with the setting on or off)",
            )
    return None


_META_COMMAND = re.compile(r"\\(?:[A-Za-z]+|.)", re.DOTALL)
_VARIABLE = re.compile(r":(?:[A-Za-z_][A-Za-z0-9_]*|'[A-Za-z_][A-Za-z0-9_]*'|\"[A-Za-z_][A-Za-z0-9_]*\"|\{\?\w+\})")


def _explain_parse_error(file: MigrationFile, index: int) -> MigrationFileError | None:
    """psql's input, when it is what the parser stopped at: a COPY FROM STDIN before (its rows are what
    failed to parse), a meta-command, or a variable."""
    import pglast
    from pglast.parser import ParseError

    text = file.sql
    try:
        ends = [t.end for t in pglast.parser.scan(text[:index]) if t.name == "ASCII_59"]
        earlier = pglast.parse_sql(text[: ends[-1] + 1]) if ends else ()
    except ParseError:
        earlier = ()
    for item in earlier:
        body = text[item.stmt_location or 0 :]
        refused = _psql_only(file, (item.stmt_location or 0) + len(body) - len(body.lstrip()), item.stmt)
        if refused is not None:
            return refused
    command = _META_COMMAND.match(text, index)
    if command is not None:
        return _refuse(
            file,
            index,
            f"{command.group()} is a psql meta-command, not SQL: the runner sends each file to the server as "
            "it is, and only psql understands these. Write the SQL itself (an included file's statements "
            "go in a migration of their own)",
        )
    variable = _VARIABLE.match(text, index)
    if variable is not None:
        return _refuse(
            file,
            index,
            f"{variable.group()} is psql variable interpolation, not SQL: the runner substitutes nothing. "
            "Write the value itself",
        )
    return None


def parse(file: MigrationFile) -> list[Statement]:
    """The file's statements in order (none for a file of comments alone); refuses syntax errors,
    transaction control, input only psql understands, and the unedited `migrate new` template."""
    import pglast
    from pglast.parser import ParseError

    text = file.sql
    try:
        raw = pglast.parse_sql(text)
    except ParseError as exc:
        message, index = (*exc.args, None)[:2]
        psql = _explain_parse_error(file, index) if isinstance(index, int) else None
        if psql is not None:
            raise psql from None
        if isinstance(index, int):
            raise syntax_error(file, index, message) from None
        raise MigrationFileError(
            f"{file.filename}: ERROR {SYNTAX_ERROR}: {message}",
            diagnostic=Diagnostic(SYNTAX_ERROR, str(message), file.filename),
        ) from None
    statements: list[Statement] = []
    conforming = True  # standard_conforming_strings, as the statements so far leave it
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
        offset = start + len(body) - len(stripped)
        refused = _psql_only(file, offset, node)
        if refused is None and not conforming:
            refused = _backslash_string(file, offset, stripped)
        if refused is not None:
            raise refused
        setting = _lexer_setting(node)
        if setting is not None:
            conforming = setting
        transactional = _is_transactional(node)
        statements.append(Statement(stripped.rstrip(), offset, kind, transactional, node))
    if not statements and file.unedited_template:
        from src.migrate.files import TEMPLATE_MARKER

        raise MigrationFileError(
            f"{file.filename}: the unedited `migrate new` template: it holds no statement yet and still has "
            f"its `-- {TEMPLATE_MARKER}` line. Write the migration, or delete that line to keep the file as "
            "an empty migration on purpose"
        )
    return statements
