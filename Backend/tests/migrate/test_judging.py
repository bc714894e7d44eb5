"""What `verify` and `lint` judge, and which exit code wins; what `apply --target` says when it has
nothing to do or names no file. On a real server, through the CLI as a user runs it."""

from __future__ import annotations

import asyncio
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.postgres.settings import ConnectionSettings
from tests.support import fetchval, url_of, write_migrations

CLEAN = "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);"
FLAGGED = "CREATE TABLE b (id bigint PRIMARY KEY);"  # create-if-not-exists
STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
    "003_c.sql": "CREATE TABLE IF NOT EXISTS c (id bigint PRIMARY KEY);",
}
NOWHERE = "postgresql://u@127.0.0.1:1/db"


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def applied_history(url: str, folder: Path, files: dict[str, str]) -> Path:
    write_migrations(folder, files)
    result = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    return folder


def leave_an_invalid_index(database: ConnectionSettings) -> None:
    """What an interrupted or failed CREATE INDEX CONCURRENTLY leaves: here, a unique build over duplicates."""

    async def go() -> None:
        conn = await asyncpg.connect(**database.asyncpg_kwargs())
        try:
            await conn.execute("CREATE TABLE dup (v int); INSERT INTO dup VALUES (1), (1);")
            with pytest.raises(asyncpg.UniqueViolationError):
                await conn.execute("CREATE UNIQUE INDEX CONCURRENTLY ix_dup ON dup (v)")
        finally:
            await conn.close()

    asyncio.run(go())


# verify: what it judges


def test_verify_shows_findings_in_applied_files_as_information_and_exits_0(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_b.sql": FLAGGED})
    result = migrate("verify", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "ok    lint: no findings in files not yet applied" in result.stdout
    assert "info  lint: 1 finding(s) in 1 applied file(s), not judged" in result.stdout
    assert "create-if-not-exists x1" in result.stdout


def test_verify_judges_findings_in_files_not_yet_applied(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_a.sql": CLEAN})
    write_migrations(folder, {"002_b.sql": FLAGGED})
    result = migrate("verify", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 7
    assert "FAIL  lint: 1 finding(s) in files not yet applied" in result.stdout
    assert "002_b.sql:1:1: create-if-not-exists" in result.stdout


def test_verify_all_judges_applied_files_too(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_b.sql": FLAGGED})
    result = migrate("verify", "--all", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 7
    assert "FAIL  lint: 1 finding(s)\n" in result.stdout
    assert "001_b.sql:1:1: create-if-not-exists" in result.stdout


# verify: the most serious failing check wins (5 drift, then 8, then 7)


def test_verify_drift_wins_over_lint_findings(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_a.sql": CLEAN})
    (folder / "001_a.sql").write_text(CLEAN + "\n-- edited")
    write_migrations(folder, {"002_b.sql": FLAGGED})
    result = migrate("verify", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 5
    assert "FAIL  lint: 1 finding(s)" in result.stdout


def test_verify_an_invalid_index_wins_over_lint_findings(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied_history(url, tmp_path, {"001_a.sql": CLEAN})
    write_migrations(folder, {"002_b.sql": FLAGGED})
    leave_an_invalid_index(database)
    result = migrate("verify", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "FAIL  indexes: INVALID" in result.stdout
    assert "FAIL  lint: 1 finding(s)" in result.stdout


def test_verify_drift_wins_over_an_invalid_index(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = applied_history(url, tmp_path, {"001_a.sql": CLEAN})
    (folder / "001_a.sql").write_text(CLEAN + "\n-- edited")
    leave_an_invalid_index(database)
    result = migrate("verify", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 5


def test_verify_a_failing_rerun_wins_over_lint_findings(database_url: str, tmp_path: Path) -> None:
    sql = "CREATE TABLE IF NOT EXISTS t (id bigint);\nALTER TABLE t ADD COLUMN c text;"
    folder = applied_history(database_url, tmp_path, {"001_t.sql": sql})
    result = migrate("verify", "--rerun", "--all", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 8
    assert "001_t.sql:2:1: add-column-if-not-exists" in result.stdout
    assert "001_t.sql:2:1: fails when re-run: ERROR 42701" in result.stdout


def test_verify_help_states_the_precedence() -> None:
    result = migrate("verify", "--help")
    assert "the most serious failing check wins" in " ".join(result.stdout.split())


# lint: database-free by default, --pending-only reads the ledger


def test_lint_judges_every_file_and_needs_no_database(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_b.sql": FLAGGED})
    # The URL points at nothing: lint must not try it.
    result = migrate("lint", "--database-url", NOWHERE, "--migrations-dir", str(folder))
    assert result.exit_code == 7
    assert "001_b.sql:1:1: create-if-not-exists" in result.stdout


def test_lint_pending_only_shows_applied_files_findings_as_information(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_b.sql": FLAGGED})
    write_migrations(folder, {"002_a.sql": "CREATE TABLE IF NOT EXISTS x (id bigint PRIMARY KEY);"})
    result = migrate("lint", "--pending-only", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "info: 001_b.sql:1:1: create-if-not-exists" in result.stdout
    assert "No findings in files not yet applied; 1 more in applied files" in result.stdout


def test_lint_pending_only_judges_files_not_yet_applied(database_url: str, tmp_path: Path) -> None:
    folder = applied_history(database_url, tmp_path, {"001_a.sql": CLEAN})
    write_migrations(folder, {"002_b.sql": FLAGGED})
    result = migrate("lint", "--pending-only", "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 7
    assert result.stdout.startswith("002_b.sql:1:1: create-if-not-exists")


# apply --target


def test_a_target_beyond_the_last_file_is_refused_naming_the_highest_version(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, STEPS)
    result = migrate("apply", "--target", "99", "--database-url", url_of(database), "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert result.stderr == (
        "migrate: error: --target 99: no migration is numbered that high; the highest is 003 (003_c.sql)\n"
    )
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL")


def test_a_dry_run_refuses_a_target_beyond_the_last_file(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, STEPS)
    # Judged from the files, before connecting: the URL points at nothing.
    result = migrate("apply", "--dry-run", "--target", "4", "--database-url", NOWHERE, "--migrations-dir", str(folder))
    assert result.exit_code == 2
    assert "--target 4: no migration is numbered that high; the highest is 003" in result.stderr


@pytest.mark.parametrize("target", ["2", "1"])
def test_a_target_at_or_below_the_database_version_says_why_there_is_nothing_to_do(
    database_url: str, tmp_path: Path, target: str
) -> None:
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--target", "2", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate("apply", "--target", target, "--database-url", database_url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert f"Nothing to apply: --target {target} is at or below the database's version 002; apply only moves" in (
        result.stdout
    )


def test_a_dry_run_with_a_target_at_the_database_version_says_why(database_url: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, STEPS)
    migrate("apply", "--target", "2", "--database-url", database_url, "--migrations-dir", str(folder))
    result = migrate(
        "apply", "--dry-run", "--target", "2", "--database-url", database_url, "--migrations-dir", str(folder)
    )
    assert result.exit_code == 0, result.output
    assert "Dry run: nothing to apply; --target 2 is at or below the database's version 002" in result.stdout
