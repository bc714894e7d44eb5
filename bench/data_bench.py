"""The data layer against what a user would pick instead, side by side in one run.

    .venv/bin/python bench/data_bench.py [--quick] [--round-trips-only]

Variants, on the same server and data (ANALYZEd after loading), in this one process, alternating:
- raw asyncpg: an `asyncpg.create_pool`, one query per operation (the limit);
- spec SQLAlchemy: the spec's own code as a user writes it: `create_async_engine(pool_pre_ping=True)`,
  an `async_sessionmaker` session per operation, commit per write (its create_todo and update_todo from
  tests/database/spec_repository.py), on the project's ORM models;
- Tortoise ORM and Piccolo on the same tables (bench/peer_tortoise.py, bench/peer_piccolo.py; the `bench`
  extra installs them, and a variant whose package is missing is left out and said so);
- ours: the project's repositories, reads in `manager.session(readonly=True)`, writes in
  `manager.session()` (DatabaseManager), which take the direct path (src.database.direct);
- ours, ORM path: the same calls with a listener on the engine's statements, which sends every call
  through SQLAlchemy's ORM execution instead: the difference between the two is the direct path's gain.
Every pool holds POOL connections. Operations: get a todo by id, insert a todo, update one RETURNING the
row, list 50 todos of a status (newest first), a chat's 50 most recent messages. Throughput is operations
per second with 1, 4, 16 and 64 concurrent callers (quick: 1 and 16), median over rounds; the round trips
of one call of each operation are counted on the wire (tests/roundtrips.py) on warm pools.

Targets (issue 18): ours ahead of Tortoise and Piccolo; >= 2x the spec's code at 1 client and 1.5x at 16;
>= 0.8x raw asyncpg at 1 client for single-row operations and 0.6x for lists of 50.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib.util
import time
import uuid
from collections.abc import Awaitable, Callable
from dataclasses import replace
from typing import Any

import asyncpg
from common import machine, median, percentile, save, server, table
from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncEngine, async_sessionmaker, create_async_engine
from tests.database import spec_repository
from tests.roundtrips import RoundTripProxy

from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager
from src.database.models import Message, Todo
from src.database.repositories import messaging, tasks
from src.migrate import runner
from src.migrate.files import discover
from src.migrate.settings import DEFAULT_MIGRATIONS_DIR
from src.postgres.settings import ConnectionSettings

POOL = 16
TODOS, CHATS, MESSAGES_PER_CHAT = 20_000, 50, 200
OPERATIONS = ["get todo by id", "insert todo", "update todo RETURNING", "list 50 todos by status", "chat's 50 recent"]
SINGLE_ROW = {"get todo by id", "insert todo", "update todo RETURNING"}
Op = Callable[[], Awaitable[Any]]


class Seed:
    """What the operations pick from, round-robin: existing todo ids and chat ids."""

    def __init__(self, todo_ids: list[uuid.UUID], chat_ids: list[uuid.UUID]) -> None:
        self.todo_ids, self.chat_ids = todo_ids, chat_ids
        self._n = 0

    def todo(self) -> uuid.UUID:
        self._n += 1
        return self.todo_ids[self._n % len(self.todo_ids)]

    def chat(self) -> uuid.UUID:
        self._n += 1
        return self.chat_ids[self._n % len(self.chat_ids)]


class Variant:
    name = ""

    async def start(self, db: ConnectionSettings) -> None:
        raise NotImplementedError

    async def stop(self) -> None:
        raise NotImplementedError

    def operations(self, seed: Seed) -> dict[str, Op]:
        raise NotImplementedError


class RawAsyncpg(Variant):
    name = "raw asyncpg"

    async def start(self, db: ConnectionSettings) -> None:
        self.pool: asyncpg.Pool = await asyncpg.create_pool(**db.asyncpg_kwargs(), min_size=POOL, max_size=POOL)

    async def stop(self) -> None:
        await self.pool.close()

    def operations(self, seed: Seed) -> dict[str, Op]:
        pool = self.pool
        return {
            "get todo by id": lambda: pool.fetchrow("SELECT * FROM tasks.todos WHERE id = $1", seed.todo()),
            "insert todo": lambda: pool.fetchrow("INSERT INTO tasks.todos (title) VALUES ($1) RETURNING *", "bench"),
            "update todo RETURNING": lambda: pool.fetchrow(
                "UPDATE tasks.todos SET priority = $2 WHERE id = $1 RETURNING *", seed.todo(), 2
            ),
            "list 50 todos by status": lambda: pool.fetch(
                "SELECT * FROM tasks.todos WHERE status = $1 ORDER BY created_at DESC, id DESC LIMIT 50", "pending"
            ),
            "chat's 50 recent": lambda: pool.fetch(
                "SELECT * FROM messaging.messages WHERE chat_id = $1 ORDER BY created_at DESC, id DESC LIMIT 50",
                seed.chat(),
            ),
        }


class SpecSQLAlchemy(Variant):
    name = "spec SQLAlchemy"

    async def start(self, db: ConnectionSettings) -> None:
        config = DatabaseConfig(
            host=db.host, port=db.port, database=db.database, username=db.user, pool_size=POOL, max_overflow=0
        )
        self.engine: AsyncEngine = create_async_engine(
            config.sqlalchemy_url(), pool_size=POOL, max_overflow=0, pool_pre_ping=True
        )
        # expire_on_commit=False, as SQLAlchemy's asyncio documentation says: the spec's update_todo returns
        # its object after the commit, which would otherwise be expired and fail on first attribute access.
        self.sessions = async_sessionmaker(self.engine, expire_on_commit=False)

    async def stop(self) -> None:
        await self.engine.dispose()

    def operations(self, seed: Seed) -> dict[str, Op]:
        sessions = self.sessions

        async def get() -> Any:
            async with sessions() as session:
                return await session.get(Todo, seed.todo())

        async def insert() -> Any:
            async with sessions() as session:
                return await spec_repository.create_todo(session, Todo(title="bench"))

        async def update_returning() -> Any:
            async with sessions() as session:
                return await spec_repository.update_todo(session, seed.todo(), {"priority": 2})

        async def by_status() -> Any:
            async with sessions() as session:
                query = select(Todo).where(Todo.status == "pending").order_by(Todo.created_at.desc()).limit(50)
                return list((await session.execute(query)).scalars().all())

        async def recent() -> Any:
            async with sessions() as session:
                query = (
                    select(Message).where(Message.chat_id == seed.chat()).order_by(Message.created_at.desc()).limit(50)
                )
                return list((await session.execute(query)).scalars().all())

        assert update is not None  # the spec's update_todo uses sqlalchemy.update
        return {
            "get todo by id": get,
            "insert todo": insert,
            "update todo RETURNING": update_returning,
            "list 50 todos by status": by_status,
            "chat's 50 recent": recent,
        }


class TortoiseORM(Variant):
    name = "Tortoise ORM"

    async def start(self, db: ConnectionSettings) -> None:
        import peer_tortoise

        self.peer = peer_tortoise
        await peer_tortoise.start(db, POOL)

    async def stop(self) -> None:
        await self.peer.stop()

    def operations(self, seed: Seed) -> dict[str, Op]:
        p = self.peer
        return {
            "get todo by id": lambda: p.get_todo(seed.todo()),
            "insert todo": lambda: p.create_todo("bench"),
            "update todo RETURNING": lambda: p.update_todo(seed.todo(), 2),
            "list 50 todos by status": lambda: p.todos_by_status("pending", 50),
            "chat's 50 recent": lambda: p.recent_messages(seed.chat(), 50),
        }


class Piccolo(Variant):
    name = "Piccolo"

    async def start(self, db: ConnectionSettings) -> None:
        import peer_piccolo

        self.peer = peer_piccolo.Tables(db, POOL)
        await self.peer.start()

    async def stop(self) -> None:
        await self.peer.stop()

    def operations(self, seed: Seed) -> dict[str, Op]:
        p = self.peer
        return {
            "get todo by id": lambda: p.get_todo(seed.todo()),
            "insert todo": lambda: p.create_todo("bench"),
            "update todo RETURNING": lambda: p.update_todo(seed.todo(), 2),
            "list 50 todos by status": lambda: p.todos_by_status("pending", 50),
            "chat's 50 recent": lambda: p.recent_messages(seed.chat(), 50),
        }


class Ours(Variant):
    """The repositories as agent code calls them: reads in `manager.session(readonly=True)` (the place
    docs/data-layer.md names for read-only work), writes in `manager.session()`."""

    name = "ours"

    async def start(self, db: ConnectionSettings) -> None:
        config = DatabaseConfig(
            host=db.host, port=db.port, database=db.database, username=db.user, pool_size=POOL, max_overflow=0
        )
        self.manager = DatabaseManager(config)

    async def stop(self) -> None:
        await self.manager.close()

    def operations(self, seed: Seed) -> dict[str, Op]:
        manager = self.manager

        async def get() -> Any:
            async with manager.session(readonly=True) as s:
                return await tasks.get_todo(s, seed.todo())

        async def insert() -> Any:
            async with manager.session() as s:
                return await tasks.create_todo(s, {"title": "bench"})

        async def update_returning() -> Any:
            async with manager.session() as s:
                return await tasks.update_todo(s, seed.todo(), {"priority": 2})

        async def by_status() -> Any:
            async with manager.session(readonly=True) as s:
                return await tasks.get_todos_by_status(s, "pending", limit=50)

        async def recent() -> Any:
            async with manager.session(readonly=True) as s:
                return await messaging.get_recent_messages(s, seed.chat(), limit=50)

        return {
            "get todo by id": get,
            "insert todo": insert,
            "update todo RETURNING": update_returning,
            "list 50 todos by status": by_status,
            "chat's 50 recent": recent,
        }


class OursOrmPath(Ours):
    """The same calls with a listener on the engine's statements (as a tracer adds one): then every call
    takes SQLAlchemy's ORM execution instead of the direct path (src.database.direct), which shows
    what the direct path gains, side by side."""

    name = "ours, ORM path"

    async def start(self, db: ConnectionSettings) -> None:
        await super().start(db)
        self.manager._reader_on_primary()
        assert self.manager._primary_reader is not None
        for engine in (self.manager.engine, self.manager._primary_reader[0]):
            event.listen(engine.sync_engine, "before_cursor_execute", _traced)


def _traced(*args: Any) -> None:
    """A listener that does nothing: its presence alone is what a tracer's costs here."""


