"""The data layer against raw asyncpg: each repository hot path and the same query through an asyncpg pool,
at 1 and 16 concurrent clients, plus health_check latency.

    .venv/bin/python bench/data_bench.py [--quick]

Both sides get a pool of 16 connections to the same migrated database and run in this one process,
alternating per round. Throughput is operations per second over a fixed time, median over rounds.
Targets: at least 0.5x raw asyncpg throughput; health_check p50 <= 0.6 ms on loopback.
"""

from __future__ import annotations

import argparse
import asyncio
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg
from common import machine, median, percentile, save, server, table

from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from src.database.repositories import messaging, tasks
from src.migrate import runner
from src.migrate.files import discover
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

POOL = 16
Op = Callable[[], Awaitable[Any]]


def config_of(db: ConnectionSettings) -> DatabaseConfig:
    return DatabaseConfig(
        host=db.host, port=db.port, database=db.database, username=db.user, pool_size=POOL, max_overflow=0
    )


async def throughput(op: Op, clients: int, seconds: float) -> float:
    """Operations per second with `clients` concurrent callers running `op` back to back."""
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


async def prepare(pool: asyncpg.Pool) -> dict[str, Any]:
    """Rows the read paths read: 2,000 todos over four statuses, a chat with 200 messages."""
    await pool.execute(
        "INSERT INTO tasks.todos (title, status) SELECT 'seed ' || i, (ARRAY['pending','in_progress','completed',"
        "'cancelled'])[1 + i % 4] FROM generate_series(1, 2000) i"
    )
    chat_id = await pool.fetchval("INSERT INTO messaging.chats (title) VALUES ('bench') RETURNING id")
    await pool.execute(
        "INSERT INTO messaging.messages (chat_id, role, content) SELECT $1, 'user', 'message ' || i "
        "FROM generate_series(1, 200) i",
        chat_id,
    )
    todo_ids = [r["id"] for r in await pool.fetch("SELECT id FROM tasks.todos LIMIT 500")]
    return {"chat_id": chat_id, "todo_ids": todo_ids}


def operations(manager: DatabaseManager, pool: asyncpg.Pool, seed: dict[str, Any]) -> dict[str, tuple[Op, Op]]:
    chat_id: uuid.UUID = seed["chat_id"]
    ids: list[uuid.UUID] = seed["todo_ids"]
    counter = iter(range(10**9))

    def some_id() -> uuid.UUID:
        return ids[next(counter) % len(ids)]

    async def ours_create() -> Any:
        async with manager.transaction() as s:
            return await tasks.create_todo(s, {"title": "bench"})

    async def raw_create() -> Any:
        return await pool.fetchrow("INSERT INTO tasks.todos (title) VALUES ($1) RETURNING *", "bench")

    async def ours_get() -> Any:
        async with manager.session() as s:
            return await tasks.get_todo(s, some_id())

    async def raw_get() -> Any:
        return await pool.fetchrow("SELECT * FROM tasks.todos WHERE id = $1", some_id())

    async def ours_list() -> Any:
        async with manager.session() as s:
            return await tasks.get_todos_by_status(s, "pending", limit=50)

    async def raw_list() -> Any:
        return await pool.fetch(
            "SELECT * FROM tasks.todos WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT 50", "pending"
        )

    async def ours_update() -> Any:
        async with manager.transaction() as s:
            return await tasks.update_todo(s, some_id(), {"priority": 2})

    async def raw_update() -> Any:
        return await pool.fetchrow("UPDATE tasks.todos SET priority = $2 WHERE id = $1 RETURNING *", some_id(), 2)

    async def ours_append() -> Any:
        async with manager.transaction() as s:
            return await messaging.add_message(s, chat_id, "user", "hello")

    async def raw_append() -> Any:
        return await pool.fetchrow(
            "INSERT INTO messaging.messages (chat_id, role, content, metadata) SELECT id, $2, $3, '{}'::jsonb "
            "FROM messaging.chats WHERE id = $1 RETURNING *",
            chat_id,
            "user",
            "hello",
        )

    async def ours_messages() -> Any:
        async with manager.session() as s:
            return await messaging.list_messages(s, chat_id, limit=50)

    async def raw_messages() -> Any:
        return await pool.fetch(
            "SELECT * FROM messaging.messages WHERE chat_id = $1 ORDER BY created_at, id LIMIT 51", chat_id
        )

    return {
        "create todo": (ours_create, raw_create),
        "get todo by id": (ours_get, raw_get),
        "list 50 todos by status": (ours_list, raw_list),
        "update todo RETURNING": (ours_update, raw_update),
        "append a message": (ours_append, raw_append),
        "list a chat's 50 messages": (ours_messages, raw_messages),
    }


