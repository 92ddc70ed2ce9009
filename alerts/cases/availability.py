"""promtool cases for alerts/groups/availability.py."""

from __future__ import annotations

from alerts.cases import INSTANCE, Check, Fires, Scenario, Suite, labels

W1 = 'job="tindexer",instance="w1:9464"'
W2 = 'job="tindexer",instance="w2:9464"'
API = 'job="tindexer",instance="api:9464"'
RANGES = 'task_queue="tindexer-ranges",type="activity"'

EXPORTER_DOWN = Fires(
    labels(INSTANCE, severity="critical"),
    "Prometheus cannot scrape a tindexer /metrics endpoint.",
    "w1:9464 has not answered a scrape for 5m: its chains, queues and database are unwatched.",
    "tindexerexporterdown",
)
WORKER_HOST_DOWN = Fires(
    labels(INSTANCE, severity="warning"),
    "A worker host stopped reporting while ranges wait in the queue.",
    "Worker w1:9464 has not answered a scrape for 2m while ranges are queued: its running"
    " ranges move to the other workers, but its share of the capacity is gone.",
    "tindexerworkerhostdown",
)
TEMPORAL_UNREACHABLE = Fires(
    labels(INSTANCE, severity="critical"),
    "The indexer cannot reach the Temporal frontend.",
    "w1:9464 has failed Temporal's health check for 2m: no range is scheduled or indexed.",
    "tindexertemporalunreachable",
)
POSTGRES_DOWN = Fires(
    labels(INSTANCE, severity="critical"),
    "The indexer cannot reach its PostgreSQL database.",
    "w1:9464 has failed every PostgreSQL health check for 1m: no block can be stored.",
    "tindexerpostgresdown",
)
COLLECTOR_FAILING = Fires(
    labels(INSTANCE, severity="warning", collector="postgres"),
    "A background metrics collector keeps failing; its metrics are stale.",
    "Collector postgres on w1:9464 last succeeded 9m 0s ago.",
    "tindexercollectorfailing",
)

SUITE = Suite(
    "availability",
    (
        Scenario(
            "the target stops answering at 2m; another job's down target is not ours",
            (
                (f"up{{{W1}}}", "1 1 0x10"),
                ('up{job="node",instance="n1:9100"}', "0x12"),
            ),
            (
                Check("5m", "TindexerExporterDown"),  # down 3m: still pending
                Check("8m", "TindexerExporterDown", (EXPORTER_DOWN,)),
            ),
        ),
        Scenario(
            "worker w1 and a process that runs no worker stop answering at 2m; ranges wait",
            (
                (f"up{{{W1}}}", "1 1 0x10"),
                (f'tindexer_worker_info{{{W1},host="h1",worker="7@h1"}}', "1 1 _x10"),
                (f"up{{{API}}}", "1 1 0x10"),
                (f"up{{{W2}}}", "1x12"),
                (f'tindexer_worker_info{{{W2},host="h2",worker="7@h2"}}', "1x12"),
                (f"tindexer_task_queue_backlog{{{W2},{RANGES}}}", "3x12"),
            ),
            (
                Check("3m", "TindexerWorkerHostDown"),  # down 1m: still pending
                Check("5m", "TindexerWorkerHostDown", (WORKER_HOST_DOWN,)),
            ),
        ),
        Scenario(
            "worker w1 stops answering at 2m with no range waiting (only scans and scheduling)",
            (
                (f"up{{{W1}}}", "1 1 0x10"),
                (f'tindexer_worker_info{{{W1},host="h1",worker="7@h1"}}', "1 1 _x10"),
                (f"tindexer_task_queue_backlog{{{W2},{RANGES}}}", "0x12"),
                (
                    f'tindexer_task_queue_backlog{{{W2},task_queue="tindexer",type="activity"}}',
                    "4x12",
                ),
            ),
            (Check("6m", "TindexerWorkerHostDown"),),
        ),
        Scenario(
            "Temporal fails its health check from 1m to 6m, then recovers",
            ((f"tindexer_temporal_up{{{W1}}}", "1 0x5 1x5"),),
            (
                Check("2m", "TindexerTemporalUnreachable"),
                Check("4m", "TindexerTemporalUnreachable", (TEMPORAL_UNREACHABLE,)),
                Check("8m", "TindexerTemporalUnreachable"),
            ),
        ),
        Scenario(
            "PostgreSQL is down from 2m",
            ((f"tindexer_pg_up{{{W1}}}", "1 1 0x5"),),
            (
                Check("2m", "TindexerPostgresDown"),
                Check("4m", "TindexerPostgresDown", (POSTGRES_DOWN,)),
            ),
        ),
        Scenario(
            "the postgres collector last succeeds at 3m; the progress collector keeps succeeding",
            (
                (
                    f'tindexer_collector_last_success_timestamp_seconds{{{W1},collector="postgres"}}',
                    "0+60x3 180x20",
                ),
                (
                    f'tindexer_collector_last_success_timestamp_seconds{{{W1},collector="progress"}}',
                    "0+60x23",
                ),
            ),
            (
                Check("8m", "TindexerCollectorFailing"),  # stale since 5m: pending
                Check("12m", "TindexerCollectorFailing", (COLLECTOR_FAILING,)),
            ),
        ),
    ),
)
