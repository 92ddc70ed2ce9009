"""What every process runs to be observable: /metrics, the background collectors, build info."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import asyncpg
from temporalio.client import Client

from exporter.collectors.base import PeriodicCollector, running
from exporter.collectors.progress import ProgressCollector
from exporter.collectors.temporal import (
    SdkMetricsCollector,
    TaskQueueCollector,
    TemporalHealthCollector,
)
from exporter.metrics import Metrics
from exporter.server import start_metrics_server
from exporter.temporal_sdk import SdkMetrics


@contextlib.asynccontextmanager
async def observed(
    metrics: Metrics,
    host: str,
    port: int,
    *,
    pool: asyncpg.Pool | None = None,
    database_url: str | None = None,
    client: Client | None = None,
    sdk: SdkMetrics | None = None,
    task_queues: list[str] | None = None,
    progress: bool = False,
) -> AsyncIterator[None]:
    """Serve /metrics on host:port and run the collectors the given parts allow."""
    from indexer import __version__

    metrics.build_info.info({"version": __version__})
    collectors: list[PeriodicCollector] = []
    if sdk is not None:
        collectors.append(SdkMetricsCollector(metrics, sdk))
    if client is not None:
        collectors.append(TemporalHealthCollector(metrics, client))
        if task_queues:
            collectors.append(TaskQueueCollector(metrics, client, task_queues))
    if pool is not None:
        collectors += _postgres_collectors(metrics, pool, database_url)
        if progress:
            collectors.append(ProgressCollector(metrics, pool))
    runner = await start_metrics_server(metrics.registry, host, port)
    try:
        async with running(*collectors):
            yield
    finally:
        await runner.cleanup()


def _postgres_collectors(
    metrics: Metrics, pool: asyncpg.Pool, database_url: str | None
) -> list[PeriodicCollector]:
    """The PostgreSQL health and pool collectors, when their modules are present."""
    found: list[PeriodicCollector] = []
    with contextlib.suppress(ImportError):
        from exporter.collectors.pool import PoolCollector  # type: ignore[import-not-found]

        found.append(PoolCollector(metrics, pool))
    if database_url:
        with contextlib.suppress(ImportError):
            from exporter.collectors.postgres import (  # type: ignore[import-not-found]
                PostgresHealthCollector,
            )

            found.append(PostgresHealthCollector(metrics, database_url))
    return found
