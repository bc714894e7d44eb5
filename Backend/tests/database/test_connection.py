"""DATABASE_URL and DB_* resolve to connection settings; errors name the setting and hide the password."""

from __future__ import annotations

import pytest

from src.postgres.settings import ConnectionSettings, Secret, from_environment, parse_url


def test_nothing_configured_means_none() -> None:
    assert from_environment({"PATH": "/bin"}) is None


def test_db_parts_fill_in_defaults() -> None:
    settings = from_environment({"DB_HOST": "db.internal", "DB_NAME": "app"})
    assert settings == ConnectionSettings(host="db.internal", database="app")


def test_the_url_wins_over_db_parts() -> None:
    settings = from_environment({"DATABASE_URL": "postgresql://u@h:6543/d", "DB_HOST": "ignored"})
    assert settings is not None
    assert (settings.host, settings.port, settings.user, settings.database) == ("h", 6543, "u", "d")


def test_db_password_completes_a_url_without_one() -> None:
    settings = from_environment({"DATABASE_URL": "postgresql://u@h/d", "DB_PASSWORD": "s3cret"})
    assert settings is not None
    assert settings.password == Secret("s3cret")


def test_special_characters_in_user_and_password_are_decoded() -> None:
    settings = parse_url("postgresql://us%40er:p%40ss%3Aw%2Frd@h/d")
    assert settings.user == "us@er"
    assert settings.password is not None
    assert settings.password.get_secret_value() == "p@ss:w/rd"


def test_a_unix_socket_goes_in_the_host_parameter() -> None:
    settings = parse_url("postgresql://postgres@/app?host=/run/postgresql&port=5433")
    assert (settings.host, settings.port, settings.database) == ("/run/postgresql", 5433, "app")


def test_the_sqlalchemy_asyncpg_scheme_is_accepted() -> None:
    assert parse_url("postgresql+asyncpg://u@h/d").database == "d"


def test_the_password_never_shows_in_repr_or_describe() -> None:
    settings = parse_url("postgresql://u:hunter2-distinctive@h/d")
    assert "hunter2-distinctive" not in repr(settings)
    assert "hunter2-distinctive" not in settings.describe()
    assert "hunter2-distinctive" not in f"{settings.password}"


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"DB_PORT": "fivefour"}, "DB_PORT: the port must be a whole number"),
        ({"DB_PORT": "70000"}, "DB_PORT: the port must be a whole number"),
        ({"DATABASE_URL": "mysql://u:pw-distinctive@h/d"}, "DATABASE_URL: expected a postgresql:// URL"),
        ({"DATABASE_URL": "postgresql://u:pw-distinctive@h:x/d"}, "DATABASE_URL: the port must be"),
        ({"DATABASE_URL": "postgresql://u:pw-distinctive@h/d?bogus=1"}, "DATABASE_URL: unknown URL parameter"),
        ({"DB_HOST": "h", "DB_SSLMODE": "maybe"}, "DB_SSLMODE: sslmode must be one of"),
        ({"DB_HOST": "h", "DB_CONNECT_TIMEOUT": "-1"}, "DB_CONNECT_TIMEOUT: the connect timeout must be more"),
        ({"DB_HOST": "h", "DB_CONNECT_TIMEOUT": "inf"}, "DB_CONNECT_TIMEOUT: the connect timeout must be more"),
        ({"DB_HOST": "h", "DB_CONNECT_TIMEOUT": "nan"}, "DB_CONNECT_TIMEOUT: the connect timeout must be more"),
        ({"DB_HOST": "h", "DB_CONNECT_TIMEOUT": "1e308"}, "DB_CONNECT_TIMEOUT: the connect timeout must be more"),
    ],
)
def test_a_bad_setting_is_named_and_the_password_not_repeated(environ: dict[str, str], message: str) -> None:
    with pytest.raises(ValueError, match="^" + message) as info:
        from_environment(environ)
    assert "pw-distinctive" not in str(info.value)
