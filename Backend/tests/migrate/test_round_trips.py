"""How many round trips `migrate apply` costs, counted on the wire (tests/roundtrips.py). The numbers pin
what the runner does today, one line each; a change that saves a round trip changes its line."""

from __future__ import annotations

from pathlib import Path

from src.migrate import commands
from src.postgres.settings import ConnectionSettings
from tests.roundtrips import RoundTripProxy
from tests.support import url_of

# One line per run: (round trips, connections).
ROUND_TRIPS = {
    # Planning in a transaction of its own (4), the lock's transaction with the runner's settings and the
    # read-only check, the plan again, the audit table made, the files in a savepoint, the audit row, COMMIT.
    "apply of 3 files to an empty database": (37, 1),
    # BEGIN, the ledger read (parse, then run: one server connection behind any pooler), COMMIT.
    "apply with nothing to do (the container start)": (4, 1),
}


def three_files(folder: Path) -> Path:
    for version in (1, 2, 3):
        (folder / f"{version:03d}_t{version}.sql").write_text(f"CREATE TABLE IF NOT EXISTS t{version} (id int);\n")
    return folder


async def test_apply_round_trips(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = three_files(tmp_path)
    async with RoundTripProxy(database) as proxy:
        settings = commands.settings(database_url=url_of(proxy.settings), migrations_dir=folder)
        with proxy.count() as seen:
            await commands.apply(settings)
    assert (seen.round_trips, seen.connections) == ROUND_TRIPS["apply of 3 files to an empty database"], seen


async def test_a_no_op_apply_round_trips(database: ConnectionSettings, tmp_path: Path) -> None:
    folder = three_files(tmp_path)
    async with RoundTripProxy(database) as proxy:
        settings = commands.settings(database_url=url_of(proxy.settings), migrations_dir=folder)
        await commands.apply(settings)
        with proxy.count() as seen:
            await commands.apply(settings)
    assert (seen.round_trips, seen.connections) == ROUND_TRIPS["apply with nothing to do (the container start)"], seen
