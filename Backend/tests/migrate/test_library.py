"""The runner as a library: `src.migrate.commands` does what the CLI does, returns result objects, prints
nothing; and the exit codes are one table, shown as it is in the docs."""

from __future__ import annotations

import re
from dataclasses import replace
from pathlib import Path

import pytest

from src import PROJECT_ROOT
from src.migrate import commands
from src.migrate.errors import EXIT_CODES, ConfigError, DriftError, Exit, MigrateError
from src.migrate.files import MigrationFile
from src.migrate.runner import Applied
from src.postgres.embedded import EmbeddedServer
from src.postgres.settings import ConnectionSettings
from tests.support import server_dir, url_of, write_migrations

FILES = {
    "001_a.sql": "CREATE TABLE IF NOT EXISTS a (id bigint PRIMARY KEY);",
    "002_b.sql": "CREATE TABLE IF NOT EXISTS b (id bigint PRIMARY KEY);",
}


class Recorder(commands.Events):
    def __init__(self) -> None:
        self.seen: list[str] = []

    def starting(self, file: MigrationFile, transactional: bool) -> None:
        self.seen.append(f"start {file.filename}")

    def finished(self, applied: Applied) -> None:
        self.seen.append(f"done {applied.file.filename}")

    def using_embedded(self, server: EmbeddedServer) -> None:
        self.seen.append("embedded")


async def test_apply_from_python_returns_what_it_applied_and_prints_nothing(
    database: ConnectionSettings, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    folder = write_migrations(tmp_path / "m", FILES)
    settings = commands.settings(database_url=url_of(database), migrations_dir=folder)
    events = Recorder()
    report = await commands.apply(settings, events=events)
    assert [a.file.filename for a in report.applied] == ["001_a.sql", "002_b.sql"]
    assert report.head == 2
    assert report.exit_code is Exit.OK
    assert events.seen == ["start 001_a.sql", "done 001_a.sql", "start 002_b.sql", "done 002_b.sql"]
    assert capsys.readouterr() == ("", "")


async def test_status_from_python_is_a_result_with_its_exit_code(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", FILES)
    settings = commands.settings(database_url=url_of(database), migrations_dir=folder)
    await commands.apply(settings, target=1)
    status = await commands.status(settings)
    assert (status.applied, status.pending, status.exit_code) == (1, 1, Exit.OK)
    (folder / "001_a.sql").write_text("CREATE TABLE IF NOT EXISTS a (id int PRIMARY KEY);")
    assert (await commands.status(settings)).exit_code is Exit.DRIFT


async def test_a_failure_is_an_exception_carrying_its_exit_code(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = write_migrations(tmp_path / "m", FILES)
    settings = commands.settings(database_url=url_of(database), migrations_dir=folder)
    await commands.apply(settings)
    (folder / "002_b.sql").write_text("SELECT 1;")
    with pytest.raises(DriftError) as info:
        await commands.apply(settings)
    assert info.value.exit_code is Exit.DRIFT


def test_a_bad_setting_is_a_config_error_naming_it() -> None:
    with pytest.raises(ConfigError, match="MIGRATE_LOCK_WAIT") as info:
        commands.settings(lock_wait=-1)
    assert info.value.exit_code is Exit.BAD_SETTING


async def test_with_no_database_configured_a_command_runs_on_the_embedded_server(
    tmp_path: Path, server_root: Path
) -> None:
    folder = write_migrations(tmp_path / "m", FILES)
    settings = commands.settings(migrations_dir=folder)
    settings = replace(settings, embedded_dir=server_dir(server_root, "library") / "pgdata")
    events = Recorder()
    report = await commands.apply(settings, events=events)
    assert events.seen[0] == "embedded"
    assert report.head == 2


def test_every_error_class_names_its_code_from_the_table() -> None:
    def subclasses(cls: type[MigrateError]) -> list[type[MigrateError]]:
        return [cls, *(s for sub in cls.__subclasses__() for s in subclasses(sub))]

    for cls in subclasses(MigrateError):
        assert isinstance(cls.exit_code, Exit), cls


def test_the_docs_show_the_exit_code_table_as_it_is() -> None:
    text = (PROJECT_ROOT / "docs" / "migrations.md").read_text()
    section = text.split("## Exit codes", 1)[1].split("\n## ", 1)[0]
    rows = dict(re.findall(r"^\| (\d+) \| (.+?) \|$", section, flags=re.MULTILINE))
    assert rows == {str(int(code)): meaning for code, meaning in EXIT_CODES.items()}
    assert set(EXIT_CODES) == set(Exit)
