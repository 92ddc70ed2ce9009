"""What every long-running command shares: its observed services, and stopping on a signal."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Coroutine
from typing import Any

import asyncpg
from temporalio.client import Client

from exporter.metrics import Metrics, default_metrics
from exporter.temporal_sdk import SdkMetrics
from exporter.tracing import configure_tracing
from indexer.config import Settings
from indexer.observability import serving_metrics
from indexer.store.db import create_pool
from indexer.temporal_client import connect_temporal
from indexer.workflows.task_queues import worker_task_queues


@contextlib.asynccontextmanager
async def observed_services(
    settings: Settings, database_url: str, temporal_address: str, *, progress: bool
) -> AsyncIterator[tuple[asyncpg.Pool, Client, Metrics]]:
    """The pool, a traced client with SDK metrics, and /metrics with its collectors."""
    configure_tracing("tindexer")
    metrics = default_metrics()
    sdk = SdkMetrics(metrics)
    pool = await create_pool(database_url)
    try:
        client = await connect_temporal(
            temporal_address, settings.temporal_namespace, runtime=sdk.runtime
        )
        async with serving_metrics(
            metrics,
            settings.metrics_host,
            settings.metrics_port,
            pool=pool,
            database_url=database_url,
            client=client,
            sdk=sdk,
            task_queues=worker_task_queues(settings.task_queue),
            progress=progress,
        ):
            yield pool, client, metrics
    finally:
        await close_pool(pool)


async def until_stopped(work: Coroutine[Any, Any, object]) -> None:
    """Run `work` until it ends or SIGINT/SIGTERM arrives, then return normally for cleanup."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for pending in (task, stopper):
            pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def close_pool(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close gracefully, but never hang on a connection an interrupted task still holds."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()
