"""Health and readiness over HTTP, for orchestrators that poll every few seconds, forever.

    GET /health   200 while the database answers through the pool (`DatabaseManager.health`), else 503
    GET /ready    200 when the database answers and every migration file is applied, none pending,
                  edited, renamed or missing (the runner's own plan); else 503 with the reasons

Both answer JSON within `DB_HEALTH_CHECK_TIMEOUT` even when the server is frozen or gone, reuse the
pool (no connection per poll), and recover by themselves when the server returns: the pool pings a
connection before handing it out and replaces a dead one.

`HealthApp` is a plain ASGI app, so it runs under any ASGI server (`migrate serve-health` uses uvicorn)
or mounts inside the agent's own app, e.g. with Starlette `Mount("/probes", app=HealthApp(manager))`.
Given a manager, it uses that one and leaves closing it to its owner; given none, it makes one from
`DatabaseConfig()` on first use and closes it at ASGI lifespan shutdown (or `await app.close()`).

It is written against ASGI directly rather than a web framework: two read-only routes do not justify
a framework dependency in every app that mounts them.
"""

from __future__ import annotations

import asyncio
import json
import logging
import os
from collections.abc import Awaitable, Callable, MutableMapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

from src.database.config import DatabaseConfig
from src.database.manager import DatabaseManager, Health
from src.migrate import runner, settings
from src.migrate.errors import MigrateError
from src.migrate.files import MigrationFile, discover
from src.migrate.ledger import LedgerTable
from src.migrate.plan import Plan
from src.postgres.settings import read_environment

Scope = MutableMapping[str, Any]
Message = MutableMapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class Answer:
    ok: bool
    body: dict[str, Any]

    @property
    def status(self) -> int:
        return 200 if self.ok else 503


class _Shared:
    """Concurrent polls share one probe in flight instead of each taking a pooled connection, so a burst
    of probes (many replicas of a load balancer, a retry storm) cannot exhaust the pool."""

    def __init__(self, work: Callable[[], Awaitable[Answer]]) -> None:
        self._work = work
        self._task: asyncio.Future[Answer] | None = None

    async def __call__(self) -> Answer:
        if self._task is None or self._task.done():
            self._task = asyncio.ensure_future(self._work())
        # Shielded: one client hanging up must not cancel the answer the others are waiting for.
        return await asyncio.shield(self._task)


class _MigrationFiles:
    """The migration folder, read again only when a file in it changes (name, size or mtime), so a poll
    costs a directory listing, not reading and hashing every file."""

    def __init__(self, directory: Path) -> None:
        self.directory = directory
        self._signature: tuple[tuple[str, int, int], ...] | None = None
        self._files: list[MigrationFile] = []

    def load(self) -> list[MigrationFile]:
        try:
            stats = [(e.name, e.stat()) for e in os.scandir(self.directory)]
            signature = tuple(sorted((name, st.st_mtime_ns, st.st_size) for name, st in stats))
        except OSError:
            signature = None  # discover() says what is wrong with the folder
        if signature is None or signature != self._signature:
            self._files = discover(self.directory)
            self._signature = signature
        return self._files


