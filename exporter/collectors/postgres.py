"""PostgreSQL health, collected on an interval over one long-lived connection.

The connection carries `statement_timeout` and `lock_timeout`, and `/metrics` only ever reads
what the last refresh cached: a slow, locked or dead server makes `tindexer_pg_up` 0 and never
slows a scrape. One connection, not a pool, so the health check costs the server one backend.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass, field

import asyncpg

from exporter.collectors.base import PeriodicCollector
from exporter.metrics import Metrics

# pg_stat_activity states; each is exported, at 0 when absent, so a rate or ratio never gaps.
KNOWN_STATES = (
    "active",
    "idle",
    "idle in transaction",
    "idle in transaction (aborted)",
    "fastpath function call",
    "disabled",
)
MAX_TOP_STATEMENTS = 10  # labels rank × query text: 10 keeps the families at ≤ 20 series
QUERY_LABEL_CHARS = 60

# tindexer_pg_probe_latency_seconds
PROBE_SQL = "SELECT 1"

# tindexer_pg_connections{state}, tindexer_pg_connection_utilization_ratio
# Client backends only: background workers have their own slots outside max_connections.
CONNECTIONS_SQL = """
SELECT coalesce(state, 'unknown') AS state,
       count(*)                   AS connections
  FROM pg_stat_activity
 WHERE backend_type = 'client backend'
 GROUP BY 1
"""

# tindexer_pg_max_connections
MAX_CONNECTIONS_SQL = """
SELECT current_setting('max_connections')::int AS max_connections
"""

# tindexer_pg_locks_waiting, tindexer_pg_lock_wait_oldest_seconds: requests not granted, i.e.
# waiting (held locks are not a problem). waitstart (14+) can be NULL for an instant after
# the wait begins; the waiting statement's start (state_change) then bounds it.
LOCKS_SQL = """
SELECT count(*)                                                       AS waiting,
       coalesce(extract(epoch FROM clock_timestamp()
                - min(coalesce(l.waitstart, a.state_change))), 0)::float8 AS oldest_seconds
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted
"""
LOCKS_SQL_BEFORE_14 = """
SELECT count(*)                                                       AS waiting,
       coalesce(extract(epoch FROM clock_timestamp()
                - min(a.state_change)), 0)::float8                    AS oldest_seconds
  FROM pg_locks l
  LEFT JOIN pg_stat_activity a ON a.pid = l.pid
 WHERE NOT l.granted
"""

# tindexer_pg_longest_transaction_seconds: any other backend (autovacuum included), not ours.
LONGEST_TRANSACTION_SQL = """
SELECT coalesce(max(extract(epoch FROM clock_timestamp() - xact_start)), 0)::float8 AS seconds
  FROM pg_stat_activity
 WHERE xact_start IS NOT NULL
   AND pid <> pg_backend_pid()
"""

# tindexer_pg_deadlocks_total, tindexer_pg_cache_hit_ratio, tindexer_pg_database_size_bytes
DATABASE_SQL = """
SELECT deadlocks                                            AS deadlocks,
       blks_hit::float8 / nullif(blks_hit + blks_read, 0)   AS cache_hit_ratio,
       pg_database_size(datid)                              AS size_bytes
  FROM pg_stat_database
 WHERE datname = current_database()
"""

# tindexer_pg_statement_calls_total, tindexer_pg_statement_seconds_total: the schema is where
# the extension was created; absent means no statement statistics, silently.
STATEMENTS_SCHEMA_SQL = """
SELECT extnamespace::regnamespace::text AS schema
  FROM pg_extension
 WHERE extname = 'pg_stat_statements'
"""
STATEMENTS_SQL = """
SELECT query                                  AS query,
       sum(calls)::float8                     AS calls,
       sum({total_time_column})::float8 / 1000 AS seconds
  FROM {schema}.pg_stat_statements
 WHERE dbid = (SELECT oid FROM pg_database WHERE datname = current_database())
 GROUP BY query
 ORDER BY seconds DESC
 LIMIT $1
