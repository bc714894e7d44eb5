"""Where the server is: `DATABASE_URL` or the `DB_*` variables, resolved to connection parameters.

This module owns the names of the connection settings and how they combine, for the runner and the
data layer alike: `DatabaseConfig` (src/database/config.py) takes its location fields from
`environment_fields`, so there is one reader. It uses the standard library only (plus python-dotenv for
`.env`), because the `migrate` CLI reads it at every container start: importing pydantic-settings there
costs about 90 ms (measured on this project's machine: `python -c "import pydantic_settings"` 0.18 s
against 0.10 s for `import asyncpg, click`).

Errors are `ValueError`s whose message starts with the setting's name and never contains a password.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

ENV_URL = "DATABASE_URL"
ENV_PREFIX = "DB_"
"""Every other connection variable is this prefix and the field's name (DB_HOST, DB_PASSWORD, ...)."""
ENV_HOST = ENV_PREFIX + "HOST"
ENV_PORT = ENV_PREFIX + "PORT"
ENV_NAME = ENV_PREFIX + "NAME"
ENV_USER = ENV_PREFIX + "USER"
ENV_PASSWORD = ENV_PREFIX + "PASSWORD"
ENV_SSLMODE = ENV_PREFIX + "SSLMODE"
ENV_CONNECT_TIMEOUT = ENV_PREFIX + "CONNECT_TIMEOUT"
ENV_TRANSACTION_POOLING = ENV_PREFIX + "TRANSACTION_POOLING"

# Setting any of these means "a database is configured"; with none of them the CLI uses the embedded server.
LOCATION_ENV = (ENV_URL, ENV_HOST, ENV_PORT, ENV_NAME, ENV_USER, ENV_PASSWORD)
CONNECTION_ENV = (*LOCATION_ENV, ENV_SSLMODE, ENV_CONNECT_TIMEOUT, ENV_TRANSACTION_POOLING)
"""Every variable `environment_fields` reads; nothing else reads them."""

DEFAULT_HOST = "localhost"
DEFAULT_PORT = 5432
DEFAULT_DATABASE = "postgres"
DEFAULT_USER = "postgres"
DEFAULT_CONNECT_TIMEOUT = 5.0
MAX_CONNECT_TIMEOUT = 2147483
"""Seconds; the same bound as the runner's other timeouts (PostgreSQL's, about 24.8 days)."""

SSL_MODES = ("disable", "allow", "prefer", "require", "verify-ca", "verify-full")
URL_SCHEMES = ("postgresql", "postgres", "postgresql+asyncpg")
# Query parameters accepted in DATABASE_URL, as libpq spells them, plus `transaction_pooling` (ours) and
# asyncpg's `statement_cache_size`, accepted only as 0, which asyncpg's docs prescribe for PgBouncer's
# transaction pooling: it means transaction_pooling=true.
URL_PARAMETERS = (
    "host",
    "port",
    "dbname",
    "user",
    "sslmode",
    "connect_timeout",
    "application_name",
    "transaction_pooling",
    "statement_cache_size",
)
_POOLING_PARAMETERS = ("transaction_pooling", "statement_cache_size")
_TRUE = ("1", "true", "yes", "on")
_FALSE = ("0", "false", "no", "off")


class Secret:
    """A string that shows as asterisks in repr(), str() and f-strings; read it with get_secret_value()."""

    __slots__ = ("_value",)

    def __init__(self, value: str) -> None:
        self._value = value

    def get_secret_value(self) -> str:
        return self._value

    def __repr__(self) -> str:
        return "Secret('**********')"

    def __str__(self) -> str:
        return "**********"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Secret) and other._value == self._value

    def __hash__(self) -> int:
        return hash(self._value)


