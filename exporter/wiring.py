"""What every process runs to be observable: /metrics, the background collectors, build info."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator, Sequence

import asyncpg
from temporalio.client import Client

from exporter.collectors.base import PeriodicCollector, running
from exporter.collectors.pool import PoolCollector
from exporter.collectors.postgres import PostgresHealthCollector
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
    version: str,
    extra_collectors: Sequence[PeriodicCollector] = (),
) -> AsyncIterator[None]:
    """Serve /metrics on host:port and run the collectors the given parts allow.

    The application passes its own collectors (`extra_collectors`, e.g. the indexer's progress)
    and its version: the exporter imports nothing of the application.
    """
    metrics.build_info.info({"version": version})
    collectors: list[PeriodicCollector] = list(extra_collectors)
    if sdk is not None:
        collectors.append(SdkMetricsCollector(metrics, sdk))
    if client is not None:
        collectors.append(TemporalHealthCollector(metrics, client))
        if task_queues:
            collectors.append(TaskQueueCollector(metrics, client, task_queues))
    if pool is not None:
        collectors.append(PoolCollector(metrics, pool))
    if database_url is not None:
        collectors.append(PostgresHealthCollector(metrics, database_url))
    runner = await start_metrics_server(metrics.registry, host, port)
    try:
        async with running(*collectors):
            yield
    finally:
        await runner.cleanup()
