"""The round-trip counter itself (tests/roundtrips.py), held to what asyncpg is known to send."""

from __future__ import annotations

import asyncpg

from src.postgres.settings import ConnectionSettings
from tests.roundtrips import RoundTripProxy, proxy_thread


async def test_a_simple_query_is_one_round_trip(database: ConnectionSettings) -> None:
    async with RoundTripProxy(database) as proxy:
        conn = await asyncpg.connect(**proxy.settings.asyncpg_kwargs())
        try:
            with proxy.count() as seen:
                await conn.execute("SELECT 1; SELECT 2")
        finally:
            await conn.close()
    assert (seen.round_trips, seen.ready_for_query, seen.messages) == (1, 1, {"Q": 1})


async def test_a_new_prepared_statement_is_two_round_trips_and_a_cached_one_is_one(
    database: ConnectionSettings,
) -> None:
    async with RoundTripProxy(database) as proxy:
        conn = await asyncpg.connect(**proxy.settings.asyncpg_kwargs())
        try:
            with proxy.count() as first:
                await conn.fetchval("SELECT $1::int + 1", 1)
            with proxy.count() as again:
                await conn.fetchval("SELECT $1::int + 1", 2)
        finally:
            await conn.close()
    assert (first.round_trips, again.round_trips) == (2, 1), (first, again)


async def test_start_up_is_counted_as_a_connection_not_as_round_trips(database: ConnectionSettings) -> None:
    async with RoundTripProxy(database) as proxy:
        with proxy.count() as seen:
            conn = await asyncpg.connect(**proxy.settings.asyncpg_kwargs())
        await conn.close()
    assert (seen.connections, seen.ready_for_query) == (1, 0)


def test_the_proxy_on_a_thread_counts_a_client_on_another_loop(database: ConnectionSettings) -> None:
    import asyncio

    async def ping(settings: ConnectionSettings) -> None:
        conn = await asyncpg.connect(**settings.asyncpg_kwargs())
        try:
            await conn.execute("SELECT 1")
        finally:
            await conn.close()

    with proxy_thread(database) as proxy, proxy.count() as seen:
        asyncio.run(ping(proxy.settings))
    assert (seen.connections, seen.round_trips) == (1, 1)
