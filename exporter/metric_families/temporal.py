"""Temporal: task-queue depth (DescribeTaskQueue with report_stats), the indexer's failed
client calls, and the server's health check. The SDK's own `temporal_*` metrics are
re-exposed by exporter/temporal_sdk.py."""

from __future__ import annotations

from exporter.metric_families.base import Families


class TemporalFamilies(Families):
    """The Temporal families."""

    def declare(self) -> None:
        queue_labels = ["task_queue", "type"]
        self.task_queue_backlog = self._gauge(
            "tindexer_task_queue_backlog",
            "Approximate tasks waiting in a Temporal task queue for a worker to poll them.",
            queue_labels,
        )
        self.task_queue_backlog_age = self._gauge(
            "tindexer_task_queue_backlog_age_seconds",
            "Age of the oldest task waiting in a Temporal task queue.",
            queue_labels,
        )
        self.task_queue_pollers = self._gauge(
            "tindexer_task_queue_pollers",
            "Workers that polled a Temporal task queue recently.",
            queue_labels,
        )
        self.task_queue_add_rate = self._gauge(
            "tindexer_task_queue_add_rate",
            "Tasks added to a Temporal task queue per second, as the server estimates it.",
            queue_labels,
        )
        self.task_queue_dispatch_rate = self._gauge(
            "tindexer_task_queue_dispatch_rate",
            "Tasks dispatched from a Temporal task queue per second, as the server estimates it.",
            queue_labels,
        )
        self.temporal_request_errors = self._counter(
            "tindexer_temporal_request_errors_total",
            "Temporal client calls made by the indexer that failed, by operation and status.",
            ["operation", "status"],
        )
        self.temporal_up = self._gauge(
            "tindexer_temporal_up",
            "Whether the last Temporal health check answered (1) or not (0).",
        )
        self.temporal_health_latency = self._gauge(
            "tindexer_temporal_health_latency_seconds",
            "Round trip of the last Temporal health check.",
        )
