"""`migrate verify --roundtrip`: every pending file applied, rolled back and applied again in a scratch
database, the schema compared at each step; the real database is only read."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate.files import discover
from src.postgres.settings import parse_url
from tests.migrate.test_commands import scratch_databases
from tests.support import PROJECT_MIGRATIONS, fetchval, write_migrations


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_the_projects_own_migrations_survive_the_round_trip(database_url: str) -> None:
    result = migrate("verify", "--roundtrip", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    count = len(discover(PROJECT_MIGRATIONS))
    assert (
        f"ok    roundtrip: {count} pending file(s) applied, rolled back and applied again, then all of them "
        "together, in a scratch database, schema identical at each step"
    ) in result.stdout
    assert scratch_databases(database_url) == []
    # Only read: the real database has no ledger yet.
    assert fetchval(parse_url(database_url), "SELECT to_regclass('public.migration_ledger')") is None


def test_every_project_migration_has_a_down_file() -> None:
    assert [f.filename for f in discover(PROJECT_MIGRATIONS) if f.down is None] == []


def test_a_down_file_that_leaves_something_behind_is_shown_as_a_diff(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);\nCREATE INDEX IF NOT EXISTS ix_t ON t (id);",
            "001_t.down.sql": "DROP INDEX IF EXISTS ix_t;",
        },
    )
    result = migrate("verify", "--roundtrip", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert (
        "001_t.down.sql: rolling back 001_t.sql does not give back the schema before it; after the rollback, "
        "compared with before:\n  relations: added [('acl', "
    ) in result.stdout
    assert "('kind', 'r'), ('name', 't'), ('schema', 'public')]" in result.stdout
    assert scratch_databases(database_url) == []


def test_a_failing_down_file_fails_the_round_trip_naming_its_line(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);",
            "001_t.down.sql": "DROP TABLE IF EXISTS t;\nDROP VIEW v;",
        },
    )
    result = migrate("verify", "--roundtrip", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert (
        '001_t.down.sql: its rollback fails in a scratch database: 001_t.down.sql:2:1: ERROR 42P01: view "v" does '
        "not exist"
    ) in result.stdout


def test_a_pending_file_without_a_down_file_fails_the_round_trip(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);"})
    result = migrate("verify", "--roundtrip", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql: no down script (001_t.down.sql), so its rollback cannot be proved; write one" in result.stdout


def test_applied_files_are_applied_first_and_only_pending_ones_make_the_trip(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path,
        {
            "001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);",
            "002_c.sql": "ALTER TABLE t ADD COLUMN IF NOT EXISTS c text;",
            "002_c.down.sql": "ALTER TABLE t DROP COLUMN IF EXISTS c;",
        },
    )
    assert (
        migrate("apply", "--target", "1", "--database-url", database_url, "--migrations-dir", str(folder)).exit_code
        == 0
    )
    result = migrate("verify", "--roundtrip", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "ok    roundtrip: 1 pending file(s) applied, rolled back and applied again in a scratch" in result.stdout
