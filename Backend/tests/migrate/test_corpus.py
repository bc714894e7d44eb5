"""The runner on a migration history of our own (Backend/tests/corpus, described in its README): what
`migrate apply` makes of it, in both transaction modes, must be exactly what psql makes of the same files,
down to the last line of `pg_dump --schema-only`; and every file must be idempotent where it stands.

psql gets the files the way a person would give them to it: every run of files that may share a
transaction concatenated and run with `psql -1 -f`, and each file PostgreSQL refuses inside a transaction
run alone with `psql -f`. A run also ends after a file that adds an enum value, because PostgreSQL lets a
later statement use the value only once it is committed (SQLSTATE 55P04). The files are classified here
with regular expressions, independently of the runner's parser, so that the two cannot share a mistake.
"""

from __future__ import annotations

import difflib
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING

import asyncpg
import pytest
from click.testing import CliRunner

from src.app.cli import main
from src.migrate import runner, verify
from src.migrate.files import discover
from src.migrate.script import TransactionMode
from src.postgres.settings import ConnectionSettings
from tests.support import client_program, dump_schema, fetchval, libpq_environment, server_major_version, url_of

if TYPE_CHECKING:
    from tests.conftest import TestServer

pytestmark = pytest.mark.slow  # about 15 s in all: `make test` runs it, `make test-quick` does not

CORPUS = Path(__file__).resolve().parents[1] / "corpus"
LEDGER = "public.migration_ledger"
AUDIT = "public.migration_ledger_audit"
"""The runner's audit trail (a row per apply), which psql's run has no counterpart of."""
ROLES = ("helpdesk_owner", "helpdesk_app", "helpdesk_readonly")
"""The roles the corpus creates: they are the cluster's, so the tests drop the ones they made."""

_OUTSIDE_TRANSACTION = re.compile(
    r"^\s*(CREATE\s+(UNIQUE\s+)?INDEX\s+CONCURRENTLY|DROP\s+INDEX\s+CONCURRENTLY|REINDEX\b[^;]*\bCONCURRENTLY|VACUUM)\b",
    re.IGNORECASE | re.MULTILINE,
)
_ADDS_ENUM_VALUE = re.compile(r"^\s*ALTER\s+TYPE\s+[^;]+?\s+ADD\s+VALUE\b", re.IGNORECASE | re.MULTILINE)
_COMMENTS = re.compile(r"--[^\n]*|/\*.*?\*/", re.DOTALL)  # the corpus nests no block comment in a comment-only file


def corpus_files() -> list[Path]:
    return sorted(CORPUS.glob("*.sql"))


def is_comment_only(file: Path) -> bool:
    return not _COMMENTS.sub("", file.read_text(encoding="utf-8")).strip(" \t\r\n;")


def adds_enum_value(file: Path) -> bool:
    return bool(_ADDS_ENUM_VALUE.search(file.read_text(encoding="utf-8")))


def psql_runs(files: list[Path]) -> list[tuple[bool, list[Path]]]:
    """(in one transaction, files) in order, as psql is given them (see the module's docstring)."""
    runs: list[tuple[bool, list[Path]]] = []
    pending: list[Path] = []
    for file in files:
        if _OUTSIDE_TRANSACTION.search(file.read_text(encoding="utf-8")):
            if pending:
                runs.append((True, pending))
                pending = []
            runs.append((False, [file]))
            continue
        pending.append(file)
        if adds_enum_value(file):
            runs.append((True, pending))
            pending = []
    if pending:
        runs.append((True, pending))
    return runs


def apply_with_psql(settings: ConnectionSettings, scripts: Path) -> None:
    psql = client_program("psql", server_major_version(settings))
    for index, (in_transaction, files) in enumerate(psql_runs(corpus_files())):
        script = scripts / f"run-{index:03d}.sql"
        # The files as `cat` joins them, with a newline between (the last file ends without one).
        script.write_bytes(b"\n".join(f.read_bytes() for f in files))
        command = [psql, "-X", "-q", "-v", "ON_ERROR_STOP=1", *(["-1"] if in_transaction else []), "-f", str(script)]
        done = subprocess.run(command, capture_output=True, text=True, check=False, env=libpq_environment(settings))
        assert done.returncode == 0, f"psql failed on {', '.join(f.name for f in files)}:\n{done.stderr}"


_TABLES = f"""
    SELECT format('%I.%I', n.nspname, c.relname),
           EXISTS (SELECT FROM pg_attribute a WHERE a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
                   AND a.atttypid IN ('timestamptz'::regtype, 'timestamp'::regtype, 'date'::regtype))
    FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
    WHERE c.relkind IN ('r', 'm') AND n.nspname NOT IN ('pg_catalog', 'information_schema', 'pg_toast')
      AND format('%I.%I', n.nspname, c.relname) NOT IN ('{LEDGER}', '{AUDIT}')
"""


