"""Planning compares files with ledger rows; it is pure, so these tests need no server."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import pytest

from src.migrate.errors import DriftError
from src.migrate.files import MigrationFile, checksum
from src.migrate.ledger import LedgerRow
from src.migrate.plan import State, make_plan


def file(version: int, sql: str = "SELECT 1;", name: str = "step") -> MigrationFile:
    filename = f"{version:03d}_{name}.sql"
    return MigrationFile(version, name, Path(filename), sql, checksum(sql))


def row(version: int, sql: str = "SELECT 1;", name: str = "step") -> LedgerRow:
    return LedgerRow(version, name, checksum(sql), datetime(2026, 1, 1, tzinfo=UTC), 1.0, "me", "host", "applied", True)


def test_a_fresh_database_plans_every_file_in_order() -> None:
    plan = make_plan([file(1), file(2)], [])
    assert [f.version for f in plan.to_apply] == [1, 2]
    assert plan.head is None


def test_applied_files_are_not_planned_again() -> None:
    plan = make_plan([file(1), file(2)], [row(1)])
    assert [f.version for f in plan.to_apply] == [2]
    assert plan.head == 1


def test_an_edited_applied_file_is_drift_naming_both_checksums() -> None:
    plan = make_plan([file(1, "SELECT 2;")], [row(1, "SELECT 1;")])
    assert plan.entries[0].state is State.EDITED
    with pytest.raises(DriftError) as info:
        plan.raise_for_drift()
    assert checksum("SELECT 1;") in str(info.value)
    assert checksum("SELECT 2;") in str(info.value)
    assert "001_step.sql" in str(info.value)


def test_a_deleted_applied_file_is_drift() -> None:
    plan = make_plan([file(2)], [row(1), row(2)])
    assert plan.entries[0].state is State.MISSING
    with pytest.raises(DriftError, match="the file is gone"):
        plan.raise_for_drift()


def test_a_renamed_applied_file_is_drift() -> None:
    plan = make_plan([file(1, name="new")], [row(1, name="old")])
    assert plan.entries[0].state is State.RENAMED


def test_a_new_file_below_the_head_is_out_of_order() -> None:
    plan = make_plan([file(1), file(2), file(3)], [row(1), row(3)])
    assert plan.entries[1].state is State.OUT_OF_ORDER
    assert plan.to_apply == ()
    with pytest.raises(DriftError, match="--allow-out-of-order"):
        plan.raise_for_drift()


def test_out_of_order_files_are_planned_when_allowed() -> None:
    plan = make_plan([file(1), file(2), file(3)], [row(1), row(3)], allow_out_of_order=True)
    assert [f.version for f in plan.to_apply] == [2]
    assert plan.problems == []


def test_target_stops_the_plan_at_that_version() -> None:
    plan = make_plan([file(1), file(2), file(3)], [], target=2)
    assert [f.version for f in plan.to_apply] == [1, 2]
