"""Temporal as the indexer sees it: task-queue depth, server health, and the SDK's own metrics."""

from __future__ import annotations

import asyncio
import time
from datetime import timedelta

from temporalio.api.enums.v1 import TaskQueueKind, TaskQueueType
from temporalio.api.taskqueue.v1 import TaskQueue
from temporalio.api.workflowservice.v1 import DescribeTaskQueueRequest
from temporalio.client import Client

from exporter.collectors.base import PeriodicCollector
from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics

QUEUE_TYPES = {
    "workflow": TaskQueueType.TASK_QUEUE_TYPE_WORKFLOW,
    "activity": TaskQueueType.TASK_QUEUE_TYPE_ACTIVITY,
}


class TaskQueueCollector(PeriodicCollector):
    """DescribeTaskQueue with report_stats, once per queue type (the non-deprecated API)."""

    name = "temporal_task_queues"

    def __init__(
        self, metrics: Metrics, client: Client, task_queues: list[str], interval: float = 5.0
    ) -> None:
        super().__init__(metrics, interval)
        self.client = client
        self.task_queues = task_queues

    async def _describe(self, task_queue: str, kind: str) -> None:
        response = await self.client.workflow_service.describe_task_queue(
            DescribeTaskQueueRequest(
                namespace=self.client.namespace,
                task_queue=TaskQueue(name=task_queue, kind=TaskQueueKind.TASK_QUEUE_KIND_NORMAL),
                task_queue_type=QUEUE_TYPES[kind],
                report_stats=True,
            )
        )
        m, stats = self.metrics, response.stats
        m.task_queue_backlog.labels(task_queue, kind).set(stats.approximate_backlog_count)
        m.task_queue_backlog_age.labels(task_queue, kind).set(
            stats.approximate_backlog_age.ToTimedelta().total_seconds()
        )
        m.task_queue_add_rate.labels(task_queue, kind).set(stats.tasks_add_rate)
        m.task_queue_dispatch_rate.labels(task_queue, kind).set(stats.tasks_dispatch_rate)
        m.task_queue_pollers.labels(task_queue, kind).set(len(response.pollers))

    async def refresh(self) -> None:
        await asyncio.gather(
            *(self._describe(q, kind) for q in self.task_queues for kind in QUEUE_TYPES)
        )


class TemporalHealthCollector(PeriodicCollector):
    """The frontend's gRPC health check: tindexer_temporal_up and its latency."""

    name = "temporal_health"

    def __init__(self, metrics: Metrics, client: Client, interval: float = 5.0) -> None:
        super().__init__(metrics, interval)
        self.client = client

    async def refresh(self) -> None:
        started = time.perf_counter()
        healthy = await self.client.service_client.check_health(
            timeout=timedelta(seconds=self.timeout)
        )
        self.metrics.temporal_health_latency.set(time.perf_counter() - started)
        self.metrics.temporal_up.set(1 if healthy else 0)

    async def on_failure(self, error: BaseException) -> None:
        self.metrics.temporal_up.set(0)


class SdkMetricsCollector(PeriodicCollector):
    """Drains the Temporal runtime's metric buffer into the registry."""

    name = "temporal_sdk"

    def __init__(self, metrics: Metrics, sdk: SdkMetrics, interval: float = 2.0) -> None:
        super().__init__(metrics, interval)
        self.sdk = sdk

    async def refresh(self) -> None:
        self.sdk.drain()
