"""Every error the runner expects, one small tree, and the one table of exit codes.

The CLI prints `str(error)` and exits with `error.exit_code`. Library exceptions (asyncpg, OSError,
pglast) are translated into these where they happen, so a message always says what to do and never
carries a password. `EXIT_CODES` is the table docs/migrations.md shows (a test holds them equal).
"""

from __future__ import annotations

from dataclasses import dataclass
from enum import IntEnum


class Exit(IntEnum):
    """What a `migrate` command's exit status means. `migrate health` uses 0 and 1 only, as Docker's
    HEALTHCHECK expects (it reserves 2)."""

    OK = 0
    MIGRATION_FAILED = 1
    BAD_SETTING = 2
    CANNOT_CONNECT = 3
    MALFORMED_FILE = 4
    DRIFT = 5
    LOCK_TIMEOUT = 6
    LINT = 7
    NOT_IDEMPOTENT = 8
    NO_DEV_SERVER = 9
    READ_ONLY = 10
    NO_DOWN_SCRIPT = 11
    DUMP_FAILED = 12
    INTERRUPTED = 130
    TERMINATED = 143


EXIT_CODES: dict[Exit, str] = {
    Exit.OK: "success",
    Exit.MIGRATION_FAILED: (
        "a migration's SQL failed; its transaction was rolled back (the message names any files committed "
        "before it, which stay applied)"
    ),
    Exit.BAD_SETTING: "a bad option or setting (named in the message)",
    Exit.CANNOT_CONNECT: "cannot connect: server down, wrong password, unknown database or host, lost connection",
    Exit.MALFORMED_FILE: (
        "a migration file is malformed: name, duplicate version, encoding, syntax, transaction control"
    ),
    Exit.DRIFT: "files and ledger disagree (drift)",
    Exit.LOCK_TIMEOUT: "the lock wait ran out (the message names the holder)",
    Exit.LINT: "`lint` or `verify` found lint findings",
    Exit.NOT_IDEMPOTENT: (
        "`verify` found an INVALID index, or a rerun or round trip that changed the catalog or failed"
    ),
    Exit.NO_DEV_SERVER: (
        "`migrate db status`/`url`: no dev server runs on the data folder; `db stop`: the server there was "
        "not started by `migrate db start` (left running)"
    ),
    Exit.READ_ONLY: (
        "the server is read-only (a hot standby, or default_transaction_read_only): migrations need the primary"
    ),
    Exit.NO_DOWN_SCRIPT: "`rollback` refused: a file it would undo has no down script (named in the message)",
    Exit.DUMP_FAILED: (
        "`dump` (or `apply --dump-file`): no usable pg_dump on this machine (the message names the version to "
        "install), or pg_dump failed; an apply's migrations stay applied"
    ),
    Exit.INTERRUPTED: "interrupted (Ctrl-C, SIGINT)",
    Exit.TERMINATED: "terminated (SIGTERM)",
}
"""One line per exit code, as the docs show it."""


@dataclass(frozen=True)
class Diagnostic:
    """The parts of a SQL error, whichever side found it (the server, or pglast before anything ran), for
    `--json` and for callers that want more than the message."""

    sqlstate: str
    message: str
    file: str | None = None
    """The migration file the error is in; None when the runner could not tell which."""
    line: int | None = None
    column: int | None = None
    detail: str | None = None
    hint: str | None = None
    context: str | None = None


class MigrateError(Exception):
    """Base of every expected runner error."""

    exit_code: Exit = Exit.MIGRATION_FAILED
    diagnostic: Diagnostic | None = None
    """Set when the error is a SQL error (MigrationFailed, a syntax error)."""


class ConfigError(MigrateError):
    """A setting is missing or wrong (names the setting)."""

    exit_code = Exit.BAD_SETTING


class ConnectionFailed(MigrateError):
    """The server cannot be reached, or refused us (host down, bad password, unknown database)."""

    exit_code = Exit.CANNOT_CONNECT


class MigrationFileError(MigrateError):
    """A migration file is malformed: its name, encoding, or content the runner refuses (names the file)."""

    exit_code = Exit.MALFORMED_FILE

    def __init__(self, message: str, *, diagnostic: Diagnostic | None = None) -> None:
        super().__init__(message)
        self.diagnostic = diagnostic


class DriftError(MigrateError):
    """Files and ledger disagree: an applied file was edited or deleted, or a new file is out of order."""

    exit_code = Exit.DRIFT


class ReadOnlyServer(MigrateError):
    """Files are pending and the server accepts no writes: a hot standby, or a read-only database or role."""

    exit_code = Exit.READ_ONLY


class LockTimeout(MigrateError):
    """Another runner held the migration lock for longer than the lock-wait limit (names the holder)."""

    exit_code = Exit.LOCK_TIMEOUT


class NoDownScript(MigrateError):
    """`rollback` would undo a file that has no `NNN_name.down.sql` (names every such file); nothing ran."""

    exit_code = Exit.NO_DOWN_SCRIPT


class MigrationFailed(MigrateError):
    """The server rejected a migration's SQL; that file's work was rolled back and the ledger is unchanged."""

    exit_code = Exit.MIGRATION_FAILED

    def __init__(self, message: str, *, sqlstate: str | None = None, diagnostic: Diagnostic | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate if sqlstate is not None or diagnostic is None else diagnostic.sqlstate
        self.diagnostic = diagnostic


class DumpFailed(MigrateError):
    """The schema could not be dumped: no pg_dump of a usable version, or pg_dump failed (names which)."""

    exit_code = Exit.DUMP_FAILED
