"""Every statement PostgreSQL refuses inside a transaction block, on a real server: the server refuses it in
one (so the classification is needed), the runner recognises it (so the file is never sent unparsed or in a
transaction) and runs the file outside a transaction, between the transactions of the files around it.

The list follows PostgreSQL's callers of PreventInTransactionBlock (src/backend: tcop/utility.c,
commands/{dbcommands,tablespace,indexcmds,vacuum,cluster,discard,subscriptioncmds,tablecmds}.c). Cluster-wide
objects (databases, tablespaces, ALTER SYSTEM, the publisher's slots) get names of their own per test and are
removed afterwards. Tablespaces are created in place (`allow_in_place_tablespaces`), so the tests need no
directory on the server's machine; they, ALTER SYSTEM and subscriptions need a superuser, as the suite's
servers give. Subscriptions with a slot need a publisher: an embedded server of the tests' own with
`wal_level = logical`; the subscription cases run on a second one (a subscriber the publisher's socket
admits), whatever server the rest of the suite uses.
"""

from __future__ import annotations

import asyncio
import concurrent.futures
import contextlib
import uuid
from collections.abc import AsyncIterator, Coroutine, Iterator, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from src.migrate import runner
from src.migrate.files import MigrationFile, checksum, discover
from src.migrate.sql import parse, plainly_transactional
from src.postgres.settings import ConnectionSettings
from tests.support import PrivateServer, server_dir, write_migrations


@dataclass(frozen=True)
class Case:
    id: str
    statement: str
    setup: tuple[str, ...] = ()
    """Run one statement at a time before the test (several in one message would form a transaction)."""
    observe: str = "SELECT 1"
    """A query whose answer the statement changes: proof that it ran."""
    cleanup: tuple[str, ...] = ()
    publisher: bool = False
    """Needs the logical-replication publisher (`{conninfo}` in the SQL)."""
    on_publisher: tuple[str, ...] = ()
    """Run on the publisher after `setup`; `publisher_cleanup` undoes it."""
    publisher_cleanup: tuple[str, ...] = ()


PARTITIONED = (
    "CREATE TABLE p (x int) PARTITION BY RANGE (x)",
    "CREATE TABLE p1 PARTITION OF p FOR VALUES FROM (0) TO (10)",
    "CREATE INDEX ix_p ON p (x)",
)
INDEXED = ("CREATE TABLE t (x int)", "CREATE INDEX ix ON t (x)")
IN_PLACE = "SET allow_in_place_tablespaces = on"
FILENODE = "SELECT pg_relation_filenode('{}')"
# The subscriber needs the published tables; copying their (empty) rows is left out to keep it quick.
SUBSCRIBER_TABLES = tuple(f"CREATE TABLE {t} (x int PRIMARY KEY)" for t in ("a", "b", "late"))
SUBSCRIBE = "CREATE SUBSCRIPTION {sub} CONNECTION '{conninfo}' PUBLICATION pub_a WITH (copy_data = false)"
SUBSCRIBED = (*SUBSCRIBER_TABLES, SUBSCRIBE)
SUBSCRIPTION_PUBLICATIONS = "SELECT subpublications::text FROM pg_subscription WHERE subname = '{sub}'"
# Drops the publisher's slot with it; the second form is for a subscription whose publisher cannot be reached.
DROP_SUBSCRIPTION = (
    "DROP SUBSCRIPTION IF EXISTS {sub}",
    "ALTER SUBSCRIPTION {sub} DISABLE",
    "ALTER SUBSCRIPTION {sub} SET (slot_name = NONE)",
    "DROP SUBSCRIPTION IF EXISTS {sub}",
)

