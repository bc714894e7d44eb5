"""Repeatable scripts (`R__name.sql`) on a real server: they run after the numbered files, in name order,
again whenever they change, each in its own transaction with its row; a failing one changes nothing."""

from __future__ import annotations

from pathlib import Path

from click.testing import CliRunner, Result

from src.app.cli import main
from src.postgres.settings import ConnectionSettings
from tests.support import fetchval, url_of, write_migrations

FILES = {
    "001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint PRIMARY KEY, name text);",
    "001_t.down.sql": "DROP TABLE IF EXISTS t CASCADE;",
    "R__b_view.sql": "CREATE OR REPLACE VIEW v_names AS SELECT name FROM t;",
    "R__a_function.sql": (
        "CREATE OR REPLACE FUNCTION t_count() RETURNS bigint LANGUAGE sql AS $$ SELECT count(*) FROM t $$;"
    ),
}


def migrate(database: ConnectionSettings, folder: Path, *args: str) -> Result:
    env = {"DATABASE_URL": url_of(database), "MIGRATIONS_DIR": str(folder)}
    return CliRunner().invoke(main, list(args), env=env, catch_exceptions=False)


def recorded(database: ConnectionSettings) -> list[str]:
    names: list[str] = fetchval(
        database,
        "SELECT coalesce(array_agg(filename ORDER BY applied_at), '{}') FROM public.migration_ledger_repeatable",
    )
    return names


def test_repeatables_run_after_the_numbered_files_in_name_order(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    result = migrate(database, folder, "apply")
    assert result.exit_code == 0, result.output
    assert (
        result.stdout.index("001_t.sql")
        < result.stdout.index("R__a_function.sql")
        < result.stdout.index("R__b_view.sql")
    )
    assert "Ran 2 repeatable script(s): R__a_function.sql, R__b_view.sql." in result.stdout
    assert recorded(database) == ["R__a_function.sql", "R__b_view.sql"]
    assert fetchval(database, "SELECT t_count()") == 0


def test_a_repeatable_runs_again_only_when_its_checksum_changes(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    again = migrate(database, folder, "apply")
    assert "repeatable" not in again.stdout
    (folder / "R__b_view.sql").write_text("CREATE OR REPLACE VIEW v_names AS SELECT name, id FROM t;")
    changed = migrate(database, folder, "apply")
    assert "Ran 1 repeatable script(s): R__b_view.sql." in changed.stdout
    assert fetchval(database, "SELECT count(*) FROM information_schema.columns WHERE table_name = 'v_names'") == 2


def test_a_failing_repeatable_changes_nothing_of_its_own_and_names_file_and_line(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    checksum_before = fetchval(
        database, "SELECT checksum FROM public.migration_ledger_repeatable WHERE filename = 'R__b_view.sql'"
    )
    (folder / "R__b_view.sql").write_text("DROP VIEW IF EXISTS v_names;\nCREATE VIEW v_names AS SELECT nope FROM t;\n")
    result = migrate(database, folder, "apply")
    assert result.exit_code == 1
    assert result.stderr.startswith('migrate: error: R__b_view.sql:2:31: ERROR 42703: column "nope" does not exist'), (
        result.stderr
    )
    assert "Nothing from R__b_view.sql took effect and its ledger row is unchanged" in result.stderr
    assert fetchval(database, "SELECT to_regclass('public.v_names')") is not None  # the DROP was rolled back
    assert checksum_before == fetchval(
        database, "SELECT checksum FROM public.migration_ledger_repeatable WHERE filename = 'R__b_view.sql'"
    )


def test_a_repeatable_that_fails_on_a_fresh_database_leaves_the_numbered_files_applied(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**FILES, "R__c_bad.sql": "SELECT 1;\nSELECT * FROM missing;"})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 1
    assert "R__c_bad.sql:2:15: ERROR 42P01" in result.stderr
    assert "Run before it, and kept: R__a_function.sql, R__b_view.sql." in result.stderr
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == 1
    assert recorded(database) == ["R__a_function.sql", "R__b_view.sql"]


def test_status_shows_the_repeatables_and_which_will_run(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    (folder / "R__b_view.sql").write_text("CREATE OR REPLACE VIEW v_names AS SELECT name, id FROM t;")
    result = migrate(database, folder, "status")
    assert result.exit_code == 0
    lines = result.stdout.splitlines()
    assert any(line.startswith(" applied      R__a_function.sql") for line in lines)
    assert any(line.startswith(" changed      R__b_view.sql") for line in lines)
    assert "1 applied, 0 pending, 1 repeatable script(s) to run; database is at version 001." in result.stdout


def test_the_dry_run_shows_the_repeatables_it_would_run(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    result = migrate(database, folder, "apply", "--dry-run")
    assert result.exit_code == 0
    assert "Dry run: would apply 1 migration(s) and run 2 repeatable script(s); nothing was changed." in result.stdout
    assert "-- R__b_view.sql: repeatable script, never run; in a transaction of its own" in result.stdout
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger')") is None


def test_verify_counts_the_repeatables(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, FILES)
    result = migrate(database, folder, "verify")
    assert "ok    repeatables: 2 script(s), 2 to run at the next apply" in result.stdout


def test_a_repeatable_with_a_statement_refused_in_a_transaction_is_malformed(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(
        tmp_path, {**FILES, "R__c_index.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON t (name);"}
    )
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4
    assert "R__c_index.sql:1:1: a repeatable script runs in a transaction" in result.stderr


def test_after_a_rollback_every_repeatable_runs_again(database: ConnectionSettings, tmp_path: Path) -> None:
    # 001's down drops t with CASCADE, and the view with it: the next apply must make it again.
    folder = write_migrations(tmp_path, FILES)
    assert migrate(database, folder, "apply").exit_code == 0
    assert migrate(database, folder, "rollback").exit_code == 0
    assert fetchval(database, "SELECT to_regclass('public.v_names')") is None
    result = migrate(database, folder, "apply")
    assert "Ran 2 repeatable script(s)" in result.stdout
    assert fetchval(database, "SELECT to_regclass('public.v_names')") is not None
