"""Temporal server: which of its services refuses or slows the work, from the server's metrics.

Reads the server's own Prometheus endpoint (`tindexer up` serves the embedded dev server's on
:8234; deploy/prometheus.yml scrapes it as job `temporal`), beside the client side the SDK
reports through the indexer. Metric names and PromQL: dashboards/queries/temporal_server.py.
"""

from __future__ import annotations

from alerts.config import CONFIG
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
    steps,
    timeseries,
)
from dashboards.queries import temporal_server as q

TITLE = "Tindexer / Temporal server"
DESCRIPTION = (
    "The Temporal server's own metrics: requests, errors and RESOURCE_EXHAUSTED by service, "
    "operation and cause; persistence; task queues; and the SDK's view beside them."
)
VARIABLES = ("namespace",)

ANY_IS_BAD = steps((GREEN, None), (RED, 0.001))

ROWS: Rows = [
    (
        "RESOURCE_EXHAUSTED: who refuses, and why",
        [
            timeseries(
                "RESOURCE_EXHAUSTED by cause and scope",
                "Calls a Temporal service refused, by service, operation, cause (RpsLimit: "
                "the namespace's or host's request budget, e.g. frontend.namespaceRPS) and "
                "scope (Namespace, System). The SDK retries them; the work slows, nothing is "
                "lost.",
                PER_SECOND,
                Query(
                    q.RESOURCE_EXHAUSTED,
                    "{{service_name}} {{operation}} {{resource_exhausted_cause}} "
                    "{{resource_exhausted_scope}}",
                ),
                thresholds=ANY_IS_BAD,
                width=12,
            ),
            timeseries(
                "Workflow starts refused for the RPS limit",
                "StartWorkflowExecution and SignalWithStart refused for a requests-per-second "
                "limit (either spelling of the cause); the TindexerTemporalStartsRejected alert "
                "fires on any for 1m.",
                PER_SECOND,
                Query(q.RPS_LIMITED_STARTS, "{{operation}} {{resource_exhausted_scope}}"),
                thresholds=ANY_IS_BAD,
                width=6,
            ),
            timeseries(
                "Persistence RESOURCE_EXHAUSTED",
                "Database calls the server's own persistence rate limit refused (e.g. "
                "history.persistenceMaxQPS): the database budget, not the namespace's.",
                PER_SECOND,
                Query(q.PERSISTENCE_RESOURCE_EXHAUSTED, "{{service_name}} {{operation}}"),
                thresholds=ANY_IS_BAD,
                width=6,
            ),
        ],
    ),
    (
        "Requests and errors per service",
        [
            timeseries(
                "Requests per service",
                "Requests each service (frontend, history, matching, worker) handled.",
                PER_SECOND,
                Query(q.REQUESTS_BY_SERVICE, "{{service_name}}"),
            ),
            timeseries(
                "Requests per operation (top 15)",
                "The busiest service operations.",
                PER_SECOND,
                Query(q.REQUESTS_BY_OPERATION, "{{service_name}} {{operation}}"),
            ),
            timeseries(
                "Server error ratio",
                "service_errors over service_requests per service: failures the server blames "
                "on itself (not rejections or callers' mistakes). The alert fires above "
                f"{CONFIG.temporal_service_error_ratio:.0%}.",
                PERCENT,
                Query(q.SERVER_ERROR_RATIO, "{{service_name}}"),
                thresholds=steps((GREEN, None), (RED, CONFIG.temporal_service_error_ratio)),
            ),
            timeseries(
                "Errors by type",
                "Every error a service answered, by operation and type, callers' ones included "
                "(WorkflowExecutionAlreadyStarted is the indexer's idempotent start at work).",
                PER_SECOND,
                Query(q.ERRORS_BY_TYPE, "{{service_name}} {{operation}} {{error_type}}"),
                width=24,
            ),
            timeseries(
                "Latency p95 (no long polls)",
                "Time a service takes to answer, by service and operation; long polls, which "
                "wait for work by design, are left out.",
                SECONDS,
                Query(q.LATENCY_P95, "{{service_name}} {{operation}}"),
                width=12,
            ),
            timeseries(
                "Latency p99 (no long polls)",
                "As p95, at the 99th percentile.",
                SECONDS,
                Query(q.LATENCY_P99, "{{service_name}} {{operation}}"),
                width=12,
            ),
        ],
    ),
    (
        "Persistence",
        [
            timeseries(
                "Persistence requests (top 15)",
                "Database calls of the server's services, by operation.",
                PER_SECOND,
                Query(q.PERSISTENCE_REQUESTS, "{{operation}}"),
            ),
            timeseries(
                "Persistence errors by type",
                "Database calls that failed, by operation and error type (ConditionFailed and "
                "NotFound are normal in small numbers).",
                PER_SECOND,
                Query(q.PERSISTENCE_ERRORS, "{{operation}} {{error_type}}"),
            ),
            timeseries(
                "Persistence latency p99 (top 15)",
                "Database call latency by operation; every workflow state change waits for "
                f"one. The alert fires above {CONFIG.temporal_persistence_p99_seconds:g} s.",
                SECONDS,
                Query(q.PERSISTENCE_LATENCY_P99, "{{operation}}"),
                thresholds=steps((GREEN, None), (RED, CONFIG.temporal_persistence_p99_seconds)),
            ),
        ],
    ),
    (
        "Task queues (server side)",
        [
            timeseries(
                "Schedule-to-start p99",
                "Time a task waited in matching before a worker took it, by task queue and "
                "type; the alert fires above "
                f"{CONFIG.temporal_schedule_to_start_p99_seconds:g} s for workflow tasks.",
                SECONDS,
                Query(q.SCHEDULE_TO_START_P99, "{{taskqueue}} {{task_type}}"),
                thresholds=steps(
                    (GREEN, None),
                    (YELLOW, 1),
                    (RED, CONFIG.temporal_schedule_to_start_p99_seconds),
                ),
            ),
            timeseries(
                "Approximate backlog",
                "Tasks waiting per task queue and type, as matching reports them for the "
                "queues it has loaded.",
                COUNT,
                Query(q.BACKLOG, "{{taskqueue}} {{task_type}}"),
            ),
            timeseries(
                "Approximate backlog age",
                "Age of the oldest waiting task per task queue and type.",
                SECONDS,
                Query(q.BACKLOG_AGE, "{{taskqueue}} {{task_type}}"),
            ),
            timeseries(
                "Polls answered vs empty",
                "Worker polls matching answered with a task, and polls that waited and came "
                "back empty: none of either on a queue means nobody polls it (the server has "
                "no poller gauge; the Temporal dashboard's Pollers panel counts them).",
                PER_SECOND,
                Query(q.POLLS_ANSWERED, "{{taskqueue}} {{task_type}} answered"),
                Query(q.POLLS_EMPTY, "{{taskqueue}} {{task_type}} empty"),
                width=24,
            ),
        ],
    ),
    (
        "Client side (the SDK's view)",
        [
            timeseries(
                "SDK request failures by status",
                "Calls the indexer's Temporal clients saw fail, by gRPC status "
                "(RESOURCE_EXHAUSTED here is the server's refusals as the client sees them).",
                PER_SECOND,
                Query(q.SDK_FAILURES_BY_STATUS, "{{status_code}}"),
                width=12,
            ),
            timeseries(
                "SDK long-poll failures",
                "Worker long polls that failed, by operation and gRPC status.",
                PER_SECOND,
                Query(q.SDK_LONG_POLL_FAILURES, "{{operation}} {{status_code}}"),
                width=12,
            ),
        ],
    ),
]