@dataclass(frozen=True)
class ConnectionSettings:
    """How to reach one PostgreSQL database."""

    host: str = DEFAULT_HOST
    """Host name, IP address, or the directory of a unix socket (a path starting with `/`)."""
    port: int = DEFAULT_PORT
    database: str = DEFAULT_DATABASE
    user: str = DEFAULT_USER
    password: Secret | None = None
    sslmode: str | None = None
    """libpq's sslmode; None leaves asyncpg's default (`prefer`)."""
    connect_timeout: float = DEFAULT_CONNECT_TIMEOUT
    """Seconds to wait for a connection before giving up."""
    application_name: str | None = None
    """Shown in pg_stat_activity; the runner sets its own when this is None."""
    transaction_pooling: bool = False
    """The server is reached through a pooler in transaction mode (PgBouncer `pool_mode = transaction`):
    nothing may rely on the server connection outliving a transaction (prepared statements, SET)."""

    def describe(self) -> str:
        """`user@host:port/database`, never the password: for messages and logs."""
        where = self.host if self.host.startswith("/") else f"{self.host}:{self.port}"
        return f"{self.user}@{where}/{self.database}"

    def asyncpg_kwargs(self) -> dict[str, Any]:
        """Keyword arguments for `asyncpg.connect`; passing parts, not a URL, sidesteps all quoting."""
        kwargs: dict[str, Any] = {
            "host": self.host,
            "port": self.port,
            "user": self.user,
            "database": self.database,
            "timeout": self.connect_timeout,
        }
        if self.password is not None:
            kwargs["password"] = self.password.get_secret_value()
        if self.sslmode is not None:
            kwargs["ssl"] = self.sslmode
        return kwargs

    def with_password(self, password: str | None) -> ConnectionSettings:
        return replace(self, password=None if password is None else Secret(password))


def _port(value: str, setting: str) -> int:
    try:
        port = int(value)
    except ValueError:
        raise ValueError(f"{setting}: the port must be a whole number from 1 to 65535, not {value!r}") from None
    if not 1 <= port <= 65535:
        raise ValueError(f"{setting}: the port must be a whole number from 1 to 65535, not {port}")
    return port


def _sslmode(value: str, setting: str) -> str:
    if value not in SSL_MODES:
        raise ValueError(f"{setting}: sslmode must be one of {', '.join(SSL_MODES)}, not {value!r}")
    return value


def _timeout(value: str, setting: str) -> float:
    try:
        seconds = float(value)
    except ValueError:
        raise ValueError(f"{setting}: the connect timeout must be a number of seconds, not {value!r}") from None
    if not 0 < seconds <= MAX_CONNECT_TIMEOUT:  # also refuses nan and inf, which would wait for ever
        raise ValueError(
            f"{setting}: the connect timeout must be more than 0 and at most {MAX_CONNECT_TIMEOUT} seconds, not {value}"
        )
    return seconds


def _flag(value: str, setting: str) -> bool:
    lowered = value.strip().lower()
    if lowered in _TRUE:
        return True
    if lowered in _FALSE:
        return False
    raise ValueError(f"{setting}: transaction_pooling must be true or false, not {value!r}")


def _statement_cache_size(value: str, setting: str) -> bool:
    if value.strip() != "0":
        raise ValueError(
            f"{setting}: statement_cache_size is accepted only as 0 (it means transaction_pooling=true); "
            f"the data layer sizes its statement cache itself, so {value!r} cannot be honoured"
        )
    return True


def parse_url(url: str, setting: str = ENV_URL) -> ConnectionSettings:
    """Parse a `postgresql://user:password@host:port/database?sslmode=...` URL.

    `?host=/socket/dir` selects a unix socket, as libpq allows. Messages name `setting` and never
    repeat the URL, since it may hold a password.
    """
    parts = urlsplit(url.strip())
    if parts.scheme not in URL_SCHEMES:
        shown = parts.scheme or "(none)"
        raise ValueError(
            f"{setting}: expected a postgresql:// URL (scheme one of {', '.join(URL_SCHEMES)}), "
            f"got the scheme {shown!r}"
        )
    try:
        port_text = str(parts.port) if parts.port is not None else None
    except ValueError:
        raise ValueError(f"{setting}: the port must be a whole number from 1 to 65535") from None
    fields: dict[str, Any] = {}
    if parts.hostname:
        # urlsplit lower-cases hostnames; that is harmless for DNS and keeps IPv6 brackets off.
        fields["host"] = parts.hostname
    if port_text is not None:
        fields["port"] = _port(port_text, setting)
    if parts.username:
        fields["user"] = unquote(parts.username)
    if parts.password:
        fields["password"] = Secret(unquote(parts.password))
    database = unquote(parts.path.lstrip("/"))
    if database:
        fields["database"] = database
    for key, value in parse_qsl(parts.query, keep_blank_values=True):
        if key not in URL_PARAMETERS:
            raise ValueError(f"{setting}: unknown URL parameter {key!r}; accepted: {', '.join(URL_PARAMETERS)}")
        if key == "host":
            fields["host"] = value
        elif key == "port":
            fields["port"] = _port(value, setting)
        elif key == "dbname":
            fields["database"] = value
        elif key == "user":
            fields["user"] = value
        elif key == "sslmode":
            fields["sslmode"] = _sslmode(value, setting)
        elif key == "connect_timeout":
            fields["connect_timeout"] = _timeout(value, setting)
        elif key == "transaction_pooling":
            fields["transaction_pooling"] = _flag(value, setting)
        elif key == "statement_cache_size":
            fields["transaction_pooling"] = _statement_cache_size(value, setting)
        else:
            fields["application_name"] = value
    return ConnectionSettings(**fields)


