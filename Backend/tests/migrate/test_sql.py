"""Splitting and classifying statements with PostgreSQL's parser; pure, no server needed."""

from __future__ import annotations

from pathlib import Path

import pytest

from src.migrate.errors import MigrationFileError
from src.migrate.files import MigrationFile, checksum
from src.migrate.sql import line_and_column, parse, plainly_transactional


def migration(sql: str, name: str = "001_x.sql") -> MigrationFile:
    return MigrationFile(1, "x", Path(name), sql, checksum(sql))


def test_statements_come_back_in_order_with_their_offsets() -> None:
    sql = "-- a comment\nCREATE TABLE t (x int);\n\nINSERT INTO t VALUES (1);\n"
    statements = parse(migration(sql))
    assert [s.text for s in statements] == ["CREATE TABLE t (x int)", "INSERT INTO t VALUES (1)"]
    assert [line_and_column(sql, s.offset) for s in statements] == [(2, 1), (4, 1)]


def test_a_semicolon_inside_a_function_body_does_not_split_it() -> None:
    sql = "CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;"
    assert len(parse(migration(sql))) == 1


REFUSED_IN_A_TRANSACTION = [
    "CREATE INDEX CONCURRENTLY IF NOT EXISTS i ON t (x)",
    "DROP INDEX CONCURRENTLY IF EXISTS i",
    "REINDEX INDEX CONCURRENTLY i",
    "REINDEX SCHEMA s",
    "VACUUM t",
    "ALTER SYSTEM SET work_mem = '8MB'",
    "CREATE DATABASE d",
    "ALTER TABLE p DETACH PARTITION c CONCURRENTLY",
    "vacuum (analyze) t",
    "REINDEX SYSTEM d",
    "CLUSTER",
    "CREATE TABLESPACE s LOCATION '/x'",
    "DROP SUBSCRIPTION s",
]
TRANSACTION_CONTROL = ["BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "SAVEPOINT s", "RELEASE s", "END", "ABORT"]


@pytest.mark.parametrize("statement", REFUSED_IN_A_TRANSACTION + TRANSACTION_CONTROL)
def test_a_file_needing_special_handling_is_never_sent_unparsed(statement: str) -> None:
    sql = f"CREATE TABLE IF NOT EXISTS t (x int);\n{statement};\n"
    assert not plainly_transactional(sql)
    statements = parse(migration(sql)) if statement not in TRANSACTION_CONTROL else None
    assert statements is None or not all(s.transactional for s in statements)


@pytest.mark.parametrize(
    "sql",
    [
        "CREATE TABLE IF NOT EXISTS t (x int);",
        "ALTER TABLE t ADD COLUMN IF NOT EXISTS started_at timestamptz; -- start_date stays\n",
        "CREATE INDEX IF NOT EXISTS ix_db ON my_database_table (x)",
    ],
)
def test_a_plainly_transactional_file_may_go_unparsed(sql: str) -> None:
    assert plainly_transactional(sql)
    assert all(s.transactional for s in parse(migration(sql)))


@pytest.mark.parametrize(
    "sql",
    ["", "  ;\n", "-- only a comment\n", "/* block */", "/* a /* nested */ comment */ SELECT 1", "SELECT 1 /* x */"],
)
def test_comments_alone_or_block_comments_always_need_the_parser(sql: str) -> None:
    assert not plainly_transactional(sql)


@pytest.mark.parametrize("statement", REFUSED_IN_A_TRANSACTION)
def test_statements_postgresql_refuses_in_a_transaction_are_recognised(statement: str) -> None:
    assert not parse(migration(statement))[0].transactional


@pytest.mark.parametrize(
    "statement", ["CREATE INDEX IF NOT EXISTS i ON t (x)", "ANALYZE t", "DISCARD TEMP", "CREATE TABLE t (x int)"]
)
def test_ordinary_statements_run_in_a_transaction(statement: str) -> None:
    assert parse(migration(statement))[0].transactional


@pytest.mark.parametrize(
    "statement",
    [
        "REINDEX TABLE t",  # refused in a transaction when t is partitioned
        "REINDEX (CONCURRENTLY false) INDEX i",  # likewise for a partitioned index
        "CLUSTER t USING i",  # likewise for a partitioned table
        "DROP SUBSCRIPTION IF EXISTS s",  # refused when the subscription has a replication slot
        "ALTER SUBSCRIPTION s SET (two_phase = false)",  # refused when it has a slot (PostgreSQL 18)
        "CREATE SUBSCRIPTION s CONNECTION 'c' PUBLICATION p WITH (create_slot = maybe)",  # unclear: a slot
    ],
)
def test_what_depends_on_the_catalog_runs_outside_a_transaction(statement: str) -> None:
    # The parse tree cannot say whether PostgreSQL would refuse these in a transaction; outside one they
    # run the same, so they run outside.
    assert not parse(migration(statement))[0].transactional


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT $$",
        "SELECT $a$ x $b$",
        "SELECT 'it''s",
        "SELECT E'\\'",
        'SELECT "name',
        "SELECT 'a' -- ' closed\n, 'b",
        "SELECT a$$ b, $x$ open",
    ],
)
def test_a_quote_left_open_is_never_sent_unparsed(sql: str) -> None:
    # Sent unparsed, it would swallow the ledger row after it and run on into the next file.
    assert not plainly_transactional(sql)


