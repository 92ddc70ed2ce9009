"""The lossy link on loopback, in front of an echo server: each direction delayed, order kept,
and connections cut only once it is armed."""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from indexer.embedded import free_port
from tests.support.lossy_link import Impairment, serve_route

DELAY, JITTER = 0.1, 0.02


async def _echo(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    while data := await reader.read(1024):
        writer.write(data)
        await writer.drain()
    writer.close()


async def _link(cut_share: float, armed: asyncio.Event) -> tuple[list[asyncio.Server], int]:
    echo = await asyncio.start_server(_echo, "127.0.0.1", 0)
    target = echo.sockets[0].getsockname()[1]
    link = Impairment(DELAY, JITTER, cut_share, 0.3, random.Random(1))
    port = free_port()
    proxy = await serve_route(("127.0.0.1", port), ("127.0.0.1", target), link, armed)
    return [echo, proxy], port


async def test_a_round_trip_takes_both_delays_and_keeps_the_order() -> None:
    servers, port = await _link(0.0, asyncio.Event())
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        began = time.monotonic()
        for n in range(20):
            writer.write(f"{n:03d}".encode())
        await writer.drain()
        echoed = await reader.readexactly(60)
        elapsed = time.monotonic() - began
        assert echoed == b"".join(f"{n:03d}".encode() for n in range(20))
        assert 2 * (DELAY - JITTER) <= elapsed < 2 * (DELAY + JITTER) + 0.5, elapsed
    finally:
        writer.close()
        for server in servers:
            server.close()


async def test_connections_are_cut_only_once_armed() -> None:
    armed = asyncio.Event()
    servers, port = await _link(1.0, armed)
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    try:
        await asyncio.sleep(0.5)  # longer than any cut delay: unarmed, nothing is cut
        writer.write(b"ping")
        assert await reader.readexactly(4) == b"ping"
        armed.set()
        with pytest.raises((ConnectionError, asyncio.IncompleteReadError)):
            async with asyncio.timeout(5):
                while True:
                    writer.write(b"ping")
                    await reader.readexactly(4)
    finally:
        writer.close()
        for server in servers:
            server.close()
