"""The live edge on real parts: a chain followed block by block by its head scan, with no
IndexRange workflow per block; a gap wider than live_edge_blocks still goes to IndexRange; a
reorg at the head is still repaired."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

import pytest

from indexer.activities import live_edge
from indexer.datasets import DATASETS
from indexer.temporal_client import INDEX_RANGE, head_scan_id
from indexer.worker import WorkerTuning
from tests.support.chaindata import expected_blocks, rpc
from tests.support.faults import assert_exactly_indexed, caught_up, wait_covered
from tests.support.harness import Harness
from tests.support.simchain import sim_post
from tests.support.waiting import wait_until

BACKLOG = 300  # blocks 0..299: a backfill by IndexRange workflows (wider than the live edge)
HEAD = BACKLOG - 1
BLOCK_SECONDS = 0.25  # a fast L2's block time, and the head poll interval
LIVE_BLOCKS = 40
WIDE_GAP = 100  # blocks mined at once: more than live_edge_blocks (32, the default)


def starts(harness: Harness, chain: str) -> float:
    return harness.sample("tindexer_workflows_started_total", chain=chain, workflow=INDEX_RANGE)


async def backfilled(harness: Harness, chain: str, chain_id: int) -> float:
    """Wait for the backfill and for a look at the head begun after it (so no start of the
    backfill is still on its way: HeadScan schedules only between its scans); IndexRange
    starts so far. A followed scan looks many times per activity, so looks are counted by their
    eth_blockNumber requests: two more than at the end of the backfill, the second begun after."""
    await wait_covered(harness, chain_id, HEAD, 60)
    looks = head_requests(harness, chain)

    async def looked_again() -> bool:
        return head_requests(harness, chain) >= looks + 2

    await wait_until(looked_again, 30, "a look at the head after the backfill")
    return starts(harness, chain)


def head_requests(harness: Harness, chain: str) -> float:
    """eth_blockNumber requests of the chain's head scans, every provider and outcome."""
    return sum(
        sample.value
        for family in harness.metrics.rpc_requests.collect()
        for sample in family.samples
        if sample.name == "tindexer_rpc_requests_total"
        and sample.labels["chain"] == chain
        and sample.labels["method"] == "eth_blockNumber"
    )


async def mine_live(url: str, blocks: int) -> None:
    """A block every BLOCK_SECONDS, the chain's own pace (not a wait for the indexer)."""
    for _ in range(blocks):
        await sim_post(url, "/_sim/mine", {"blocks": 1})
        await asyncio.sleep(BLOCK_SECONDS)


async def index_range_runs(harness: Harness, chain: str) -> int:
    return (await harness.client.count_workflows(f"WorkflowId STARTS_WITH 'index:{chain}:'")).count


async def history_events(harness: Harness, chain: str) -> int:
    description = await harness.client.get_workflow_handle(head_scan_id(chain)).describe()
    return description.raw_description.workflow_execution_info.history_length


async def assert_every_dataset(harness: Harness, chain_id: int, url: str, head: int) -> None:
    """Blocks 0..head recorded once for each dataset, with every log of the chain."""
    rows = await harness.pool.fetch(
        "SELECT dataset, start_block, end_block FROM dataset_ranges WHERE chain_id = $1",
        chain_id,
    )
    assert sorted((r["dataset"], r["start_block"], r["end_block"]) for r in rows) == sorted(
        (dataset, 0, head) for dataset in DATASETS
    )
    receipts = [await rpc(url, "eth_getBlockReceipts", hex(n)) for n in range(head + 1)]
    logs = sum(len(receipt["logs"]) for block in receipts for receipt in block)
    stored = await harness.pool.fetchval("SELECT count(*) FROM logs WHERE chain_id = $1", chain_id)
    assert logs > 0 and stored == logs


async def test_a_live_chain_is_followed_without_index_range_workflows(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=3)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        backfill_starts = await backfilled(harness, chain, row.id)
        events_before = await history_events(harness, chain)
        await mine_live(url, LIVE_BLOCKS)
        head = await caught_up(harness, row.id, url)
        events = await history_events(harness, chain) - events_before
    assert head == HEAD + LIVE_BLOCKS
    assert backfill_starts > 0
    assert starts(harness, chain) == backfill_starts
    assert await index_range_runs(harness, chain) == backfill_starts
    assert harness.sample("tindexer_live_edge_blocks_total", chain=chain) == LIVE_BLOCKS
    # Each block written once: by a range or by the live edge, never both, never again.
    assert harness.sample("tindexer_blocks_indexed_total", chain=chain) == head + 1
    await assert_exactly_indexed(harness, row.id, url, head)
    await assert_every_dataset(harness, row.id, url, head)
    # One scan follows the head for seconds: HeadScan's history grows by far less than the
    # ~10 events (activity, timer, workflow tasks) a scan per poll would add per block.
    assert events < LIVE_BLOCKS, f"{events} history events for {LIVE_BLOCKS} blocks"


