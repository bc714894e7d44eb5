"""Round trips counted on the wire: a PostgreSQL proxy on 127.0.0.1 that reads the protocol going through it.

    async with RoundTripProxy(database) as proxy:         # database: the real server's ConnectionSettings
        manager = DatabaseManager(config_for(proxy.settings))
        ...                                               # warm up: connect, fill the statement caches
        with proxy.count() as seen:
            await call()
        assert seen.round_trips == 1

A round trip is a batch of client messages the client then waits on: a read of the client's stream whose
last whole message is Sync, Query or Flush (or CopyDone/CopyFail, which end a COPY). Pipelined messages
that end in one Sync are one round trip; asyncpg's first use of a statement, `Parse Describe Flush` then
`Bind Execute Sync`, is two. The server's ReadyForQuery messages are counted beside it (one per Sync or
Query, so not for a Flush); the one that ends the connection's start-up is not counted, nor is start-up
itself: `connections` says how many connections were opened instead.

The proxy never changes a byte. It runs on the event loop that starts it (`RoundTripProxy`), or on a thread
of its own (`proxy_thread`) for code that blocks or runs in another process (a `migrate` subprocess, a
benchmark that must not share its loop). bench/ uses it for the benchmark's round-trip mode.
"""

from __future__ import annotations

import asyncio
import contextlib
import struct
import threading
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field, replace
from types import TracebackType

from src.postgres.settings import ConnectionSettings

# Untyped start-up packets (a length, then a code): SSL and GSS encryption requests, a cancel request.
_SSL_REQUEST = 80877103
_GSSENC_REQUEST = 80877104
_CANCEL_REQUEST = 80877102
_ENDS_A_ROUND_TRIP = frozenset(b"SQHcf")  # Sync, Query, Flush, CopyDone, CopyFail
_READY_FOR_QUERY = ord("Z")


@dataclass
class Counts:
    """What went through the proxy: totals since it started, or within one `count()` block."""

    round_trips: int = 0
    """Client batches that end in Sync, Query or Flush (or CopyDone/CopyFail): the waits on the server."""
    ready_for_query: int = 0
    """The server's ReadyForQuery messages (one per Sync or Query), start-up's excluded."""
    messages: dict[str, int] = field(default_factory=dict)
    """Client messages by type letter (`Q`, `P`, `B`, `E`, `S`, ...), start-up's excluded."""
    connections: int = 0
    """Connections opened through the proxy."""

    def minus(self, earlier: Counts) -> Counts:
        return Counts(
            self.round_trips - earlier.round_trips,
            self.ready_for_query - earlier.ready_for_query,
            {k: v - earlier.messages.get(k, 0) for k, v in self.messages.items() if v != earlier.messages.get(k, 0)},
            self.connections - earlier.connections,
        )

    def copy(self) -> Counts:
        return replace(self, messages=dict(self.messages))


class _Link:
    """One client connection: the two streams' parsers."""

    def __init__(self, counts: Counts, lock: threading.Lock) -> None:
        self.counts = counts
        self.lock = lock
        self.client = bytearray()
        self.server = bytearray()
        self.starting = True
        """Before the client's StartupMessage (untyped packets) is through."""
        self.ssl_answer_due = False
        """The client asked for SSL or GSS encryption: the server's next byte is its one-letter answer."""
        self.ready = False
        """The server's first ReadyForQuery (the end of start-up) has come."""
        self.opaque = False
        """The connection is encrypted (the client asked for TLS and the server agreed): nothing is counted."""

    def from_client(self, data: bytes) -> None:
        if self.opaque:
            return
        buffer = self.client
        buffer += data
        last: int | None = None
        seen: list[int] = []
        while True:
            if self.starting:
                if len(buffer) < 8:
                    break
                (length, code) = struct.unpack("!ii", buffer[:8])
                if len(buffer) < length:
                    break
                del buffer[:length]
                if code in (_SSL_REQUEST, _GSSENC_REQUEST):
                    self.ssl_answer_due = True
                elif code != _CANCEL_REQUEST:
                    self.starting = False
                continue
            if len(buffer) < 5:
                break
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                break
            kind = buffer[0]
            del buffer[: 1 + length]
            if self.ready:
                seen.append(kind)
            last = kind
        if not seen:
            return
        with self.lock:
            for kind in seen:
                letter = chr(kind)
                self.counts.messages[letter] = self.counts.messages.get(letter, 0) + 1
            if last in _ENDS_A_ROUND_TRIP:
                self.counts.round_trips += 1

    def from_server(self, data: bytes) -> None:
        if self.opaque:
            return
        buffer = self.server
        buffer += data
        if self.ssl_answer_due and buffer:
            self.ssl_answer_due = False
            if buffer[0] in b"SG":  # encrypted from here on: nothing more can be read
                self.opaque = True
                return
            del buffer[:1]
        ready = 0
        while len(buffer) >= 5:
            (length,) = struct.unpack("!i", buffer[1:5])
            if len(buffer) < 1 + length:
                break
            kind = buffer[0]
            del buffer[: 1 + length]
            if kind == _READY_FOR_QUERY:
                if self.ready:
                    ready += 1
                self.ready = True
        if ready:
            with self.lock:
                self.counts.ready_for_query += ready