def environment_fields(
    environ: Mapping[str, str], *, url: str | None = None, url_setting: str = ENV_URL
) -> dict[str, Any]:
    """Every location setting `environ` sets, as `ConnectionSettings` field values: the one reader of them.

    `url` (a command-line `--database-url`, named `url_setting` in errors) takes the place of
    `DATABASE_URL`. A URL wins over the `DB_*` parts and fills in the defaults for what it leaves out;
    when it carries no password, `DB_PASSWORD` supplies it, so the secret can live apart from the URL.
    `DB_SSLMODE`, `DB_CONNECT_TIMEOUT` and `DB_TRANSACTION_POOLING` apply to either form, unless the URL
    sets them itself (`?transaction_pooling=true`, or asyncpg's `?statement_cache_size=0`). An empty
    variable counts as unset (`FOO=` in a compose file usually means "the default").
    """

    def get(name: str) -> str | None:
        value = environ.get(name)
        return value if value not in (None, "") else None

    password = get(ENV_PASSWORD)
    if url is None:
        url, url_setting = get(ENV_URL), ENV_URL
    fields: dict[str, Any] = {}
    url_query: dict[str, str] = {}
    if url is not None:
        parsed = parse_url(url, setting=url_setting)
        fields = {name: getattr(parsed, name) for name in ("host", "port", "database", "user", "password")}
        if parsed.application_name is not None:
            fields["application_name"] = parsed.application_name
        url_query = dict(parse_qsl(urlsplit(url.strip()).query))
        if "sslmode" in url_query:
            fields["sslmode"] = parsed.sslmode
        if "connect_timeout" in url_query:
            fields["connect_timeout"] = parsed.connect_timeout
        if any(name in url_query for name in _POOLING_PARAMETERS):
            fields["transaction_pooling"] = parsed.transaction_pooling
        if parsed.password is None and password is not None:
            fields["password"] = Secret(password)
    else:
        for name, field in ((ENV_HOST, "host"), (ENV_NAME, "database"), (ENV_USER, "user")):
            value = get(name)
            if value is not None:
                fields[field] = value
        port = get(ENV_PORT)
        if port is not None:
            fields["port"] = _port(port, ENV_PORT)
        if password is not None:
            fields["password"] = Secret(password)
    sslmode = get(ENV_SSLMODE)
    if sslmode is not None and "sslmode" not in url_query:
        fields["sslmode"] = _sslmode(sslmode, ENV_SSLMODE)
    timeout = get(ENV_CONNECT_TIMEOUT)
    if timeout is not None and "connect_timeout" not in url_query:
        fields["connect_timeout"] = _timeout(timeout, ENV_CONNECT_TIMEOUT)
    pooling = get(ENV_TRANSACTION_POOLING)
    if pooling is not None and not any(name in url_query for name in _POOLING_PARAMETERS):
        fields["transaction_pooling"] = _flag(pooling, ENV_TRANSACTION_POOLING)
    return fields


def from_environment(
    environ: Mapping[str, str], *, url: str | None = None, url_setting: str = ENV_URL
) -> ConnectionSettings | None:
    """The configured database (see `environment_fields`), or None when no location setting is present
    and no `url` is given: then the runner uses the embedded server."""
    if url is None and not any(environ.get(name) for name in LOCATION_ENV):
        return None
    return ConnectionSettings(**environment_fields(environ, url=url, url_setting=url_setting))


def read_environment(dotenv_path: Path | None = Path(".env")) -> dict[str, str]:
    """The process environment over the `.env` file's values (the environment wins, as in pydantic-settings)."""
    values: dict[str, str] = {}
    if dotenv_path is not None and dotenv_path.is_file():
        from dotenv import dotenv_values  # only paid for when a .env file exists

        values.update({k: v for k, v in dotenv_values(dotenv_path).items() if v is not None})
    values.update(os.environ)
    return values