async def test_more_chains_than_activity_slots_are_each_followed_by_the_live_edge(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    """A followed chain's scan holds an activity slot for seconds: a worker with fewer slots
    than chains still follows every chain (head-following has slots of its own), so none falls
    a live_edge_blocks window behind and needs an IndexRange."""
    url = sim_chain(backlog=BACKLOG, txs_per_block=3)
    rows = [
        await harness.add_chain(
            url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
        )
        for _ in range(3)
    ]
    async with harness.worker(tuning=WorkerTuning(max_concurrent_activities=2)):
        for row in rows:
            await harness.start(row.config.name)
        backfill_starts = {
            row.config.name: await backfilled(harness, row.config.name, row.id) for row in rows
        }
        await mine_live(url, LIVE_BLOCKS)
        heads = [await caught_up(harness, row.id, url) for row in rows]
    assert heads == [HEAD + LIVE_BLOCKS] * len(rows)
    for row in rows:
        assert starts(harness, row.config.name) == backfill_starts[row.config.name]
        assert harness.sample("tindexer_live_edge_blocks_total", chain=row.config.name) >= (
            LIVE_BLOCKS
        )


def coverage_reads(harness: Harness) -> float:
    return harness.sample("tindexer_pg_query_duration_seconds_count", query="coverage")


async def test_a_head_that_has_not_moved_costs_a_head_request_not_a_look(
    harness: Harness, sim_chain: Callable[..., str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """Between blocks a followed chain's polls only ask for the head: no reorg check, coverage
    or edge until the head moves or QUIET_LOOK_SECONDS have passed."""
    monkeypatch.setattr(live_edge, "QUIET_LOOK_SECONDS", 3600.0)
    url = sim_chain(backlog=BACKLOG, txs_per_block=3)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        await backfilled(harness, chain, row.id)  # the second look after it saw no gap
        looks, reads = head_requests(harness, chain), coverage_reads(harness)

        async def polled(more: int) -> bool:
            return head_requests(harness, chain) >= looks + more

        await wait_until(lambda: polled(8), 30, "eight more polls of a head that stays")
        quiet_reads = coverage_reads(harness) - reads
        monkeypatch.setattr(live_edge, "QUIET_LOOK_SECONDS", 0.0)

        async def looked_fully() -> bool:
            return coverage_reads(harness) > reads

        await wait_until(looked_fully, 30, "a full look once the quiet time is over")
        await sim_post(url, "/_sim/mine", {"blocks": 1})
        head = await caught_up(harness, row.id, url)
    assert quiet_reads == 0
    assert head == HEAD + 1
    assert harness.sample("tindexer_live_edge_blocks_total", chain=chain) == 1
    await assert_exactly_indexed(harness, row.id, url, head)


async def test_a_gap_wider_than_the_live_edge_goes_to_index_range(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=3)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        backfill_starts = await backfilled(harness, chain, row.id)
        scheduled = harness.sample("tindexer_blocks_scheduled_total", chain=chain, mode="direct")
        await sim_post(url, "/_sim/mine", {"blocks": WIDE_GAP})
        head = await caught_up(harness, row.id, url)
    assert head == HEAD + WIDE_GAP
    assert starts(harness, chain) > backfill_starts
    direct = harness.sample("tindexer_blocks_scheduled_total", chain=chain, mode="direct")
    assert direct - scheduled == WIDE_GAP
    assert harness.sample("tindexer_live_edge_blocks_total", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, url, head)


async def test_a_reorg_at_the_live_edge_is_repaired_by_the_live_edge(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    depth = 5
    url = sim_chain(backlog=BACKLOG, txs_per_block=3)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        backfill_starts = await backfilled(harness, chain, row.id)
        await mine_live(url, 10)
        head = await caught_up(harness, row.id, url)
        before = await harness.stored_blocks(row.id)
        assert (await sim_post(url, "/_sim/reorg", {"depth": depth}))["head"] == head
        after = await expected_blocks(url, 0, head)

        async def repaired() -> bool:
            return await harness.stored_blocks(row.id) == after

        await wait_until(repaired, 30, f"the depth-{depth} reorg to be repaired")
    assert sorted(n for n in after if after[n] != before[n]) == list(
        range(head - depth + 1, head + 1)
    )
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 1
    assert harness.sample("tindexer_reorg_depth_sum", chain=chain) == depth
    assert starts(harness, chain) == backfill_starts
    assert harness.sample("tindexer_live_edge_blocks_total", chain=chain) == 10 + depth
    await assert_exactly_indexed(harness, row.id, url, head)