def variants() -> tuple[list[Variant], list[str]]:
    """The variants whose packages are installed, and a note for each left out."""
    chosen: list[Variant] = [RawAsyncpg(), SpecSQLAlchemy()]
    missing = []
    for package, variant in (("tortoise", TortoiseORM()), ("piccolo", Piccolo())):
        if importlib.util.find_spec(package) is None:
            missing.append(f"{variant.name}: not installed (`make bench` installs the bench extra)")
        else:
            chosen.append(variant)
    chosen += [OursOrmPath(), Ours()]
    return chosen, missing


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


async def load(db: ConnectionSettings) -> Seed:
    """Migrate, load TODOS todos over four statuses and CHATS chats of MESSAGES_PER_CHAT messages (spread
    over time, as real rows are), then ANALYZE so that the planner has statistics."""
    conn = await asyncpg.connect(**db.asyncpg_kwargs())
    try:
        await runner.apply(conn, discover(DEFAULT_MIGRATIONS_DIR), runner.Options())
        await conn.execute(
            "INSERT INTO tasks.todos (title, status, created_at) SELECT 'seed ' || i, "
            "(ARRAY['pending','in_progress','completed','cancelled'])[1 + i % 4], now() - i * interval '1 minute' "
            f"FROM generate_series(1, {TODOS}) i"
        )
        chat_ids = [
            r["id"]
            for r in await conn.fetch(
                f"INSERT INTO messaging.chats (title) SELECT 'chat ' || i FROM generate_series(1, {CHATS}) i "
                "RETURNING id"
            )
        ]
        await conn.execute(
            "INSERT INTO messaging.messages (chat_id, role, content, created_at) "
            "SELECT c, 'user', 'message ' || i, now() - i * interval '1 second' "
            f"FROM unnest($1::uuid[]) c, generate_series(1, {MESSAGES_PER_CHAT}) i",
            chat_ids,
        )
        await conn.execute("ANALYZE")
        todo_ids = [r["id"] for r in await conn.fetch("SELECT id FROM tasks.todos ORDER BY random() LIMIT 2000")]
    finally:
        await conn.close()
    return Seed(todo_ids, chat_ids)


