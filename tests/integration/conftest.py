"""Fixtures of the integration tests: an observed indexer and the admin API in this process."""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator

import pytest_asyncio
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics
from indexer.embedded import free_port
from indexer.observability import serving_metrics
from indexer.temporal_client import connect_temporal
from indexer.workflows.task_queues import worker_task_queues
from tests.support.api import ApiClient, serving_api
from tests.support.harness import Harness, ObservedIndexer
from tests.support.waiting import teardown_step


@pytest_asyncio.fixture(loop_scope="session")
async def observed_indexer(
    harness: Harness, temporal_address: str, database_url: str
) -> AsyncIterator[ObservedIndexer]:
    """The harness's pool, plus a traced client with SDK metrics and a real /metrics endpoint."""
    metrics = Metrics(CollectorRegistry())
    sdk = SdkMetrics(metrics)
    client = await connect_temporal(temporal_address, runtime=sdk.runtime)
    harness.metrics = metrics
    port = free_port()
    async with contextlib.AsyncExitStack() as stack:
        await stack.enter_async_context(
            serving_metrics(
                metrics,
                "127.0.0.1",
                port,
                pool=harness.pool,
                database_url=database_url,
                client=client,
                sdk=sdk,
                task_queues=worker_task_queues(harness.task_queue),
                progress=True,
            )
        )
        try:
            yield ObservedIndexer(
                harness, metrics, client, f"http://127.0.0.1:{port}/metrics", database_url
            )
        finally:
            async with teardown_step("stopping /metrics and its collectors"):
                await stack.aclose()


@pytest_asyncio.fixture(loop_scope="session")
async def api(harness: Harness) -> AsyncIterator[ApiClient]:
    """The admin API in this process, on the harness's pool, client and task queue."""
    async with serving_api(harness) as client:
        yield client
