"""A provider that lags, resyncs to block 0 or cuts a header hash: nothing indexed is deleted.

Each case runs the real indexer (Temporal, PostgreSQL) against the simulated chain behind the
misbehaving provider proxy. A head below what is stored is a lagging node, never a reorg.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import Callable
from typing import Any

from tests.support.faults import assert_exactly_indexed, indexed_behind_proxy, wait_covered
from tests.support.harness import Harness
from tests.support.simchain import sim_head, sim_post

BACKLOG = 1_000
SCANS = "eth_blockNumber"  # every head scan asks it exactly once


async def test_a_provider_two_blocks_behind_deletes_nothing_and_is_counted(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    upstream = sim_chain(backlog=BACKLOG, txs_per_block=1)
    async with indexed_behind_proxy(harness, upstream, 0.1) as (proxy, row):
        chain = row.config.name
        versions = await harness.row_versions(row.id)
        lagging_from = proxy.calls[SCANS]
        proxy.head_lag = 2
        await proxy.more_calls(SCANS, 5)  # four scans done while lagging, the fifth begun
        assert await harness.row_versions(row.id) == versions  # no row deleted or rewritten
        assert (await harness.chain(chain)).head == BACKLOG - 1  # the head does not go back
        regressions = harness.sample("tindexer_rpc_head_regressions_total", chain=chain)
        assert 4 <= regressions <= proxy.calls[SCANS] - lagging_from
        assert harness.sample("tindexer_rpc_head_lag_blocks", chain=chain) == 2
        proxy.reset()
        await proxy.more_calls(SCANS, 3)
        assert harness.sample("tindexer_rpc_head_lag_blocks", chain=chain) == 0
        assert await harness.row_versions(row.id) == versions
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, upstream, BACKLOG - 1)


async def test_a_node_back_at_block_0_for_30s_loses_nothing_then_matches_the_chain(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    """The chain keeps growing (10 blocks/s, mined by the test) while its node says 0."""
    upstream = sim_chain(backlog=BACKLOG, txs_per_block=1)
    async with indexed_behind_proxy(harness, upstream, 0.2) as (proxy, row):
        chain = row.config.name
        versions = await harness.row_versions(row.id)
        counts = [await harness.block_count(row.id)]
        resync_began = proxy.calls[SCANS]
        proxy.head_fixed = 0
        resynced_until = time.monotonic() + 30
        while time.monotonic() < resynced_until:
            await sim_post(upstream, "/_sim/mine", {"blocks": 2})
            await asyncio.sleep(0.2)
            counts.append(await harness.block_count(row.id))
        drops = [(a, b) for a, b in itertools.pairwise(counts) if b < a]
        assert not drops, f"the stored block count dropped: {drops[:5]} of {len(counts)}"
        assert len(counts) > 50  # sampled all along the 30 s
        assert await harness.row_versions(row.id) == versions  # none deleted or rewritten
        assert (await harness.chain(chain)).head == BACKLOG - 1
        assert harness.sample("tindexer_rpc_head_lag_blocks", chain=chain) == BACKLOG - 1
        resync_scans = proxy.calls[SCANS] - resync_began
        proxy.reset()
        head = await sim_head(upstream)  # the chain stops growing here
        assert head > BACKLOG - 1 + 100
        await wait_covered(harness, row.id, head, 90)
    # Every scan of the resync counted (give or take the one in flight at either switch).
    regressions = harness.sample("tindexer_rpc_head_regressions_total", chain=chain)
    assert abs(regressions - resync_scans) <= 1, (regressions, resync_scans)
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, upstream, head)


async def test_a_header_hash_of_the_wrong_length_is_bad_data_not_a_fork(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    upstream = sim_chain(backlog=BACKLOG, txs_per_block=1)

    def cut_header_hashes(call: dict[str, Any], answer: dict[str, Any]) -> None:
        """Headers (no transactions) lose the last byte of their hash; full blocks keep it."""
        header = answer.get("result")
        headers_only = call.get("params", [None, True])[1:] == [False]
        if call.get("method") == "eth_getBlockByNumber" and headers_only and header:
            header["hash"] = header["hash"][:-2]

    # One RPC retry: a scan that meets the bad hash fails in well under a second, instead of
    # after 9 attempts with backoff growing to 10 s (about 16 s a scan, so three scans could
    # outlast the wait below on a busy machine).
    async with indexed_behind_proxy(harness, upstream, 0.1, rpc_max_retries=1) as (proxy, row):
        chain = row.config.name
        versions = await harness.row_versions(row.id)
        proxy.rewrite = cut_header_hashes
        await proxy.more_calls(SCANS, 3)  # scans retried after the failure, 1 s then 2 s
        assert await harness.row_versions(row.id) == versions  # no row deleted or rewritten
        assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
        kind, message = await harness.head_scan_failed(chain)
        assert kind == "BadChainData"
        assert "hash" in message, message
        proxy.reset()
        await proxy.more_calls(SCANS, 2)
        assert await harness.row_versions(row.id) == versions
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, upstream, BACKLOG - 1)
