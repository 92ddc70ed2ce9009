"""PromQL for the PostgreSQL health dashboard. The server is the same for every worker that
reports it, so gauges take the max over instances rather than summing copies."""

from __future__ import annotations

UP = "min(tindexer_pg_up)"
CONNECTIONS_BY_STATE = "max by (state) (tindexer_pg_connections)"
MAX_CONNECTIONS = "max(tindexer_pg_max_connections)"
CONNECTION_UTILIZATION = "max(tindexer_pg_connection_utilization_ratio)"
LOCKS_WAITING = "max(tindexer_pg_locks_waiting)"
LOCK_WAIT_OLDEST = "max(tindexer_pg_lock_wait_oldest_seconds)"
DEADLOCKS = "max(increase(tindexer_pg_deadlocks_total[$__rate_interval]))"
LONGEST_TRANSACTION = "max(tindexer_pg_longest_transaction_seconds)"
CACHE_HIT_RATIO = "max(tindexer_pg_cache_hit_ratio)"
DATABASE_SIZE = "max(tindexer_pg_database_size_bytes)"
PROBE_P95 = (
    "histogram_quantile(0.95, sum by (le) "
    "(rate(tindexer_pg_probe_latency_seconds_bucket[$__rate_interval])))"
)
QUERY_P95 = (
    "histogram_quantile(0.95, sum by (query, le) "
    "(rate(tindexer_pg_query_duration_seconds_bucket[$__rate_interval])))"
)
# Every query of the indexer's at once: the plan's success criterion is "< 50 ms p95".
ALL_QUERIES_P95 = (
    "histogram_quantile(0.95, sum by (le) "
    "(rate(tindexer_pg_query_duration_seconds_bucket[$__rate_interval])))"
)
STORE_P95 = (
    "histogram_quantile(0.95, sum by (chain, le) (rate("
    'tindexer_index_range_duration_seconds_bucket{phase="store"}[$__rate_interval])))'
)
POOL_CONNECTIONS = "sum by (state) (tindexer_pg_pool_connections)"
TOP_STATEMENTS = (
    "topk(10, sum by (query) (rate(tindexer_pg_statement_seconds_total[$__rate_interval])))"
)
COLLECTOR_AGE = "max by (collector) (time() - tindexer_collector_last_success_timestamp_seconds)"
COLLECTOR_DURATION = "max by (collector) (tindexer_collector_duration_seconds)"
COLLECTOR_ERRORS = "sum by (collector) (rate(tindexer_collector_errors_total[$__rate_interval]))"