async def bench(quick: bool) -> dict[str, Any]:
    seconds, rounds, health_calls = (0.3, 2, 500) if quick else (2.0, 3, 3000)
    with server() as srv, srv.fresh_database() as db:
        conn = await asyncpg.connect(**db.asyncpg_kwargs())
        try:
            await runner.apply(conn, discover(DEFAULT_MIGRATIONS_DIR), runner.Options())
        finally:
            await conn.close()
        pool = await asyncpg.create_pool(**db.asyncpg_kwargs(), min_size=POOL, max_size=POOL)
        manager = DatabaseManager(config_of(db))
        try:
            seed = await prepare(pool)
            ops = operations(manager, pool, seed)
            for ours, raw in ops.values():  # warm both pools and statement caches
                await throughput(ours, POOL, 0.1)
                await throughput(raw, POOL, 0.1)
            results: dict[str, Any] = {}
            for clients in (1, 16):
                for name, (ours, raw) in ops.items():
                    mine, theirs = [], []
                    for _ in range(rounds):
                        mine.append(await throughput(ours, clients, seconds))
                        theirs.append(await throughput(raw, clients, seconds))
                    results[f"{name} @ {clients}"] = {
                        "clients": clients,
                        "ours_ops_s": median(mine),
                        "raw_ops_s": median(theirs),
                        "ratio": median(mine) / median(theirs),
                    }
                    print(f"{name} @ {clients}: ours {median(mine):.0f}/s, raw {median(theirs):.0f}/s", flush=True)
            health = await latencies(manager.health_check, health_calls)
            raw_ping = await latencies(lambda: pool.fetchval("SELECT 1"), health_calls)
            print(f"health_check p50 {health['p50_ms']:.3f} ms, p99 {health['p99_ms']:.3f} ms", flush=True)
        finally:
            await manager.close()
            await pool.close()
        return {
            "machine": machine(),
            "server": {"version": srv.version, "source": srv.source},
            "seconds_per_measurement": seconds,
            "rounds": rounds,
            "throughput": results,
            "health_check": health,
            "raw_select_1": raw_ping,
        }


async def latencies(call: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(took, 50), "p99_ms": percentile(took, 99), "calls": n}


def report(data: dict[str, Any]) -> str:
    rows = [
        [name, f"{r['ours_ops_s']:.0f}", f"{r['raw_ops_s']:.0f}", f"{r['ratio']:.2f}x"]
        for name, r in data["throughput"].items()
    ]
    h, p = data["health_check"], data["raw_select_1"]
    return "\n".join(
        [
            "### Repository hot paths against raw asyncpg (operations per second, median)\n",
            table(["operation @ clients", "ours", "raw asyncpg", "ours / raw"], rows),
            "\n### health_check latency (sequential calls)\n",
            table(
                ["", "p50 ms", "p99 ms"],
                [
                    ["manager.health_check()", f"{h['p50_ms']:.3f}", f"{h['p99_ms']:.3f}"],
                    ["raw pool.fetchval('SELECT 1')", f"{p['p50_ms']:.3f}", f"{p['p99_ms']:.3f}"],
                ],
            ),
        ]
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="short measurements (under a minute)")
    args = parser.parse_args()
    data = asyncio.run(bench(args.quick))
    path = save("data-quick" if args.quick else "data", data)
    print()
    print(report(data))
    print(f"\n(raw results: {path})")


if __name__ == "__main__":
    main()
