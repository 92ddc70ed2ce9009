"""Connection pool with per-connection staging tables for bulk writes; probes; read time limits."""

from __future__ import annotations

import asyncpg

from indexer.store.schema import migrate

# The staging table lives per connection (TEMP) and empties itself at commit, so a re-write of
# blocks is COPY into staging + one INSERT … ON CONFLICT, without creating a table per write.
# Created after the migrations, it has the blocks table's current columns. (Child rows need no
# staging: store_batch deletes the blocks' old rows and copies fresh ones in.)
STAGING_TABLES = """
CREATE TEMP TABLE IF NOT EXISTS staging_blocks
    (LIKE blocks INCLUDING DEFAULTS) ON COMMIT DELETE ROWS;
"""


async def _prepare_connection(conn: asyncpg.Connection) -> None:
    await conn.execute(STAGING_TABLES)


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Migrate the schema, then open a pool whose connections carry the staging tables."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn, min_size=min_size, max_size=max_size, init=_prepare_connection
    )
    assert pool is not None
    return pool


PING = "SELECT 1"


async def ping(conn: asyncpg.Connection | asyncpg.Pool) -> None:
    """One round trip: raises if the server does not answer."""
    await conn.fetchval(PING)


BACKEND_PID = "SELECT pg_backend_pid()"


async def backend_pid(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """Process id of the server backend serving this connection (PostgreSQL forks one each)."""
    pid: int = await conn.fetchval(BACKEND_PID)
    return pid


# `true`: for the current transaction only, so a pooled connection never keeps it.
LOCAL_STATEMENT_TIMEOUT = "SELECT set_config('statement_timeout', $1, true)"


async def limit_statement_time(conn: asyncpg.Connection, seconds: float) -> None:
    """Cancel any statement of the open transaction that runs longer than `seconds`."""
    await conn.fetchval(LOCAL_STATEMENT_TIMEOUT, f"{max(1, round(seconds * 1000))}ms")