class RoundTripProxy:
    """A counting proxy in front of `upstream`, listening on 127.0.0.1 (a free port) on the running loop."""

    def __init__(self, upstream: ConnectionSettings) -> None:
        self.upstream = upstream
        self.totals = Counts()
        self._lock = threading.Lock()
        self._server: asyncio.Server | None = None
        self._tasks: set[asyncio.Task[None]] = set()
        self.port = 0

    @property
    def settings(self) -> ConnectionSettings:
        """The upstream's settings, pointed at the proxy: connect with these to be counted."""
        return replace(self.upstream, host="127.0.0.1", port=self.port)

    async def start(self) -> RoundTripProxy:
        self._server = await asyncio.start_server(self._serve, "127.0.0.1", 0)
        self.port = self._server.sockets[0].getsockname()[1]
        return self

    async def stop(self) -> None:
        if self._server is not None:
            self._server.close()
            for task in list(self._tasks):
                task.cancel()
            await asyncio.gather(*self._tasks, return_exceptions=True)
            await self._server.wait_closed()
            self._server = None

    async def __aenter__(self) -> RoundTripProxy:
        return await self.start()

    async def __aexit__(
        self, kind: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        await self.stop()

    def snapshot(self) -> Counts:
        with self._lock:
            return self.totals.copy()

    @contextlib.contextmanager
    def count(self) -> Iterator[Counts]:
        """What goes through while the block runs; the object yielded is filled in when the block ends."""
        before = self.snapshot()
        result = Counts()
        try:
            yield result
        finally:
            delta = self.snapshot().minus(before)
            result.round_trips, result.ready_for_query = delta.round_trips, delta.ready_for_query
            result.messages, result.connections = delta.messages, delta.connections

    async def _open_upstream(self) -> tuple[asyncio.StreamReader, asyncio.StreamWriter]:
        host, port = self.upstream.host, self.upstream.port
        if host.startswith("/"):
            return await asyncio.open_unix_connection(f"{host}/.s.PGSQL.{port}")
        return await asyncio.open_connection(host, port)

    async def _serve(self, client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        task = asyncio.current_task()
        assert task is not None
        self._tasks.add(task)
        link = _Link(self.totals, self._lock)
        with self._lock:
            self.totals.connections += 1
        try:
            server_reader, server_writer = await self._open_upstream()
        except OSError:
            client_writer.close()
            self._tasks.discard(task)
            return
        try:
            await asyncio.gather(
                _pump(client_reader, server_writer, link.from_client),
                _pump(server_reader, client_writer, link.from_server),
            )
        except (OSError, asyncio.CancelledError):
            pass
        finally:
            for writer in (client_writer, server_writer):
                writer.close()
            self._tasks.discard(task)


async def _pump(reader: asyncio.StreamReader, writer: asyncio.StreamWriter, seen: Callable[[bytes], None]) -> None:
    """Copy one direction until it ends, telling `seen` each chunk before forwarding it."""
    try:
        while True:
            data = await reader.read(65536)
            if not data:
                break
            seen(data)
            writer.write(data)
            await writer.drain()
    finally:
        with contextlib.suppress(OSError, RuntimeError):
            if writer.can_write_eof():
                writer.write_eof()


@contextlib.contextmanager
def proxy_thread(upstream: ConnectionSettings) -> Iterator[RoundTripProxy]:
    """A RoundTripProxy running on a thread and loop of its own, for the length of the block."""
    loop = asyncio.new_event_loop()
    proxy = RoundTripProxy(upstream)
    started = threading.Event()

    def run() -> None:
        asyncio.set_event_loop(loop)
        loop.run_until_complete(proxy.start())
        started.set()
        loop.run_forever()

    thread = threading.Thread(target=run, name="round-trip-proxy", daemon=True)
    thread.start()
    started.wait(10)
    try:
        yield proxy
    finally:
        asyncio.run_coroutine_threadsafe(proxy.stop(), loop).result(10)
        loop.call_soon_threadsafe(loop.stop)
        thread.join(10)
        loop.close()
