"""Files as real histories and fuzzing produce them, through `migrate` on a real server: a file of comments
alone is a valid, empty migration; input only psql understands, NUL bytes, versions beyond bigint and quotes
left open are refused when the files are read (exit 4, the file and line named, nothing applied, no
traceback: the CLI runs with catch_exceptions=False, so one would fail the test)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate.files import discover
from src.postgres.settings import ConnectionSettings
from tests.support import fetchval, url_of, write_migrations

FIRST = {"001_create_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);\n"}
LAST = {"003_create_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);\n"}
SQUASHED = "-- Squashed into 001_create_a.sql; kept so the number stays taken.\n"


def migrate(database: ConnectionSettings, folder: Path, *args: str) -> Result:
    options = ["--database-url", url_of(database), "--migrations-dir", str(folder)]
    return CliRunner().invoke(main, [*args, *options], catch_exceptions=False)


def ledger(database: ConnectionSettings) -> list[tuple[int, str]]:
    if not fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NOT NULL"):
        return []
    rows = fetchval(
        database,
        "SELECT coalesce(json_agg(json_build_array(version, checksum) ORDER BY version), '[]') "
        "FROM public.migration_ledger",
    )
    return [(int(v), str(c)) for v, c in json.loads(rows)]


def nothing_applied(database: ConnectionSettings) -> bool:
    return ledger(database) == [] and fetchval(database, "SELECT to_regclass('public.a') IS NULL")


# -- files without statements ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "content",
    [SQUASHED, "", "\n  \n", ";\n", "/* a block /* nested */ comment */\n", "-- a\n/* b */ ; -- c"],
    ids=["line-comment", "empty", "white-space", "semicolon", "block-comment", "mixed"],
)
def test_a_file_without_statements_is_applied_and_recorded_with_its_checksum(
    database: ConnectionSettings, tmp_path: Path, content: str
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": content, **LAST})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 0, result.output
    assert ledger(database) == [(f.version, f.checksum) for f in discover(folder)]


def test_a_file_without_statements_is_recorded_in_per_file_mode_too(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED, **LAST})
    result = migrate(database, folder, "apply", "--transaction", "per-file")
    assert result.exit_code == 0, result.output
    assert [v for v, _ in ledger(database)] == [1, 2, 3]


def test_apply_says_a_file_has_no_statements(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED})
    result = migrate(database, folder, "apply")
    assert "  002_squashed.sql (no statements) ... " in result.stdout
    assert "  001_create_a.sql ... " in result.stdout


def test_apply_json_marks_a_file_without_statements_as_empty(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED})
    applied = json.loads(migrate(database, folder, "apply", "--json").stdout)["applied"]
    assert [(a["file"], a["empty"]) for a in applied] == [("001_create_a.sql", False), ("002_squashed.sql", True)]


def test_dry_run_says_a_file_has_no_statements(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED})
    result = migrate(database, folder, "apply", "--dry-run")
    assert result.exit_code == 0, result.output
    assert "-- 002_squashed.sql: no statements (only comments or white space); only its ledger row is written" in (
        result.stdout
    )


def test_dry_run_json_marks_a_file_without_statements_as_empty(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED})
    planned = json.loads(migrate(database, folder, "apply", "--dry-run", "--json").stdout)["would_apply"]
    assert [(p["file"], p["empty"], p["statements"]) for p in planned] == [
        ("001_create_a.sql", False, ["CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY)"]),
        ("002_squashed.sql", True, []),
    ]


def test_lint_notes_a_file_without_statements_and_passes(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED})
    result = CliRunner().invoke(main, ["lint", "--migrations-dir", str(folder)], catch_exceptions=False)
    assert result.exit_code == 0, result.output
    assert "info: 002_squashed.sql:1:1: no-statements: the file holds only comments or white space" in result.stdout


def test_verify_rerun_passes_on_a_history_with_a_file_without_statements(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_squashed.sql": SQUASHED, **LAST})
    assert migrate(database, folder, "apply").exit_code == 0
    result = migrate(database, folder, "verify", "--rerun")
    assert result.exit_code == 0, result.output


def test_a_template_without_its_marker_line_is_an_empty_migration(database: ConnectionSettings, tmp_path: Path) -> None:
    CliRunner().invoke(main, ["new", "placeholder", "--migrations-dir", str(tmp_path)], catch_exceptions=False)
    path = tmp_path / "001_placeholder.sql"
    path.write_text("".join(line for line in path.read_text().splitlines(True) if "migrate:template" not in line))
    result = migrate(database, tmp_path, "apply")
    assert result.exit_code == 0, result.output
    assert [v for v, _ in ledger(database)] == [1]


# -- input only psql understands ---------------------------------------------------------------------------


@pytest.mark.parametrize(
    "copy",
    [
        "COPY a FROM STDIN;\n",
        "COPY a (id) FROM stdin WITH (FORMAT csv);\n1\n2\n\\.\n",
        "copy a from stdin;\n1\tO'Brien\n\\.\n",
    ],
    ids=["alone", "with-rows", "rows-with-a-quote"],
)
def test_copy_from_stdin_is_refused_before_anything_runs(
    database: ConnectionSettings, tmp_path: Path, copy: str
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_load.sql": "SELECT 1;\n" + copy, **LAST})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4
    assert result.stderr.startswith("migrate: error: 002_load.sql:2:1: COPY ... FROM STDIN reads rows psql sends")
    assert nothing_applied(database)


def test_copy_to_stdout_is_refused_before_anything_runs(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_dump.sql": "COPY (SELECT 1) TO STDOUT;\n"})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4
    assert result.stderr.startswith("migrate: error: 002_dump.sql:1:1: COPY ... TO STDOUT writes rows for psql")
    assert nothing_applied(database)


@pytest.mark.parametrize(
    ("line", "command"),
    [
        ("\\i 001_create_a.sql", "\\i"),
        ("\\ir other.sql", "\\ir"),
        ("\\set ON_ERROR_STOP on", "\\set"),
        ("\\connect other", "\\connect"),
        ("\\c other", "\\c"),
        ("SELECT 1 \\gset", "\\gset"),
        ("\\echo done", "\\echo"),
    ],
)
def test_a_psql_meta_command_is_refused_before_anything_runs(
    database: ConnectionSettings, tmp_path: Path, line: str, command: str
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_psql.sql": f"SELECT 1;\n{line}\nSELECT 2;\n", **LAST})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4
    column = line.index("\\") + 1
    assert result.stderr.startswith(f"migrate: error: 002_psql.sql:2:{column}: {command} is a psql meta-command")
    assert nothing_applied(database)


def test_a_backslash_inside_a_string_is_not_a_meta_command(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path, {**FIRST, "002_strings.sql": "SELECT E'a\\\\b', 'c:\\d', $$\\i x$$, 'x' ~ '\\d+';\n"}
    )
    result = migrate(database, folder, "apply")
    assert result.exit_code == 0, result.output


# -- bytes and names ---------------------------------------------------------------------------------------


def test_a_nul_byte_is_refused_when_the_file_is_read(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_nul.sql": b"SELECT 1;\nSELECT 'a\x00b';\n"})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4, result.output
    assert result.stderr.startswith("migrate: error: 002_nul.sql:2:10: contains a NUL byte")
    assert nothing_applied(database)


def test_a_version_beyond_bigint_is_refused_naming_the_file_and_the_range(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "99999999999999999999_a.sql": "SELECT 1;\n"})
    for args in (["apply"], ["apply", "--dry-run"], ["status"]):
        result = migrate(database, folder, *args)
        assert result.exit_code == 4, (args, result.output)
        assert result.stderr.startswith(
            "migrate: error: 99999999999999999999_a.sql: version 99999999999999999999 is out of range; "
            "versions go from 0 to 9223372036854775807"
        )
    assert nothing_applied(database)


# -- quotes left open --------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("opened", "closed", "column", "what"),
    [
        ("SELECT $$", "$$;", 8, "unterminated dollar-quoted string"),
        ("SELECT $body$", "$body$;", 8, "unterminated dollar-quoted string"),
        ("SELECT 'abc", "';", 8, "unterminated quoted string"),
        ("SELECT E'abc\\'", "';", 8, "unterminated quoted string"),
        ('SELECT 1 AS "abc', '";', 13, "unterminated quoted identifier"),
    ],
    ids=["dollar", "tagged-dollar", "string", "escape-string", "identifier"],
)
def test_a_quote_left_open_at_the_end_of_a_file_is_refused_naming_it(
    database: ConnectionSettings, tmp_path: Path, opened: str, closed: str, column: int, what: str
) -> None:
    folder = write_migrations(tmp_path, {**FIRST, "002_open.sql": opened + "\n", "003_close.sql": closed + "\n"})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4, result.output
    first_line = result.stderr.splitlines()[0]
    assert first_line.startswith(f"migrate: error: 002_open.sql:1:{column}: ")  # then the SQLSTATE, if any
    assert what in first_line
    assert nothing_applied(database)


@pytest.mark.parametrize("value", ["off", "'off'", "false", "0"])
def test_a_plain_string_with_a_backslash_after_turning_standard_conforming_strings_off_is_refused(
    database: ConnectionSettings, tmp_path: Path, value: str
) -> None:
    sql = f"SELECT 1;\nSET LOCAL standard_conforming_strings = {value};\nSELECT 'C:\\dir';\n"
    folder = write_migrations(tmp_path, {**FIRST, "002_strings.sql": sql})
    result = migrate(database, folder, "apply")
    assert result.exit_code == 4
    assert "002_strings.sql:3:8: a '...' string with a backslash after SET standard_conforming_strings = off" in (
        result.stderr
    )
    assert "E'...'" in result.stderr
    assert nothing_applied(database)


def test_escape_strings_after_turning_standard_conforming_strings_off_apply_as_under_psql(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    # What pg_dump wrote when it turned the setting off: every string with a backslash in E'' form.
    sql = (
        "SET standard_conforming_strings = off;\n"
        "CREATE TABLE IF NOT EXISTS s AS SELECT E'C:\\\\dir' AS path, 'plain' AS word;\n"
        "RESET standard_conforming_strings;\n"
    )
    folder = write_migrations(tmp_path, {**FIRST, "002_strings.sql": sql})
    assert migrate(database, folder, "apply").exit_code == 0
    assert fetchval(database, "SELECT path || '|' || word FROM s") == "C:\\dir|plain"


@pytest.mark.parametrize("mode", ["all", "per-file"])
def test_a_file_after_one_that_leaves_standard_conforming_strings_off_is_read_as_psql_reads_it(
    database: ConnectionSettings, tmp_path: Path, mode: str
) -> None:
    files = {
        **FIRST,
        "002_legacy.sql": "SET standard_conforming_strings = off;\n",
        "003_strings.sql": "CREATE TABLE IF NOT EXISTS s AS SELECT 'C:\\dir' AS path;\n",
    }
    folder = write_migrations(tmp_path, files)
    assert migrate(database, folder, "apply", "--transaction", mode).exit_code == 0
    # psql reads 003 with the setting 002 left: a backslash escapes the next character there.
    assert fetchval(database, "SELECT path FROM s") == "C:dir"


def test_standard_conforming_strings_on_or_reset_is_applied(database: ConnectionSettings, tmp_path: Path) -> None:
    sql = "SET standard_conforming_strings = on;\nRESET standard_conforming_strings;\n"
    folder = write_migrations(tmp_path, {**FIRST, "002_strings.sql": sql})
    assert migrate(database, folder, "apply").exit_code == 0