async def round_trips(
    chosen: list[Variant], db: ConnectionSettings, seed: Seed, messages: dict[str, dict[str, int]]
) -> dict[str, dict[str, int]]:
    """Round trips of one call of each operation per variant, on a warm pool, counted on the wire; the
    protocol messages of each call go into `messages` (Q simple query, P parse, B bind, E execute, S sync)."""
    counts: dict[str, dict[str, int]] = {}
    async with RoundTripProxy(db) as proxy:
        for variant in chosen:
            await variant.start(proxy.settings)
            try:
                ops = variant.operations(seed)
                counts[variant.name] = {}
                for name, op in ops.items():
                    # Pools hand connections out in turn: warm every connection's statement cache first.
                    for _ in range(2 * POOL + 1):
                        await op()
                    with proxy.count() as seen:
                        await op()
                    counts[variant.name][name] = seen.round_trips
                    messages[f"{variant.name}: {name}"] = seen.messages
            finally:
                await variant.stop()
    return counts


async def bench(quick: bool, round_trips_only: bool) -> dict[str, Any]:
    clients_list = [1, 16] if quick else [1, 4, 16, 64]
    seconds, rounds = (0.25, 1) if quick else (1.5, 3)
    chosen, missing = variants()
    for note in missing:
        print(f"left out: {note}", flush=True)
    with server() as srv, srv.fresh_database() as db:
        if srv.tcp is not None:  # over TCP, as an application reaches its database
            db = replace(srv.tcp, database=db.database)
        started = time.perf_counter()
        seed = await load(db)
        print(f"loaded and ANALYZEd in {time.perf_counter() - started:.1f} s", flush=True)
        messages: dict[str, dict[str, int]] = {}
        trips = await round_trips(chosen, db, seed, messages)
        print("round trips: " + "; ".join(f"{v}: {c}" for v, c in trips.items()), flush=True)
        print(f"round trips counted at {time.perf_counter() - started:.1f} s", flush=True)
        data: dict[str, Any] = {
            "machine": machine(),
            "server": {"version": srv.version, "source": srv.source, "transport": where(db)},
            "pool": POOL,
            "rows": {"todos": TODOS, "chats": CHATS, "messages_per_chat": MESSAGES_PER_CHAT},
            "variants": [v.name for v in chosen],
            "left_out": missing,
            "round_trips": trips,
            "round_trip_messages": messages,
        }
        if round_trips_only:
            return data
        for variant in chosen:
            await variant.start(db)
        try:
            ops = {v.name: v.operations(seed) for v in chosen}
            for v in chosen:  # warm every pool and statement cache
                for op in ops[v.name].values():
                    await throughput(op, POOL, 0.05 if quick else 0.2)
            results: dict[str, dict[str, Any]] = {}
            for clients in clients_list:
                for operation in OPERATIONS:
                    runs: dict[str, list[float]] = {v.name: [] for v in chosen}
                    for r in range(rounds):
                        order = chosen[r % len(chosen) :] + chosen[: r % len(chosen)]  # who goes first rotates
                        for v in order:
                            runs[v.name].append(await throughput(ops[v.name][operation], clients, seconds))
                    results[f"{operation} @ {clients}"] = {
                        "operation": operation,
                        "clients": clients,
                        "ops_s": {name: median(r) for name, r in runs.items()},
                        "runs": runs,
                    }
                    line = ", ".join(f"{n} {median(r):.0f}/s" for n, r in runs.items())
                    print(f"{operation} @ {clients}: {line}", flush=True)
            data["throughput"] = results
            data["seconds_per_measurement"], data["rounds"] = seconds, rounds
            ours = next(v for v in chosen if isinstance(v, Ours))
            raw = next(v for v in chosen if isinstance(v, RawAsyncpg))
            data["health_check"] = await latencies(ours.manager.health_check, 300 if quick else 3000)
            data["raw_select_1"] = await latencies(lambda: raw.pool.fetchval("SELECT 1"), 300 if quick else 3000)
        finally:
            for variant in chosen:
                await variant.stop()
        return data


