"""Is the Temporal server the bottleneck: refusals, slow persistence, waiting tasks, errors.

All but the pollers alert read the server's own metrics (job `temporal` in
deploy/prometheus.yml; names in dashboards/queries/temporal_server.py).
"""

from __future__ import annotations

from alerts.config import AlertConfig
from alerts.rules import Alert, Group, needs, selector
from dashboards.queries.temporal_server import START_OPERATIONS


def group(config: AlertConfig) -> Group:
    server = config.temporal_job_selector
    refused = "service_errors_resource_exhausted" + selector(
        server, f'operation=~"{START_OPERATIONS}"'
    )
    window = config.temporal_starts_rejected_window
    return Group(
        "tindexer-temporal-server",
        (
            Alert(
                name="TindexerTemporalStartsRejected",
                # The server creates a cause's series at its first refusal, already counting
                # it: increase() misses a series younger than its window, so such a series
                # counts with its whole value (`unless … offset`).
                expr=(
                    "sum by (namespace, operation, resource_exhausted_cause, "
                    "resource_exhausted_scope) (\n"
                    f"  (increase({refused}[{window}]) > 0)\n"
                    f"  or ({refused} unless {refused} offset {window})\n"
                    ") > 0"
                ),
                for_=config.temporal_starts_rejected_for,
                severity="warning",
                summary="The Temporal server refuses workflow starts with RESOURCE_EXHAUSTED.",
                description=(
                    "Temporal refused {{ $value | humanize }} {{ $labels.operation }} calls in "
                    f"namespace {{{{ $labels.namespace }}}} over the last {window}: cause "
                    "{{ $labels.resource_exhausted_cause }}, scope "
                    "{{ $labels.resource_exhausted_scope }}."
                ),
            ),
            Alert(
                name="TindexerTemporalPersistenceLatencyHigh",
                expr=(
                    "histogram_quantile(0.99, sum by (service_name, operation, le) (rate("
                    f"persistence_latency_bucket{selector(server)}"
                    f"[{config.temporal_persistence_window}])))\n"
                    f"> {config.temporal_persistence_p99_seconds:g}"
                ),
                for_=config.temporal_persistence_for,
                severity="warning",
                summary="The Temporal server's database calls are slow at p99.",
                description=(
                    "Temporal {{ $labels.service_name }}'s {{ $labels.operation }} took "
                    "{{ $value | humanizeDuration }} at p99 over the last "
                    f"{config.temporal_persistence_window}."
                ),
            ),
            Alert(
                name="TindexerTemporalScheduleToStartHigh",
                expr=(
                    "histogram_quantile(0.99, sum by (namespace, taskqueue, le) (rate("
                    "task_schedule_to_start_latency_bucket"
                    + selector(server, 'task_type="Workflow"')
                    + f"[{config.temporal_schedule_to_start_window}])))\n"
                    f"> {config.temporal_schedule_to_start_p99_seconds:g}"
                ),
                for_=config.temporal_schedule_to_start_for,
                severity="warning",
                summary="Workflow tasks wait long for a worker.",
                description=(
                    "Workflow tasks on task queue {{ $labels.taskqueue }} (namespace "
                    "{{ $labels.namespace }}) waited {{ $value | humanizeDuration }} at p99 "
                    f"over the last {config.temporal_schedule_to_start_window} before a worker "
                    "took them."
                ),
            ),
            Alert(
                name="TindexerTaskQueueNoPollers",
                # The server exports no poller count; the indexer's DescribeTaskQueue collector
                # does, for its own queues. Every process reports the same queue: one alert.
                expr=(
                    "max by (task_queue, type) ("
                    f"tindexer_task_queue_pollers{selector(config.job_selector)}) == 0"
                ),
                for_=config.task_queue_no_pollers_for,
                severity="critical",
                summary="No worker polls one of the indexer's Temporal task queues.",
                description=(
                    "Task queue {{ $labels.task_queue }} ({{ $labels.type }} tasks) has "
                    "{{ $value }} pollers: nothing runs its work."
                ),
                depends_on=needs("temporal"),
            ),
            Alert(
                name="TindexerTemporalServiceErrors",
                expr=(
                    "sum by (service_name) (rate("
                    f"service_errors{selector(server)}[{config.temporal_service_error_window}]))\n"
                    "/\n"
                    "sum by (service_name) (rate("
                    f"service_requests{selector(server)}"
                    f"[{config.temporal_service_error_window}]))\n"
                    f"> {config.temporal_service_error_ratio:g}"
                ),
                for_=config.temporal_service_error_for,
                severity="warning",
                summary="A Temporal service fails a share of its requests.",
                description=(
                    "Temporal {{ $labels.service_name }} failed {{ $value | humanizePercentage }}"
                    f" of its requests over the last {config.temporal_service_error_window}."
                ),
            ),
        ),
    )
