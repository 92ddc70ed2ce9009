"""A real node on a host of its own: anvil on the `anvil` host, indexed by two worker hosts over
the bridge, one of them killed mid-backfill; PostgreSQL holds exactly what anvil says."""

from __future__ import annotations

import time

import pytest

from tests.support.cluster_hosts import ANVIL, start_anvil
from tests.support.cluster_site import FIGURES, Site
from tests.support.db_compare import assert_matches_node
from tests.support.evm.jsonrpc import JsonRpc
from tests.support.evm.workload import Workload
from tests.support.faults import indexed_blocks, wait_covered
from tests.support.waiting import wait_until

pytestmark = pytest.mark.cluster

BLOCKS_WITH_TRANSACTIONS = 20  # the issue-13 contracts and their logs
EMPTY_BLOCKS = 3_000  # a backfill long enough to kill a worker host in the middle of it
BLOCKS_PER_WORKFLOW = 100


async def test_anvil_on_its_own_host_indexed_exactly_across_a_killed_worker_host(
    site: Site,
) -> None:
    if not ANVIL.exists():
        pytest.fail(f"anvil is not installed at {ANVIL}: run `make install`")
    url = start_anvil(site.network.cluster)
    site.hosts.append(site.network.cluster.hosts["anvil"])
    async with JsonRpc(url) as node:
        workload = Workload(node)
        await workload.setup()
        await workload.mine(BLOCKS_WITH_TRANSACTIONS)
        await workload.mine_empty(EMPTY_BLOCKS)
        head = await workload.head()
    (victim, _), _ = [await site.worker(f"worker-{n}", 2) for n in (1, 2)]
    row = await site.harness.add_chain(
        url, head_poll_interval_seconds=0.5, blocks_per_workflow=BLOCKS_PER_WORKFLOW
    )
    await site.harness.start(row.config.name)

    async def started() -> bool:
        return await indexed_blocks(site.harness.pool, row.id) >= BLOCKS_PER_WORKFLOW

    await wait_until(started, 120, "the first range indexed")
    at_kill = await indexed_blocks(site.harness.pool, row.id)
    site.network.cluster.kill_host(victim)
    killed_at = time.monotonic()
    await wait_covered(site.harness, row.id, head, 180)
    compared = await assert_matches_node(site.harness.pool, row.id, url, head)
    assert compared.rows["blocks"] == head + 1
    assert compared.rows["logs"] > 0
    assert at_kill < head + 1  # the kill came mid-backfill
    FIGURES.append(
        f"anvil on its own host, {head + 1} blocks: worker host {victim.address} killed at"
        f" {at_kill}; the rest indexed {time.monotonic() - killed_at:.1f} s later by the other;"
        " exact: " + ", ".join(f"{table} {rows}" for table, rows in compared.rows.items())
    )
