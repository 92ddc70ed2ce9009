"""PromQL for the Temporal dashboard: health, task queues, SDK worker metrics, errors."""

from __future__ import annotations

Q = '{task_queue=~"$task_queue"}'

# --- Health ------------------------------------------------------------------------------------
TEMPORAL_UP = "min(tindexer_temporal_up)"
HEALTH_LATENCY = "max by (instance) (tindexer_temporal_health_latency_seconds)"

# --- Task queues (DescribeTaskQueue with report_stats) -----------------------------------------
BACKLOG = f"max by (task_queue, type) (tindexer_task_queue_backlog{Q})"
BACKLOG_AGE = f"max by (task_queue, type) (tindexer_task_queue_backlog_age_seconds{Q})"
POLLERS = f"max by (task_queue, type) (tindexer_task_queue_pollers{Q})"
ADD_RATE = f"max by (task_queue, type) (tindexer_task_queue_add_rate{Q})"
DISPATCH_RATE = f"max by (task_queue, type) (tindexer_task_queue_dispatch_rate{Q})"

# --- Workers (the Temporal SDK's own metrics) --------------------------------------------------
WORKFLOW_TASK_SCHEDULE_TO_START_P95 = (
    "histogram_quantile(0.95, sum by (task_queue, le) "
    f"(rate(temporal_workflow_task_schedule_to_start_latency_bucket{Q}[$__rate_interval])))"
)
ACTIVITY_SCHEDULE_TO_START_P95 = (
    "histogram_quantile(0.95, sum by (task_queue, le) "
    f"(rate(temporal_activity_schedule_to_start_latency_bucket{Q}[$__rate_interval])))"
)
SLOTS_USED = f"sum by (task_queue, worker_type) (temporal_worker_task_slots_used{Q})"
SLOTS_AVAILABLE = f"sum by (task_queue, worker_type) (temporal_worker_task_slots_available{Q})"

# --- Rate limits and errors --------------------------------------------------------------------
RATE_LIMITED = "sum by (source) (rate(tindexer_rate_limited_total[$__rate_interval]))"
SDK_REQUEST_FAILURES = (
    "sum by (operation, status_code) (rate(temporal_request_failure_total[$__rate_interval]))"
)
SDK_LONG_REQUEST_FAILURES = (
    "sum by (operation, status_code) (rate(temporal_long_request_failure_total[$__rate_interval]))"
)
INDEXER_REQUEST_ERRORS = (
    "sum by (operation, status) (rate(tindexer_temporal_request_errors_total[$__rate_interval]))"
)

# --- Activities --------------------------------------------------------------------------------
ACTIVITY_P95 = (
    "histogram_quantile(0.95, sum by (activity, le) "
    "(rate(tindexer_activity_duration_seconds_bucket[$__rate_interval])))"
)
ACTIVITY_ATTEMPTS = (
    "sum by (activity, outcome) (rate(tindexer_activity_duration_seconds_count[$__rate_interval]))"
)
ACTIVITY_TIMEOUTS = "sum by (activity) (rate(tindexer_activity_timeouts_total[$__rate_interval]))"
ACTIVITY_TIMEOUT_RATIO = (
    f"{ACTIVITY_TIMEOUTS}\n/\n"
    "sum by (activity) (rate(tindexer_activity_duration_seconds_count[$__rate_interval]))"
)
SDK_ACTIVITY_FAILURES = (
    f"sum by (activity_type) (rate(temporal_activity_execution_failed_total{Q}[$__rate_interval]))"
)

# --- Workers by host (each worker's own /metrics; `instance` is the scrape target) -------------
# Only worker processes: the API and `tindexer workers` export the worker gauges too (at 0).
WORKERS = "\nand on (instance) tindexer_worker_info"
WORKERS_REPORTING = "count(tindexer_worker_info)"
BLOCKS_INDEXED_ALL_WORKERS = "sum(rate(tindexer_blocks_indexed_total[$__rate_interval]))"
BLOCKS_INDEXED_BY_WORKER = (
    "sum by (instance) (rate(tindexer_blocks_indexed_total[$__rate_interval]))" + WORKERS
)
ACTIVITIES_IN_FLIGHT_BY_WORKER = (
    "sum by (instance) (temporal_worker_task_slots_used"
    '{task_queue=~"$task_queue",worker_type="ActivityWorker"})' + WORKERS
)
MEMORY_BUDGET_USE_BY_WORKER = (
    "sum by (instance) (tindexer_worker_in_flight_bytes)\n/\n"
    "sum by (instance) (tindexer_worker_memory_budget_bytes)" + WORKERS
)
