"""`migrate health`: one health or readiness check, answered as (ok, message) for a container HEALTHCHECK.

Two ways to ask: the database directly (one connection, `SELECT`, and for readiness the runner's plan),
which works whatever the container runs; or a running health server's `/health` / `/ready` over HTTP,
which also proves the server serves.
"""

from __future__ import annotations

import asyncio
import json
import time
import urllib.error
import urllib.request
from urllib.parse import urlsplit

from src.migrate import runner
from src.migrate.connect import connect
from src.migrate.errors import ConfigError
from src.migrate.files import discover
from src.migrate.settings import RunnerSettings


async def ask_database(settings: RunnerSettings, *, ready: bool, give_up_after: float) -> tuple[bool, str]:
    if settings.connection is None:
        raise ConfigError("migrate health needs a configured database (DATABASE_URL or DB_*) or --url")
    where = settings.connection
    files = discover(settings.migrations_dir) if ready else []
    started = time.perf_counter()

    async def check() -> tuple[bool, str]:
        conn = await connect(where, command="health")
        try:
            version = str(await conn.fetchval("SHOW server_version")).split()[0]
            took = (time.perf_counter() - started) * 1000
            answered = f"database {where.describe()} answers (PostgreSQL {version}, {took:.1f} ms)"
            if not ready:
                return True, answered
            plan = await runner.read_plan(conn, files, runner.Options(ledger=settings.ledger))
        finally:
            conn.terminate()  # nothing to flush; don't wait on a server that may be slow to say goodbye
        reasons = plan.not_ready_because()
        if reasons:
            return False, "; ".join(reasons)
        head = "none" if plan.head is None else f"{plan.head:03d}"
        return True, f"{answered}; all {len(files)} migration(s) applied, at version {head}"

    try:
        return await asyncio.wait_for(check(), give_up_after)
    except TimeoutError:
        return False, f"database {where.describe()} gave no answer within {give_up_after:g} s (--timeout)"


def ask_server(url: str, *, ready: bool, timeout: float) -> tuple[bool, str]:
    """GET {url}/health or {url}/ready; `url` may also name the endpoint itself."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise ConfigError(f"--url: expected http://host:port of a health server, not {url!r}")
    path = parts.path.rstrip("/")
    for route in ("/health", "/ready"):
        path = path.removesuffix(route)
    endpoint = f"{parts.scheme}://{parts.netloc}{path}{'/ready' if ready else '/health'}"
    try:
        with urllib.request.urlopen(endpoint, timeout=timeout) as response:  # noqa: S310 (scheme checked above)
            status, raw = response.status, response.read()
    except urllib.error.HTTPError as exc:
        status, raw = exc.code, exc.read()
    except (urllib.error.URLError, OSError) as exc:
        reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
        return False, f"{endpoint}: no answer ({reason})"
    try:
        body = json.loads(raw)
    except ValueError:
        body = {}
    reasons = body.get("reasons") or ([body["database"]["error"]] if body.get("database", {}).get("error") else [])
    summary = "; ".join(str(r) for r in reasons) or body.get("status") or raw[:200].decode(errors="replace")
    return status == 200, f"{endpoint}: {status} {summary}"
