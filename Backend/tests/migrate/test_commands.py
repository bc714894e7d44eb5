"""`migrate verify`, `new`, `repair` and `baseline` as a user runs them, on a real server."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import PROJECT_MIGRATIONS, fetchval, url_of, write_migrations

STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
    "003_c.sql": "CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY);",
}


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def test_verify_rerun_proves_the_projects_migrations_idempotent(database_url: str) -> None:
    migrate("apply", "--database-url", database_url)
    result = migrate("verify", "--rerun", "--database-url", database_url)
    assert result.exit_code == 0, result.output
    count = len(discover(PROJECT_MIGRATIONS))
    assert f"ok    rerun: {count} file(s) re-run, rolled back, catalog unchanged" in result.stdout


def test_verify_rerun_catches_a_file_that_changes_the_catalog_when_rerun(database_url: str, tmp_path: Path) -> None:
    # An unnamed index gets a new name on every run: t_id_idx, then t_id_idx1.
    sql = (
        "CREATE TABLE IF NOT EXISTS t (id bigint);\n"
        "-- migrate:lint-ignore create-if-not-exists\n"
        "CREATE INDEX ON t (id);"
    )
    folder = write_migrations(tmp_path, {"001_t.sql": sql})
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql: re-running it changes the catalog" in result.stdout
    assert "t_id_idx1" in result.stdout


def test_verify_rerun_catches_a_file_that_fails_when_rerun(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path, {"001_t.sql": "CREATE TABLE IF NOT EXISTS t (id bigint);\nALTER TABLE t ADD COLUMN c text;"}
    )
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("verify", "--rerun", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql:2:1: fails when re-run: ERROR 42701" in result.stdout


def test_verify_reports_drift_with_exit_5(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    (folder / "002_b.sql").unlink()
    result = migrate("verify", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "002_b.sql: applied on" in result.stdout


def test_new_creates_the_next_number_keeping_the_padding(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"0009_x.sql": "SELECT 1;"})
    result = migrate("new", "Add todo tags!", "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    created = folder / "0010_add_todo_tags.sql"
    assert created.is_file()
    assert "IF NOT EXISTS" in created.read_text()


def test_new_starts_at_001_in_an_empty_folder(tmp_path: Path) -> None:
    migrate("new", "first", "--migrations-dir", str(tmp_path))
    assert [p.name for p in tmp_path.iterdir()] == ["001_first.sql"]


def test_an_unedited_template_is_refused_by_apply(database_url: str, tmp_path: Path) -> None:
    migrate("new", "later", "--migrations-dir", str(tmp_path))
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(tmp_path))
    assert result.exit_code == 4
    assert "001_later.sql: the unedited `migrate new` template" in result.stderr


def test_repair_records_the_edited_files_checksum(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    (folder / "002_b.sql").write_text("-- reformatted\nCREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);")
    assert migrate("status", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 5
    result = migrate("repair", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "002_b.sql: recorded checksum" in result.stdout
    assert migrate("status", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0
    new_checksum = discover(folder)[1].checksum
    assert fetchval(database, "SELECT checksum FROM public.migration_ledger WHERE version = 2") == new_checksum


def test_repair_never_forgets_a_missing_file(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    (folder / "003_c.sql").unlink()
    result = migrate("repair", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "never forgets an applied file" in result.stderr
    assert fetchval(database, "SELECT count(*) FROM public.migration_ledger") == 3


def test_baseline_records_without_running_and_apply_continues_after_it(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    result = migrate("baseline", "--version", "2", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert fetchval(database, "SELECT to_regclass('public.a') IS NULL")  # recorded, not run
    assert fetchval(database, "SELECT string_agg(kind, ',' ORDER BY version) FROM public.migration_ledger") == (
        "baseline,baseline"
    )
    applied = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert "003_c.sql" in applied.stdout
    assert "001_a.sql" not in applied.stdout


def test_baseline_refuses_a_ledger_that_has_rows(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--target", "1", "--database-url", url, "--migrations-dir", str(folder))
    result = migrate("baseline", "--version", "3", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "already has 1 row(s)" in result.stderr


@pytest.mark.parametrize("content", [b"\xef\xbb\xbfSELECT 1;\r\nSELECT 2;\r\n", b"SELECT 1;\nSELECT 2;\n"])
def test_bom_and_crlf_files_apply_and_checksum_like_plain_ones(
    database: ConnectionSettings, tmp_path: Path, content: bytes
) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": content})
    assert migrate("apply", "--database-url", url_of(database), "--migrations-dir", str(folder)).exit_code == 0
    plain = write_migrations(tmp_path / "plain", {"001_x.sql": "SELECT 1;\nSELECT 2;\n"})
    assert fetchval(database, "SELECT checksum FROM public.migration_ledger") == discover(plain)[0].checksum


def test_a_non_utf8_file_exits_4_naming_it(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_x.sql": b"SELECT 'caf\xe9';"})
    result = migrate("apply", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 4
    assert "001_x.sql:1: not valid UTF-8" in result.stderr
