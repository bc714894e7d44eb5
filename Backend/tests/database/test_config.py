"""DatabaseConfig: keyword arguments, DATABASE_URL, DB_* and .env, in that order; secrets stay hidden."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from pydantic import ValidationError
from sqlalchemy.engine import make_url

from src.database.config import DatabaseConfig
from src.database.errors import UnknownSetting

SECRET = "Pa55-distinctive!@:/%"


def test_keyword_arguments_as_agent_code_writes_them() -> None:
    config = DatabaseConfig(host="db", port=5433, database="app", username="agent", password="pw")
    assert (config.host, config.port, config.database, config.username) == ("db", 5433, "app", "agent")


def test_db_variables_fill_the_settings(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DB_HOST", "db.internal")
    monkeypatch.setenv("DB_PORT", "6432")
    monkeypatch.setenv("DB_POOL_SIZE", "12")
    config = DatabaseConfig()
    assert (config.host, config.port, config.pool_size) == ("db.internal", 6432, 12)


def test_database_url_wins_over_db_parts_and_keywords_win_over_both(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@url-host:7000/urldb")
    monkeypatch.setenv("DB_HOST", "db-host")
    assert DatabaseConfig().host == "url-host"
    assert DatabaseConfig(host="kw-host").host == "kw-host"


def test_db_password_completes_a_url_without_one(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", "postgresql://u@h/d")
    monkeypatch.setenv("DB_PASSWORD", SECRET)
    password = DatabaseConfig().password
    assert password is not None
    assert password.get_secret_value() == SECRET


def test_a_dotenv_file_is_read(tmp_path: Path) -> None:  # the suite runs in tmp_path
    (tmp_path / ".env").write_text("DB_NAME=from_dotenv\nDB_APPLICATION_NAME=worker\n")
    config = DatabaseConfig()
    assert (config.database, config.application_name) == ("from_dotenv", "worker")


def test_the_password_never_shows_in_repr_str_or_url() -> None:
    config = DatabaseConfig(password=SECRET)
    assert SECRET not in repr(config)
    assert SECRET not in str(config)
    assert SECRET not in str(config.sqlalchemy_url())
    assert SECRET not in repr(config.connection_settings())


def test_special_characters_survive_the_url() -> None:
    config = DatabaseConfig(username="us@er:1", password=SECRET, database="my db")
    url = make_url(config.sqlalchemy_url().render_as_string(hide_password=False))
    assert (url.username, url.password, url.database) == ("us@er:1", SECRET, "my db")


def test_a_unix_socket_host_goes_in_the_url_query() -> None:
    url = DatabaseConfig(host="/run/postgresql").sqlalchemy_url()
    assert url.host is None
    assert url.query["host"] == "/run/postgresql"


@pytest.mark.parametrize(
    ("environ", "setting"),
    [
        ({"DB_PORT": "many"}, "DB_PORT"),
        ({"DB_POOL_SIZE": "0"}, "DB_POOL_SIZE"),
        ({"DB_SSLMODE": "maybe"}, "DB_SSLMODE"),
    ],
)
def test_a_wrong_environment_value_fails_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, environ: dict[str, str], setting: str
) -> None:
    for name, value in environ.items():
        monkeypatch.setenv(name, value)
    # A ValidationError for the data layer's own fields, the base reader's ValueError for a location one.
    with pytest.raises(ValueError, match=setting):
        DatabaseConfig()


def test_a_wrong_keyword_fails_naming_it_and_hiding_the_input() -> None:
    with pytest.raises(ValidationError) as info:
        DatabaseConfig(port=0, password=SECRET)
    assert "port" in str(info.value)
    assert SECRET not in str(info.value)


def test_a_bad_database_url_fails_naming_it_without_repeating_it(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("DATABASE_URL", f"mysql://u:{SECRET}@h/d")
    with pytest.raises(ValueError, match=r"^DATABASE_URL: expected a postgresql:// URL") as info:
        DatabaseConfig()
    assert SECRET not in str(info.value)


def test_from_url_reads_a_url_and_takes_overrides() -> None:
    config = DatabaseConfig.from_url("postgresql://u:p%40ss@h:6000/d?sslmode=require", pool_size=3)
    assert (config.host, config.port, config.database, config.username, config.sslmode, config.pool_size) == (
        "h",
        6000,
        "d",
        "u",
        "require",
        3,
    )
    assert config.password is not None
    assert config.password.get_secret_value() == "p@ss"


def _keywords(**given: Any) -> Any:
    """Keywords mypy's pydantic plugin would refuse statically (it catches these typos too); this
    checks the run-time refusal, for callers without mypy."""
    return given


@pytest.mark.parametrize(
    ("typo", "meant"),
    [
        ("user", "username"),
        ("db", "database"),
        ("dbname", "database"),
        ("name", "database"),
        ("pasword", "password"),
        ("pwd", "password"),
        ("pass", "password"),
        ("hostname", "host"),
        ("pool_sise", "pool_size"),
    ],
)
def test_an_unknown_keyword_fails_naming_it_and_the_field_it_meant(typo: str, meant: str) -> None:
    with pytest.raises(UnknownSetting, match=rf"unknown setting '{typo}'; did you mean '{meant}'\?") as info:
        DatabaseConfig(**_keywords(**{typo: "x"}))
    assert (info.value.key, info.value.suggestion) == (typo, meant)


def test_an_unknown_keyword_is_a_type_error_and_hides_the_value() -> None:
    with pytest.raises(TypeError) as info:
        DatabaseConfig(**_keywords(pasword=SECRET))
    assert SECRET not in str(info.value)


def test_an_unknown_keyword_with_no_close_field_gets_no_suggestion() -> None:
    with pytest.raises(UnknownSetting, match=r"unknown setting 'colour'$"):
        DatabaseConfig(**_keywords(colour="blue"))


def test_unknown_environment_variables_and_dotenv_keys_stay_ignored(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DB_COLOUR", "blue")
    (tmp_path / ".env").write_text("DB_FLAVOUR=mint\nOTHER_APP_TOKEN=t\n")
    assert DatabaseConfig(host="h").host == "h"


def test_environment_names_are_accepted_as_keywords_too() -> None:
    assert DatabaseConfig(**_keywords(DB_HOST="aliased")).host == "aliased"
