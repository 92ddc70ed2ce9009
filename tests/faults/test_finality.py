"""Finality on anvil: a reorg above the final block is repaired; one reaching it is refused.

anvil answers eth_getBlockByNumber("finalized") with head - 64 and ("safe") with head - 32.
Reorgs are made by evm_snapshot, mining, evm_revert and re-mining other transactions.
"""

from __future__ import annotations

import pytest

from indexer.store.chains import update_chain
from tests.support.chaindata import ExpectedBlock, expected_blocks, mine_with_transactions, rpc
from tests.support.faults import POLL_SECONDS, UNAVAILABLE, assert_exactly_indexed, wait_covered
from tests.support.harness import Harness
from tests.support.waiting import wait_until

ANVIL_FINALIZED_DEPTH = 64  # anvil's finalized block is its head - 64
DEPTH = 7  # the reorgs' depth
FINAL_DEPTH = 4  # the fixed-depth case: the 4 newest blocks may change, so the reorg reaches


async def seeded(anvil: str) -> None:
    await rpc(anvil, "evm_setAutomine", False)
    await mine_with_transactions(anvil, 20, value=10**15)
    await rpc(anvil, "anvil_mine", hex(300))


async def reorg(
    anvil: str, harness: Harness, chain_id: int
) -> tuple[int, int, dict[int, ExpectedBlock]]:
    """Mine DEPTH blocks, wait until they are stored, replace them; (base, head, stored)."""
    base = int(await rpc(anvil, "eth_blockNumber"), 16)
    snapshot = await rpc(anvil, "evm_snapshot")
    await mine_with_transactions(anvil, DEPTH, value=10**16)
    head = base + DEPTH
    await wait_covered(harness, chain_id, head, 60)
    old = await harness.stored_blocks(chain_id, base + 1, head)
    assert old == await expected_blocks(anvil, base + 1, head)
    assert await rpc(anvil, "evm_revert", snapshot)
    await mine_with_transactions(anvil, DEPTH, value=10**17)
    return base, head, old


@pytest.mark.anvil
async def test_anvil_finalized_a_reorg_above_the_final_block_is_repaired(
    harness: Harness, anvil: str
) -> None:
    await seeded(anvil)
    row = await harness.add_chain(
        anvil, head_poll_interval_seconds=0.2, blocks_per_workflow=200, finality="finalized"
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        base, head, old = await reorg(anvil, harness, row.id)
        expected = await expected_blocks(anvil, base + 1, head)
        assert all(expected[n].hash != old[n].hash for n in old)

        async def repaired() -> bool:
            return (
                harness.sample("tindexer_reorgs_total", chain=chain) == 1
                and await harness.stored_blocks(row.id, base + 1, head) == expected
            )

        await wait_until(
            repaired, 90, "the reorg above finality", POLL_SECONDS, retry_on=UNAVAILABLE
        )

        async def final_block_shown() -> bool:
            final = head - ANVIL_FINALIZED_DEPTH
            return (
                harness.sample("tindexer_chain_finalized_block", chain=chain) == final
                and (await harness.chain(chain)).finalized == final
            )

        await wait_until(final_block_shown, 30, "the final block on /metrics and in status")
    assert harness.sample("tindexer_reorg_depth_sum", chain=chain) == DEPTH
    assert harness.sample("tindexer_forks_below_finality_total", chain=chain) == 0
    assert harness.sample("tindexer_chain_fork_below_finality", chain=chain) == 0
    await assert_exactly_indexed(harness, row.id, anvil, head)


@pytest.mark.anvil
async def test_anvil_a_reorg_reaching_the_final_block_is_alerted_and_nothing_deleted(
    harness: Harness, anvil: str
) -> None:
    """finality = 4: the depth-7 reorg reaches 3 blocks below the final block."""
    await seeded(anvil)
    row = await harness.add_chain(
        anvil, head_poll_interval_seconds=0.2, blocks_per_workflow=200, finality=FINAL_DEPTH
    )
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        base, head, old = await reorg(anvil, harness, row.id)

        async def refused() -> bool:
            return harness.sample("tindexer_chain_fork_below_finality", chain=chain) == 1

        await wait_until(refused, 30, "the fork below finality to be refused", POLL_SECONDS)
        kind, message = await harness.head_scan_failed(chain)
        assert kind == "ForkBelowFinality"
        # Compared from the final block up (the window and the block below it): the first
        # block found different is the final block itself.
        final = head - FINAL_DEPTH
        assert f"block {final} differs" in message, message
        assert f"final block {final} (finality)" in message, message
        assert await harness.stored_blocks(row.id, base + 1, head) == old  # nothing deleted
        assert harness.sample("tindexer_reorgs_total", chain=chain) == 0
        assert harness.sample("tindexer_forks_below_finality_total", chain=chain) == 1
        assert harness.sample("tindexer_chain_finalized_block", chain=chain) == final

        # Nothing is wedged: with nothing final, max_reorg_depth (64) covers the fork.
        await update_chain(harness.pool, chain, lambda c: c.model_copy(update={"finality": None}))
        expected = await expected_blocks(anvil, base + 1, head)

        async def repaired() -> bool:
            return await harness.stored_blocks(row.id, base + 1, head) == expected

        await wait_until(
            repaired, 90, "the fork to be repaired", POLL_SECONDS, retry_on=UNAVAILABLE
        )
        assert harness.sample("tindexer_chain_fork_below_finality", chain=chain) == 0
    assert harness.sample("tindexer_forks_below_finality_total", chain=chain) == 1
    assert harness.sample("tindexer_reorgs_total", chain=chain) == 1
    await assert_exactly_indexed(harness, row.id, anvil, head)
