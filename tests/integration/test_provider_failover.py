"""Two providers in front of one chain — a simulated chain process, and a real anvil node — end
to end (Temporal, PostgreSQL, a worker): the first is killed mid-backfill, indexing goes on
through the second without a pause, the store equals the chain, and the first gets traffic again
once it is back; one 100 blocks behind is never asked above its head and its lag is exported."""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable
from contextlib import AsyncExitStack

import pytest
from prometheus_client import generate_latest

from indexer.config import ProviderConfig
from indexer.datasets import DATASETS
from tests.support.chaindata import expected_blocks
from tests.support.db_compare import assert_matches_node
from tests.support.evm.jsonrpc import JsonRpc
from tests.support.evm.workload import Workload
from tests.support.harness import Harness, fully_indexed
from tests.support.provider_proxy import ProviderProxy
from tests.support.simchain import sim_head
from tests.support.waiting import wait_until

BACKLOG = 20_000
LONGEST_PAUSE_SECONDS = 3.0  # between two requests to the surviving provider after the kill
ANVIL_BLOCKS_WITH_TRANSACTIONS = 20  # the issue-13 contracts and their logs
ANVIL_EMPTY_BLOCKS = 6_000  # enough backfill left to kill a provider in the middle of it


async def test_killing_a_provider_mid_backfill_loses_nothing_and_it_returns_to_rotation(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=2, block_time=0.5)
    first, second = ProviderProxy(url, name="first"), ProviderProxy(url, name="second")
    async with AsyncExitStack() as first_alive, second.running():
        await first_alive.enter_async_context(first.running())
        providers = [ProviderConfig(name=p.name, url=p.url) for p in (first, second)]
        row = await harness.add_chain(
            None, providers=providers, blocks_per_workflow=250, rpc_batch_size=50
        )
        chain = row.config.name

        def sample(name: str, provider: str) -> float:
            return harness.sample(name, chain=chain, provider=provider)

        async with harness.worker():
            await harness.start(chain)

            async def midway() -> bool:
                return await harness.block_count(row.id) >= BACKLOG // 10

            await wait_until(midway, 120, "a tenth of the backlog indexed")
            assert first.calls["eth_getBlockByNumber"] > 0  # both were in use
            assert second.calls["eth_getBlockByNumber"] > 0
            port = first.port
            await first_alive.aclose()  # killed
            killed_at = time.monotonic()
            head = await sim_head(url)
            await wait_until(lambda: fully_indexed(harness, chain, head), 180, "the backlog")
            done_at = time.monotonic()
            served = [killed_at, *(t for t in second.arrivals if killed_at < t <= done_at)]
            pauses = [later - earlier for earlier, later in itertools.pairwise(served)]
            assert max(pauses) < LONGEST_PAUSE_SECONDS, max(pauses)
            assert sample("tindexer_provider_up", "first") == 0
            assert sample("tindexer_provider_circuit_opened_total", "first") == 1
            assert sample("tindexer_provider_up", "second") == 1

            async with first.running(port=port):  # back
                before = first.calls["eth_getBlockByNumber"]

                async def back_in_rotation() -> bool:
                    return (
                        first.calls["eth_getBlockByNumber"] > before
                        and sample("tindexer_provider_up", "first") == 1
                    )

                await wait_until(back_in_rotation, 90, "the first provider fetching again")

    ranges = await harness.ranges(row.id)
    stored_head = ranges[-1][1]
    assert ranges == [(0, stored_head)] and stored_head >= head
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, stored_head)


async def test_a_provider_100_blocks_behind_is_never_asked_above_its_head_end_to_end(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=3_000, txs_per_block=2)
    head = await sim_head(url)
    behind, current = ProviderProxy(url, name="behind"), ProviderProxy(url, name="current")
    behind.head_lag = 100
    async with behind.running(), current.running():
        providers = [ProviderConfig(name=p.name, url=p.url) for p in (behind, current)]
        row = await harness.add_chain(None, providers=providers, blocks_per_workflow=250)
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await wait_until(lambda: fully_indexed(harness, chain, head), 120, "the backlog")
        assert (await harness.chain(chain)).head == head  # the best provider's, not the lagging
    assert behind.blocks_above_head == []
    assert behind.calls["eth_getBlockByNumber"] > 0  # still used for what it has
    exposition = generate_latest(harness.metrics.registry).decode()
    assert f'tindexer_provider_head_lag_blocks{{chain="{chain}",provider="behind"}} 100.0' in (
        exposition
    )
    assert f'tindexer_provider_head_lag_blocks{{chain="{chain}",provider="current"}} 0.0' in (
        exposition
    )
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, head)


@pytest.mark.anvil
async def test_killing_a_provider_in_front_of_anvil_mid_backfill_loses_nothing(
    harness: Harness, anvil: str
) -> None:
    """The same on a real node: afterwards every block, transaction, receipt and log in
    PostgreSQL is exactly what anvil says (tests/support/db_compare.py)."""
    async with JsonRpc(anvil) as node:
        workload = Workload(node)
        await workload.setup()
        await workload.mine(ANVIL_BLOCKS_WITH_TRANSACTIONS)
        await workload.mine_empty(ANVIL_EMPTY_BLOCKS)
        head = await workload.head()
    first, second = ProviderProxy(anvil, name="first"), ProviderProxy(anvil, name="second")
    async with AsyncExitStack() as first_alive, second.running():
        await first_alive.enter_async_context(first.running())
        providers = [ProviderConfig(name=p.name, url=p.url) for p in (first, second)]
        row = await harness.add_chain(
            None, providers=providers, blocks_per_workflow=200, rpc_batch_size=25
        )
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)

            async def started() -> bool:
                # Fetches run ahead of the store (within the memory budget): counted by blocks
                # stored, the kill could come after the last fetch. A sixth of the backlog asked.
                asked = first.calls["eth_getBlockByNumber"] + second.calls["eth_getBlockByNumber"]
                return asked >= (head + 1) // 6 and await harness.block_count(row.id) > 0

            await wait_until(started, 120, "a sixth of the backlog fetched")
            assert first.calls["eth_getBlockByNumber"] > 0  # both were in use
            assert second.calls["eth_getBlockByNumber"] > 0
            port = first.port
            await first_alive.aclose()  # killed
            killed_at = time.monotonic()
            left = head + 1 - await harness.block_count(row.id)
            await wait_until(lambda: fully_indexed(harness, chain, head), 180, "the backlog")
            done_at = time.monotonic()
            served = [killed_at, *(t for t in second.arrivals if killed_at < t <= done_at)]
            pauses = [later - earlier for earlier, later in itertools.pairwise(served)]
            assert max(pauses) < LONGEST_PAUSE_SECONDS, max(pauses)
            assert harness.sample("tindexer_provider_up", chain=chain, provider="first") == 0

            async with first.running(port=port):  # back
                before = first.calls["eth_getBlockByNumber"]

                async def back_in_rotation() -> bool:
                    return first.calls["eth_getBlockByNumber"] > before

                await wait_until(back_in_rotation, 90, "the first provider fetching again")

    print(f"\n{left} of {head + 1} anvil blocks were left when the first provider was killed")
    assert left > 0  # the kill came mid-backfill
    compared = await assert_matches_node(harness.pool, row.id, anvil, head, DATASETS)
    assert compared.rows["blocks"] == head + 1
    assert compared.rows["logs"] > 0