"""


def query_label(query: str, limit: int = QUERY_LABEL_CHARS) -> str:
    """Statement text as a bounded label: whitespace collapsed, cut to `limit` characters."""
    text = " ".join(query.split())
    return text if len(text) <= limit else text[: limit - 1] + "…"


@dataclass
class Statement:
    query: str
    calls: float
    seconds: float


@dataclass
class HealthSnapshot:
    """Everything one refresh read, published at once so a scrape never sees half of it."""

    probe_seconds: float
    connections: dict[str, int]
    max_connections: int
    locks_waiting: int
    lock_wait_oldest_seconds: float
    longest_transaction_seconds: float
    deadlocks: int
    cache_hit_ratio: float
    database_size_bytes: int
    statements: list[Statement] = field(default_factory=list)


class PostgresHealthCollector(PeriodicCollector):
    """Fills the tindexer_pg_* health families from pg_stat_activity, pg_locks and friends."""

    name = "postgres"

    def __init__(
        self,
        metrics: Metrics,
        dsn: str,
        interval: float = 5.0,
        timeout: float | None = None,
        statement_timeout: float = 2.0,
        lock_timeout: float = 1.0,
        connect_timeout: float = 3.0,
        top_statements: int = MAX_TOP_STATEMENTS,
    ) -> None:
        super().__init__(metrics, interval, timeout)
        self.dsn = dsn
        self.statement_timeout = statement_timeout
        self.lock_timeout = lock_timeout
        self.connect_timeout = min(connect_timeout, self.timeout)
        self.top_statements = max(0, min(top_statements, MAX_TOP_STATEMENTS))
        self._conn: asyncpg.Connection | None = None

    @property
    def backend_pid(self) -> int | None:
        """The server process behind the health connection, when connected."""
        return self._conn.get_server_pid() if self._conn is not None else None

    async def _connection(self) -> asyncpg.Connection:
        if self._conn is None or self._conn.is_closed():
            self._conn = await asyncpg.connect(
                self.dsn,
                timeout=self.connect_timeout,
                server_settings={
                    "application_name": "tindexer-health",
                    "statement_timeout": str(int(self.statement_timeout * 1000)),
                    "lock_timeout": str(int(self.lock_timeout * 1000)),
                },
            )
        return self._conn

    async def refresh(self) -> None:
        conn = await self._connection()
        self.publish(await self.read(conn))

    async def read(self, conn: asyncpg.Connection) -> HealthSnapshot:
        """Run every health query on `conn`; raises when the server fails or times out."""
        started = time.perf_counter()
        await conn.fetchval(PROBE_SQL)
        probe_seconds = time.perf_counter() - started

        rows = await conn.fetch(CONNECTIONS_SQL)
        connections = {row["state"]: row["connections"] for row in rows}
        max_connections = await conn.fetchval(MAX_CONNECTIONS_SQL)
        locks_sql = LOCKS_SQL if conn.get_server_version().major >= 14 else LOCKS_SQL_BEFORE_14
        locks = await conn.fetchrow(locks_sql)
        longest_transaction = await conn.fetchval(LONGEST_TRANSACTION_SQL)
        database = await conn.fetchrow(DATABASE_SQL)
        ratio = database["cache_hit_ratio"]
        return HealthSnapshot(
            probe_seconds=probe_seconds,
            connections=connections,
            max_connections=max_connections,
            locks_waiting=locks["waiting"],
            lock_wait_oldest_seconds=locks["oldest_seconds"],
            longest_transaction_seconds=longest_transaction,
            deadlocks=database["deadlocks"],
            cache_hit_ratio=math.nan if ratio is None else ratio,  # no block read yet
            database_size_bytes=database["size_bytes"],
            statements=await self.read_statements(conn),
        )

    async def read_statements(self, conn: asyncpg.Connection) -> list[Statement]:
        """Top statements by total time, or none when pg_stat_statements is not usable here."""
        if self.top_statements == 0:
            return []
        schema = await conn.fetchval(STATEMENTS_SCHEMA_SQL)
        if schema is None:
            return []
        column = "total_exec_time" if conn.get_server_version().major >= 13 else "total_time"
        sql = STATEMENTS_SQL.format(schema=schema, total_time_column=column)
        try:
            rows = await conn.fetch(sql, self.top_statements)
        except (asyncpg.ObjectNotInPrerequisiteStateError, asyncpg.UndefinedTableError):
            return []  # created but not in shared_preload_libraries, or dropped meanwhile
        return [Statement(row["query"] or "", row["calls"], row["seconds"]) for row in rows]

    def publish(self, snapshot: HealthSnapshot) -> None:
        """Set every family from one snapshot, with no await in between."""
        m = self.metrics
        m.pg_probe_latency.observe(snapshot.probe_seconds)
        m.pg_connections.clear()
        for state in (*KNOWN_STATES, *snapshot.connections):
            m.pg_connections.labels(state).set(snapshot.connections.get(state, 0))
        total = sum(snapshot.connections.values())
        m.pg_max_connections.set(snapshot.max_connections)
        m.pg_connection_utilization.set(total / snapshot.max_connections)
        m.pg_locks_waiting.set(snapshot.locks_waiting)
        m.pg_lock_wait_oldest.set(snapshot.lock_wait_oldest_seconds)
        m.pg_longest_transaction.set(snapshot.longest_transaction_seconds)
        m.pg_deadlocks.set(snapshot.deadlocks)
        m.pg_cache_hit_ratio.set(snapshot.cache_hit_ratio)
        m.pg_database_size.set(snapshot.database_size_bytes)
        m.pg_statement_calls.clear()  # ranks that fell out of the top N disappear
        m.pg_statement_time.clear()
        for rank, statement in enumerate(snapshot.statements, start=1):
            labels = (str(rank), query_label(statement.query))
            m.pg_statement_calls.set(statement.calls, *labels)
            m.pg_statement_time.set(statement.seconds, *labels)
        m.pg_up.set(1)

    async def on_failure(self, error: BaseException) -> None:
        """Mark the server down and drop the connection; the next refresh reconnects."""
        self.metrics.pg_up.set(0)
        if self._conn is not None:
            self._conn.terminate()  # no goodbye round trip: the server may be hung
            self._conn = None

    async def close(self) -> None:
        """Close the health connection (on shutdown)."""
        if self._conn is not None:
            conn, self._conn = self._conn, None
            try:
                await conn.close(timeout=self.connect_timeout)
            except (asyncpg.PostgresError, OSError, TimeoutError):
                conn.terminate()
