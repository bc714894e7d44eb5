"""The audit trail and `migrate history`: a row per apply, repair, forget and baseline that took the lock,
with who, when, what, how long and the outcome, failures included; on a real server."""

from __future__ import annotations

import getpass
import json
import socket
from pathlib import Path

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src.app.cli import main
from src.migrate import audit, runner
from src.migrate.errors import MigrationFailed
from src.migrate.files import discover
from src.migrate.ledger import LedgerTable
from src.postgres.settings import ConnectionSettings
from tests.support import fetchval, url_of, write_migrations

LEDGER = LedgerTable.parse("public.migration_ledger")
STEPS = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
}
BROKEN = {"003_broken.sql": "CREATE TABLE IF NOT EXISTS c (id bigint);\nALTER TABLE nope ADD COLUMN x int;"}

# The audit table as the first `repair` made it before every command was recorded.
OLD_AUDIT = """
CREATE TABLE public.migration_ledger_audit (
    id        bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,
    at        timestamptz NOT NULL DEFAULT clock_timestamp(),
    action    text NOT NULL CHECK (action IN ('forget', 'repair')),
    version   bigint NOT NULL,
    before    jsonb,
    after     jsonb,
    done_by   text NOT NULL DEFAULT current_user,
    hostname  text NOT NULL,
    note      text NOT NULL
);
INSERT INTO public.migration_ledger_audit (action, version, before, hostname, note)
VALUES ('forget', 7, '{"version": 7}', 'old-host', 'migrate repair --forget: 007_x.sql is gone');
"""


def migrate(database: ConnectionSettings, folder: Path, *args: str, input: str | None = None) -> Result:
    options = ["--database-url", url_of(database), "--migrations-dir", str(folder)]
    return CliRunner().invoke(main, [*args, *options], input=input, catch_exceptions=False)


def runs(database: ConnectionSettings, folder: Path) -> list[dict[str, object]]:
    result = migrate(database, folder, "history", "--json")
    assert result.exit_code == 0, result.output
    found: list[dict[str, object]] = json.loads(result.stdout)["runs"]
    return found