def table_contents(settings: ConnectionSettings) -> dict[str, str]:
    """Every row of each table and materialized view, or only how many there are in those with a date or
    time column (its values are the clock's): the backfills ran, ran once, and wrote the same values."""
    import asyncio

    async def read() -> dict[str, str]:
        conn = await asyncpg.connect(**settings.asyncpg_kwargs())
        try:
            contents = {}
            for name, has_clock_values in await conn.fetch(_TABLES):
                rows = "count(*)::text" if has_clock_values else "string_agg(t::text, E'\\n' ORDER BY t::text)"
                contents[name] = await conn.fetchval(f"SELECT {rows} FROM {name} AS t")
            return contents
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.fixture(scope="module")
def corpus_roles(pg_server: TestServer) -> Iterator[None]:
    """Drop the corpus's roles after the module if they were not there before it (every database that
    used them is gone by then: they are dropped by function-scoped fixtures, and psql's below)."""
    existing = set(fetchval(pg_server.admin, "SELECT array_agg(rolname::text) FROM pg_roles"))
    yield
    for role in ROLES:
        if role not in existing:
            fetchval(pg_server.admin, f"DROP ROLE IF EXISTS {role}")


@pytest.fixture(scope="module")
def psql_result(
    pg_server: TestServer, corpus_roles: None, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[str, dict[str, str]]]:
    """The schema dump and the table contents of a fresh database psql applied the corpus to."""
    settings = replace(pg_server.admin, database=f"corpus_psql_{uuid.uuid4().hex[:12]}")
    fetchval(pg_server.admin, f'CREATE DATABASE "{settings.database}"')
    try:
        apply_with_psql(settings, tmp_path_factory.mktemp("psql-runs"))
        yield dump_schema(settings), table_contents(settings)
    finally:
        fetchval(pg_server.admin, f'DROP DATABASE IF EXISTS "{settings.database}" WITH (FORCE)')


def migrate(*args: str) -> str:
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == 0, result.output
    return result.output


def assert_same_result(settings: ConnectionSettings, psql_result: tuple[str, dict[str, str]]) -> None:
    schema, contents = psql_result
    ours = dump_schema(settings, f"--exclude-table={LEDGER}", f"--exclude-table={AUDIT}")
    if ours != schema:
        diff = difflib.unified_diff(schema.splitlines(), ours.splitlines(), "psql", "migrate", lineterm="", n=2)
        pytest.fail("the schema differs from psql's:\n" + "\n".join(diff))
    assert table_contents(settings) == contents


def test_the_corpus_is_a_history_of_more_than_a_hundred_files() -> None:
    files = corpus_files()
    assert len(files) >= 100
    assert all(re.fullmatch(r"\d{3}_[a-z0-9_]+\.sql", f.name) for f in files)
    assert [int(f.name[:3]) for f in files] == list(range(1, len(files) + 1))
    # Joined for psql as `cat` joins them: only the last file may end without a newline (and it does).
    assert [f.name for f in files if not f.read_bytes().endswith(b"\n")] == [files[-1].name]
    runs = psql_runs(files)
    assert sum(1 for in_transaction, _ in runs if not in_transaction) >= 5, "CONCURRENTLY and VACUUM files"
    assert sum(1 for f in files if adds_enum_value(f)) >= 2
    assert sum(1 for f in files if is_comment_only(f)) >= 3


@pytest.mark.parametrize("mode", ["all", "per-file"])
def test_migrate_apply_makes_what_psql_makes(
    mode: str, database: ConnectionSettings, corpus_roles: None, psql_result: tuple[str, dict[str, str]]
) -> None:
    url = url_of(database)
    migrate("apply", "--database-url", url, "--migrations-dir", str(CORPUS), "--transaction", mode)
    assert_same_result(database, psql_result)
    assert fetchval(database, f"SELECT count(*) FROM {LEDGER}") == len(corpus_files())
    assert "Nothing to apply" in migrate("apply", "--database-url", url, "--migrations-dir", str(CORPUS))


async def test_every_file_is_idempotent_where_it_stands_in_the_history(
    conn: asyncpg.Connection, corpus_roles: None
) -> None:
    """Each file, right after it was applied, is run again (in a transaction that is rolled back, or outside
    one for a file that must run so, as verify's rerun does in its scratch database), and must neither fail
    nor change the catalog."""
    files = discover(CORPUS)
    options = runner.Options(transaction=TransactionMode.PER_FILE)
    problems: list[str] = []
    for file in files:
        await runner.apply(conn, files, replace(options, target=file.version))
        problem = await verify.rerun_one(conn, file)
        problems += [problem] if problem else []
    assert problems == []


def test_verify_rerun_finds_the_applied_corpus_idempotent(database: ConnectionSettings, corpus_roles: None) -> None:
    folder = str(CORPUS)
    url = url_of(database)
    migrate("apply", "--database-url", url, "--migrations-dir", folder, "--transaction", "per-file")
    result = CliRunner().invoke(main, ["verify", "--rerun", "--database-url", url, "--migrations-dir", folder])
    assert "ok    rerun: " in result.output, result.output
