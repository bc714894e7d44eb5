"""Every error the runner expects, one small tree; the CLI prints `str(error)` and exits with `exit_code`.

Library exceptions (asyncpg, OSError, pglast) are translated into these where they happen, so a message
always says what to do and never carries a password.
"""

from __future__ import annotations

# Outcomes that are reports rather than errors still get their own exit codes.
EXIT_LINT = 7
"""`migrate lint` / `verify` found statements that break the rules."""
EXIT_NOT_IDEMPOTENT = 8
"""`migrate verify` found an INVALID index, or a re-run file changed the catalog or failed."""


class MigrateError(Exception):
    """Base of every expected runner error."""

    exit_code = 1


class ConfigError(MigrateError):
    """A setting is missing or wrong (names the setting)."""

    exit_code = 2


class ConnectionFailed(MigrateError):
    """The server cannot be reached, or refused us (host down, bad password, unknown database)."""

    exit_code = 3


class MigrationFileError(MigrateError):
    """A migration file is malformed: its name, encoding, or content the runner refuses (names the file)."""

    exit_code = 4


class DriftError(MigrateError):
    """Files and ledger disagree: an applied file was edited or deleted, or a new file is out of order."""

    exit_code = 5


class LockTimeout(MigrateError):
    """Another runner held the migration lock for longer than the lock-wait limit (names the holder)."""

    exit_code = 6


class MigrationFailed(MigrateError):
    """The server rejected a migration's SQL; that file's work was rolled back and the ledger is unchanged."""

    exit_code = 1

    def __init__(self, message: str, *, sqlstate: str | None = None) -> None:
        super().__init__(message)
        self.sqlstate = sqlstate