@pytest.mark.parametrize(
    "sql",
    [
        "SELECT $$ a $$, $x$ $$ $x$, $1",
        "SELECT 'it''s', U&'x', \"a\"\"b\"",
        "SELECT 1 WHERE'x' = 'x'",  # the E of WHERE does not start an escape string
        "SELECT a$$b, a$b$c FROM t",
        "SELECT 'a -- b' -- '\n",
        "SELECT 'é', $é$ x $é$",
    ],
)
def test_closed_quotes_do_not_need_the_parser(sql: str) -> None:
    assert plainly_transactional(sql)


@pytest.mark.parametrize("word", ["BEGIN", "COMMIT", "ROLLBACK", "START TRANSACTION", "SAVEPOINT s"])
def test_transaction_control_is_refused_naming_the_line(word: str) -> None:
    with pytest.raises(MigrationFileError, match=r"^001_x\.sql:2:1: .* is not allowed in a migration"):
        parse(migration(f"SELECT 1;\n{word};\nSELECT 2;"))


def test_a_syntax_error_names_file_line_and_column_and_shows_the_line() -> None:
    with pytest.raises(MigrationFileError) as info:
        parse(migration("SELECT 1;\nSELECT 2;\n  SELEC 3;\n", name="005_bad.sql"))
    message = str(info.value)
    assert message.startswith('005_bad.sql:3:3: ERROR 42601: syntax error at or near "SELEC"')
    assert "    3 |   SELEC 3;" in message


@pytest.mark.parametrize("sql", ["", "   \n", ";", "-- only a comment\n", "/* block /* nested */ */\n"])
def test_a_file_without_statements_has_none_and_says_so(sql: str) -> None:
    file = migration(sql)
    assert parse(file) == []
    assert file.empty


@pytest.mark.parametrize("sql", ["SELECT 1", "/* a */ SELECT 1", "/* unterminated", "\u00a0"])
def test_a_file_with_anything_else_is_not_empty(sql: str) -> None:
    assert not migration(sql).empty


def test_a_meta_command_in_the_rows_after_copy_names_the_copy() -> None:
    with pytest.raises(MigrationFileError, match=r"^001_x\.sql:2:1: COPY \.\.\. FROM STDIN"):
        parse(migration("SELECT 1;\nCOPY t FROM stdin;\n\\.\n"))


def test_a_psql_variable_is_named() -> None:
    with pytest.raises(MigrationFileError, match=r"^001_x\.sql:1:8: :'name' is psql variable interpolation"):
        parse(migration("SELECT :'name';"))


def test_copy_from_a_server_file_or_program_is_plain_sql() -> None:
    statements = parse(migration("COPY t FROM '/data/t.csv';\nCOPY t TO PROGRAM 'gzip > /tmp/t.gz';"))
    assert [s.kind for s in statements] == ["CopyStmt", "CopyStmt"]


@pytest.mark.parametrize(
    ("spelled", "meant"),
    [
        ("_START_CHAR", r"[A-Za-z_\x80-\U0010ffff]"),
        ("_WORD_CHAR", r"[A-Za-z0-9_\x80-\U0010ffff]"),
        ("_REST_CHAR", r"[A-Za-z0-9_$\x80-\U0010ffff]"),
    ],
)
def test_the_identifier_character_classes_match_what_they_stand_for_on_every_code_point(
    spelled: str, meant: str
) -> None:
    import re

    from src.migrate import sql

    fast, slow = re.compile(getattr(sql, spelled)), re.compile(meant)
    every = "".join(chr(c) for c in range(0x110000))
    assert fast.findall(every) == slow.findall(every)
