"""What transaction_pooling and a pooler cost: get-by-id and insert through the data layer, directly and
through a real PgBouncer (the OS package, as the tests run it) in session and transaction mode.

    .venv/bin/python bench/pooling_bench.py [--quick]

Every contender gets a manager with a pool of 16 connections to the same migrated database, and 16
concurrent clients; contenders alternate per round, throughput is operations per second over a fixed
time, median over rounds. The figures are in docs/pooling.md.
"""

from __future__ import annotations

import argparse
import asyncio
import tempfile
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

import asyncpg
from common import machine, median, save, server, table
from tests.servers import PgBouncer

from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from src.database.repositories import tasks
from src.migrate import runner
from src.migrate.files import discover
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

POOL = 16
CLIENTS = 16
Op = Callable[[], Awaitable[Any]]


def config_of(db: ConnectionSettings, **overrides: Any) -> DatabaseConfig:
    return DatabaseConfig(
        host=db.host, port=db.port, database=db.database, username=db.user, pool_size=POOL, max_overflow=0, **overrides
    )


async def throughput(op: Op, clients: int, seconds: float) -> float:
    done = 0
    deadline = time.perf_counter() + seconds

    async def client() -> None:
        nonlocal done
        while time.perf_counter() < deadline:
            await op()
            done += 1

    started = time.perf_counter()
    await asyncio.gather(*(client() for _ in range(clients)))
    return done / (time.perf_counter() - started)


def operations(manager: DatabaseManager, ids: list[uuid.UUID]) -> dict[str, Op]:
    counter = 0

    async def get_by_id() -> None:
        nonlocal counter
        counter += 1
        async with manager.session() as session:
            await tasks.get_todo(session, ids[counter % len(ids)])

    async def get_by_id_readonly() -> None:
        nonlocal counter
        counter += 1
        async with manager.session(readonly=True) as session:
            await tasks.get_todo(session, ids[counter % len(ids)])

    async def insert() -> None:
        async with manager.session() as session:
            await tasks.create_todo(session, {"title": "bench"})

    return {"get by id": get_by_id, "get by id, readonly=True": get_by_id_readonly, "insert": insert}


def _bouncer_folder() -> Path:
    folder = Path(tempfile.mkdtemp(prefix="pooling-bench-"))
    folder.chmod(0o755)  # PgBouncer runs as the embedded server's user when we are root
    return folder


async def bench(quick: bool) -> dict[str, Any]:
    seconds, rounds = (0.5, 2) if quick else (2.0, 3)
    folder = _bouncer_folder()
    with server() as srv, srv.fresh_database() as db:
        conn = await asyncpg.connect(**db.asyncpg_kwargs())
        try:
            await runner.apply(conn, discover(DEFAULT_MIGRATIONS_DIR), runner.Options())
            await conn.execute("INSERT INTO tasks.todos (title) SELECT 'seed ' || i FROM generate_series(1, 2000) i")
            ids = [r["id"] for r in await conn.fetch("SELECT id FROM tasks.todos LIMIT 500")]
        finally:
            await conn.close()
        bouncers = {
            mode: PgBouncer(srv.admin, folder / mode, mode=mode, pool_size=4 * POOL)
            for mode in ("session", "transaction")
        }
        contenders = {
            "direct": config_of(db),
            "direct, transaction_pooling": config_of(db, transaction_pooling=True),
            "PgBouncer session": config_of(bouncers["session"].to(db.database)),
            "PgBouncer transaction, transaction_pooling": config_of(
                bouncers["transaction"].to(db.database), transaction_pooling=True
            ),
            "PgBouncer transaction, transaction_pooling, statement_timeout": config_of(
                bouncers["transaction"].to(db.database), transaction_pooling=True, statement_timeout=30
            ),
        }
        managers = {name: DatabaseManager(config) for name, config in contenders.items()}
        try:
            ops = {name: operations(manager, ids) for name, manager in managers.items()}
            for by_op in ops.values():  # warm every pool and cache
                for op in by_op.values():
                    await throughput(op, CLIENTS, 0.2)
            results: dict[str, dict[str, float]] = {}
            for op_name in next(iter(ops.values())):
                measured: dict[str, list[float]] = {name: [] for name in ops}
                for _ in range(rounds):
                    for name, by_op in ops.items():
                        measured[name].append(await throughput(by_op[op_name], CLIENTS, seconds))
                results[op_name] = {name: median(values) for name, values in measured.items()}
                print(op_name, {k: round(v) for k, v in results[op_name].items()}, flush=True)
        finally:
            for manager in managers.values():
                await manager.close()
            for bouncer in bouncers.values():
                bouncer.stop()
    return {
        "machine": machine(),
        "server": {"version": srv.version, "source": srv.source},
        "clients": CLIENTS,
        "seconds_per_measurement": seconds,
        "rounds": rounds,
        "throughput": results,
    }


def report(data: dict[str, Any]) -> str:
    ops = list(data["throughput"])
    contenders = list(data["throughput"][ops[0]])
    rows = []
    for name in contenders:
        row = [name]
        for op in ops:
            value = data["throughput"][op][name]
            base = data["throughput"][op][contenders[0]]
            row.append(f"{value:.0f} ({value / base:.2f}x)")
        rows.append(row)
    return table(["setup", *(f"{op} (ops/s)" for op in ops)], rows)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements (under a minute)")
    args = parser.parse_args()
    data = asyncio.run(bench(args.quick))
    path = save("pooling-quick" if args.quick else "pooling", data)
    print()
    print(report(data))
    print(f"\n(raw results: {path})")


if __name__ == "__main__":
    main()
