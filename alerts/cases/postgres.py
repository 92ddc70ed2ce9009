"""promtool cases for alerts/groups/postgres.py."""

from __future__ import annotations

from alerts.cases import JOB, Check, Fires, Scenario, Suite, labels

W1 = 'job="tindexer",instance="w1:9464"'
W2 = 'job="tindexer",instance="w2:9464"'

CONNECTIONS_HIGH = Fires(
    labels(JOB, severity="warning"),
    "PostgreSQL is close to max_connections.",
    "PostgreSQL has 90% of max_connections in use (threshold 80%).",
    "tindexerpostgresconnectionshigh",
)
QUERY_SLOW = Fires(
    {"query": "store_range", "severity": "warning"},
    "The indexer's PostgreSQL queries are slower than 50 ms at p95.",
    "Query store_range took 97.5ms at p95 over the last 10m.",
    "tindexerpostgresquerylatencyhigh",
)


def buckets(query: str, per_minute: dict[str, int]) -> tuple[tuple[str, str], ...]:
    """A query-duration histogram growing by `per_minute` cumulative counts per bucket."""
    return tuple(
        (
            f'tindexer_pg_query_duration_seconds_bucket{{{W1},query="{query}",le="{le}"}}',
            f"0+{count}x40",
        )
        for le, count in per_minute.items()
    )


SUITE = Suite(
    "postgres",
    (
        Scenario(
            "two workers report 90% of max_connections from 6m: one alert, not two",
            (
                (f"tindexer_pg_connection_utilization_ratio{{{W1}}}", "0.5x5 0.9x20"),
                (f"tindexer_pg_connection_utilization_ratio{{{W2}}}", "0.5x5 0.9x20"),
            ),
            (
                Check("10m", "TindexerPostgresConnectionsHigh"),  # pending
                Check("20m", "TindexerPostgresConnectionsHigh", (CONNECTIONS_HIGH,)),
            ),
        ),
        Scenario(
            "75% of max_connections is headroom enough",
            ((f"tindexer_pg_connection_utilization_ratio{{{W1}}}", "0.75x30"),),
            (Check("25m", "TindexerPostgresConnectionsHigh"),),
        ),
        Scenario(
            "store_range takes 50–100 ms every time; coverage stays under 25 ms",
            (
                *buckets("store_range", {"0.025": 0, "0.05": 0, "0.1": 100, "+Inf": 100}),
                *buckets("coverage", {"0.025": 100, "0.05": 100, "0.1": 100, "+Inf": 100}),
            ),
            (
                Check("10m", "TindexerPostgresQueryLatencyHigh"),  # pending
                Check("25m", "TindexerPostgresQueryLatencyHigh", (QUERY_SLOW,)),
            ),
        ),
    ),
)
