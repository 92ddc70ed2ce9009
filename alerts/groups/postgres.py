"""Is PostgreSQL keeping up: connection headroom and the indexer's own query latency."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, needs, selector


def group(config: AlertConfig) -> Group:
    job = config.job_selector
    return Group(
        "tindexer-postgres",
        (
            Alert(
                name="TindexerPostgresConnectionsHigh",
                # Every worker reports the same server: one alert, not one per worker.
                expr=(
                    f"max by (job) (tindexer_pg_connection_utilization_ratio{selector(job)})"
                    f" > {config.pg_connection_utilization}"
                ),
                for_=config.pg_connections_for,
                severity="warning",
                summary="PostgreSQL is close to max_connections.",
                description=(
                    "PostgreSQL has {{ $value | humanizePercentage }} of max_connections in use "
                    f"(threshold {config.pg_connection_utilization:.0%})."
                ),
                depends_on=needs("postgres"),
            ),
            Alert(
                name="TindexerPostgresQueryLatencyHigh",
                expr=(
                    "histogram_quantile(0.95, sum by (query, le) (rate("
                    f"tindexer_pg_query_duration_seconds_bucket{selector(job)}"
                    f"[{config.pg_query_window}])))\n"
                    f"> {config.pg_query_p95_seconds}"
                ),
                for_=config.pg_query_latency_for,
                severity="warning",
                summary="The indexer's PostgreSQL queries are slower than 50 ms at p95.",
                description=(
                    "Query {{ $labels.query }} took {{ $value | humanizeDuration }} at p95 over "
                    f"the last {config.pg_query_window}."
                ),
                depends_on=needs("postgres"),
            ),
        ),
    )
