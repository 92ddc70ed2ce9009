"""The cluster cases' shared steps: a backfill on worker hosts, waiting for a victim to hold
ranges, and the exact check of what was stored against the chain."""

from __future__ import annotations

import asyncio

from tests.support.cluster import Host
from tests.support.cluster_ranges import ranges_held_by
from tests.support.cluster_site import BACKLOG, Site
from tests.support.db_compare import assert_matches_node
from tests.support.faults import assert_exactly_indexed, indexed_blocks, wait_covered
from tests.support.waiting import wait_until
from tests.support.workers import WorkerProcess

HEAD = BACKLOG - 1
BLOCKS_PER_WORKFLOW = 500  # 40 ranges: more than the hosts run at once

Worker = tuple[Host, WorkerProcess]


async def backfill_on(site: Site, workers: int, **addresses: str) -> tuple[int, str, list[Worker]]:
    """Start `workers` worker hosts and the chain's HeadScan: (chain row id, name, workers).

    `addresses` (database_url, temporal_address) point the workers elsewhere than core.
    """
    started = await asyncio.gather(
        *(site.worker(f"worker-{n}", **addresses) for n in range(1, workers + 1))
    )
    row = await site.add_chain(blocks_per_workflow=BLOCKS_PER_WORKFLOW)
    await site.harness.start(row.config.name)
    return row.id, row.config.name, list(started)


async def wait_holding(site: Site, chain: str, chain_id: int, pid: int) -> list[str]:
    """Wait until a fifth of the chain is indexed and the worker `pid` holds ranges."""
    held: list[str] = []

    async def holding() -> bool:
        if await indexed_blocks(site.harness.pool, chain_id) < BACKLOG // 5:
            return False
        held[:] = await ranges_held_by(site.harness.client, chain, pid)
        return bool(held)

    await wait_until(holding, 60, "a fifth of the chain indexed, ranges on the victim", 0.05)
    return held


async def assert_exact(site: Site, chain_id: int, timeout: float = 120) -> str:
    """0 lost and 0 duplicated blocks, transactions and logs; the counts compared."""
    await wait_covered(site.harness, chain_id, HEAD, timeout)
    url = site.network.chain_url
    await assert_exactly_indexed(site.harness, chain_id, url, HEAD)
    compared = await assert_matches_node(site.harness.pool, chain_id, url, HEAD, get_logs=False)
    return ", ".join(f"{table} {rows}" for table, rows in compared.rows.items())
