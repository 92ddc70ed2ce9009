"""Unauthenticated reads get a bounded share of the pool, a bounded wait and a statement timeout.

Without a bound, a flood of `GET /chains/status` against a slow or locked table would take every
pooled connection and hold it until the lock went away: a PATCH, a DELETE or `/readyz` would then
queue behind the flood. Here at most `connections` reads hold a connection at once; a read that
waits longer than `wait_seconds` for one, or runs a statement longer than `statement_seconds`,
is a quick 503 the client can retry, and the rest of the pool stays free for everything else.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass, field

import asyncpg

from indexer.api.errors import ApiError
from indexer.store.db import limit_statement_time

READ_CONNECTIONS = 4  # of the API's pool (10 for `tindexer api`): the rest serve writes and probes
READ_WAIT_SECONDS = 1.0  # a read that cannot start within this is refused, not queued
READ_STATEMENT_SECONDS = 5.0  # a status costs milliseconds (O(gaps)); this long means a lock
BUSY = "PostgreSQL is busy: retry shortly"


@dataclass
class ReadLimits:
    """How much of the pool reads may hold, and for how long."""

    connections: int = READ_CONNECTIONS
    wait_seconds: float = READ_WAIT_SECONDS
    statement_seconds: float = READ_STATEMENT_SECONDS
    slots: asyncio.Semaphore = field(init=False, repr=False)

    def __post_init__(self) -> None:
        self.slots = asyncio.Semaphore(self.connections)


@contextlib.asynccontextmanager
async def read_connection(
    pool: asyncpg.Pool, limits: ReadLimits
) -> AsyncIterator[asyncpg.Connection]:
    """A pooled connection in a read-only transaction whose statements time out; 503 if busy."""
    deadline = asyncio.get_running_loop().time() + limits.wait_seconds
    try:
        async with asyncio.timeout_at(deadline):
            await limits.slots.acquire()
    except TimeoutError:
        raise ApiError(503, BUSY) from None
    try:
        try:
            async with asyncio.timeout_at(deadline):
                conn = await pool.acquire()
        except TimeoutError:
            raise ApiError(503, BUSY) from None
        try:
            async with conn.transaction(readonly=True):
                await limit_statement_time(conn, limits.statement_seconds)
                yield conn
        except asyncpg.QueryCanceledError:
            raise ApiError(503, BUSY) from None
        finally:
            await pool.release(conn)
    finally:
        limits.slots.release()