class HealthApp:
    def __init__(
        self,
        manager: DatabaseManager | None = None,
        *,
        config: DatabaseConfig | None = None,
        migrations_dir: Path | None = None,
        ledger: LedgerTable | None = None,
    ) -> None:
        """`manager`: the app's own (not closed here); else one is made from `config` (default:
        `DatabaseConfig()`, i.e. the environment). `migrations_dir` and `ledger` are what /ready compares;
        when not given, they are what `migrate apply` would use: `MIGRATIONS_DIR` and `MIGRATIONS_TABLE`
        from the environment or `.env`, else the migrations shipped with the package and
        public.migration_ledger. A bad `MIGRATIONS_TABLE` is a ValueError naming it."""
        self._manager = manager
        self._owns_manager = manager is None
        self._config = config
        environ = read_environment() if migrations_dir is None or ledger is None else {}
        self.migrations = _MigrationFiles(settings.resolve_migrations_dir(environ, migrations_dir))
        self.ledger = ledger or settings.resolve_ledger(environ)
        self._health = _Shared(self.check_health)
        self._ready = _Shared(self.check_ready)
        self._last: dict[str, bool] = {}

    @property
    def manager(self) -> DatabaseManager:
        if self._manager is None:
            self._manager = DatabaseManager(self._config or DatabaseConfig())
        return self._manager

    async def close(self) -> None:
        """Close the manager if this app made it."""
        if self._owns_manager and self._manager is not None:
            await self._manager.close()

    async def check_health(self) -> Answer:
        health = await self.manager.health()
        self._log_change("health", health.ok, health.error)
        return Answer(health.ok, {"status": "ok" if health.ok else "unavailable", "database": health.as_dict()})

    async def check_ready(self) -> Answer:
        health: Health | None = None
        files_error: str | None = None
        try:
            files = self.migrations.load()
        except MigrateError as exc:
            files_error = str(exc)
        else:

            async def read_plan(conn: asyncpg.Connection) -> Plan:
                return await runner.read_plan(conn, files, runner.Options(ledger=self.ledger))

            health = await self.manager.health(read_plan)
        reasons = self._reasons(health, files_error)
        ready = not reasons
        self._log_change("readiness", ready, "; ".join(reasons))
        body: dict[str, Any] = {"status": "ready" if ready else "not ready", "reasons": reasons}
        if health is not None:
            body["database"] = {k: v for k, v in health.as_dict().items() if k != "detail"}
        if health is not None and isinstance(health.detail, Plan):
            plan = health.detail
            body["migrations"] = {
                "head": plan.head,
                "applied": sum(1 for e in plan.entries if e.row is not None),
                "files": sum(1 for e in plan.entries if e.file is not None),
            }
        return Answer(ready, body)

    @staticmethod
    def _reasons(health: Health | None, files_error: str | None) -> list[str]:
        if files_error is not None:
            return [f"migration files: {files_error}"]
        assert health is not None
        if not health.ok:
            return [f"database: {health.error}"]
        assert isinstance(health.detail, Plan)
        return health.detail.not_ready_because()

    def _log_change(self, what: str, ok: bool, why: str | None) -> None:
        """Log when health or readiness changes, not on every poll: the log shows outages, not heartbeats."""
        before = self._last.get(what)
        self._last[what] = ok
        if before is None and ok:
            return
        if ok and not before:
            log.warning("%s: ok again", what)
        elif not ok and before is not False:
            log.warning("%s: failing: %s", what, why)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "lifespan":
            await self._lifespan(receive, send)
            return
        if scope["type"] != "http":
            return  # websockets and other protocols are not served; the server closes them
        path = scope["path"]
        root = scope.get("root_path", "")
        if root and path.startswith(root):
            path = path[len(root) :]
        route = {"/health": self._health, "/ready": self._ready}.get(path.rstrip("/") or "/")
        if route is None:
            await _respond(send, 404, {"error": "not found; the routes are /health and /ready"}, scope)
            return
        if scope["method"] not in ("GET", "HEAD"):
            await _respond(send, 405, {"error": "use GET or HEAD"}, scope, extra=[(b"allow", b"GET, HEAD")])
            return
        answer = await route()
        await _respond(send, answer.status, answer.body, scope)

    async def _lifespan(self, receive: Receive, send: Send) -> None:
        while True:
            message = await receive()
            if message["type"] == "lifespan.startup":
                await send({"type": "lifespan.startup.complete"})
            elif message["type"] == "lifespan.shutdown":
                await self.close()
                await send({"type": "lifespan.shutdown.complete"})
                return


async def _respond(
    send: Send, status: int, body: dict[str, Any], scope: Scope, extra: list[tuple[bytes, bytes]] | None = None
) -> None:
    payload = json.dumps(body).encode()
    headers = [
        (b"content-type", b"application/json"),
        (b"content-length", str(len(payload)).encode()),
        # A cached "ok" is worse than none: probes must see the database as it is now.
        (b"cache-control", b"no-store"),
        *(extra or []),
    ]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": b"" if scope["method"] == "HEAD" else payload})
