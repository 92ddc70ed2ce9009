"""A TCP link with latency, in front of a real server: what a worker far from its Temporal sees.

Every byte the server sends reaches the client `delay` seconds later, in order; what the client
sends passes at once. On loopback a poll's answer arrives within a millisecond, so a worker that
stops almost never cuts off a poll the server has already answered; across a real network the
answer is in flight for the link's latency, and this link keeps it in flight that long.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Callable

from indexer.embedded import free_port

CHUNK_BYTES = 64 * 1024


async def delayed_pipe(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, latency: Callable[[], float]
) -> None:
    """Copy reader to writer, each chunk `latency()` seconds after it was read; a jittered
    latency never reorders chunks (each is due no earlier than the one before)."""
    queue: asyncio.Queue[tuple[float, bytes]] = asyncio.Queue()

    async def read() -> None:
        last = 0.0
        while True:
            chunk = await reader.read(CHUNK_BYTES)
            last = max(last, time.monotonic() + latency())
            queue.put_nowait((last, chunk))
            if not chunk:
                return

    reading = asyncio.create_task(read())
    try:
        while True:
            due, chunk = await queue.get()
            await asyncio.sleep(max(0.0, due - time.monotonic()))
            if not chunk:
                break
            writer.write(chunk)
            await writer.drain()
    finally:
        reading.cancel()
        with contextlib.suppress(asyncio.CancelledError, ConnectionError):
            await reading
        writer.close()


@contextlib.asynccontextmanager
async def slow_link(target_host: str, target_port: int, delay: float) -> AsyncIterator[str]:
    """Listen on a free loopback port and forward to the target; yields `host:port`."""
    connections: set[asyncio.Future[list[object]]] = set()

    async def forward(
        client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter
    ) -> None:
        try:
            server_reader, server_writer = await asyncio.open_connection(target_host, target_port)
        except OSError:
            client_writer.close()
            return
        pipes = asyncio.gather(
            delayed_pipe(client_reader, server_writer, lambda: 0.0),
            delayed_pipe(server_reader, client_writer, lambda: delay),
            return_exceptions=True,
        )
        connections.add(pipes)
        try:
            await pipes
        except asyncio.CancelledError:
            pass  # the link closed under it
        finally:
            connections.discard(pipes)

    port = free_port()
    server = await asyncio.start_server(forward, "127.0.0.1", port)
    try:
        yield f"127.0.0.1:{port}"
    finally:
        server.close()
        for pipes in list(connections):
            pipes.cancel()
        await server.wait_closed()
