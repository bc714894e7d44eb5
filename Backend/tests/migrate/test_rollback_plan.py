"""Choosing what a rollback undoes, down-file drift and due repeatable scripts: pure, no server."""

from __future__ import annotations

import dataclasses
from datetime import UTC, datetime
from pathlib import Path

import pytest

from src.migrate.errors import ConfigError, DriftError, NoDownScript
from src.migrate.files import MigrationFile, checksum
from src.migrate.ledger import LedgerRow, RepeatableRow
from src.migrate.plan import State, make_plan
from src.migrate.repeatable import RepeatableState, due, plan_repeatables
from src.migrate.rollback import choose

WHEN = datetime(2026, 1, 1, tzinfo=UTC)


def file(version: int, down: str | None = "SELECT 0;") -> MigrationFile:
    up = MigrationFile(version, "step", Path(f"{version:03d}_step.sql"), "SELECT 1;", checksum("SELECT 1;"))
    if down is None:
        return up
    undo = MigrationFile(version, "step", Path(f"{version:03d}_step.down.sql"), down, checksum(down), kind="down")
    return dataclasses.replace(up, down=undo)


def row(version: int, down: str | None = None) -> LedgerRow:
    down_checksum = checksum(down) if down is not None else None
    return LedgerRow(version, "step", checksum("SELECT 1;"), WHEN, 1.0, "me", "host", "applied", True, down_checksum)


def versions(files: list[MigrationFile], rows: list[LedgerRow], **selection: int) -> list[int]:
    return [s.file.version for s in choose(make_plan(files, rows), **selection).steps]


def test_the_default_undoes_the_last_applied_file() -> None:
    assert versions([file(1), file(2), file(3)], [row(1), row(2)]) == [2]


def test_to_undoes_every_applied_file_above_it_newest_first() -> None:
    assert versions([file(1), file(2), file(3)], [row(1), row(2), row(3)], to=1) == [3, 2]


def test_to_at_the_head_undoes_nothing() -> None:
    assert versions([file(1), file(2)], [row(1), row(2)], to=2) == []


def test_steps_undoes_the_last_k() -> None:
    assert versions([file(1), file(2), file(3)], [row(1), row(2), row(3)], steps=2) == [3, 2]


def test_the_version_left_is_the_highest_not_undone() -> None:
    assert choose(make_plan([file(1), file(2), file(3)], [row(1), row(2), row(3)]), steps=2).head == 1


def test_nothing_applied_leaves_the_default_rollback_nothing_to_do() -> None:
    assert versions([file(1)], []) == []


def test_more_steps_than_applied_files_are_refused() -> None:
    with pytest.raises(ConfigError, match=r"--steps 2: only 1 migration\(s\) are applied"):
        choose(make_plan([file(1), file(2)], [row(1)]), steps=2)


def test_every_file_without_a_down_file_on_the_way_is_named() -> None:
    files = [file(1), file(2, down=None), file(3, down=None)]
    with pytest.raises(NoDownScript) as info:
        choose(make_plan(files, [row(1), row(2), row(3)]), to=0)
    assert str(info.value).startswith(
        "cannot roll back 003_step.sql, 002_step.sql: no down script (003_step.down.sql, 002_step.down.sql)"
    )


def test_a_file_without_a_down_file_below_the_way_does_not_matter() -> None:
    assert versions([file(1, down=None), file(2)], [row(1), row(2)]) == [2]


def test_a_down_file_added_after_its_file_was_applied_is_not_drift() -> None:
    assert make_plan([file(1)], [row(1, down=None)]).entries[0].state is State.APPLIED


def test_a_down_file_edited_after_its_file_was_applied_is_drift_that_apply_lets_pass() -> None:
    plan = make_plan([file(1, down="SELECT 9;")], [row(1, down="SELECT 0;")])
    assert plan.entries[0].state is State.DOWN_EDITED
    assert plan.problems[0].startswith("001_step.down.sql: edited after 001_step.sql was applied")
    assert plan.blocking == []


def test_a_down_file_deleted_after_its_file_was_applied_is_drift() -> None:
    plan = make_plan([file(1, down=None)], [row(1, down="SELECT 0;")])
    assert plan.entries[0].state is State.DOWN_EDITED
    assert "file now deleted" in plan.problems[0]


def test_an_edited_down_file_on_the_way_refuses_the_rollback() -> None:
    plan = make_plan([file(1), file(2, down="SELECT 9;")], [row(1), row(2, down="SELECT 0;")])
    with pytest.raises(DriftError, match=r"^002_step\.down\.sql: edited after"):
        choose(plan)


def test_an_edited_down_file_below_the_way_does_not_refuse_it() -> None:
    plan = make_plan([file(1, down="SELECT 9;"), file(2)], [row(1, down="SELECT 0;"), row(2)])
    assert [s.file.version for s in choose(plan).steps] == [2]


def script(name: str, sql: str) -> MigrationFile:
    return MigrationFile(0, name, Path(f"R__{name}.sql"), sql, checksum(sql), kind="repeatable")


def ran(name: str, sql: str) -> RepeatableRow:
    return RepeatableRow(f"R__{name}.sql", checksum(sql), WHEN, 1.0, "me", "host")


def test_repeatables_are_due_when_new_or_changed_in_name_order() -> None:
    scripts = [script("b", "SELECT 2;"), script("a", "SELECT 1;"), script("c", "SELECT 3;")]
    entries = plan_repeatables(scripts, [ran("a", "SELECT 1;"), ran("c", "SELECT 0;")])
    assert [(e.filename, e.state) for e in entries] == [
        ("R__a.sql", RepeatableState.APPLIED),
        ("R__b.sql", RepeatableState.PENDING),
        ("R__c.sql", RepeatableState.CHANGED),
    ]
    assert [f.filename for f in due(entries)] == ["R__b.sql", "R__c.sql"]


def test_a_repeatable_gone_from_the_folder_is_shown_and_not_due() -> None:
    entries = plan_repeatables([], [ran("old", "SELECT 1;")])
    assert [(e.filename, e.state) for e in entries] == [("R__old.sql", RepeatableState.GONE)]
    assert due(entries) == []