def where(db: ConnectionSettings) -> str:
    return "unix socket" if db.host.startswith("/") else f"tcp {db.host}"


async def latencies(call: Callable[[], Awaitable[Any]], n: int) -> dict[str, float]:
    took = []
    for _ in range(n):
        started = time.perf_counter()
        await call()
        took.append((time.perf_counter() - started) * 1000)
    return {"p50_ms": percentile(took, 50), "p99_ms": percentile(took, 99), "calls": n}


def targets(operation: str, clients: int) -> dict[str, float]:
    """The least ours / variant each target asks for at this point (issue 18)."""
    wanted: dict[str, float] = {"Tortoise ORM": 1.0, "Piccolo": 1.0}
    if clients == 1:
        wanted["spec SQLAlchemy"] = 2.0
        wanted["raw asyncpg"] = 0.8 if operation in SINGLE_ROW else 0.6
    elif clients == 16:
        wanted["spec SQLAlchemy"] = 1.5
    return wanted


def report(data: dict[str, Any]) -> str:
    names = [n for n in data["variants"] if n != "ours"]
    parts = [
        f"PostgreSQL {data['server']['version']} ({data['server']['source']}, over {data['server']['transport']}); "
        f"{data['machine']['cores']} cores, {data['machine']['cpu']}; pool {data['pool']} per variant; "
        f"{data['rows']['todos']} todos, {data['rows']['chats']} chats x {data['rows']['messages_per_chat']} messages, "
        "ANALYZEd",
    ]
    for note in data["left_out"]:
        parts.append(f"left out: {note}")
    if "throughput" in data:
        parts.append("\n### ours / each variant (operations per second, median; target in brackets, ✗ = missed)\n")
        rows = []
        for key, r in data["throughput"].items():
            ours = r["ops_s"]["ours"]
            wanted = targets(r["operation"], r["clients"])
            cells = [key, f"{ours:.0f}"]
            for name in names:
                ratio = ours / r["ops_s"][name]
                goal = wanted.get(name)
                mark = "" if goal is None else f" (≥{goal:g}{'' if ratio >= goal else ' ✗'})"
                cells.append(f"{ratio:.2f}x{mark}")
            rows.append(cells)
        parts.append(table(["operation @ clients", "ours ops/s", *(f"ours / {n}" for n in names)], rows))
        parts.append("\n### Operations per second (median)\n")
        all_names = data["variants"]
        parts.append(
            table(
                ["operation @ clients", *all_names],
                [[k, *(f"{r['ops_s'][n]:.0f}" for n in all_names)] for k, r in data["throughput"].items()],
            )
        )
    parts.append("\n### Round trips of one call (warm pool, counted on the wire)\n")
    trips = data["round_trips"]
    parts.append(table(["operation", *trips], [[op, *(str(trips[v].get(op, "")) for v in trips)] for op in OPERATIONS]))
    if "health_check" in data:
        h, p = data["health_check"], data["raw_select_1"]
        parts.append("\n### health_check latency (sequential calls)\n")
        parts.append(
            table(
                ["", "p50 ms", "p99 ms"],
                [
                    ["manager.health_check()", f"{h['p50_ms']:.3f}", f"{h['p99_ms']:.3f}"],
                    ["raw pool.fetchval('SELECT 1')", f"{p['p50_ms']:.3f}", f"{p['p99_ms']:.3f}"],
                ],
            )
        )
    return "\n".join(parts)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="1 and 16 clients, short measurements (CI)")
    parser.add_argument("--round-trips-only", action="store_true", help="count round trips, measure no throughput")
    args = parser.parse_args()
    data = asyncio.run(bench(args.quick, args.round_trips_only))
    path = save("data-quick" if args.quick else "data", data)
    print()
    print(report(data))
    print(f"\n(raw results: {path})")


if __name__ == "__main__":
    main()
