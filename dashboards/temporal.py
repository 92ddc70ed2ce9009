"""Temporal: is the cluster the bottleneck — queue backlogs, pollers, worker slots, rate limits."""

from __future__ import annotations

from dashboards.common import (
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
    timeseries,
    value_mappings,
)
from dashboards.queries import temporal as q

TITLE = "Tindexer / Temporal"
DESCRIPTION = (
    "Task-queue depth from DescribeTaskQueue, the SDK's worker metrics, rate limits and activity "
    "health: is Temporal the bottleneck?"
)
VARIABLES = ("task_queue",)

ROWS: Rows = [
    (
        "Health",
        [
            stat(
                "Temporal reachable",
                "Whether every indexer process's last Temporal health check answered.",
                COUNT,
                Query(q.TEMPORAL_UP),
                mappings=value_mappings({0: ("down", RED), 1: ("up", GREEN)}),
                thresholds=steps((RED, None), (GREEN, 1)),
            ),
            timeseries(
                "Health check latency",
                "Round trip of the last Temporal health check, per indexer process.",
                SECONDS,
                Query(q.HEALTH_LATENCY, "{{instance}}"),
                width=20,
                height=5,
            ),
        ],
    ),
    (
        "Task queues",
        [
            timeseries(
                "Backlog",
                "Approximate tasks waiting for a worker to poll them, by queue and type.",
                COUNT,
                Query(q.BACKLOG, "{{task_queue}} {{type}}"),
                thresholds=steps((GREEN, None), (YELLOW, 100), (RED, 1000)),
            ),
            timeseries(
                "Backlog age",
                "Age of the oldest waiting task: how long work waits for a free worker.",
                SECONDS,
                Query(q.BACKLOG_AGE, "{{task_queue}} {{type}}"),
                thresholds=steps((GREEN, None), (YELLOW, 5), (RED, 60)),
            ),
            timeseries(
                "Pollers",
                "Workers that polled the queue recently; zero means nobody takes the work.",
                COUNT,
                Query(q.POLLERS, "{{task_queue}} {{type}}"),
                thresholds=steps((RED, None), (GREEN, 1)),
            ),
            timeseries(
                "Add vs dispatch rate",
                "Tasks added and dispatched per second, as the server estimates them; adds "
                "above dispatches grow the backlog.",
                PER_SECOND,
                Query(q.ADD_RATE, "{{task_queue}} {{type}} added"),
                Query(q.DISPATCH_RATE, "{{task_queue}} {{type}} dispatched"),
                width=24,
            ),
        ],
    ),
    (
        "Workers (SDK metrics)",
        [
            timeseries(
                "Workflow task schedule-to-start p95",
                "Time a workflow task waits before a worker picks it up (most of a "
                "one-activity workflow's ~100 ms latency on the dev server).",
                SECONDS,
                Query(q.WORKFLOW_TASK_SCHEDULE_TO_START_P95, "{{task_queue}}"),
                thresholds=steps((GREEN, None), (YELLOW, 0.5), (RED, 5)),
            ),
            timeseries(
                "Activity schedule-to-start p95",
                "Time an activity task waits before a worker starts it; high with free slots "
                "means too few pollers, with no free slots too few workers.",
                SECONDS,
                Query(q.ACTIVITY_SCHEDULE_TO_START_P95, "{{task_queue}}"),
                thresholds=steps((GREEN, None), (YELLOW, 0.5), (RED, 5)),
            ),
            timeseries(
                "Task slots used vs available",
                "Worker task slots in use and free, by worker type; no free activity slots "
                "means the workers are saturated.",
                COUNT,
                Query(q.SLOTS_USED, "{{worker_type}} used"),
                Query(q.SLOTS_AVAILABLE, "{{worker_type}} available"),
            ),
        ],
    ),
    (
        "Workers by host",
        [
            stat(
                "Workers reporting",
                "Worker processes whose /metrics Prometheus scraped last (tindexer_worker_info);"
                " fewer than you run is a host down or unreachable.",
                COUNT,
                Query(q.WORKERS_REPORTING),
            ),
            timeseries(
                "Blocks indexed per second by worker",
                "Blocks each worker stored, by scrape target, and all workers together.",
                PER_SECOND,
                Query(q.BLOCKS_INDEXED_ALL_WORKERS, "all workers"),
                Query(q.BLOCKS_INDEXED_BY_WORKER, "{{instance}}"),
                width=20,
            ),
            timeseries(
                "Activities in flight by worker",
                "Activity slots in use on each worker: ranges, scans and scheduling running now.",
                COUNT,
                Query(q.ACTIVITIES_IN_FLIGHT_BY_WORKER, "{{instance}}"),
                width=12,
            ),
            timeseries(
                "Memory budget use by worker",
                "JSON-RPC answer bytes each worker holds, as a share of its memory budget; at 1 "
                "its ranges wait for room (tindexer_worker_budget_wait_seconds_total).",
                PERCENT,
                Query(q.MEMORY_BUDGET_USE_BY_WORKER, "{{instance}}"),
                thresholds=steps((GREEN, None), (YELLOW, 0.9)),
                width=12,
            ),
        ],
    ),
    (
        "Rate limits and errors",
        [
            timeseries(
                "Rate-limited requests per second",
                "Requests refused for rate limiting, by who refused them: temporal (namespace "
                "RPS, RESOURCE_EXHAUSTED, retried by the SDK) or rpc (HTTP 429).",
                PER_SECOND,
                Query(q.RATE_LIMITED, "{{source}}"),
                thresholds=steps((GREEN, None), (RED, 0.1)),
                links=(("Temporal server: RESOURCE_EXHAUSTED by cause", "temporal_server"),),
            ),
            timeseries(
                "SDK request failures per second",
                "Temporal client calls that failed, by operation and gRPC status, including "
                "the long polls.",
                PER_SECOND,
                Query(q.SDK_REQUEST_FAILURES, "{{operation}} {{status_code}}"),
                Query(q.SDK_LONG_REQUEST_FAILURES, "{{operation}} {{status_code}} (long poll)"),
            ),
            timeseries(
                "Indexer's Temporal call errors per second",
                "Temporal calls made by the indexer itself that failed, by operation and status.",
                PER_SECOND,
                Query(q.INDEXER_REQUEST_ERRORS, "{{operation}} {{status}}"),
            ),
        ],
    ),
    (
        "Activities",
        [
            timeseries(
                "Activity duration p95",
                "Time an activity attempt takes on the worker, by activity.",
                SECONDS,
                Query(q.ACTIVITY_P95, "{{activity}}"),
            ),
            timeseries(
                "Activity attempts per second",
                "Activity attempts by activity and outcome (ok, error, timeout, cancelled).",
                PER_SECOND,
                Query(q.ACTIVITY_ATTEMPTS, "{{activity}} {{outcome}}"),
            ),
            timeseries(
                "Activity timeout ratio",
                "Share of attempts ending in a start-to-close or heartbeat timeout; the alert "
                "fires above 0.1 %.",
                PERCENT,
                Query(q.ACTIVITY_TIMEOUT_RATIO, "{{activity}}"),
                thresholds=steps((GREEN, None), (RED, 0.001)),
            ),
            timeseries(
                "Activity timeouts per second",
                "Attempts ending in a timeout per second, by activity.",
                PER_SECOND,
                Query(q.ACTIVITY_TIMEOUTS, "{{activity}}"),
                width=12,
            ),
            timeseries(
                "Activity failures (SDK)",
                "Activity executions the SDK counted as failed, by activity type.",
                PER_SECOND,
                Query(q.SDK_ACTIVITY_FAILURES, "{{activity_type}}"),
                width=12,
            ),
        ],
    ),
]
