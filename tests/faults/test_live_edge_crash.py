"""A worker process SIGKILLed while its head scan follows a live chain (indexing the live edge
between looks at the head): nothing is lost or doubled, and the next worker's scan picks up."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from tests.support.faults import (
    assert_exactly_indexed,
    assert_nothing_half_written,
    caught_up,
    wait_covered,
)
from tests.support.harness import Harness
from tests.support.simchain import sim_post
from tests.support.waiting import wait_until
from tests.support.workers import WorkerProcess, WorkerProcesses, sample_sum

BACKLOG = 300
BLOCK_SECONDS = 0.25
BLOCKS_AROUND_THE_KILL = 20


async def live_edge_blocks(worker: WorkerProcess) -> float:
    return sample_sum(await worker.scrape(), "tindexer_live_edge_blocks_total")


async def mine(url: str, blocks: int) -> None:
    """A block every BLOCK_SECONDS: the chain's own pace, not a wait for the indexer."""
    for _ in range(blocks):
        await sim_post(url, "/_sim/mine", {"blocks": 1})
        await asyncio.sleep(BLOCK_SECONDS)


async def test_a_worker_killed_while_following_the_head_loses_no_block(
    harness: Harness,
    sim_chain: Callable[..., str],
    database_url: str,
    worker_processes: WorkerProcesses,
) -> None:
    # Every answer takes 50 ms, so indexing a new block is a window a kill can land in.
    url = sim_chain(backlog=BACKLOG, txs_per_block=3, latency_seconds=0.05)
    row = await harness.add_chain(
        url, blocks_per_workflow=100, head_poll_interval_seconds=BLOCK_SECONDS
    )
    address = harness.client.service_client.config.target_host

    async def started_worker() -> WorkerProcess:
        worker = worker_processes.start(harness.task_queue, database_url, address)
        await worker.ready()
        return worker

    worker = await started_worker()
    await harness.start(row.config.name)
    await wait_covered(harness, row.id, BACKLOG - 1, 60)
    mining = asyncio.create_task(mine(url, BLOCKS_AROUND_THE_KILL))

    async def following() -> bool:
        return await live_edge_blocks(worker) >= 3

    await wait_until(following, 30, "the live edge to index new blocks")
    worker.kill()
    await assert_nothing_half_written(harness.pool, row.id)
    worker = await started_worker()
    await mining
    head = await caught_up(harness, row.id, url, timeout=60)
    assert head == BACKLOG - 1 + BLOCKS_AROUND_THE_KILL
    await assert_exactly_indexed(harness, row.id, url, head)
    # The new worker's scan took the blocks mined around the kill at the live edge.
    assert await live_edge_blocks(worker) >= 1
