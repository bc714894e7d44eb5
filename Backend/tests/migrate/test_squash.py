"""The squash procedure of docs/migrations.md, run as written (its shell block, with bash) on a real server:
001-050 of a 52-file history become 050_baseline.sql. The database that had applied them keeps working,
and a fresh database built from the squashed folder gets the same schema and the same ledger."""

from __future__ import annotations

import asyncio
import re
import subprocess
import sys
import textwrap
import uuid
from collections.abc import AsyncIterator
from dataclasses import replace
from pathlib import Path
from typing import TYPE_CHECKING, Any

import asyncpg
import pytest
from click.testing import CliRunner, Result

from src import PROJECT_ROOT
from src.app.cli import main
from src.migrate import catalog
from src.postgres.settings import ConnectionSettings
from tests.support import environ_without_settings, url_of, write_migrations

if TYPE_CHECKING:
    from tests.conftest import TestServer

GUIDE = PROJECT_ROOT / "docs" / "migrations.md"


def documented_procedure() -> str:
    """The ```sh block of the guide's squash section."""
    text = GUIDE.read_text()
    section = text[text.index("## Squashing old migrations into a baseline") :]
    section = section[: section.index("\n## ", 1)]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match is not None, "docs/migrations.md: the squash section has no ```sh block"
    return textwrap.dedent(match.group(1))


def history() -> dict[str, str]:
    """52 files of the kinds real histories hold; 044 must run outside a transaction."""
    files = {
        "001_schema.sql": "CREATE SCHEMA IF NOT EXISTS app;",
        "002_touch.sql": (
            "CREATE OR REPLACE FUNCTION app.touch() RETURNS trigger LANGUAGE plpgsql AS $$\n"
            "BEGIN NEW.updated_at = now(); RETURN NEW; END $$;"
        ),
        "003_status.sql": (
            "DO $$ BEGIN\n"
            "  IF to_regtype('app.status') IS NULL THEN CREATE TYPE app.status AS ENUM ('new', 'done'); END IF;\n"
            "END $$;"
        ),
    }
    for n in range(4, 44):
        parent = f",\n  parent bigint REFERENCES app.t{n - 1:02d} (id)" if n > 4 else ""
        files[f"{n:03d}_t{n:02d}.sql"] = (
            f"CREATE TABLE IF NOT EXISTS app.t{n:02d} (\n"
            "  id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,\n"
            f"  name text NOT NULL,\n  updated_at timestamptz NOT NULL DEFAULT now(){parent}\n);"
        )
    files |= {
        "044_ix_concurrently.sql": "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix_t10_name ON app.t10 (name);",
        "045_status_column.sql": (
            "ALTER TABLE app.t05 ADD COLUMN IF NOT EXISTS status app.status NOT NULL DEFAULT 'new';"
        ),
        "046_trigger.sql": (
            "CREATE OR REPLACE TRIGGER t05_touch BEFORE UPDATE ON app.t05 FOR EACH ROW EXECUTE FUNCTION app.touch();"
        ),
        "047_view.sql": "CREATE OR REPLACE VIEW app.open_t05 AS SELECT id, name FROM app.t05 WHERE status = 'new';",
        "048_comment.sql": "COMMENT ON TABLE app.t05 IS 'Entrées ✓ (squashed)';",
        "049_unique.sql": "CREATE UNIQUE INDEX IF NOT EXISTS ux_t06_name ON app.t06 (name);",
        "050_default.sql": "ALTER TABLE app.t07 ALTER COLUMN name SET DEFAULT 'unnamed';",
        "051_after.sql": "CREATE TABLE IF NOT EXISTS app.after (id bigint PRIMARY KEY);",
        "052_after_note.sql": "ALTER TABLE app.after ADD COLUMN IF NOT EXISTS note text;",
    }
    return files


def migrate(*args: str) -> Result:
    return CliRunner().invoke(main, list(args), catch_exceptions=False)


