"""What the runner sends for a transaction's files: groups, batches, positions and literals. Pure."""

from __future__ import annotations

import hashlib
from pathlib import Path

from src.migrate import script
from src.migrate.files import MigrationFile
from src.migrate.ledger import LedgerTable
from src.migrate.script import TransactionMode

TABLE = LedgerTable.parse("public.migration_ledger")


def file(version: int, sql: str = "SELECT 1;") -> MigrationFile:
    name = f"{version:03d}_f{version}.sql"
    return MigrationFile(version, f"f{version}", Path(name), sql, hashlib.sha256(sql.encode()).hexdigest())


def versions(groups: list[tuple[bool, tuple[MigrationFile, ...]]]) -> list[tuple[bool, list[int]]]:
    return [(t, [f.version for f in g]) for t, g in groups]


def test_all_mode_puts_every_transactional_file_in_one_group() -> None:
    files = [file(1), file(2), file(3)]
    groups = list(script.groups(files, {1: True, 2: True, 3: True}, TransactionMode.ALL))
    assert versions(groups) == [(True, [1, 2, 3])]


def test_a_file_outside_a_transaction_splits_the_group_around_it() -> None:
    files = [file(1), file(2), file(3), file(4)]
    groups = list(script.groups(files, {1: True, 2: False, 3: True, 4: True}, TransactionMode.ALL))
    assert versions(groups) == [(True, [1]), (False, [2]), (True, [3, 4])]


def test_per_file_mode_gives_each_file_its_own_group() -> None:
    files = [file(1), file(2), file(3)]
    groups = list(script.groups(files, {1: True, 2: False, 3: True}, TransactionMode.PER_FILE))
    assert versions(groups) == [(True, [1]), (False, [2]), (True, [3])]


def test_a_batch_holds_the_files_then_their_ledger_rows_in_one_insert_after_the_guard() -> None:
    [batch] = script.batches([file(1, "CREATE TABLE a (id int)"), file(2)], TABLE, "web-1")
    first, second = batch.text.index("CREATE TABLE a"), batch.text.index("SELECT 1;")
    guard, insert = batch.text.index(script.GUARD), batch.text.index('INSERT INTO "public"."migration_ledger"')
    assert first < second < guard < insert
    assert batch.text.count("INSERT INTO") == 1
    assert batch.text.index("(1, 'f1', ") < batch.text.index("(2, 'f2', ")


def test_only_the_batches_after_the_first_restore_the_files_settings() -> None:
    files = [file(i) for i in range(1, script.BATCH_FILES + 2)]
    first, second = script.batches(files, TABLE, "h")
    assert (first.restores, second.restores) == (False, True)
    assert script.RESTORE not in first.text
    assert second.text.startswith(script.RESTORE)


def test_a_last_statement_without_semicolon_or_after_a_comment_is_still_terminated() -> None:
    [batch] = script.batches([file(1, "SELECT 1 -- no semicolon, a comment")], TABLE, "h")
    assert "-- no semicolon, a comment\n;\nSELECT pg_catalog.set_config('migrate.t1', " in batch.text


def test_a_file_adding_an_enum_value_ends_its_transaction_in_all_mode() -> None:
    files = [file(1), file(2), file(3)]
    transactional = {1: True, 2: True, 3: True}
    groups = list(script.groups(files, transactional, TransactionMode.ALL, commit_after={2}))
    assert versions(groups) == [(True, [1, 2]), (True, [3])]


def test_batches_split_at_the_file_limit() -> None:
    files = [file(i) for i in range(1, 2 * script.BATCH_FILES + 2)]
    sizes = [len(b.files) for b in script.batches(files, TABLE, "h")]
    assert sizes == [script.BATCH_FILES, script.BATCH_FILES, 1]


def test_batches_split_at_the_size_limit_but_keep_a_large_file_whole() -> None:
    big = "SELECT 1;\n" * (script.BATCH_CHARS // 10 + 1)
    files = [file(1), file(2, big), file(3)]
    assert [[f.version for f in b.files] for b in script.batches(files, TABLE, "h")] == [[1], [2], [3]]


def test_a_position_maps_back_to_its_file_and_offset() -> None:
    one, two = file(1, "SELECT 1;\n"), file(2, "SELECT 2;\nSELECT nope;\n")
    [batch] = script.batches([one, two], TABLE, "h")
    at = batch.text.index("nope")
    assert batch.locate(at + 1) == (two, two.sql.index("nope"))
    assert batch.locate(batch.text.index("SELECT 1") + 1) == (one, 0)


def test_a_position_in_the_runners_own_sql_maps_to_no_file() -> None:
    [batch] = script.batches([file(1)], TABLE, "h")
    assert batch.locate(1) is None  # the opening set_config
    assert batch.locate(batch.text.index("INSERT INTO") + 1) is None


def test_literals_double_quotes_and_escape_backslashes() -> None:
    assert script.literal("it's") == "'it''s'"
    assert script.literal("a\\b'c") == "E'a\\\\b''c'"
