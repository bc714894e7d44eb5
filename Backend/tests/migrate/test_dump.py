"""`migrate dump` and `apply --dump-file`: the schema as the server's own pg_dump writes it, stable for a
diff, on a real server; and the one line naming what to install when no usable pg_dump is there."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.postgres import programs
from src.postgres.settings import ConnectionSettings, Secret
from tests.support import PrivateServer, fetchval, url_of, write_migrations

STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY, note text NOT NULL DEFAULT '');",
    "002_b.sql": "CREATE INDEX IF NOT EXISTS a_note ON a (note);",
}


def migrate(*args: str, env: dict[str, str] | None = None) -> Result:
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def options(database: ConnectionSettings, folder: Path) -> tuple[str, ...]:
    return ("--database-url", url_of(database), "--migrations-dir", str(folder))


def test_dump_prints_the_schema_without_the_runners_tables(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    assert migrate("apply", *options(database, folder)).exit_code == 0
    result = migrate("dump", *options(database, folder))
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE public.a (" in result.stdout
    assert "CREATE INDEX a_note ON public.a USING btree (note);" in result.stdout
    assert "migration_ledger" not in result.stdout


def test_dump_leaves_out_the_lines_that_change_between_runs(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    migrate("apply", *options(database, folder))
    first, second = (migrate("dump", *options(database, folder)).stdout for _ in range(2))
    assert first == second
    assert "-- Dumped from database version" not in first
    assert "\\restrict" not in first


def test_dump_to_a_file_writes_it_and_says_where(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    migrate("apply", *options(database, folder))
    result = migrate("dump", str(tmp_path / "schema.sql"), *options(database, folder))
    assert result.exit_code == 0, result.output
    assert "CREATE TABLE public.a (" in (tmp_path / "schema.sql").read_text()
    assert "Wrote the schema to " in result.stderr


def test_apply_with_a_dump_file_writes_the_schema_after_every_apply(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "m", {"001_a.sql": STEPS["001_a.sql"]})
    schema = tmp_path / "schema.sql"
    assert migrate("apply", "--dump-file", str(schema), *options(database, folder)).exit_code == 0
    assert "a_note" not in schema.read_text()
    write_migrations(folder, {"002_b.sql": STEPS["002_b.sql"]})
    result = migrate("apply", *options(database, folder), env={"MIGRATE_DUMP_FILE": str(schema)})
    assert result.exit_code == 0, result.output
    assert "CREATE INDEX a_note ON public.a" in schema.read_text()
    assert "Wrote the schema to " in result.stdout


def test_a_dry_run_writes_no_dump(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    schema = tmp_path / "schema.sql"
    assert migrate("apply", "--dry-run", "--dump-file", str(schema), *options(database, folder)).exit_code == 0
    assert not schema.exists()


def test_no_pg_dump_new_enough_is_one_line_naming_the_version_to_install() -> None:
    with pytest.raises(programs.ProgramMissing, match=r"^no pg_dump of PostgreSQL 99 or newer on this machine"):
        programs.client_program("pg_dump", 99)


def test_dump_without_a_usable_pg_dump_exits_10_and_apply_keeps_its_migrations(
    database: ConnectionSettings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A machine with no PostgreSQL client programs at all: nothing for the lookup to find.
    monkeypatch.setattr(programs, "candidates", lambda name: [])
    folder = write_migrations(tmp_path / "m", STEPS)
    result = migrate("apply", "--dump-file", str(tmp_path / "schema.sql"), *options(database, folder))
    assert result.exit_code == 12
    assert result.stderr.count("\n") == 1
    assert "cannot dump the schema: no pg_dump of PostgreSQL" in result.stderr
    assert "install the PostgreSQL" in result.stderr
    assert "(the 2 migration(s) applied stay applied)" in result.stderr
    assert migrate("status", *options(database, folder)).exit_code == 0


@pytest.mark.slow
def test_dump_on_a_server_that_checks_passwords_gets_in_and_never_prints_the_password(
    private_server: PrivateServer, tmp_path: Path
) -> None:
    secret = "Dump-Pa55word!"
    fetchval(private_server.settings, f"CREATE ROLE dumper LOGIN PASSWORD '{secret}'")
    private_server.require_passwords()
    good = url_of(replace(private_server.settings, user="dumper", password=Secret(secret)))
    result = migrate("dump", "--database-url", good)
    assert result.exit_code == 0, result.output  # pg_dump got the password (PGPASSWORD in its environment)
    assert "PostgreSQL database dump" in result.stdout
    wrong = url_of(replace(private_server.settings, user="dumper", password=Secret(secret + "-wrong")))
    refused = migrate("dump", "--database-url", wrong)
    assert refused.exit_code == 3  # the runner's own connection is refused first, before pg_dump runs
    assert secret not in refused.output
