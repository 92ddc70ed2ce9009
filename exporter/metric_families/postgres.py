"""PostgreSQL: server health (collected on an interval, never on the scrape path), this
process's pool, and the indexer's own query durations."""

from __future__ import annotations

from exporter.metric_families.base import FAST_BUCKETS, Families


class PostgresFamilies(Families):
    """The PostgreSQL families."""

    def declare(self) -> None:
        self.pg_up = self._gauge(
            "tindexer_pg_up",
            "Whether the last PostgreSQL health collection connected and ran (1) or not (0).",
        )
        self.pg_connections = self._gauge(
            "tindexer_pg_connections",
            "Server connections by state (active, idle, idle in transaction, …).",
            ["state"],
        )
        self.pg_max_connections = self._gauge(
            "tindexer_pg_max_connections",
            "The server's max_connections setting.",
        )
        self.pg_connection_utilization = self._gauge(
            "tindexer_pg_connection_utilization_ratio",
            "Server connections in use over max_connections.",
        )
        self.pg_locks_waiting = self._gauge(
            "tindexer_pg_locks_waiting",
            "Lock requests waiting to be granted (not merely held).",
        )
        self.pg_lock_wait_oldest = self._gauge(
            "tindexer_pg_lock_wait_oldest_seconds",
            "How long the longest-waiting lock request has waited.",
        )
        self.pg_deadlocks = self._observed_counter(
            "tindexer_pg_deadlocks_total",
            "Deadlocks detected in the indexer's database since statistics were reset.",
        )
        self.pg_longest_transaction = self._gauge(
            "tindexer_pg_longest_transaction_seconds",
            "Age of the oldest open transaction on the server.",
        )
        self.pg_database_size = self._gauge(
            "tindexer_pg_database_size_bytes",
            "Size of the indexer's database on disk.",
        )
        self.pg_cache_hit_ratio = self._gauge(
            "tindexer_pg_cache_hit_ratio",
            "Share of block reads in the indexer's database served from shared buffers.",
        )
        self.pg_probe_latency = self._histogram(
            "tindexer_pg_probe_latency_seconds",
            "Round trip of an active `SELECT 1` probe on the health connection.",
            buckets=FAST_BUCKETS,
        )
        self.pg_query_duration = self._histogram(
            "tindexer_pg_query_duration_seconds",
            "Duration of the indexer's own queries, by a fixed query name.",
            ["query"],
            buckets=FAST_BUCKETS,
        )
        self.pg_pool_connections = self._gauge(
            "tindexer_pg_pool_connections",
            "Connections of this process's asyncpg pool, by state (in_use, idle, max).",
            ["state"],
        )
        self.pg_statement_calls = self._observed_counter(
            "tindexer_pg_statement_calls_total",
            "Calls of the top statements by total time (pg_stat_statements), by rank.",
            ["rank", "query"],
        )
        self.pg_statement_time = self._observed_counter(
            "tindexer_pg_statement_seconds_total",
            "Total execution time of the top statements (pg_stat_statements), by rank.",
            ["rank", "query"],
        )
