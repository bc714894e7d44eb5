"""`migrate lint`: rules that keep migrations rerunnable (ours, on pglast's parse tree) plus squawk's rules
for changes that are unsafe on a live database.

Our rules (each finding is `file:line:column: rule: message`):
    create-if-not-exists   CREATE without IF NOT EXISTS (or OR REPLACE where that is the idiom); for
                           objects PostgreSQL offers neither for (types, roles, policies), a guard is needed
    drop-if-exists         DROP without IF EXISTS
    add-column-if-not-exists / drop-column-if-exists   the same inside ALTER TABLE
A statement is exempt from one of our rules with `-- migrate:lint-ignore RULE` on the line above it.

A file without statements (comments or white space alone) gets a note at info level, `no-statements`, which
never fails the command: it is a valid, empty migration, e.g. a number kept after a squash.

squawk (the `squawk-cli` package) runs with its default rules, except those listed in SQUAWK_EXCLUDED with
the reason; a squawk rule is silenced for one line with squawk's own `-- squawk-ignore RULE` comment.
Files that run in a transaction are checked with `--assume-in-transaction`, as the runner runs them.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from src.migrate import sql
from src.migrate.errors import ConfigError
from src.migrate.files import MigrationFile

SQUAWK_EXCLUDED = {
    "require-lock-timeout": "the runner sets lock_timeout on its session (MIGRATE_LOCK_TIMEOUT)",
    "require-statement-timeout": "the runner sets statement_timeout on its session (MIGRATE_STATEMENT_TIMEOUT)",
    "prefer-robust-stmts": "migrate's own rules check the same, naming the statement's rule",
}
IGNORE_MARKER = "migrate:lint-ignore"
# Object kinds PostgreSQL can create only without IF NOT EXISTS / OR REPLACE.
_NO_GUARD_SYNTAX = {
    "CreateEnumStmt": "CREATE TYPE ... AS ENUM",
    "CompositeTypeStmt": "CREATE TYPE ... AS (...)",
    "CreateRangeStmt": "CREATE TYPE ... AS RANGE",
    "CreateDomainStmt": "CREATE DOMAIN",
    "CreateRoleStmt": "CREATE ROLE",
    "CreatePolicyStmt": "CREATE POLICY",
    "CreatePublicationStmt": "CREATE PUBLICATION",
    "CreateEventTrigStmt": "CREATE EVENT TRIGGER",
}


@dataclass(frozen=True)
class Finding:
    file: str
    line: int
    column: int
    rule: str
    message: str

    def __str__(self) -> str:
        return f"{self.file}:{self.line}:{self.column}: {self.rule}: {self.message}"


_KEYWORDS = frozenset(
    [
        "CREATE",
        "DROP",
        "UNIQUE",
        "INDEX",
        "CONCURRENTLY",
        "TABLE",
        "SCHEMA",
        "SEQUENCE",
        "EXTENSION",
        "VIEW",
        "MATERIALIZED",
        "FUNCTION",
        "PROCEDURE",
        "TRIGGER",
        "CONSTRAINT",
        "TEMP",
        "TEMPORARY",
        "UNLOGGED",
        "FOREIGN",
        "TYPE",
        "OR",
        "REPLACE",
        "RULE",
        "AGGREGATE",
        "OPERATOR",
        "COLLATION",
        "STATISTICS",
        "SERVER",
        "ROLE",
        "USER",
        "OWNED",
        "POLICY",
        "DOMAIN",
        "CAST",
        "CONVERSION",
        "PUBLICATION",
        "SUBSCRIPTION",
        "TABLESPACE",
    ]
)


def _leading_keywords(text: str) -> str:
    """`CREATE UNIQUE INDEX` from `create unique index ix ON t (x)`: the statement's kind, without names."""
    words = []
    for word in text.split():
        if word.upper() not in _KEYWORDS:
            break
        words.append(word.upper())
    return " ".join(words)


