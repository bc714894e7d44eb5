"""Open the runner's one connection, turning every way that can fail into a `ConnectionFailed`."""

from __future__ import annotations

import asyncio
import os
import socket
import time

import asyncpg

from src.migrate.errors import ConnectionFailed
from src.postgres.explain import explain_connect_error
from src.postgres.settings import ConnectionSettings


def application_name(command: str) -> str:
    """What pg_stat_activity shows for us, so a lock holder can be traced to a host and process."""
    return f"migrate {command} {socket.gethostname()}:{os.getpid()}"[:63]


async def connect(settings: ConnectionSettings, *, command: str) -> asyncpg.Connection:
    """A connection for one command. Its only startup parameter is application_name, which every pooler
    passes on; the runner's timeouts are SET LOCAL in its transactions (`src.migrate.session`). asyncpg's
    statement cache is off: its named prepared statements outlive a transaction on the server connection,
    and behind a transaction-pooling PgBouncer another client's connection would find them there (or this
    one would miss them: `prepared statement "__asyncpg_stmt_1__" does not exist`)."""
    name = {"application_name": settings.application_name or application_name(command)}
    try:
        return await asyncpg.connect(**settings.asyncpg_kwargs(), server_settings=name, statement_cache_size=0)
    except Exception as exc:
        message = explain_connect_error(exc, settings)
        if message is None:
            raise
        raise ConnectionFailed(message) from exc


async def wait_until_ready(settings: ConnectionSettings, *, give_up_after: float, interval: float = 0.5) -> float:
    """Retry connecting until the server answers; returns the seconds it took, or raises the last failure."""
    started = time.monotonic()
    while True:
        attempt_limit = max(0.1, min(settings.connect_timeout, give_up_after - (time.monotonic() - started)))
        try:
            conn = await asyncpg.connect(
                **{**settings.asyncpg_kwargs(), "timeout": attempt_limit},
                server_settings={"application_name": application_name("wait")},
                statement_cache_size=0,
            )
        except Exception as exc:
            message = explain_connect_error(exc, settings)
            if message is None:
                raise
            # Wrong password or unknown database will not fix themselves: fail at once.
            if isinstance(exc, asyncpg.InvalidPasswordError | asyncpg.InvalidCatalogNameError):
                raise ConnectionFailed(message) from exc
            elapsed = time.monotonic() - started
            if elapsed + interval >= give_up_after:
                raise ConnectionFailed(f"{message} (gave up after {elapsed:.1f} s)") from exc
            await asyncio.sleep(interval)
        else:
            await conn.close()
            return time.monotonic() - started
