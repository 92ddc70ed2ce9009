"""Wiring: the Temporal client, the worker with every workflow and activity, and chain start-up."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta

import asyncpg
from temporalio.client import Client
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy
from temporalio.runtime import Runtime
from temporalio.service import RetryConfig
from temporalio.worker import PollerBehaviorSimpleMaximum, Worker

from exporter.activity_metrics import ActivityMetricsInterceptor
from exporter.metrics import Metrics, default_metrics
from exporter.tracing import temporal_interceptor
from indexer.activities.blocks import BlockActivities
from indexer.activities.directory import ChainDirectory
from indexer.activities.scheduling import SchedulingActivities
from indexer.workflows.headscan import HeadScan
from indexer.workflows.index_range import IndexRange
from indexer.workflows.inputs import HeadScanInput
from indexer.workflows.scheduler import Scheduler

CONNECT_PATIENCE_SECONDS = 30.0  # a dev server started with us answers within a few seconds
DRAIN_TIMEOUT = timedelta(seconds=20)  # on shutdown, in-flight activities get this long to finish


async def connect_temporal(
    address: str,
    namespace: str = "default",
    runtime: Runtime | None = None,
    tracing: bool = True,
) -> Client:
    """A client whose calls carry trace context; waits out a server that is still starting."""
    deadline = time.monotonic() + CONNECT_PATIENCE_SECONDS
    while True:
        try:
            return await Client.connect(
                address,
                namespace=namespace,
                runtime=runtime,
                interceptors=[temporal_interceptor()] if tracing else [],
            )
        except RuntimeError as exc:  # the SDK reports connect failures as RuntimeError
            if time.monotonic() > deadline:
                raise RuntimeError(f"Temporal at {address} is not reachable: {exc}") from exc
            await asyncio.sleep(0.5)


async def fail_fast_client(client: Client) -> Client:
    """A second connection without the SDK's silent retries, used to start workflows.

    The SDK retries RESOURCE_EXHAUSTED inside its core and reports nothing; starting through
    this client, the scheduler sees each refusal, counts it and backs off itself.
    """
    config = client.service_client.config
    return await Client.connect(
        config.target_host,
        namespace=client.namespace,
        runtime=config.runtime,
        interceptors=client.config()["interceptors"],
        retry_config=RetryConfig(max_retries=0),
    )


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
    directory = ChainDirectory(pool, metrics)
    blocks = BlockActivities(directory)
    scheduling = SchedulingActivities(
        client,
        directory,
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
        await directory.close()


async def start_head_scan(client: Client, chain: str, task_queue: str) -> None:
    """Start the chain's HeadScan unless it is already running."""
    await client.start_workflow(
        HeadScan.run,
        HeadScanInput(chain),
        id=f"headscan:{chain}",
        task_queue=task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )
