"""What users type: connection options before the command, `--version`, what `new` says next, and every
number checked when the command line (or the environment) is read: one line naming the option or
variable and the allowed range, exit 2 (`health`: 1), never a traceback."""

from __future__ import annotations

import asyncio
from importlib.metadata import version
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate import commands, session
from src.postgres.settings import ConnectionSettings
from tests.support import url_of, write_migrations

NOWHERE = "postgresql://u@127.0.0.1:1/db"
SECONDS = "expected a number of seconds from 0 to 2147483"


def migrate(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def one_line(result: Result) -> str:
    """The error output, checked to be one line with no traceback."""
    assert "Traceback" not in result.output
    assert result.stderr.count("\n") == 1, result.stderr
    return result.stderr


# options before the command


def test_the_database_url_may_come_before_the_command(database: ConnectionSettings) -> None:
    result = migrate("--database-url", url_of(database), "status")
    assert result.exit_code == 0, result.output
    assert f"Database    {database.describe()}" in result.stdout


def test_the_migrations_dir_may_come_before_the_command(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", {"001_only.sql": "SELECT 1;"})
    result = migrate("--migrations-dir", str(folder), "status", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    assert "0 applied, 1 pending" in result.stdout
    assert "001_only.sql" in result.stdout


def test_the_commands_own_option_wins_over_the_one_before_it(database_url: str) -> None:
    result = migrate("--database-url", NOWHERE, "status", "--database-url", database_url)
    assert result.exit_code == 0, result.output


def test_an_option_before_the_command_wins_over_the_environment(database_url: str) -> None:
    result = migrate("--database-url", database_url, "status", env={"DATABASE_URL": NOWHERE})
    assert result.exit_code == 0, result.output


def test_an_option_before_a_command_that_does_not_take_it_is_refused(tmp_path: Path) -> None:
    result = migrate("--lock-wait", "5", "new", "x", "--migrations-dir", str(tmp_path))
    assert result.exit_code == 2
    assert one_line(result) == (
        "migrate: error: --lock-wait: given before `new`, which does not take it (`migrate new --help` lists its "
        "options)\n"
    )
    assert list(tmp_path.iterdir()) == []


def test_version_prints_the_package_version() -> None:
    result = migrate("--version")
    assert result.exit_code == 0
    assert result.stdout == f"migrate {version('agent-backend-db')}\n"


def test_new_says_what_to_do_next(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()  # the tests run in tmp_path, so paths are shown relative to it
    result = migrate("new", "add tags", "--migrations-dir", "m")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0] == "Created m/001_add_tags.sql. Next:"
    assert lines[1].startswith("  1. Write the SQL in it")
    assert lines[2].startswith("  2. If it changes the schema, update the models in ")
    assert lines[2].endswith("Backend/src/database/models to match.")
    assert lines[3] == "  3. migrate lint m/001_add_tags.sql"
    assert lines[4] == "  4. migrate apply --migrations-dir m"
    assert lines[5].startswith("  5. Check the models still match the SQL: pytest ")
    assert lines[5].endswith("Backend/tests/database/test_models.py")


# numbers on the command line


@pytest.mark.parametrize("option", ["--lock-timeout", "--statement-timeout", "--lock-wait"])
@pytest.mark.parametrize("value", ["nan", "inf", "-inf", "1e308", "-1", "2147483.5", "soon"])
def test_a_seconds_option_out_of_range_is_one_line_naming_it_and_the_range(option: str, value: str) -> None:
    result = migrate("apply", option, value, "--database-url", NOWHERE)
    assert result.exit_code == 2
    assert one_line(result) == (
        f"migrate: error: Invalid value for '{option}': {SECONDS}, not '{value}' (`migrate apply --help` lists "
        "the options)\n"
    )


def test_a_bad_number_before_the_command_is_refused_too() -> None:
    result = migrate("--statement-timeout", "nan", "status", "--database-url", NOWHERE)
    assert result.exit_code == 2
    assert f"Invalid value for '--statement-timeout': {SECONDS}, not 'nan'" in one_line(result)


@pytest.mark.parametrize("value", ["nan", "-1", "0", "inf"])
def test_health_timeout_must_be_above_0_and_exits_1(value: str) -> None:
    result = migrate("health", "--timeout", value, "--database-url", NOWHERE)
    assert result.exit_code == 1
    assert "Invalid value for '--timeout': expected a number of seconds more than 0 and at most 2147483" in (
        one_line(result)
    )


def test_a_bad_number_before_health_exits_1() -> None:
    result = migrate("--lock-wait", "nan", "health", "--database-url", NOWHERE)
    assert result.exit_code == 1


@pytest.mark.parametrize("value", ["nan", "-1", "inf"])
def test_wait_timeout_out_of_range_is_refused(value: str) -> None:
    result = migrate("wait", "--timeout", value, "--database-url", NOWHERE)
    assert result.exit_code == 2
    assert f"Invalid value for '--timeout': {SECONDS}, not '{value}'" in one_line(result)


@pytest.mark.parametrize(
    "args",
    [
        ("apply", "--target", "-1"),
        ("apply", "--target", "1.5"),
        ("apply", "--target", "99999999999999999999"),
        ("baseline", "--version", "-2"),
        ("repair", "--forget", "-3"),
        ("repair", "--forget", "two"),
    ],
)
def test_a_version_option_out_of_range_is_refused(args: tuple[str, ...]) -> None:
    result = migrate(*args, "--database-url", NOWHERE)
    assert result.exit_code == 2
    assert "expected a migration version, a whole number from 0 to 9223372036854775807" in one_line(result)


def test_an_empty_forget_range_is_refused() -> None:
    result = migrate("repair", "--forget", "9-2", "--database-url", NOWHERE)
    assert result.exit_code == 2
    assert "'9-2' is an empty range; write the lower version first" in one_line(result)


def test_serve_health_refuses_a_port_out_of_range() -> None:
    result = migrate("serve-health", "--port", "70000")
    assert result.exit_code == 2
    assert "Invalid value for '--port'" in one_line(result)


# numbers in the environment


@pytest.mark.parametrize("variable", ["MIGRATE_LOCK_TIMEOUT", "MIGRATE_STATEMENT_TIMEOUT", "MIGRATE_LOCK_WAIT"])
@pytest.mark.parametrize("value", ["nan", "inf", "1e308", "-5"])
def test_a_seconds_variable_out_of_range_is_one_line_naming_it(variable: str, value: str) -> None:
    result = migrate("status", "--database-url", NOWHERE, env={variable: value})
    assert result.exit_code == 2
    assert one_line(result) == f"migrate: error: {variable}: {SECONDS}, not '{value}'\n"


def test_health_with_a_bad_variable_exits_1() -> None:
    result = migrate("health", "--database-url", NOWHERE, env={"MIGRATE_LOCK_TIMEOUT": "nan"})
    assert result.exit_code == 1
    assert f"MIGRATE_LOCK_TIMEOUT: {SECONDS}, not 'nan'" in one_line(result)


# the range's ends, on the server


def test_the_largest_timeouts_are_accepted_by_the_server(database_url: str) -> None:
    limits = ("--lock-timeout", "2147483", "--statement-timeout", "2147483", "--lock-wait", "2147483")
    result = migrate("status", *limits, "--database-url", database_url)
    assert result.exit_code == 0, result.output


def test_a_timeout_below_a_millisecond_is_sent_as_1ms_not_as_no_limit(database: ConnectionSettings) -> None:
    settings = commands.settings(database_url=url_of(database), lock_timeout=0.0001, statement_timeout=0.0004)
    sent = settings.session()
    assert (sent.lock_timeout_ms, sent.statement_timeout_ms) == (1, 1)
    # On the server, with the lock timeout only: a 1 ms statement timeout could cancel the SHOW itself.
    settings = commands.settings(database_url=url_of(database), lock_timeout=0.0001)

    async def shown() -> str:
        async with commands.connection(settings, "test") as (conn, _), conn.transaction():
            await session.apply_local(conn, settings.session())
            return str(await conn.fetchval("SHOW lock_timeout"))

    assert asyncio.run(shown()) == "1ms"