CASES = [
    Case(
        "create-database",
        "CREATE DATABASE {db}",
        observe="SELECT exists (SELECT FROM pg_database WHERE datname = '{db}')",
        cleanup=("DROP DATABASE IF EXISTS {db}",),
    ),
    Case(
        "drop-database",
        "DROP DATABASE IF EXISTS {db} WITH (FORCE)",
        setup=("CREATE DATABASE {db}",),
        observe="SELECT exists (SELECT FROM pg_database WHERE datname = '{db}')",
        cleanup=("DROP DATABASE IF EXISTS {db}",),
    ),
    Case(
        "create-tablespace",
        "CREATE TABLESPACE {ts} LOCATION ''",
        setup=(IN_PLACE,),
        observe="SELECT exists (SELECT FROM pg_tablespace WHERE spcname = '{ts}')",
        cleanup=("DROP TABLESPACE IF EXISTS {ts}",),
    ),
    Case(
        "drop-tablespace",
        "DROP TABLESPACE IF EXISTS {ts}",
        setup=(IN_PLACE, "CREATE TABLESPACE {ts} LOCATION ''"),
        observe="SELECT exists (SELECT FROM pg_tablespace WHERE spcname = '{ts}')",
        cleanup=("DROP TABLESPACE IF EXISTS {ts}",),
    ),
    Case(
        "alter-database-set-tablespace",
        "ALTER DATABASE {db} SET TABLESPACE {ts}",
        setup=(IN_PLACE, "CREATE TABLESPACE {ts} LOCATION ''", "CREATE DATABASE {db}"),
        observe="SELECT t.spcname FROM pg_database d JOIN pg_tablespace t ON t.oid = d.dattablespace "
        "WHERE d.datname = '{db}'",
        cleanup=("DROP DATABASE IF EXISTS {db}", "DROP TABLESPACE IF EXISTS {ts}"),
    ),
    Case(
        "create-index-concurrently",
        "CREATE INDEX CONCURRENTLY IF NOT EXISTS ix ON t (x)",
        setup=("CREATE TABLE t (x int)",),
        observe="SELECT to_regclass('ix') IS NOT NULL",
    ),
    Case(
        "drop-index-concurrently",
        "DROP INDEX CONCURRENTLY IF EXISTS ix",
        setup=INDEXED,
        observe="SELECT to_regclass('ix') IS NOT NULL",
    ),
    Case("reindex-index-concurrently", "REINDEX INDEX CONCURRENTLY ix", setup=INDEXED, observe=FILENODE.format("ix")),
    Case("reindex-table-concurrently", "REINDEX (CONCURRENTLY) TABLE t", setup=INDEXED, observe=FILENODE.format("ix")),
    Case(
        "reindex-schema",
        "REINDEX SCHEMA s",
        setup=("CREATE SCHEMA s", "CREATE TABLE s.t (x int)", "CREATE INDEX ix ON s.t (x)"),
        observe=FILENODE.format("s.ix"),
    ),
    Case("reindex-database", "REINDEX DATABASE {current}", setup=INDEXED, observe=FILENODE.format("ix")),
    Case("reindex-system", "REINDEX SYSTEM {current}", observe=FILENODE.format("pg_namespace_oid_index")),
    # A partitioned table or index is reindexed partition by partition, each in a transaction of its own.
    Case("reindex-partitioned-table", "REINDEX TABLE p", setup=PARTITIONED, observe=FILENODE.format("p1_x_idx")),
    Case("reindex-partitioned-index", "REINDEX INDEX ix_p", setup=PARTITIONED, observe=FILENODE.format("p1_x_idx")),
    Case(
        "vacuum",
        "VACUUM t",
        setup=("CREATE TABLE t (x int)",),
        observe="SELECT last_vacuum IS NOT NULL FROM pg_stat_user_tables WHERE relname = 't'",
    ),
    Case("vacuum-full-analyze", "VACUUM (FULL, ANALYZE) t", setup=INDEXED, observe=FILENODE.format("t")),
    # CLUSTER of every table clustered before, and CLUSTER of a partitioned table, run a transaction per table.
    Case("cluster-all", "CLUSTER", setup=(*INDEXED, "ALTER TABLE t CLUSTER ON ix"), observe=FILENODE.format("t")),
    Case("cluster-partitioned", "CLUSTER p USING ix_p", setup=PARTITIONED, observe=FILENODE.format("p1")),
    Case(
        "alter-system",
        "ALTER SYSTEM SET work_mem = '7MB'",
        observe="SELECT exists (SELECT FROM pg_file_settings WHERE name = 'work_mem' AND setting = '7MB')",
        cleanup=("ALTER SYSTEM RESET work_mem",),
    ),
    Case(
        "discard-all",
        "DISCARD ALL",
        setup=("PREPARE mine AS SELECT 1",),
        observe="SELECT exists (SELECT FROM pg_prepared_statements WHERE name = 'mine')",
    ),
    Case(
        "detach-partition-concurrently",
        "ALTER TABLE p DETACH PARTITION p1 CONCURRENTLY",
        setup=PARTITIONED,
        observe="SELECT exists (SELECT FROM pg_inherits WHERE inhrelid = 'p1'::regclass)",
    ),
    Case(
        "create-subscription-with-a-slot",
        SUBSCRIBE,
        setup=SUBSCRIBER_TABLES,
        observe="SELECT exists (SELECT FROM pg_subscription WHERE subname = '{sub}')",
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
    Case(
        "alter-subscription-refresh-publication",
        "ALTER SUBSCRIPTION {sub} REFRESH PUBLICATION",
        setup=SUBSCRIBED,
        observe="SELECT count(*) FROM pg_subscription_rel",
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
        # The table the publication gains after the subscription was made is what the refresh adds.
        on_publisher=("ALTER PUBLICATION pub_a ADD TABLE late",),
        publisher_cleanup=("ALTER PUBLICATION pub_a DROP TABLE late",),
    ),
    Case(
        "alter-subscription-set-publication",
        "ALTER SUBSCRIPTION {sub} SET PUBLICATION pub_b",
        setup=SUBSCRIBED,
        observe=SUBSCRIPTION_PUBLICATIONS,
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
    Case(
        "alter-subscription-add-publication",
        "ALTER SUBSCRIPTION {sub} ADD PUBLICATION pub_b",
        setup=SUBSCRIBED,
        observe=SUBSCRIPTION_PUBLICATIONS,
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
    Case(
        "alter-subscription-drop-publication",
        "ALTER SUBSCRIPTION {sub} DROP PUBLICATION pub_b",
        setup=(*SUBSCRIBER_TABLES, SUBSCRIBE.replace("pub_a", "pub_a, pub_b")),
        observe=SUBSCRIPTION_PUBLICATIONS,
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
    Case(
        "alter-subscription-set-failover",
        "ALTER SUBSCRIPTION {sub} SET (failover = true)",
        setup=(*SUBSCRIBER_TABLES, SUBSCRIBE.replace("copy_data = false", "copy_data = false, enabled = false")),
        observe="SELECT subfailover FROM pg_subscription WHERE subname = '{sub}'",
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
    Case(
        "drop-subscription-with-a-slot",
        "DROP SUBSCRIPTION {sub}",
        setup=SUBSCRIBED,
        observe="SELECT exists (SELECT FROM pg_subscription WHERE subname = '{sub}')",
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
]


@dataclass(frozen=True)
class Publisher:
    server: PrivateServer
    subscriber: PrivateServer
    """The subscription cases run here, not on the suite's server: a server of the tests' own (run by the
    same system user) can reach the publisher's socket, which the suite's server (TEST_DATABASE_URL may name
    one of another version and owner) cannot."""

    @property
    def conninfo(self) -> str:
        s = self.server.settings
        return f"host={s.host} port={s.port} dbname=postgres user={s.user}"


def _in_a_thread(work: Coroutine[Any, Any, None]) -> None:
    with concurrent.futures.ThreadPoolExecutor(1) as pool:
        pool.submit(asyncio.run, work).result()


@pytest.fixture(scope="module")
def publisher(server_root: Path) -> Iterator[Publisher]:
    """A second server that publishes pub_a (table a) and pub_b (table b), for subscriptions. Started the
    first time a test asks for it, from inside that test's event loop: its SQL runs in a thread of its own."""
    server = PrivateServer(server_dir(server_root, "publisher") / "data")
    subscriber = PrivateServer(server_dir(server_root, "subscriber") / "data")
    try:
        _in_a_thread(_run_each(server.settings, ["ALTER SYSTEM SET wal_level = logical"]))
        server.restart()
        tables = [f"CREATE TABLE {t} (x int PRIMARY KEY)" for t in ("a", "b", "late")]
        publications = ["CREATE PUBLICATION pub_a FOR TABLE a", "CREATE PUBLICATION pub_b FOR TABLE b"]
        _in_a_thread(_run_each(server.settings, [*tables, *publications]))
        yield Publisher(server, subscriber)
    finally:
        subscriber.stop()
        server.stop()


def ids(cases: Sequence[Case]) -> list[str]:
    return [c.id for c in cases]


@pytest.fixture
async def names(conn: asyncpg.Connection) -> dict[str, str]:
    token = uuid.uuid4().hex[:10]
    return {
        "db": f"mt_db_{token}",
        "ts": f"mt_ts_{token}",
        "sub": f"mt_sub_{token}",
        "current": await conn.fetchval("SELECT current_database()"),
    }


async def _run_each(settings: ConnectionSettings, statements: Sequence[str]) -> None:
    conn = await asyncpg.connect(**settings.asyncpg_kwargs())
    try:
        for statement in statements:
            await conn.execute(statement)
    finally:
        await conn.close()


@contextlib.asynccontextmanager
async def subject(
    conn: asyncpg.Connection, case: Case, request: pytest.FixtureRequest
) -> AsyncIterator[asyncpg.Connection]:
    """The connection a case runs on: the test's own, or for a subscription case a new database on the
    publisher fixture's subscriber server."""
    if not case.publisher:
        yield conn
        return
    publisher: Publisher = request.getfixturevalue("publisher")
    admin = publisher.subscriber.settings
    name = f"sub_{uuid.uuid4().hex[:12]}"
    await _run_each(admin, [f'CREATE DATABASE "{name}"'])
    own = await asyncpg.connect(**replace(admin, database=name).asyncpg_kwargs())
    try:
        yield own
    finally:
        await own.close()
        await _run_each(admin, [f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'])


@contextlib.asynccontextmanager
async def prepared(
    conn: asyncpg.Connection, case: Case, names: dict[str, str], request: pytest.FixtureRequest
) -> AsyncIterator[dict[str, str]]:
    """The case's names (and the publisher's, when it needs one) with its setup done; cleans up after."""
    values = dict(names)
    publisher: Publisher | None = request.getfixturevalue("publisher") if case.publisher else None
    if publisher is not None:
        values["conninfo"] = publisher.conninfo
    try:
        for statement in case.setup:
            await conn.execute(statement.format(**values))
        if publisher is not None:
            await _run_each(publisher.server.settings, case.on_publisher)
        yield values
    finally:
        for statement in case.cleanup:
            with contextlib.suppress(asyncpg.PostgresError):
                await conn.execute(statement.format(**values))
        if publisher is not None:
            await _run_each(publisher.server.settings, case.publisher_cleanup)


def migration(sql: str) -> MigrationFile:
    return MigrationFile(1, "x", Path("001_x.sql"), sql, checksum(sql))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
def test_it_is_recognised_and_never_sent_unparsed(case: Case) -> None:
    statement = case.statement.format(db="d", ts="s", sub="s", current="d", conninfo="dbname=d")
    sql = f"CREATE TABLE IF NOT EXISTS t (x int);\n{statement};\n"
    assert not plainly_transactional(sql)
    assert [s.transactional for s in parse(migration(sql))] == [True, False]


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_the_server_refuses_it_inside_a_transaction_block(
    conn: asyncpg.Connection, names: dict[str, str], case: Case, request: pytest.FixtureRequest
) -> None:
    async with subject(conn, case, request) as conn, prepared(conn, case, names, request) as values:
        with pytest.raises(asyncpg.ActiveSQLTransactionError, match="cannot run inside a transaction block"):
            async with conn.transaction():
                await conn.execute(case.statement.format(**values))


@pytest.mark.parametrize("case", CASES, ids=ids(CASES))
async def test_the_runner_runs_it_outside_a_transaction_between_the_files_around_it(
    conn: asyncpg.Connection, names: dict[str, str], case: Case, request: pytest.FixtureRequest, tmp_path: Path
) -> None:
    async with subject(conn, case, request) as conn, prepared(conn, case, names, request) as values:
        before = await conn.fetchval(case.observe.format(**values))
        folder = write_migrations(
            tmp_path,
            {
                "001_before.sql": "CREATE TABLE IF NOT EXISTS before_it (x int);",
                "002_it.sql": f"-- {case.id}\n{case.statement.format(**values)};\n",
                "003_after.sql": "CREATE TABLE IF NOT EXISTS after_it (x int);",
            },
        )
        result = await runner.apply(conn, discover(folder), runner.Options())
        assert [(a.file.version, a.transactional) for a in result.applied] == [(1, True), (2, False), (3, True)]
        rows = await conn.fetch("SELECT version, transactional FROM public.migration_ledger ORDER BY 1")
        assert [tuple(r) for r in rows] == [(1, True), (2, False), (3, True)]
        assert await conn.fetchval(case.observe.format(**values)) != before


# Forms of the same commands that PostgreSQL accepts in a transaction: they stay in the runner's transaction.
TRANSACTIONAL = [
    Case("create-index", "CREATE INDEX IF NOT EXISTS ix ON t (x)", setup=("CREATE TABLE t (x int)",)),
    Case("analyze", "ANALYZE t", setup=("CREATE TABLE t (x int)",)),
    Case("discard-plans", "DISCARD PLANS"),
    Case("alter-database-set", "ALTER DATABASE {current} SET work_mem = '8MB'"),
    Case(
        "alter-tablespace",
        "ALTER TABLESPACE pg_default SET (seq_page_cost = 1)",
        cleanup=("ALTER TABLESPACE pg_default RESET (seq_page_cost)",),
    ),
    Case("detach-partition", "ALTER TABLE p DETACH PARTITION p1", setup=PARTITIONED),
    Case(
        "create-subscription-without-connecting",
        "CREATE SUBSCRIPTION {sub} CONNECTION 'dbname=nowhere' PUBLICATION pub_a WITH (connect = false)",
        cleanup=DROP_SUBSCRIPTION,
    ),
    Case(
        "create-subscription-without-a-slot",
        "CREATE SUBSCRIPTION {sub} CONNECTION '{conninfo}' PUBLICATION pub_a "
        "WITH (create_slot = false, enabled = false, slot_name = NONE)",
        setup=SUBSCRIBER_TABLES,
        cleanup=("DROP SUBSCRIPTION IF EXISTS {sub}",),
        publisher=True,
    ),
    Case(
        "alter-subscription-set-publication-without-refresh",
        "ALTER SUBSCRIPTION {sub} SET PUBLICATION pub_b WITH (refresh = false)",
        setup=SUBSCRIBED,
        cleanup=DROP_SUBSCRIPTION,
        publisher=True,
    ),
]


@pytest.mark.parametrize("case", TRANSACTIONAL, ids=ids(TRANSACTIONAL))
async def test_forms_the_server_accepts_in_a_transaction_stay_in_it(
    conn: asyncpg.Connection, names: dict[str, str], case: Case, request: pytest.FixtureRequest
) -> None:
    async with subject(conn, case, request) as conn, prepared(conn, case, names, request) as values:
        statement = case.statement.format(**values)
        assert all(s.transactional for s in parse(migration(statement)))
        async with conn.transaction():
            await conn.execute(statement)
