"""The worker: the workflows and light activities on the task queue, the ranges on their own queue
(workflows/task_queues.py) behind the memory budget, and `tindexer worker`."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import socket
from collections.abc import AsyncIterator, Callable
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

import asyncpg
from temporalio import activity
from temporalio.api.workflowservice.v1 import DescribeNamespaceRequest
from temporalio.client import Client
from temporalio.exceptions import ApplicationError, ApplicationErrorCategory
from temporalio.worker import (
    ActivityInboundInterceptor,
    CustomSlotSupplier,
    ExecuteActivityInput,
    FixedSizeSlotSupplier,
    Interceptor,
    PollerBehaviorSimpleMaximum,
    Worker,
    WorkerTuner,
)

from exporter.activity_metrics import ActivityMetricsInterceptor
from exporter.metrics import Metrics, default_metrics
from indexer.activities.chain_cache import ChainCache
from indexer.activities.index_range import IndexRangeActivities
from indexer.activities.scan_head import ScanHeadActivities
from indexer.activities.scheduling import SchedulingActivities
from indexer.config import DEFAULT_WORKER_MEMORY_BUDGET_BYTES, Settings
from indexer.garbage import collected_on_a_clock
from indexer.lifecycle import observed_services, until_stopped
from indexer.temporal_client import fail_fast_client
from indexer.worker_budget import ByteBudget
from indexer.worker_slots import RangeSlots
from indexer.workflows.activity_names import ACTIVITY_NAMES
from indexer.workflows.headscan import HeadScan
from indexer.workflows.index_range import IndexRange
from indexer.workflows.scheduler import Scheduler
from indexer.workflows.task_queues import ranges_task_queue

DRAIN_TIMEOUT = timedelta(seconds=20)  # on shutdown, in-flight activities get this long to finish

log = logging.getLogger("indexer.worker")

SDK_DEFAULT_SLOTS = 100  # the SDK's own default for workflow tasks (WorkerTuner.create_fixed)


@dataclass(frozen=True, kw_only=True)
class WorkerTuning:
    """Worker concurrency. bench/results/tuning.json (2 cores, 2 workers, 150,000 blocks): 8 or
    64 activities were 4-6 % slower than 32; pollers 2 and workflow tasks 4 were 3-6 % faster,
    within the run-to-run spread (about 5 %), so the defaults stand; 2-4 start clients were 7 %
    slower to schedule than one."""

    # Ranges at once (the ranges worker's slots, opened only while the memory budget has room),
    # and, apart, scans and scheduling at once (the main worker's activity slots): each kind has
    # this many, so a backlog of ranges never takes the slots head-following needs.
    max_concurrent_activities: int = 32
    # On top of those, the main worker's slots for chains followed at once: a followed chain's
    # scan_head holds a slot for seconds (activities/live_edge.py FOLLOW_SECONDS), so with more
    # chains than slots the others' scans would wait that long behind them, blocks piling up.
    # Their live-edge batches reserve the same memory budget as ranges.
    followed_chains: int = 256
    max_concurrent_workflow_tasks: int = SDK_DEFAULT_SLOTS
    pollers: int = 5  # per task type and queue (the ranges queue has only activity tasks)
    start_clients: int = 1  # connections the scheduling activities start workflows through
    # JSON-RPC answer bytes held at once by all the worker's ranges (indexer/worker_budget.py).
    memory_budget_bytes: int = DEFAULT_WORKER_MEMORY_BUDGET_BYTES


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    metrics: Metrics | None = None,
    tuning: WorkerTuning | None = None,
    budget: ByteBudget | None = None,
) -> AsyncIterator[Worker]:
    """A worker polling `task_queue` and its ranges queue until the block exits; then both
    drain and stop. Yields the main worker (workflows, scans, scheduling).

    `budget` (default: one of tuning.memory_budget_bytes) bounds the answer bytes its ranges
    hold; a test passes its own to read the high-water mark.
    """
    metrics = metrics or default_metrics()
    tuning = tuning or WorkerTuning()
    chains = ChainCache(pool, metrics)
    budget = budget or ByteBudget(tuning.memory_budget_bytes, metrics)
    ranges = IndexRangeActivities(chains, budget)
    scans = ScanHeadActivities(chains, ranges)
    scheduling = SchedulingActivities(
        client,
        chains,
        task_queue,
        starters=[await fail_fast_client(client) for _ in range(tuning.start_clients)],
    )
    activities: list[Callable[..., Any]] = [
        # Still here for IndexRange runs from before INDEX_RANGE_OWN_QUEUE, whose range (and
        # its retries) Temporal keeps on this queue; new runs schedule it on the ranges queue.
        ranges.index_range,
        scans.scan_head,
        scheduling.start_ranges,
        scheduling.scheduler_tick,
        scheduling.start_scheduler,
    ]
    # /metrics says which worker this is, for the per-worker dashboards and alerts.
    metrics.worker_info.labels(socket.gethostname(), client.identity).set(1)
    for name in ACTIVITY_NAMES:  # their counters start at zero
        metrics.activities_handed_back.labels(name)
    common: dict[str, Any] = dict(
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(tuning.pollers),
        # Outermost first: a task handed back is no attempt of the activity to time.
        interceptors=[HandBackWhenStopping(metrics), ActivityMetricsInterceptor(metrics)],
        graceful_shutdown_timeout=DRAIN_TIMEOUT,
        # An eagerly dispatched activity can be accepted just as the worker drains and then
        # sit "started" on a stopped worker until its heartbeat times out: poll them instead.
        disable_eager_activity_execution=True,
    )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[HeadScan, Scheduler, IndexRange],
        activities=activities,
        tuner=_tuner(
            FixedSizeSlotSupplier(tuning.max_concurrent_activities + tuning.followed_chains),
            tuning,
        ),
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(tuning.pollers),
        **common,
    )
    range_worker = Worker(
        client,
        task_queue=ranges_task_queue(task_queue),
        activities=[ranges.index_range],
        # A range is asked for only while the memory budget can feed it (worker_slots.py).
        tuner=_tuner(RangeSlots(budget, tuning.max_concurrent_activities), tuning),
        **common,
    )
    await polls_complete_on_shutdown(client)
    try:
        async with worker, range_worker:
            try:
                yield worker
            finally:  # both drain at once, not one DRAIN_TIMEOUT after the other
                await asyncio.gather(worker.shutdown(), range_worker.shutdown())
    finally:
        await chains.close()


def _tuner(
    activity_slots: FixedSizeSlotSupplier | CustomSlotSupplier, tuning: WorkerTuning
) -> WorkerTuner:
    return WorkerTuner.create_composite(
        workflow_supplier=FixedSizeSlotSupplier(tuning.max_concurrent_workflow_tasks),
        activity_supplier=activity_slots,
        local_activity_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
        nexus_supplier=FixedSizeSlotSupplier(SDK_DEFAULT_SLOTS),
    )


class HandBackWhenStopping(Interceptor):
    """Fails, at once and retryably, an activity task that reaches a worker already stopping.

    A poll the server answered just as the worker began to stop still delivers its task. Run,
    it would spend the drain on new work (a range can outlast DRAIN_TIMEOUT and be cut off);
    failed, Temporal hands it to another worker after its retry interval (one attempt spent).
    """

    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _HandBack(next, self.metrics)


class _HandBack(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: Metrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        if activity.is_worker_shutdown():
            self.metrics.activities_handed_back.labels(activity.info().activity_type).inc()
            raise ApplicationError(
                "the worker is stopping; handed back",
                type="WorkerStopping",
                category=ApplicationErrorCategory.BENIGN,  # logged at DEBUG: not a fault
            )
        return await super().execute_activity(input)


async def polls_complete_on_shutdown(client: Client) -> bool:
    """Whether the server completes a stopping worker's polls (ShutdownWorker); warns if not.

    Without it the SDK cuts its polls off when the worker stops, and a task the server matched
    to one in that instant sits "started" on the stopped worker until its heartbeat times out.
    """
    response = await client.workflow_service.describe_namespace(
        DescribeNamespaceRequest(namespace=client.namespace)
    )
    if response.namespace_info.capabilities.worker_poll_complete_on_shutdown:
        return True
    log.warning(
        "Temporal namespace %s does not complete worker polls on shutdown: a stopping worker may"
        " strand a task until its heartbeat times out; set the server's dynamic config"
        " frontend.enableCancelWorkerPollsOnShutdown=true (deploy/temporal/dynamicconfig.yaml)",
        client.namespace,
    )
    return False


async def run_worker_process(settings: Settings, tuning: WorkerTuning) -> None:
    """A worker on its own, for more capacity; stops (draining) on Ctrl-C or SIGTERM."""
    assert settings.database_url and settings.temporal_address
    log.info(
        "memory budget: %d MiB of JSON-RPC answers in flight",
        tuning.memory_budget_bytes // (1024 * 1024),
    )
    async with (
        collected_on_a_clock(),
        observed_services(
            settings, settings.database_url, settings.temporal_address, progress=False
        ) as (pool, client, metrics),
        running_worker(
            client,
            pool,
            settings.task_queue,
            metrics=metrics,
            tuning=tuning,
        ),
    ):
        await until_stopped(asyncio.Event().wait())