def _statement_rules(statement: sql.Statement) -> list[tuple[str, str]]:
    from pglast.enums import AlterTableType

    node: Any = statement.node
    kind = type(node).__name__
    slots = set(getattr(type(node), "__slots__", ()))
    words = _leading_keywords(statement.text)
    if kind == "AlterTableStmt":
        found = []
        for cmd in node.cmds or ():
            if cmd.subtype == AlterTableType.AT_AddColumn and not cmd.missing_ok:
                found.append(("add-column-if-not-exists", "ADD COLUMN without IF NOT EXISTS fails when rerun"))
            elif cmd.subtype == AlterTableType.AT_DropColumn and not cmd.missing_ok:
                found.append(("drop-column-if-exists", "DROP COLUMN without IF EXISTS fails when rerun"))
        return found
    if kind.startswith("Drop") and "missing_ok" in slots and not node.missing_ok:
        return [("drop-if-exists", f"{words} without IF EXISTS fails when rerun")]
    if kind in _NO_GUARD_SYNTAX:
        return [
            (
                "create-if-not-exists",
                f"{_NO_GUARD_SYNTAX[kind]} has no IF NOT EXISTS in PostgreSQL; guard it (e.g. a DO block that "
                "checks the catalog first) so a rerun is harmless",
            )
        ]
    if kind.startswith("Create") or kind in ("IndexStmt", "ViewStmt", "DefineStmt", "RuleStmt"):
        # Some statements take either guard (CREATE COLLATION IF NOT EXISTS, CREATE OR REPLACE AGGREGATE
        # share DefineStmt); one of them is enough.
        guards = [name for name in ("if_not_exists", "replace") if name in slots]
        if guards and not any(getattr(node, name) for name in guards):
            wanted = " or ".join("IF NOT EXISTS" if name == "if_not_exists" else "OR REPLACE" for name in guards)
            return [("create-if-not-exists", f"{words} without {wanted} fails when rerun")]
    return []


def own_findings(file: MigrationFile, statements: Sequence[sql.Statement]) -> list[Finding]:
    lines = file.sql.split("\n")
    findings = []
    for statement in statements:
        line, column = sql.line_and_column(file.sql, statement.offset)
        above = lines[line - 2] if line >= 2 else ""
        for rule, message in _statement_rules(statement):
            if IGNORE_MARKER in above and rule in above.split(IGNORE_MARKER, 1)[1].split():
                continue
            findings.append(Finding(file.filename, line, column, rule, message))
    return findings


def squawk_executable() -> str:
    beside = Path(sys.executable).parent / "squawk"
    found = str(beside) if beside.is_file() else shutil.which("squawk")
    if found is None:
        raise ConfigError(
            "squawk not found beside this Python or on PATH; install the `lint` extra "
            "(pip install 'agent-backend-db[lint]')"
        )
    return found


def squawk_findings(files: Sequence[MigrationFile], *, in_transaction: bool) -> list[Finding]:
    if not files:
        return []
    by_path = {str(f.path): f for f in files}
    command = [
        squawk_executable(),
        "--reporter=json",
        "--exclude=" + ",".join(SQUAWK_EXCLUDED),
        "--assume-in-transaction" if in_transaction else "--no-assume-in-transaction",
        *by_path,
    ]
    done = subprocess.run(command, capture_output=True, text=True, check=False)  # noqa: S603
    try:
        reports = json.loads(done.stdout or "[]")
    except json.JSONDecodeError:
        raise ConfigError(
            f"squawk failed (exit {done.returncode}): {done.stderr.strip() or done.stdout[:500]}"
        ) from None
    findings = []
    for report in reports:
        file = by_path.get(report["file"])
        name = file.filename if file is not None else Path(report["file"]).name
        message = report["message"] + (f" {report['help']}" if report.get("help") else "")
        # squawk counts lines and columns from 0.
        findings.append(Finding(name, int(report["line"]) + 1, int(report["column"]) + 1, report["rule_name"], message))
    return findings


def lint(files: Sequence[MigrationFile]) -> list[Finding]:
    """Every finding for `files`, ordered by file and position. Parse errors raise MigrationFileError."""
    parsed = {f.version: sql.parse(f) for f in files}
    findings = [finding for f in files for finding in own_findings(f, parsed[f.version])]
    transactional = [f for f in files if all(s.transactional for s in parsed[f.version])]
    outside = [f for f in files if f not in transactional]
    findings += squawk_findings(transactional, in_transaction=True)
    findings += squawk_findings(outside, in_transaction=False)
    return sorted(findings, key=lambda x: (x.file, x.line, x.column, x.rule))


def notes(files: Sequence[MigrationFile]) -> list[Finding]:
    """Notes at info level, which never fail `lint`: each file without statements."""
    what = "the file holds only comments or white space; `apply` records it in the ledger and runs nothing"
    return [Finding(f.filename, 1, 1, "no-statements", what) for f in files if f.empty]