def squashed(folder: Path, url: str) -> Path:
    """Apply the 52 files to the database at `url`, then run the documented procedure there."""
    write_migrations(folder, history())
    applied = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert applied.exit_code == 0, applied.output
    env = environ_without_settings(
        DATABASE_URL=url, MIGRATIONS_DIR=str(folder), PATH=f"{Path(sys.executable).parent}:/usr/bin:/bin"
    )
    done = subprocess.run(
        ["bash", "-euc", documented_procedure()], cwd=folder, env=env, capture_output=True, text=True, timeout=300
    )
    assert done.returncode == 0, done.stdout + done.stderr
    return folder


@pytest.fixture
async def fresh_database(pg_server: TestServer) -> AsyncIterator[ConnectionSettings]:
    """A second empty database, for the fresh build."""
    name = f"test_{uuid.uuid4().hex[:16]}"
    admin = await asyncpg.connect(**pg_server.admin.asyncpg_kwargs())
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        yield replace(pg_server.admin, database=name)
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


def without_audit(snapshot: catalog.Snapshot) -> catalog.Snapshot:
    """The snapshot minus the ledger's audit table (its rows and shape differ with the commands each database
    saw: the old one was repaired): runner bookkeeping, not the schema the files build."""

    def audit(row: dict[str, Any]) -> bool:
        return any(str(row.get(key, "")).startswith("migration_ledger_audit") for key in ("name", "table"))

    return {section: [row for row in rows if not audit(row)] for section, rows in snapshot.items()}


def snapshot_and_ledger(database: ConnectionSettings) -> tuple[catalog.Snapshot, list[Any]]:
    async def go() -> tuple[catalog.Snapshot, list[Any]]:
        conn = await asyncpg.connect(**database.asyncpg_kwargs())
        try:
            rows = await conn.fetch("SELECT version, name, checksum FROM public.migration_ledger ORDER BY version")
            return await catalog.snapshot(conn), [tuple(r) for r in rows]
        finally:
            await conn.close()

    return asyncio.run(go())


def test_the_procedure_leaves_one_baseline_file_in_place_of_the_squashed_ones(
    database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = squashed(tmp_path / "m", url_of(database))
    assert sorted(p.name for p in folder.iterdir()) == ["050_baseline.sql", "051_after.sql", "052_after_note.sql"]
    baseline = (folder / "050_baseline.sql").read_text()
    assert baseline.startswith("-- from 001_schema.sql\nCREATE SCHEMA IF NOT EXISTS app;")
    assert "-- from 050_default.sql\n" in baseline


def test_the_existing_database_is_fully_applied_after_the_squash(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = squashed(tmp_path / "m", url)
    status = migrate("status", "--database-url", url, "--migrations-dir", str(folder))
    assert status.exit_code == 0, status.output
    assert "3 applied, 0 pending; database is at version 052" in status.stdout
    assert migrate("verify", "--database-url", url, "--migrations-dir", str(folder)).exit_code == 0


def test_the_existing_database_applies_new_files_after_the_squash(database: ConnectionSettings, tmp_path: Path) -> None:
    url = url_of(database)
    folder = squashed(tmp_path / "m", url)
    write_migrations(folder, {"053_later.sql": "CREATE TABLE IF NOT EXISTS app.later (id bigint PRIMARY KEY);"})
    result = migrate("apply", "--database-url", url, "--migrations-dir", str(folder))
    assert result.exit_code == 0, result.output
    assert "Applied 1 migration(s)" in result.stdout
    assert "053_later.sql" in result.stdout


def test_a_fresh_database_built_from_the_baseline_has_the_same_schema_and_ledger(
    database: ConnectionSettings, fresh_database: ConnectionSettings, tmp_path: Path
) -> None:
    folder = squashed(tmp_path / "m", url_of(database))
    built = migrate("apply", "--database-url", url_of(fresh_database), "--migrations-dir", str(folder))
    assert built.exit_code == 0, built.output
    assert "050_baseline.sql (outside a transaction)" in built.stdout  # 044's CONCURRENTLY came with it
    old_schema, old_ledger = snapshot_and_ledger(database)
    new_schema, new_ledger = snapshot_and_ledger(fresh_database)
    assert catalog.differences(without_audit(old_schema), without_audit(new_schema)) == []
    assert new_ledger == old_ledger
    assert [version for version, _, _ in new_ledger] == [50, 51, 52]
