"""Why connecting failed, in one password-free line that names the setting to fix.

Both the runner and the data layer explain connection failures this way, so a wrong password or a dead
host reads the same whichever of them met it.
"""

from __future__ import annotations

from src.postgres.settings import (
    ENV_CONNECT_TIMEOUT,
    ENV_HOST,
    ENV_NAME,
    ENV_PASSWORD,
    ENV_PORT,
    ENV_SSLMODE,
    ENV_URL,
    ENV_USER,
    ConnectionSettings,
)


def explain_connect_error(exc: BaseException, settings: ConnectionSettings) -> str | None:
    """A one-line, password-free explanation of why connecting failed, naming the setting to fix.

    None when `exc` is not a connection failure we recognise (the caller re-raises it).
    """
    import asyncio
    import socket
    import ssl

    import asyncpg

    where = f"cannot connect to {settings.describe()}"
    if isinstance(exc, asyncpg.InvalidPasswordError):
        return (
            f"{where}: password authentication failed for user {settings.user!r}; "
            f"check {ENV_PASSWORD} (or the password in {ENV_URL})"
        )
    if isinstance(exc, asyncpg.InvalidCatalogNameError):
        return f"{where}: database {settings.database!r} does not exist; create it, or fix {ENV_NAME} (or {ENV_URL})"
    if isinstance(exc, asyncpg.InvalidAuthorizationSpecificationError):
        return f"{where}: {exc}; check {ENV_USER} (or the user in {ENV_URL}) and the server's pg_hba.conf"
    if isinstance(exc, asyncpg.CannotConnectNowError | asyncpg.TooManyConnectionsError):
        return f"{where}: the server is not accepting connections right now ({exc}); retry shortly"
    if isinstance(exc, asyncpg.PostgresError):
        return f"{where}: {exc.sqlstate}: {exc}"
    if isinstance(exc, TimeoutError | asyncio.TimeoutError):
        return (
            f"{where}: no answer within {settings.connect_timeout:g} s ({ENV_CONNECT_TIMEOUT}); "
            f"is the host reachable and the port right?"
        )
    if isinstance(exc, socket.gaierror):
        return f"{where}: unknown host {settings.host!r}; check {ENV_HOST} (or the host in {ENV_URL})"
    if isinstance(exc, ssl.SSLError):
        return f"{where}: TLS failed ({exc.reason or exc}); check {ENV_SSLMODE}"
    if isinstance(exc, ConnectionRefusedError) or (
        isinstance(exc, OSError) and exc.errno in (111, 2) and not isinstance(exc, socket.gaierror)
    ):
        return (
            f"{where}: connection refused; is PostgreSQL running there? (check {ENV_HOST} and {ENV_PORT}, or {ENV_URL})"
        )
    if isinstance(exc, OSError | asyncpg.InterfaceError):
        reason = exc.strerror if isinstance(exc, OSError) and exc.strerror else str(exc)
        return f"{where}: {reason}"
    return None
