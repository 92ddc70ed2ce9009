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


# A client that falls silent (its host cut off, a cable pulled) must not keep its session, and
# the chain's range lock its transaction holds, until the network returns: PostgreSQL would
# wait on such a socket for the kernel's defaults (2 h of keepalive idle, ~15 min of
# retransmits) while every other worker queues behind that lock. These are set per session
# (PostgreSQL 14+; the TCP ones are ignored on a Unix socket), so they bound only the indexer's
# own connections. Each waits on the client's kernel (ACKs, keepalive answers, the socket's
# state), never on the worker's code or PostgreSQL's speed: a busy worker, a slow server or a
# long COPY on a healthy network never trips them.
SILENT_CLIENT_SETTINGS = {
    # Probe a connection after 5 s with no traffic either way, every 2 s, and drop it after 3
    # unanswered probes (Linux: once tcp_user_timeout passes unanswered, with it set): an
    # idle-in-transaction session of a vanished host ends within ~11 s (the cluster test
    # test_worker_host_cut_off_from_postgres_for_30s prints when they were all gone).
    "tcp_keepalives_idle": "5",
    "tcp_keepalives_interval": "2",
    "tcp_keepalives_count": "3",
    # Data the server sent that stays unacknowledged this long (the client's host is gone
    # while a reply is in flight) closes the connection; it counts only unacknowledged data,
    # never time a query or a COPY runs.
    "tcp_user_timeout": "10000",  # ms
    # A backend runs a statement (or waits for a lock) without reading its socket, so it would
    # notice the dead connection only when it answers: check the client is still there every
    # 2 s while a statement runs, and cancel it (and end the session) when it is gone.
    "client_connection_check_interval": "2000",  # ms
}


async def create_pool(dsn: str, min_size: int = 1, max_size: int = 10) -> asyncpg.Pool:
    """Migrate the schema, then open a pool whose connections carry the staging tables and
    whose sessions the server ends when their client falls silent (SILENT_CLIENT_SETTINGS)."""
    conn = await asyncpg.connect(dsn)
    try:
        await migrate(conn)
    finally:
        await conn.close()
    pool = await asyncpg.create_pool(
        dsn,
        min_size=min_size,
        max_size=max_size,
        init=_prepare_connection,
        server_settings=SILENT_CLIENT_SETTINGS,
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
