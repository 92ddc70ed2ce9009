"""PostgreSQL health: is the database up, near its limits, or slowing the indexer down."""

from __future__ import annotations

from alerts.config import CONFIG
from dashboards.common import (
    BYTES,
    COUNT,
    GREEN,
    PER_SECOND,
    PERCENT,
    RED,
    SECONDS,
    YELLOW,
    Query,
    Rows,
    stat,
    steps,
    table,
    timeseries,
    value_mappings,
)
from dashboards.queries import postgres as q

TITLE = "Tindexer / PostgreSQL health"
DESCRIPTION = (
    "The indexer's PostgreSQL: connections vs max, locks, deadlocks, transactions, cache, size, "
    "and the latency of the indexer's own queries (bar: p95 < 50 ms)."
)
VARIABLES: tuple[str, ...] = ()

UTILIZATION = steps((GREEN, None), (YELLOW, 0.6), (RED, CONFIG.pg_connection_utilization))
QUERY_BAR = steps((GREEN, None), (RED, CONFIG.pg_query_p95_seconds))

ROWS: Rows = [
    (
        "Availability",
        [
            stat(
                "PostgreSQL up",
                "Whether every indexer process's last health collection connected and ran.",
                COUNT,
                Query(q.UP),
                mappings=value_mappings({0: ("down", RED), 1: ("up", GREEN)}),
                thresholds=steps((RED, None), (GREEN, 1)),
            ),
            stat(
                "Connection utilisation",
                "Server connections in use over max_connections; the alert fires above "
                f"{CONFIG.pg_connection_utilization:.0%}.",
                PERCENT,
                Query(q.CONNECTION_UTILIZATION),
                thresholds=UTILIZATION,
            ),
            stat(
                "Database size",
                "Size of the indexer's database on disk.",
                BYTES,
                Query(q.DATABASE_SIZE),
            ),
            stat(
                "Cache hit ratio",
                "Share of block reads served from shared buffers rather than disk.",
                PERCENT,
                Query(q.CACHE_HIT_RATIO),
                thresholds=steps((RED, None), (YELLOW, 0.9), (GREEN, 0.99)),
            ),
            stat(
                "Waiting locks",
                "Lock requests waiting to be granted (not merely held).",
                COUNT,
                Query(q.LOCKS_WAITING),
                thresholds=steps((GREEN, None), (YELLOW, 1), (RED, 10)),
            ),
            stat(
                "Longest transaction",
                "Age of the oldest open transaction; long ones hold back vacuum and locks.",
                SECONDS,
                Query(q.LONGEST_TRANSACTION),
                thresholds=steps((GREEN, None), (YELLOW, 60), (RED, 600)),
            ),
            stat(
                "Indexer query p95 (all queries)",
                "p95 of every query the indexer runs, against the plan's bar: below "
                f"{CONFIG.pg_query_p95_seconds * 1000:g} ms (TindexerPostgresQueryLatencyHigh "
                "alerts per query).",
                SECONDS,
                Query(q.ALL_QUERIES_P95),
                thresholds=QUERY_BAR,
            ),
        ],
    ),
    (
        "Connections and locks",
        [
            timeseries(
                "Connections by state vs max",
                "Server connections by state (active, idle, idle in transaction, …) stacked, "
                "against max_connections.",
                COUNT,
                Query(q.CONNECTIONS_BY_STATE, "{{state}}"),
                Query(q.MAX_CONNECTIONS, "max_connections"),
            ),
            timeseries(
                "Indexer pool connections",
                "Connections of the indexer's asyncpg pools by state (in_use, idle, max).",
                COUNT,
                Query(q.POOL_CONNECTIONS, "{{state}}"),
            ),
            timeseries(
                "Lock waits and deadlocks",
                "Lock requests waiting to be granted, and deadlocks detected per interval.",
                COUNT,
                Query(q.LOCKS_WAITING, "waiting"),
                Query(q.DEADLOCKS, "deadlocks"),
            ),
        ],
    ),
    (
        "Latency",
        [
            timeseries(
                "Indexer query p95",
                "p95 of the indexer's own queries by name; the bar is 50 ms.",
                SECONDS,
                Query(q.QUERY_P95, "{{query}}"),
                thresholds=QUERY_BAR,
            ),
            timeseries(
                "Health probe p95",
                "p95 round trip of the health collector's `SELECT 1` probe.",
                SECONDS,
                Query(q.PROBE_P95, "probe"),
                thresholds=QUERY_BAR,
            ),
            timeseries(
                "IndexRange store phase p95",
                "Time an IndexRange activity spends writing its blocks (COPY + upsert).",
                SECONDS,
                Query(q.STORE_P95, "{{chain}}"),
            ),
            timeseries(
                "Oldest lock wait",
                "How long the longest-waiting lock request has waited.",
                SECONDS,
                Query(q.LOCK_WAIT_OLDEST, "oldest wait"),
                thresholds=steps((GREEN, None), (YELLOW, 1), (RED, 30)),
                width=24,
            ),
        ],
    ),
    (
        "Statements and collectors",
        [
            table(
                "Top statements by time",
                "Statements taking the most execution time per second, from "
                "pg_stat_statements (empty when the extension is not installed).",
                SECONDS,
                Query(q.TOP_STATEMENTS),
                width=12,
            ),
            table(
                "Collector health",
                "Seconds since each background collector last succeeded; its metrics are that old.",
                SECONDS,
                Query(q.COLLECTOR_AGE),
                thresholds=steps(
                    (GREEN, None), (YELLOW, 30), (RED, CONFIG.collector_stale_seconds)
                ),
                width=12,
            ),
            timeseries(
                "Collector refresh duration",
                "How long each background collector's last refresh took.",
                SECONDS,
                Query(q.COLLECTOR_DURATION, "{{collector}}"),
                width=12,
            ),
            timeseries(
                "Collector failures per second",
                "Refreshes of each background collector that failed; its metrics go stale.",
                PER_SECOND,
                Query(q.COLLECTOR_ERRORS, "{{collector}}"),
                thresholds=steps((GREEN, None), (RED, 0.01)),
                width=12,
            ),
        ],
    ),
]
