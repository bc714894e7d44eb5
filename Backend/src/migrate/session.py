"""The runner's session settings (timeouts, the dead-client check), set inside the work and checked.

They are never startup parameters: PgBouncer refuses parameters it does not know (`unsupported startup
parameter: lock_timeout`), and with `ignore_startup_parameters` it drops them without a word. Every
transaction the runner opens sets them with SET LOCAL, which every pooler passes through and which
ends with the transaction, so a pooled server connection is never left with the runner's values. Only
a file that must run outside a transaction gets them at session level, and only on a connection that
is not pooled per transaction (`runner` refuses such files there, see `pooling`).
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from src.migrate.errors import ConfigError


@dataclass(frozen=True)
class SessionSettings:
    """Values in whole milliseconds (0 = no limit), as the server keeps them (pg_settings.setting)."""

    lock_timeout_ms: int = 10_000
    statement_timeout_ms: int = 0
    check_interval_ms: int = 1000
    """client_connection_check_interval: if the runner dies (kill -9, OOM), the server notices within a
    second even mid-statement, rolls back and frees the migration lock (PostgreSQL 14+)."""

    def values(self) -> dict[str, str]:
        return {
            "lock_timeout": str(self.lock_timeout_ms),
            "statement_timeout": str(self.statement_timeout_ms),
            "client_connection_check_interval": str(self.check_interval_ms),
            # The lock is held by an open transaction for the whole run (lock.py); a server or role setting
            # must not end it while the runner is busy on its other connection or waiting for the lock.
            "idle_in_transaction_session_timeout": "0",
        }

    def set_local(self) -> str:
        """SET LOCAL of every value, as one simple-query message: for the start of a transaction."""
        return "".join(f"SET LOCAL {name} TO {value};\n" for name, value in self.values().items())

    def set_session(self) -> str:
        return "".join(f"SET SESSION {name} TO {value};\n" for name, value in self.values().items())

    def reset_session(self) -> str:
        return "".join(f"RESET {name};\n" for name in self.values())


DEFAULT = SessionSettings()


def _check(settings: SessionSettings) -> str:
    """A DO block that raises, naming what differs, unless the server has every value: a simple query, so
    it leaves no portal (and no snapshot) open in the transaction after it (see `lock`)."""
    wanted = settings.values()
    expected = ",".join(f"{name}={value}" for name, value in sorted(wanted.items()))
    names = ", ".join(f"'{name}'" for name in sorted(wanted))
    return (
        "DO $migrate$ DECLARE found text; BEGIN "
        "SELECT string_agg(name || '=' || setting, ',' ORDER BY name) INTO found "
        f"FROM pg_catalog.pg_settings WHERE name IN ({names}); "
        f"IF found IS DISTINCT FROM '{expected}' THEN "
        f"RAISE EXCEPTION 'migrate: session settings not in effect: % (wanted {expected})', found; "
        "END IF; END $migrate$;\n"
    )


async def apply_local(conn: asyncpg.Connection, settings: SessionSettings) -> None:
    """Set the runner's values for the rest of the current transaction, and check that they hold: one
    message, one round trip."""
    await _run(conn, settings.set_local() + _check(settings))


async def apply_session(conn: asyncpg.Connection, settings: SessionSettings) -> None:
    """Set them for the session (for statements that run outside a transaction), and check them."""
    await _run(conn, settings.set_session() + _check(settings))


async def _run(conn: asyncpg.Connection, text: str) -> None:
    try:
        await conn.execute(text)
    except asyncpg.RaiseError as exc:
        raise ConfigError(
            f"the server did not take the runner's session settings ({exc}); a pooler or proxy between the "
            "runner and PostgreSQL may be rewriting them: point MIGRATE_DATABASE_URL at the server itself"
        ) from None
