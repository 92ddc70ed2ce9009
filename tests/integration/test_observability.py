"""/metrics during a real indexing run: every family present, values that agree with the data."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from indexer.store.blocks import delete_from
from indexer.store.ranges import coverage
from indexer.worker import running_worker
from indexer.workflows.task_queues import ranges_task_queue
from tests.support.harness import ObservedIndexer, fully_indexed
from tests.support.waiting import wait_until


@dataclass
class Scrape:
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float]
    families: set[str]

    def value(self, name: str, **labels: str) -> float:
        return self.samples[(name, frozenset(labels.items()))]

    def matching(self, name: str, **labels: str) -> list[float]:
        wanted = set(labels.items())
        return [v for (n, ls), v in self.samples.items() if n == name and wanted <= ls]


async def scrape(url: str) -> Scrape:
    async with aiohttp.ClientSession() as session, session.get(url) as response:
        assert response.status == 200
        text = await response.text()
    samples: dict[tuple[str, frozenset[tuple[str, str]]], float] = {}
    families = set()
    for family in text_string_to_metric_families(text):
        families.add(family.name)
        for sample in family.samples:
            samples[(sample.name, frozenset(sample.labels.items()))] = sample.value
    return Scrape(samples, families)


async def test_metrics_during_a_real_run_agree_with_the_database(
    observed_indexer: ObservedIndexer, sim_chain: Callable[..., str]
) -> None:
    harness = observed_indexer.harness
    url = sim_chain(backlog=2_000, txs_per_block=2)
    row = await harness.add_chain(url, blocks_per_workflow=50, catchup_threshold=300)
    chain = row.config.name
    async with running_worker(
        observed_indexer.client, harness.pool, harness.task_queue, metrics=observed_indexer.metrics
    ):
        await harness.start(chain)
        await wait_until(lambda: fully_indexed(harness, chain, 1_999), 90, "backfill")

        async def collectors_caught_up() -> bool:
            s = await scrape(observed_indexer.url)
            pollers = s.matching("tindexer_task_queue_pollers", task_queue=harness.task_queue)
            live = s.matching("tindexer_chain_live_sync", chain=chain)
            missing = s.matching("tindexer_chain_missing_blocks", chain=chain)
            caught_up = live == [1.0] and missing == [0.0]
            return caught_up and len(pollers) == 2 and min(pollers) >= 1

        await wait_until(collectors_caught_up, 15, "the collectors' next refresh")
        during = await scrape(observed_indexer.url)

    stored = await harness.pool.fetchval("SELECT count(*) FROM blocks WHERE chain_id = $1", row.id)
    assert stored == 2_000
    assert during.value("tindexer_blocks_indexed_total", chain=chain) == stored
    assert during.value("tindexer_chain_head", chain=chain) == 1_999
    assert during.value("tindexer_chain_last_indexed", chain=chain) == 1_999
    assert during.value("tindexer_chain_missing_blocks", chain=chain) == 0
    assert during.value("tindexer_chain_gap_ranges", chain=chain) == 0
    assert during.value("tindexer_backfill_eta_seconds", chain=chain) == 0
    # Scheduling: the Scheduler took the backlog below the live edge, direct the rest.
    scheduled = sum(during.matching("tindexer_blocks_scheduled_total", chain=chain))
    assert scheduled >= 2_000
    assert during.matching("tindexer_blocks_scheduled_total", chain=chain, mode="scheduler")[0] > 0
    started_runs = [
        e
        async for e in harness.client.list_workflows(
            f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
        )
    ]
    assert during.value(
        "tindexer_workflows_started_total", chain=chain, workflow="IndexRange"
    ) == len(started_runs)
    assert during.value("tindexer_scheduler_parallelism", chain=chain) == (
        row.config.effective_parallelism()
    )
    assert during.matching("tindexer_schedule_batch_duration_seconds_count", chain=chain)[0] > 0
    assert during.matching("tindexer_inflight_ranges", chain=chain) != []
    # Indexing phases, activities, RPC.
    fetches = during.value(
        "tindexer_index_range_duration_seconds_count", chain=chain, phase="fetch"
    )
    assert fetches >= 40  # one per batch: each of the 40 ranges of 50 blocks is one batch or more
    ok = during.value(
        "tindexer_activity_duration_seconds_count", activity="index_range", outcome="ok"
    )
    assert ok >= 40  # one per range: 2,000 blocks in ranges of 50
    assert during.value("tindexer_rpc_concurrency_limit", chain=chain, provider="default") == (
        row.config.rpc_max_concurrency
    )
    assert sum(during.matching("tindexer_rpc_requests_total", chain=chain, outcome="ok")) > 0
    # Temporal: queues, health, the SDK's own metrics.
    for kind in ("workflow", "activity"):
        labels = {"task_queue": harness.task_queue, "type": kind}
        assert during.value("tindexer_task_queue_pollers", **labels) >= 1
        assert during.matching("tindexer_task_queue_backlog", **labels) != []
    # Ranges have their own queue (workflows/task_queues.py), described beside the main one.
    ranges = {"task_queue": ranges_task_queue(harness.task_queue), "type": "activity"}
    assert during.value("tindexer_task_queue_pollers", **ranges) >= 1
    assert during.matching("tindexer_task_queue_backlog", **ranges) != []
    assert during.value("tindexer_temporal_up") == 1
    assert during.value("tindexer_temporal_health_latency_seconds") > 0
    assert sum(during.matching("temporal_request_total")) > 0
    assert "temporal_workflow_task_schedule_to_start_latency" in during.families
    assert during.matching("tindexer_build_info") == [1.0]
    # PostgreSQL health and this process's pool.
    assert during.value("tindexer_pg_up") == 1
    assert sum(during.matching("tindexer_pg_connections")) >= 1
    assert during.value("tindexer_pg_max_connections") > 0
    assert during.value("tindexer_pg_database_size_bytes") > 0
    assert during.value("tindexer_pg_pool_connections", state="max") == 20
    assert during.matching("tindexer_collector_errors_total", collector="postgres") == []
    assert (
        during.value("tindexer_collector_last_success_timestamp_seconds", collector="postgres") > 0
    )
    assert (
        during.value("tindexer_collector_last_success_timestamp_seconds", collector="progress") > 0
    )

    # A gap made while no worker runs shows in the gauges exactly as the gap listing says.
    async with harness.pool.acquire() as conn:
        await delete_from(conn, row.id, 700, 899)
    covered = await coverage(harness.pool, row.id, 0, 1_999)

    async def gap_visible() -> bool:
        s = await scrape(observed_indexer.url)
        return s.matching("tindexer_chain_missing_blocks", chain=chain) == [
            float(covered.missing_blocks)
        ]

    await wait_until(gap_visible, 15, "the gap in the gauges")
    after = await scrape(observed_indexer.url)
    assert covered.gaps == [(700, 899)]
    assert after.value("tindexer_chain_gap_ranges", chain=chain) == 1
    assert after.value("tindexer_chain_live_sync", chain=chain) == 1  # a backlog, still live


async def test_queue_backlog_rises_without_workers_and_drains_with_one(
    observed_indexer: ObservedIndexer,
) -> None:
    harness = observed_indexer.harness
    labels = {"task_queue": harness.task_queue, "type": "workflow"}
    for n in range(50):
        await harness.client.start_workflow(
            "IndexRange",
            id=f"backlog-{harness.task_queue}-{n}",
            task_queue=harness.task_queue,
            args=[{"chain": "nonexistent", "start": 0, "end": 0, "max_attempts": 1}],
        )

    async def backlog(predicate: Callable[[float], bool]) -> bool:
        values = (await scrape(observed_indexer.url)).matching(
            "tindexer_task_queue_backlog", **labels
        )
        return bool(values) and predicate(values[0])

    await wait_until(lambda: backlog(lambda v: v >= 45), 30, "a backlog of about 50")
    peak = (await scrape(observed_indexer.url)).value("tindexer_task_queue_backlog", **labels)
    assert 45 <= peak <= 50
    async with running_worker(
        observed_indexer.client, harness.pool, harness.task_queue, metrics=observed_indexer.metrics
    ):
        await wait_until(lambda: backlog(lambda v: v == 0), 60, "the backlog to drain")
