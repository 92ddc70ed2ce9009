"""The worker: every workflow and activity registered on one task queue, and `tindexer worker`."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from exporter.activity_metrics import ActivityMetricsInterceptor
from exporter.metrics import Metrics, default_metrics
from indexer.activities.blocks import BlockActivities
from indexer.activities.chain_cache import ChainCache
from indexer.activities.scheduling import SchedulingActivities
from indexer.config import Settings
from indexer.lifecycle import observed_services, until_stopped
from indexer.temporal_client import fail_fast_client
from indexer.workflows.headscan import HeadScan
from indexer.workflows.index_range import IndexRange
from indexer.workflows.scheduler import Scheduler

DRAIN_TIMEOUT = timedelta(seconds=20)  # on shutdown, in-flight activities get this long to finish


@dataclass(frozen=True)
class WorkerTuning:
    """Worker concurrency. bench/results/tuning.json (2 cores, 2 workers, 150,000 blocks): 8 or
    64 activities were 4-6 % slower than 32; pollers 2 and workflow tasks 4 were 3-6 % faster,
    within the run-to-run spread (about 5 %), so the defaults stand; 2-4 start clients were 7 %
    slower to schedule than one."""

    max_concurrent_activities: int = 32
    max_concurrent_workflow_tasks: int | None = None  # None: the SDK's default
    pollers: int = 5  # per task type
    start_clients: int = 1  # connections the scheduling activities start workflows through


@contextlib.asynccontextmanager
async def running_worker(
    client: Client,
    pool: asyncpg.Pool,
    task_queue: str,
    metrics: Metrics | None = None,
    tuning: WorkerTuning | None = None,
) -> AsyncIterator[Worker]:
    """A worker polling `task_queue` until the block exits; then it drains and stops."""
    metrics = metrics or default_metrics()
    tuning = tuning or WorkerTuning()
    chains = ChainCache(pool, metrics)
    blocks = BlockActivities(chains)
    scheduling = SchedulingActivities(
        client,
        chains,
        task_queue,
        starters=[await fail_fast_client(client) for _ in range(tuning.start_clients)],
    )
    worker = Worker(
        client,
        task_queue=task_queue,
        workflows=[HeadScan, Scheduler, IndexRange],
        activities=[
            blocks.index_range,
            blocks.scan_head,
            scheduling.start_ranges,
            scheduling.scheduler_tick,
            scheduling.start_scheduler,
        ],
        max_concurrent_activities=tuning.max_concurrent_activities,
        max_concurrent_workflow_tasks=tuning.max_concurrent_workflow_tasks,
        workflow_task_poller_behavior=PollerBehaviorSimpleMaximum(tuning.pollers),
        activity_task_poller_behavior=PollerBehaviorSimpleMaximum(tuning.pollers),
        interceptors=[ActivityMetricsInterceptor(metrics)],
        graceful_shutdown_timeout=DRAIN_TIMEOUT,
        # An eagerly dispatched activity can be accepted just as the worker drains and then
        # sit "started" on a stopped worker until its heartbeat times out: poll them instead.
        disable_eager_activity_execution=True,
    )
    try:
        async with worker:
            yield worker
    finally:
        await chains.close()


async def run_worker_process(settings: Settings, tuning: WorkerTuning) -> None:
    """A worker on its own, for more capacity; stops (draining) on Ctrl-C or SIGTERM."""
    assert settings.database_url and settings.temporal_address
    async with (
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
