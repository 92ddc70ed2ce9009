"""Is every part up: the exporter target, Temporal, PostgreSQL, the background collectors."""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, selector

# Collectors that read PostgreSQL or Temporal fail whenever those are down: the down alert says
# it already, so the Alertmanager config inhibits these collectors' alerts meanwhile.
POSTGRES_COLLECTORS = "postgres|pg_pool|progress"
TEMPORAL_COLLECTORS = "temporal_.*"
# The ranges queue (indexer/workflows/task_queues.py, RANGES_SUFFIX): IndexRange activities.
RANGES_BACKLOG = 'task_queue=~".+-ranges",type="activity"'


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
                name="TindexerWorkerHostDown",
                # A target that was a worker lately and is down now, while any live process
                # (every worker describes the queues) sees ranges waiting for a worker.
                expr=(
                    f"up{selector(job)} == 0\n"
                    "and on (instance) max_over_time("
                    f"tindexer_worker_info{selector(job)}[{config.worker_seen_window}])\n"
                    "and on () max(tindexer_task_queue_backlog"
                    f"{selector(job, RANGES_BACKLOG)}) > 0"
                ),
                for_=config.worker_host_down_for,
                severity="warning",
                summary="A worker host stopped reporting while ranges wait in the queue.",
                description=(
                    "Worker {{ $labels.instance }} has not answered a scrape for "
                    f"{config.worker_host_down_for} while ranges are queued: its running ranges"
                    " move to the other workers, but its share of the capacity is gone."
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
