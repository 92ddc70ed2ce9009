"""A rate-limiting Temporal is counted, not invisible, and the scheduler still loses nothing."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from exporter.temporal_sdk import SdkMetrics
from indexer.embedded import child_process, free_port, temporal_dev_server_args
from indexer.temporal_client import connect_temporal
from tests.support.harness import Harness
from tests.support.waiting import wait_until

NAMESPACE_RPS = 5  # low enough that a burst of parallel starts is refused


@pytest.fixture(scope="module")
def limited_temporal(tmp_path_factory: pytest.TempPathFactory) -> Iterator[str]:
    """A dev server whose namespace accepts only NAMESPACE_RPS requests per second."""
    port = free_port()
    args = temporal_dev_server_args(
        port,
        dynamic_config={
            "frontend.namespaceRPS": str(NAMESPACE_RPS),
            "frontend.namespaceBurstRatio": "1",
        },
    )
    log: Path = tmp_path_factory.mktemp("limited") / "temporal.log"
    with child_process(args, "127.0.0.1", port, log_path=log):
        yield f"127.0.0.1:{port}"


async def test_temporal_rate_limits_are_counted_and_every_range_still_starts(
    harness: Harness, limited_temporal: str, sim_chain: Callable[..., str]
) -> None:
    metrics = Metrics(CollectorRegistry())
    sdk = SdkMetrics(metrics)
    harness.client = await connect_temporal(limited_temporal, runtime=sdk.runtime)
    harness.metrics = metrics
    url = sim_chain(backlog=600, txs_per_block=1)
    row = await harness.add_chain(
        url,
        blocks_per_workflow=5,
        catchup_threshold=0,
        parallelism=64,
        scheduler_batch_size=120,
        max_inflight_ranges=1_000,
    )
    chain = row.config.name
    expected = {f"index:{chain}:{start}-{start + 4}" for start in range(0, 600, 5)}

    async def every_range_started() -> bool:
        started = {
            e.id
            async for e in harness.client.list_workflows(
                f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
            )
        }
        assert started <= expected
        return started == expected

    async with harness.worker():
        await harness.start(chain)
        await wait_until(every_range_started, 240, "every range to be started", interval=1.0)
    sdk.drain()
    limited = metrics.registry.get_sample_value(
        "tindexer_rate_limited_total", {"source": "temporal"}
    )
    assert limited is not None and limited > 0
    refused = metrics.registry.get_sample_value(
        "tindexer_temporal_request_errors_total",
        {"operation": "start_workflow", "status": "resource_exhausted"},
    )
    assert refused is not None and refused > 0
    # Rate limiting is counted apart: no start failure of any reason (none created).
    assert not [
        sample
        for family in metrics.registry.collect()
        if family.name == "tindexer_workflow_start_failures"
        for sample in family.samples
        if sample.labels.get("chain") == chain and sample.value > 0
    ]
