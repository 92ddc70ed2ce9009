"""Is every part up: the exporter target, Temporal, PostgreSQL, the background collectors."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, selector

# Collectors that read PostgreSQL or Temporal fail whenever those are down: the down alert says
# it already, so the Alertmanager config inhibits these collectors' alerts meanwhile.
POSTGRES_COLLECTORS = "postgres|pg_pool|progress"
TEMPORAL_COLLECTORS = "temporal_.*"


def group(config: AlertConfig) -> Group:
    job = config.job_selector
    return Group(
        "tindexer-availability",
        (
            Alert(
                name="TindexerExporterDown",
                expr=f"up{selector(job)} == 0",
                for_=config.exporter_down_for,
                severity="critical",
                summary="Prometheus cannot scrape a tindexer /metrics endpoint.",
                description=(
                    "{{ $labels.instance }} has not answered a scrape for "
                    f"{config.exporter_down_for}: its chains, queues and database are unwatched."
                ),
            ),
            Alert(
                name="TindexerTemporalUnreachable",
                expr=f"tindexer_temporal_up{selector(job)} == 0",
                for_=config.temporal_unreachable_for,
                severity="critical",
                summary="The indexer cannot reach the Temporal frontend.",
                description=(
                    "{{ $labels.instance }} has failed Temporal's health check for "
                    f"{config.temporal_unreachable_for}: no range is scheduled or indexed."
                ),
            ),
            Alert(
                name="TindexerPostgresDown",
                expr=f"tindexer_pg_up{selector(job)} == 0",
                for_=config.postgres_down_for,
                severity="critical",
                summary="The indexer cannot reach its PostgreSQL database.",
                description=(
                    "{{ $labels.instance }} has failed every PostgreSQL health check for "
                    f"{config.postgres_down_for}: no block can be stored."
                ),
            ),
            Alert(
                name="TindexerCollectorFailing",
                expr=(
                    f"time() - tindexer_collector_last_success_timestamp_seconds{selector(job)}"
                    f" > {config.collector_stale_seconds}"
                ),
                for_=config.collector_failing_for,
                severity="warning",
                summary="A background metrics collector keeps failing; its metrics are stale.",
                description=(
                    "Collector {{ $labels.collector }} on {{ $labels.instance }} last succeeded "
                    "{{ $value | humanizeDuration }} ago."
                ),
                depends_on={
                    "postgres": {"collector": POSTGRES_COLLECTORS},
                    "temporal": {"collector": TEMPORAL_COLLECTORS},
                },
            ),
        ),
    )
