"""Issue 12, item 9: metrics that tell the truth about chains that come and go.

With the real progress collector on the API's database: a chain created through the API gets its
counters at zero on the next refresh (so `increase()` sees the first event), and once
it is deleted no series with its label remains after one refresh, worker gauges included.
"""

from __future__ import annotations

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.observability import ProgressCollector
from indexer.store.chains import set_head
from tests.support.api import ApiClient
from tests.support.harness import Harness


def series_of(registry: CollectorRegistry, chain: str) -> set[str]:
    return {
        sample.name
        for family in registry.collect()
        for sample in family.samples
        if sample.labels.get("chain") == chain
    }


async def test_a_deleted_chain_leaves_no_series_and_a_new_one_starts_at_zero(
    harness: Harness, api: ApiClient
) -> None:
    registry = CollectorRegistry()
    metrics = Metrics(registry)
    collector = ProgressCollector(metrics, harness.pool)
    name = harness.chain_config("http://127.0.0.1:9").name
    kept = (await harness.add_chain("http://127.0.0.1:9")).config.name
    status, _ = await api.call("POST", "/chains", {"name": name, "rpc_url": "http://127.0.0.1:9"})
    assert status == 201
    for chain in (name, kept):
        await set_head(harness.pool, (await harness.chain(chain)).id, 10)

    await collector.refresh()
    labels = {"chain": name, "workflow": "IndexRange"}
    assert registry.get_sample_value("tindexer_workflows_started_total", labels) == 0
    assert registry.get_sample_value("tindexer_chain_missing_blocks", {"chain": name}) == 11
    # What a worker in the same process exports for the chain.
    metrics.rpc_concurrency_limit.labels(name, "default").set(16)
    metrics.inflight_ranges.labels(name).set(3)
    metrics.index_range_duration.labels(name, "fetch").observe(0.2)
    before = series_of(registry, name)
    assert {"tindexer_chain_head", "tindexer_rpc_concurrency_limit"} <= before

    assert (await api.call("DELETE", f"/chains/{name}?confirm={name}"))[0] == 204
    await collector.refresh()
    assert series_of(registry, name) == set()
    assert registry.get_sample_value("tindexer_chain_head", {"chain": kept}) == 10  # untouched
