"""End to end on real parts: a chain indexed through Temporal into PostgreSQL, exactly."""

from __future__ import annotations

from tests.support.chaindata import expected_blocks, rpc
from tests.support.harness import Harness, fully_indexed
from tests.support.waiting import wait_until


async def test_sim_chain_backlog_is_indexed_exactly(harness: Harness, sim_chain) -> None:
    url = sim_chain(backlog=3_000, txs_per_block=3)
    row = await harness.add_chain(url, blocks_per_workflow=100, catchup_threshold=500)
    async with harness.worker():
        await harness.start(row.config.name)
        await wait_until(lambda: fully_indexed(harness, row.config.name, 2_999), 90, "backfill")
    expected = await expected_blocks(url, 0, 2_999)
    stored = await harness.stored_blocks(row.id)
    assert sorted(stored) == list(range(3_000))
    assert stored == expected
    assert await harness.ranges(row.id) == [(0, 2_999)]
    scheduled = harness.metrics.registry.get_sample_value(
        "tindexer_blocks_scheduled_total", {"chain": row.config.name, "mode": "scheduler"}
    )
    assert scheduled is not None and scheduled >= 2_500


async def seed_anvil(url: str, blocks_with_txs: int, txs_per_block: int, empty_blocks: int) -> int:
    """Mine blocks that carry transactions (automine off, batched sends, evm_mine)."""
    accounts = await rpc(url, "eth_accounts")
    await rpc(url, "evm_setAutomine", False)
    for block in range(blocks_with_txs):
        for i in range(txs_per_block):
            sender = accounts[(block + i) % len(accounts)]
            receiver = accounts[(block + i + 1) % len(accounts)]
            await rpc(
                url,
                "eth_sendTransaction",
                {"from": sender, "to": receiver, "value": hex(10**15 + i)},
            )
        await rpc(url, "evm_mine")
    await rpc(url, "anvil_mine", hex(empty_blocks))
    return int(await rpc(url, "eth_blockNumber"), 16)


async def test_anvil_chain_is_indexed_exactly(harness: Harness, anvil: str) -> None:
    head = await seed_anvil(anvil, blocks_with_txs=40, txs_per_block=5, empty_blocks=60)
    row = await harness.add_chain(anvil, blocks_per_workflow=16, catchup_threshold=50)
    async with harness.worker():
        await harness.start(row.config.name)
        await wait_until(
            lambda: fully_indexed(harness, row.config.name, head), 90, "anvil backfill"
        )
    expected = await expected_blocks(anvil, 0, head)
    stored = await harness.stored_blocks(row.id)
    assert sorted(stored) == list(range(head + 1))
    assert sum(len(b.tx_hashes) for b in stored.values()) == 200
    assert stored == expected
    assert await harness.ranges(row.id) == [(0, head)]
