"""DatabaseConfig: every setting of the data layer, from keyword arguments, the environment or `.env`.

Priority, highest first: keyword arguments; the environment; `.env`; the defaults below. Where the
server is (host, port, database, user, password, sslmode, connect timeout) is read by the base layer's
one reader, `src.postgres.settings.environment_fields`, the same the `migrate` CLI uses: a
`DATABASE_URL` wins over `DB_HOST` and friends, and `DB_PASSWORD` completes a URL that carries no
password. The other fields are plain `DB_*` variables (named in each field's alias). So
`DatabaseConfig(host="db", ...)` in code always means what it says.

The password is a `SecretStr`: it shows as asterisks in repr(), logs and errors (inputs are hidden from
validation errors too), and URLs are built with SQLAlchemy's `URL.create`, so any character works.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any, Literal

from pydantic import Field, SecretStr, field_validator
from pydantic.fields import FieldInfo
from pydantic_settings import BaseSettings, PydanticBaseSettingsSource, SettingsConfigDict
from sqlalchemy.engine import URL

from src.database.errors import UnknownSetting
from src.postgres import settings
from src.postgres.settings import ConnectionSettings, Secret

ENV_REPLICA_URL = "DATABASE_REPLICA_URL"

SslMode = Literal["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]


_LOCATION_FIELDS = {
    "host": "host",
    "port": "port",
    "database": "database",
    "user": "username",
    "password": "password",
    "sslmode": "sslmode",
    "connect_timeout": "connect_timeout",
    "application_name": "application_name",
    "transaction_pooling": "transaction_pooling",
}
"""ConnectionSettings field -> DatabaseConfig field."""


def _location(parsed: dict[str, Any]) -> dict[str, Any]:
    """DatabaseConfig fields from the base reader's ConnectionSettings fields."""
    fields = {_LOCATION_FIELDS[name]: value for name, value in parsed.items()}
    if isinstance(fields.get("password"), Secret):
        fields["password"] = fields["password"].get_secret_value()
    return fields


_ALIASES = {
    "user": "username",
    "db": "database",
    "dbname": "database",
    "name": "database",
    "pasword": "password",
    "pwd": "password",
    "pass": "password",
    "passwd": "password",
    "hostname": "host",
}
"""Names other libraries use for our fields (libpq, asyncpg, psycopg), which difflib would not guess."""


def _suggest(key: str, fields: list[str]) -> str | None:
    lowered = key.lower()
    if lowered in _ALIASES:
        return _ALIASES[lowered]
    close = difflib.get_close_matches(lowered, fields, n=1, cutoff=0.6)
    return close[0] if close else None


def _refuse_unknown_keywords(settings_cls: type[BaseSettings], init_settings: PydanticBaseSettingsSource) -> None:
    """Raise UnknownSetting for a keyword argument that is neither a field name nor its DB_* alias.

    Only keywords: the environment and `.env` hold variables of other programs, so unknown ones there
    stay ignored (extra="ignore").
    """
    fields = settings_cls.model_fields
    known = {name.lower() for name in fields} | {
        str(info.validation_alias).lower() for info in fields.values() if info.validation_alias
    }
    given: dict[str, Any] = getattr(init_settings, "init_kwargs", {})
    for key in given:
        if key.lower() not in known:
            raise UnknownSetting(key, _suggest(key, list(fields)))


def _unnamed() -> str:
    """asyncpg's name for an unnamed statement: replaced by the next one, never left on the server."""
    return ""


class _EnvironmentSource(PydanticBaseSettingsSource):
    """The environment over `.env` (the base layer's `read_environment`): the location settings through
    the base layer's reader, every other field by its `DB_*` name. Unknown variables are ignored: the
    environment holds settings of other programs too. Names are upper case, as the docs write them."""

    def get_field_value(self, field: FieldInfo, field_name: str) -> tuple[Any, str, bool]:
        return None, field_name, False  # unused: __call__ answers for all fields at once

    def __call__(self) -> dict[str, Any]:
        env_file = self.config.get("env_file")
        environ = settings.read_environment(Path(str(env_file)) if env_file else None)
        found = _location(settings.environment_fields(environ))
        values: dict[str, Any] = {}
        for name, info in self.settings_cls.model_fields.items():
            # Keyed by alias (DB_POOL_SIZE, ...), so a validation error names the variable to fix.
            alias = str(info.validation_alias or name)
            if name in found:
                values[alias] = found[name]
            elif alias not in settings.CONNECTION_ENV and environ.get(alias):
                values[alias] = environ[alias]
        return values


