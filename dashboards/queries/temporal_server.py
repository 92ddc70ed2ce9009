"""The Temporal server's own metrics: their names (one place) and the dashboard's PromQL.

Read from a Temporal Server 1.32 (`temporal` CLI 1.9.1, `server start-dev --metrics-port`):
its counters carry no `_total` suffix, its task-queue label is `taskqueue` (values with `-`
written as `_`), and `service_name` is frontend, history, matching or worker. A rejected call
counts in `service_errors_resource_exhausted` with `resource_exhausted_cause` (this server
writes `RpsLimit`; others write `RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT`) and
`resource_exhausted_scope` (`Namespace`, `System`); `service_errors` counts only failures the
server blames on itself, not rejections or a caller's mistakes (not found, already started),
which `service_error_with_type` counts by `error_type`. The server has no poller gauge: a
queue's polls show as `poll_success` / `poll_timeouts` per partition, and
`approximate_backlog_count` is reported only for queues matching keeps loaded.
"""

from __future__ import annotations

# Series name → type, exactly as the server exposes them (a histogram's parts by suffix).
TEMPORAL_SERVER_COUNTERS = (
    "service_requests",
    "service_errors",
    "service_error_with_type",
    "service_errors_resource_exhausted",
    "persistence_requests",
    "persistence_errors",
    "persistence_error_with_type",
    "persistence_errors_resource_exhausted",
    "poll_success",
    "poll_timeouts",
)
TEMPORAL_SERVER_HISTOGRAMS = (
    "service_latency",
    "persistence_latency",
    "task_schedule_to_start_latency",
)
TEMPORAL_SERVER_GAUGES = (
    "approximate_backlog_count",
    "approximate_backlog_age_seconds",
)

# Both spellings of "the namespace's (or host's) requests-per-second limit".
RPS_LIMIT_CAUSE = "RpsLimit|RESOURCE_EXHAUSTED_CAUSE_RPS_LIMIT"
START_OPERATIONS = "StartWorkflowExecution|SignalWithStartWorkflowExecution"
# Long polls wait up to a minute by design: their latency says nothing about the server.
LONG_POLLS = "Poll.*TaskQueue|GetWorkflowExecutionHistory"

N = '{namespace=~"$namespace"}'
NS = 'namespace=~"$namespace"'


def _rate(selector: str) -> str:
    return f"rate({selector}[$__rate_interval])"


def _quantile(q: float, by: str, series: str) -> str:
    return f"histogram_quantile({q}, sum by ({by}, le) ({_rate(series)}))"


# --- Requests and errors -----------------------------------------------------------------------
REQUESTS_BY_SERVICE = f"sum by (service_name) ({_rate('service_requests' + N)})"
REQUESTS_BY_OPERATION = (
    f"topk(15, sum by (service_name, operation) ({_rate('service_requests' + N)}))"
)
ERRORS_BY_TYPE = (
    f"sum by (service_name, operation, error_type) ({_rate('service_error_with_type' + N)})"
)
SERVER_ERROR_RATIO = (
    f"sum by (service_name) ({_rate('service_errors' + N)})\n/\n"
    f"sum by (service_name) ({_rate('service_requests' + N)})"
)
_NOT_LONG = f'{{{NS},operation!~"{LONG_POLLS}"}}'
LATENCY_P95 = _quantile(0.95, "service_name, operation", "service_latency_bucket" + _NOT_LONG)
LATENCY_P99 = _quantile(0.99, "service_name, operation", "service_latency_bucket" + _NOT_LONG)

# --- RESOURCE_EXHAUSTED ------------------------------------------------------------------------
RESOURCE_EXHAUSTED = (
    "sum by (service_name, operation, resource_exhausted_cause, resource_exhausted_scope) "
    f"({_rate('service_errors_resource_exhausted' + N)})"
)
RPS_LIMITED_STARTS = (
    "sum by (operation, resource_exhausted_scope) ("
    + _rate(
        f'service_errors_resource_exhausted{{{NS},operation=~"{START_OPERATIONS}",'
        f'resource_exhausted_cause=~"{RPS_LIMIT_CAUSE}"}}'
    )
    + ")"
)
PERSISTENCE_RESOURCE_EXHAUSTED = (
    f"sum by (service_name, operation) ({_rate('persistence_errors_resource_exhausted')})"
)

# --- Persistence (namespace is often `_unknown_` here: not filtered) ---------------------------
PERSISTENCE_REQUESTS = f"topk(15, sum by (operation) ({_rate('persistence_requests')}))"
PERSISTENCE_ERRORS = f"sum by (operation, error_type) ({_rate('persistence_error_with_type')})"
PERSISTENCE_LATENCY_P99 = f"topk(15, {_quantile(0.99, 'operation', 'persistence_latency_bucket')})"

# --- Task queues -------------------------------------------------------------------------------
SCHEDULE_TO_START_P99 = _quantile(
    0.99, "taskqueue, task_type", "task_schedule_to_start_latency_bucket" + N
)
BACKLOG = f"sum by (taskqueue, task_type) (approximate_backlog_count{N})"
BACKLOG_AGE = f"max by (taskqueue, task_type) (approximate_backlog_age_seconds{N})"
POLLS_ANSWERED = f"sum by (taskqueue, task_type) ({_rate('poll_success' + N)})"
POLLS_EMPTY = f"sum by (taskqueue, task_type) ({_rate('poll_timeouts' + N)})"

# --- The client side (the SDK's metrics, re-exposed by the indexer) ----------------------------
SDK_FAILURES_BY_STATUS = f"sum by (status_code) ({_rate('temporal_request_failure_total')})"
SDK_LONG_POLL_FAILURES = (
    f"sum by (operation, status_code) ({_rate('temporal_long_request_failure_total')})"
)