def test_an_apply_is_recorded_with_who_when_what_and_how_long(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    assert migrate(database, folder, "apply").exit_code == 0
    [run] = runs(database, folder)
    assert (run["action"], run["outcome"], run["versions"], run["error"]) == ("apply", "ok", [1, 2], None)
    assert (run["database_role"], run["os_user"], run["hostname"]) == (
        database.user,
        getpass.getuser(),
        socket.gethostname(),
    )
    assert str(run["application_name"]).startswith("migrate apply ")
    assert isinstance(run["duration_ms"], float)
    assert run["duration_ms"] > 0
    assert run["note"] == "applied 001_a.sql, 002_b.sql"


def test_a_failed_apply_is_recorded_although_its_transaction_rolled_back(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "m", {**STEPS, **BROKEN})
    assert migrate(database, folder, "apply").exit_code == 1
    [run] = runs(database, folder)
    assert (run["action"], run["outcome"], run["versions"]) == ("apply", "failed", [])
    assert '003_broken.sql:2:1: ERROR 42P01: relation "nope" does not exist' in str(run["error"])
    # The run's own work went with the transaction: no ledger, no table.
    assert fetchval(database, "SELECT to_regclass('public.migration_ledger') IS NULL AND to_regclass('a') IS NULL")


def test_a_failed_per_file_apply_records_the_files_that_stay_applied(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "m", {**STEPS, **BROKEN})
    assert migrate(database, folder, "apply", "--transaction", "per-file").exit_code == 1
    [run] = runs(database, folder)
    assert (run["outcome"], run["versions"]) == ("failed", [1, 2])


async def test_a_failed_file_that_set_a_role_does_not_write_the_row_as_that_role(
    conn: asyncpg.Connection, database: ConnectionSettings, tmp_path: Path
) -> None:
    role = f"nobody_{database.database[-12:]}"
    await conn.execute(f"CREATE ROLE {role}")
    try:
        folder = write_migrations(
            tmp_path / "m",
            {"001_x.sql": f"SET ROLE {role};\nVACUUM;\nSELECT 1/0;"},  # outside a transaction, statement by statement
        )
        with pytest.raises(MigrationFailed, match="division by zero"):
            await runner.apply(conn, discover(folder), runner.Options())
        await conn.execute("RESET ROLE")  # the file's SET ROLE holds on the session, as psql's would
        [row] = await audit.read(conn, LEDGER)
        assert (row.outcome, row.done_by) == ("failed", database.user)
    finally:
        await conn.execute(f"RESET ROLE; DROP OWNED BY {role}; DROP ROLE {role}")


def test_a_dry_run_and_an_apply_with_nothing_pending_record_nothing(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    assert migrate(database, folder, "apply", "--dry-run").exit_code == 0
    assert runs(database, folder) == []
    migrate(database, folder, "apply")
    migrate(database, folder, "apply")
    assert len(runs(database, folder)) == 1


def test_baseline_repair_and_forget_are_recorded(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    assert migrate(database, folder, "baseline", "--version", "2").exit_code == 0
    (folder / "002_b.sql").write_text("-- reformatted\n" + STEPS["002_b.sql"])
    assert migrate(database, folder, "repair").exit_code == 0
    (folder / "002_b.sql").unlink()
    assert migrate(database, folder, "repair", "--forget", "2", "--yes").exit_code == 0
    assert [(r["action"], r["outcome"], r["versions"]) for r in runs(database, folder)] == [
        ("forget", "ok", [2]),
        ("repair", "ok", [2]),
        ("baseline", "ok", [1, 2]),
    ]


def test_a_refused_repair_is_recorded_as_failed(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", STEPS)
    migrate(database, folder, "apply")
    (folder / "002_b.sql").unlink()
    assert migrate(database, folder, "repair").exit_code == 5
    latest = runs(database, folder)[0]
    assert (latest["action"], latest["outcome"]) == ("repair", "failed")
    assert "002_b.sql" in str(latest["error"])


def test_history_shows_the_newest_first_as_text_and_limit_cuts_it(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", {"001_a.sql": STEPS["001_a.sql"]})
    migrate(database, folder, "apply")
    write_migrations(folder, {"002_b.sql": STEPS["002_b.sql"]})
    migrate(database, folder, "apply")
    result = migrate(database, folder, "history", "--limit", "1")
    assert result.exit_code == 0, result.output
    lines = result.stdout.splitlines()
    assert lines[0].split() == ["AT", "(UTC)", "ACTION", "OUTCOME", "TOOK", "VERSIONS", "WHO"]
    assert lines[1].split()[2:4] == ["apply", "ok"]
    assert lines[1].split()[6] == "002"
    assert lines[2].strip() == "applied 002_b.sql"
    assert lines[-1] == "1 run(s) shown, newest first, from public.migration_ledger_audit."


def test_history_before_any_run_says_so(database: ConnectionSettings, tmp_path: Path) -> None:
    result = migrate(database, write_migrations(tmp_path / "m", STEPS), "history")
    assert result.exit_code == 0, result.output
    assert result.stdout == "No runs recorded in public.migration_ledger_audit yet.\n"


async def test_an_old_audit_table_is_upgraded_in_place_keeping_its_rows(
    conn: asyncpg.Connection, tmp_path: Path
) -> None:
    await conn.execute(OLD_AUDIT)
    folder = write_migrations(tmp_path / "m", STEPS)
    await runner.apply(conn, discover(folder), runner.Options())
    rows = await audit.read(conn, LEDGER)
    assert [(r.action, r.outcome, r.versions) for r in rows] == [("apply", "ok", [1, 2]), ("forget", "ok", [7])]
    await audit.ensure(conn, LEDGER)  # again: nothing left to do
    assert len(await audit.read(conn, LEDGER)) == 2


async def test_an_old_audit_table_reads_before_it_is_upgraded(conn: asyncpg.Connection) -> None:
    await conn.execute(OLD_AUDIT)
    [row] = await audit.read(conn, LEDGER)
    assert (row.action, row.outcome, row.versions, row.hostname) == ("forget", "ok", [7], "old-host")


async def test_record_is_what_another_command_calls(conn: asyncpg.Connection) -> None:
    await audit.ensure(conn, LEDGER)
    await audit.record(conn, LEDGER, action="rollback", duration_ms=12.5, versions=[3], note="rolled back 003_c.sql")
    [row] = await audit.read(conn, LEDGER)
    assert (row.action, row.versions, row.duration_ms, row.note) == ("rollback", [3], 12.5, "rolled back 003_c.sql")