class DatabaseConfig(BaseSettings):
    """Where the database is and how the data layer talks to it. Every field's environment variable is
    in its alias; `DATABASE_URL` may replace the five location settings.

    A keyword argument that names no field (`user=`, `dbname=`, `pasword=`) raises UnknownSetting, a
    TypeError subclass, naming the key and the field it most likely meant; it is never silently dropped.
    """

    model_config = SettingsConfigDict(
        env_file=".env",
        env_file_encoding="utf-8",
        extra="ignore",
        populate_by_name=True,
        hide_input_in_errors=True,
        frozen=True,
    )

    host: str = Field(settings.DEFAULT_HOST, validation_alias=settings.ENV_HOST, min_length=1)
    """Server host name or IP, or a unix-socket directory (a path starting with `/`)."""
    port: int = Field(settings.DEFAULT_PORT, validation_alias=settings.ENV_PORT, ge=1, le=65535)
    database: str = Field(settings.DEFAULT_DATABASE, validation_alias=settings.ENV_NAME, min_length=1)
    username: str = Field(settings.DEFAULT_USER, validation_alias=settings.ENV_USER, min_length=1)
    password: SecretStr | None = Field(None, validation_alias=settings.ENV_PASSWORD)
    sslmode: SslMode | None = Field(None, validation_alias=settings.ENV_SSLMODE)
    """libpq's sslmode; None leaves asyncpg's default (`prefer`)."""
    connect_timeout: float = Field(
        settings.DEFAULT_CONNECT_TIMEOUT,
        validation_alias=settings.ENV_CONNECT_TIMEOUT,
        gt=0,
        le=settings.MAX_CONNECT_TIMEOUT,
    )
    """Seconds to wait for a new connection (5 s; shared with the migrate CLI); past it: DatabaseUnavailable."""
    command_timeout: float | None = Field(10.0, validation_alias="DB_COMMAND_TIMEOUT", gt=0)
    """Client-side limit in seconds for one query (asyncpg cancels it; DatabaseTimeout); None for no limit.
    10 s: an agent's queries are short, and a stuck one should fail while the caller can still retry."""
    statement_timeout: float | None = Field(None, validation_alias="DB_STATEMENT_TIMEOUT", gt=0)
    """Server-side `statement_timeout` in seconds for every session; None leaves the server's. SET on the
    server, never sent as a startup parameter, so it survives PgBouncer (once per connection, or SET LOCAL
    per transaction with transaction_pooling); past it: DatabaseTimeout naming DB_STATEMENT_TIMEOUT."""
    application_name: str = Field("agent-backend", validation_alias="DB_APPLICATION_NAME", max_length=63)
    """Shown in pg_stat_activity, so an operator can tell our sessions apart."""
    pool_size: int = Field(5, validation_alias="DB_POOL_SIZE", ge=1)
    """Connections kept open in the pool."""
    max_overflow: int = Field(10, validation_alias="DB_MAX_OVERFLOW", ge=0)
    """Extra connections opened under load beyond pool_size, closed when returned."""
    pool_timeout: float = Field(5.0, validation_alias="DB_POOL_TIMEOUT", gt=0)
    """Seconds a session waits for a free connection before PoolExhausted (5 s: a full pool for longer is
    an application bottleneck to report, not to queue behind)."""
    pool_ping_after: float = Field(1.0, validation_alias="DB_POOL_PING_AFTER", ge=0)
    """A pooled connection idle longer than this many seconds is pinged before use and replaced if dead;
    one used more recently is trusted, saving a round trip per session under load (0: always ping)."""
    pool_recycle: float = Field(1800.0, validation_alias="DB_POOL_RECYCLE")
    """Replace connections older than this many seconds (-1: never), ahead of idle-killing proxies."""
    health_check_timeout: float = Field(2.0, validation_alias="DB_HEALTH_CHECK_TIMEOUT", gt=0)
    """Upper bound in seconds for health_check()/health(), even with a frozen server or a full pool."""
    echo: bool = Field(False, validation_alias="DB_ECHO")
    """Log every SQL statement (SQLAlchemy's echo); parameters are not logged."""
    transaction_pooling: bool = Field(False, validation_alias=settings.ENV_TRANSACTION_POOLING)
    """The server is reached through a pooler in transaction mode (PgBouncer `pool_mode = transaction`): no
    statement cache and no named prepared statements that outlive a statement, and session settings
    (statement_timeout) sent with every transaction instead of once per connection. Also set by
    `?transaction_pooling=true` or asyncpg's `?statement_cache_size=0` in DATABASE_URL. Costs speed
    (docs/pooling.md has the figures); leave it off for direct connections and session pooling."""
    replica_urls: tuple[SecretStr, ...] = Field((), validation_alias=ENV_REPLICA_URL)
    """Read replicas (hot standbys) for `manager.session(readonly=True)`: postgresql:// URLs, several
    separated by commas in the variable. A URL without a password uses the primary's; sslmode,
    connect_timeout and transaction_pooling default to the primary's unless the URL sets them. Secret,
    since a URL may carry a password."""
    replica_max_lag: float = Field(5.0, validation_alias="DB_REPLICA_MAX_LAG", gt=0)
    """Seconds a replica may trail the primary and still serve read-only sessions; further behind, it is
    left out until it catches up (checked at most once a second per replica)."""

    @field_validator("replica_urls", mode="before")
    @classmethod
    def _split_replica_urls(cls, value: Any) -> Any:
        """Commas separate several URLs in the variable; each must parse (the error names the variable)."""
        if isinstance(value, SecretStr):
            value = value.get_secret_value()
        if isinstance(value, str):
            value = [part for part in (p.strip() for p in value.split(",")) if part]
        if isinstance(value, list | tuple):
            urls = [v.get_secret_value() if isinstance(v, SecretStr) else v for v in value]
            for url in urls:
                if isinstance(url, str):
                    settings.parse_url(url, setting=ENV_REPLICA_URL)
            return tuple(urls)
        return value

    slow_statement_ms: float | None = Field(None, validation_alias="DB_SLOW_STATEMENT_MS", ge=0)
    """Log each statement that takes this many milliseconds or longer, as a WARNING on the logger
    `src.database.slow` with its duration and SQL text, never its parameter values (`slowlog`); None
    (the default) logs none, 0 logs every statement."""

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        _refuse_unknown_keywords(settings_cls, init_settings)
        return (init_settings, _EnvironmentSource(settings_cls), file_secret_settings)

    @classmethod
    def from_url(cls, url: str, **overrides: Any) -> DatabaseConfig:
        """A config from a postgresql:// URL (e.g. from a secret store), plus any other settings."""
        fields = _location(settings.environment_fields({}, url=url, url_setting="url"))
        return cls(**{**fields, **overrides})

    def sqlalchemy_url(self) -> URL:
        """`postgresql+asyncpg://...`, built by URL.create so special characters need no escaping.

        Render it with `url.render_as_string(hide_password=True)` (the default of str()) for logs.
        """
        query: dict[str, str] = {}
        host: str | None = self.host
        if self.host.startswith("/"):
            query["host"] = self.host  # a unix-socket directory goes in the query, as libpq expects
            host = None
        return URL.create(
            "postgresql+asyncpg",
            username=self.username,
            password=self.password.get_secret_value() if self.password is not None else None,
            host=host,
            port=self.port,
            database=self.database,
            query=query,
        )

    def connect_args(self) -> dict[str, Any]:
        """asyncpg.connect() arguments the URL cannot carry: timeouts, TLS, the statement cache.

        Only application_name goes as a startup parameter: PgBouncer passes it on, while it refuses
        others (or drops them, with `ignore_startup_parameters`). statement_timeout is SET by the
        manager instead (`statement_timeout_ms`)."""
        args: dict[str, Any] = {
            "timeout": self.connect_timeout,
            "command_timeout": self.command_timeout,
            "server_settings": {"application_name": self.application_name},
        }
        if self.sslmode is not None:
            args["ssl"] = self.sslmode
        if self.transaction_pooling:
            # Each transaction may run on another server connection: a statement prepared in one is not
            # there in the next. asyncpg's cache off; SQLAlchemy's too, and its statements unnamed, so
            # nothing is left behind on the server's connections either (asyncpg parses again at execute).
            args["statement_cache_size"] = 0
            args["prepared_statement_cache_size"] = 0
            args["prepared_statement_name_func"] = _unnamed
        return args

    def statement_timeout_ms(self) -> int | None:
        """statement_timeout in whole milliseconds (at least 1, since 0 would mean no limit), or None."""
        if self.statement_timeout is None:
            return None
        return max(1, round(self.statement_timeout * 1000))

    def replicas(self) -> list[DatabaseConfig]:
        """One config per replica URL: this config with the replica's location (see `replica_urls`)."""
        found = []
        for secret in self.replica_urls:
            fields = _location(
                settings.environment_fields({}, url=secret.get_secret_value(), url_setting=ENV_REPLICA_URL)
            )
            password = fields.pop("password", None)
            fields["password"] = SecretStr(password) if password is not None else self.password
            found.append(self.model_copy(update={**fields, "replica_urls": ()}))
        return found

    def connection_settings(self) -> ConnectionSettings:
        """The same location as the runner's ConnectionSettings (for the runner and the health probe)."""
        return ConnectionSettings(
            host=self.host,
            port=self.port,
            database=self.database,
            user=self.username,
            password=Secret(self.password.get_secret_value()) if self.password is not None else None,
            sslmode=self.sslmode,
            connect_timeout=self.connect_timeout,
            application_name=self.application_name,
            transaction_pooling=self.transaction_pooling,
        )

    def describe(self) -> str:
        """`user@host:port/database`, never the password: for messages and logs."""
        return self.connection_settings().describe()
