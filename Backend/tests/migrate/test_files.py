"""Migration files: names, encodings and checksums, checked before any connection is made."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.migrate.errors import ConfigError, MigrationFileError
from src.migrate.files import checksum, discover, discover_all, normalize, parse_filename
from tests.support import write_migrations


def test_a_name_gives_version_and_description() -> None:
    assert parse_filename("007_add_index.sql") == (7, "add_index")


def test_versions_may_have_more_than_three_digits() -> None:
    assert parse_filename("20261122_big-step.sql") == (20261122, "big-step")


def test_the_largest_bigint_is_a_version() -> None:
    assert parse_filename("9223372036854775807_last.sql") == (2**63 - 1, "last")


def test_a_version_beyond_bigint_is_refused_with_the_range() -> None:
    with pytest.raises(MigrationFileError, match=r"^9223372036854775808_x\.sql: version .* versions go from 0 to 922"):
        parse_filename("9223372036854775808_x.sql")


def test_a_nul_byte_is_refused_naming_line_and_column() -> None:
    with pytest.raises(MigrationFileError, match=r"^003_x\.sql:2:3: contains a NUL byte"):
        normalize(b"SELECT 1;\r\n--\x00\n", "003_x.sql")


@pytest.mark.parametrize(
    "name",
    ["7_short.sql", "007-dash.sql", "007_.sql", "007_bad name.sql", "abc_x.sql", "007_x.SQL", "007_x.sql.bak"],
)
def test_a_malformed_name_is_refused_with_the_expected_pattern(name: str) -> None:
    with pytest.raises(MigrationFileError, match=r"expected NNN_description\.sql") as info:
        parse_filename(name)
    assert str(info.value).startswith(name)


def test_a_leading_bom_is_dropped() -> None:
    assert normalize("\ufeffSELECT 1;".encode(), "x.sql") == "SELECT 1;"


def test_crlf_line_ends_read_as_lf() -> None:
    assert normalize(b"SELECT 1;\r\nSELECT 2;\r\n", "x.sql") == "SELECT 1;\nSELECT 2;\n"


def test_bom_and_crlf_do_not_change_the_checksum() -> None:
    plain = normalize(b"SELECT 1;\nSELECT 2;\n", "x.sql")
    edited = normalize("\ufeffSELECT 1;\r\nSELECT 2;\r\n".encode(), "x.sql")
    assert checksum(plain) == checksum(edited)


def test_a_content_change_changes_the_checksum() -> None:
    assert checksum("SELECT 1;") != checksum("SELECT 2;")


def test_non_utf8_is_refused_naming_file_and_line() -> None:
    with pytest.raises(MigrationFileError, match=r"^003_x\.sql:2: not valid UTF-8 \(byte 0xe9"):
        normalize(b"SELECT 1;\nSELECT 'caf\xe9';\n", "003_x.sql")


def test_discover_orders_by_number_not_by_text(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"010_c.sql": "SELECT 3;", "002_b.sql": "SELECT 2;", "0001_a.sql": "SELECT 1;"})
    assert [f.version for f in discover(folder)] == [1, 2, 10]


def test_discover_ignores_other_files_and_dot_files(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "SELECT 1;", "README.md": "x", ".002_hidden.sql": "x"})
    assert [f.filename for f in discover(folder)] == ["001_a.sql"]


def test_discover_reports_every_bad_name_at_once(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"1_a.sql": "", "002 b.sql": "", "003_c.sql": "SELECT 1;"})
    with pytest.raises(MigrationFileError) as info:
        discover(folder)
    assert "1_a.sql" in str(info.value)
    assert "002 b.sql" in str(info.value)


def test_duplicate_versions_are_refused_naming_both_files(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"003_a.sql": "SELECT 1;", "0003_b.sql": "SELECT 2;"})
    with pytest.raises(MigrationFileError, match=r"0003_b\.sql, 003_a\.sql: 2 files share version 3"):
        discover(folder)


def test_a_missing_folder_names_the_setting(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist; set --migrations-dir or MIGRATIONS_DIR"):
        discover(tmp_path / "nowhere")


def test_a_down_file_and_a_repeatable_script_are_valid_names(tmp_path: Path) -> None:
    folder = write_migrations(
        tmp_path, {"001_a.sql": "SELECT 1;", "001_a.down.sql": "SELECT 2;", "R__views.sql": "SELECT 3;"}
    )
    found = discover_all(folder)
    assert [(f.filename, f.down.filename if f.down else None) for f in found.migrations] == [
        ("001_a.sql", "001_a.down.sql")
    ]
    assert [(f.filename, f.kind) for f in found.repeatables] == [("R__views.sql", "repeatable")]
    assert discover(folder) == found.migrations  # the numbered files only


def test_a_down_file_gets_its_own_checksum(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "SELECT 1;", "001_a.down.sql": "SELECT 2;"})
    (up,) = discover(folder)
    assert up.down_checksum == checksum("SELECT 2;")
    assert up.checksum == checksum("SELECT 1;")


def test_a_down_file_without_its_migration_is_refused(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "SELECT 1;", "002_b.down.sql": "SELECT 2;"})
    with pytest.raises(MigrationFileError, match=r"^002_b\.down\.sql: a down file without its migration \(no file is"):
        discover(folder)


def test_a_down_file_named_unlike_its_migration_is_refused_with_the_right_name(tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {"001_a.sql": "SELECT 1;", "001_b.down.sql": "SELECT 2;"})
    with pytest.raises(
        MigrationFileError, match=r"001_b\.down\.sql: its name does not match .* name it 001_a\.down\.sql"
    ):
        discover(folder)


@pytest.mark.parametrize("name", ["R_views.sql", "r__views.sql", "R__.sql", "001_a.undo.sql", "001_a.down.SQL"])
def test_a_malformed_down_or_repeatable_name_lists_every_allowed_form(name: str, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path, {name: "SELECT 1;"})
    with pytest.raises(MigrationFileError) as info:
        discover(folder)
    assert str(info.value) == (
        f"{name}: not a valid migration name; expected NNN_description.sql (3 or more digits, '_', then letters, "
        "digits, '_' or '-'), e.g. 008_add_todo_index.sql; NNN_description.down.sql beside it to undo it; or "
        "R__description.sql for a repeatable script"
    )
