"""The bulk store on a real PostgreSQL: fresh ranges copied straight in, the rest upserted."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator

import asyncpg
import pytest
import pytest_asyncio

from indexer.chain.model import Block, parse_block
from indexer.config import ChainConfig
from indexer.datasets import Dataset
from indexer.simchain.server import SimChain, SimChainConfig
from indexer.store.blocks import delete_from, store_batch
from indexer.store.chains import upsert_chain
from indexer.store.db import create_pool
from indexer.store.ranges import coverage
from tests.support.waiting import wait_until

# The blocks built here come without receipts.
BLOCKS_AND_TRANSACTIONS: tuple[Dataset, ...] = ("blocks", "transactions")


def chain_blocks(start: int, end: int, txs_per_block: int = 3, fork: int = 0) -> list[Block]:
    sim = SimChain(SimChainConfig(backlog=end + 1, block_time=0, txs_per_block=txs_per_block))
    for _ in range(fork):
        sim.reorg(end - start + 1)
    texts = {n: sim.block_text(n, True) or "" for n in range(start, end + 1)}
    return [parse_block(json.loads(text), n) for n, text in texts.items()]


class Store:
    def __init__(self, pool: asyncpg.Pool, chain_id: int) -> None:
        self.pool, self.chain_id = pool, chain_id

    async def write(self, blocks: list[Block]) -> None:
        async with self.pool.acquire() as conn:
            await store_batch(conn, self.chain_id, blocks, BLOCKS_AND_TRANSACTIONS)

    async def rows(self) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
        """Block hashes by number, transaction hashes by (block, index)."""
        blocks = await self.pool.fetch(
            "SELECT number, hash FROM blocks WHERE chain_id = $1", self.chain_id
        )
        txs = await self.pool.fetch(
            "SELECT block_number, tx_index, hash FROM transactions WHERE chain_id = $1",
            self.chain_id,
        )
        return (
            {r["number"]: r["hash"].hex() for r in blocks},
            {(r["block_number"], r["tx_index"]): r["hash"].hex() for r in txs},
        )


def expected(blocks: list[Block]) -> tuple[dict[int, str], dict[tuple[int, int], str]]:
    return (
        {b.number: b.hash for b in blocks},
        {(b.number, tx.tx_index): tx.hash for b in blocks for tx in b.transactions},
    )


@pytest_asyncio.fixture(loop_scope="session")
async def store(database_url: str) -> AsyncIterator[Store]:
    pool = await create_pool(database_url, max_size=4)
    row = await upsert_chain(
        pool,
        ChainConfig(
            name="store", rpc_url="http://127.0.0.1:9", datasets=list(BLOCKS_AND_TRANSACTIONS)
        ),
    )
    try:
        yield Store(pool, row.id)
    finally:
        await pool.close()


@pytest.mark.asyncio(loop_scope="session")
async def test_a_range_written_twice_holds_its_rows_once(store: Store) -> None:
    blocks = chain_blocks(0, 199)
    await store.write(blocks)  # fresh: copied straight into the tables
    await store.write(blocks)  # again: through staging and upsert, nothing changes
    assert await store.rows() == expected(blocks)
    covered = await coverage(store.pool, store.chain_id, 0, 199)
    assert (covered.missing_blocks, covered.gaps) == (0, [])


@pytest.mark.asyncio(loop_scope="session")
async def test_a_rewritten_fork_replaces_blocks_and_their_transactions(store: Store) -> None:
    await store.write(chain_blocks(10, 99, txs_per_block=4))
    fork = chain_blocks(10, 99, txs_per_block=2, fork=1)
    await store.write(fork)
    assert await store.rows() == expected(fork)  # no transaction of the old fork is left


@pytest.mark.asyncio(loop_scope="session")
async def test_transactions_left_without_their_blocks_do_not_wedge_the_range(
    store: Store,
) -> None:
    blocks = chain_blocks(0, 49)
    await store.write(blocks)
    await store.pool.execute("DELETE FROM blocks WHERE chain_id = $1", store.chain_id)
    await store.write(blocks)  # a straight copy would hit the transactions' primary key
    assert await store.rows() == expected(blocks)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_concurrent_writer_of_the_same_fresh_range_fails_and_its_retry_changes_nothing(
    store: Store,
) -> None:
    blocks = chain_blocks(100, 199)
    async with store.pool.acquire() as first, store.pool.acquire() as second:
        transaction = first.transaction()
        await transaction.start()
        # Copied, not yet committed:
        await store_batch(first, store.chain_id, blocks, BLOCKS_AND_TRANSACTIONS)
        racing = asyncio.create_task(
            store_batch(second, store.chain_id, blocks, BLOCKS_AND_TRANSACTIONS)
        )
        await asyncio.sleep(0.5)
        assert not racing.done()  # waiting on the first writer's uncommitted keys
        await transaction.commit()
        with pytest.raises(asyncpg.UniqueViolationError):
            await racing  # an activity failure: Temporal retries it
        # The retry upserts: no change.
        await store_batch(second, store.chain_id, blocks, BLOCKS_AND_TRANSACTIONS)
    assert await store.rows() == expected(blocks)


@pytest.mark.asyncio(loop_scope="session")
async def test_a_repair_waits_for_a_store_of_the_same_blocks_instead_of_deadlocking(
    store: Store,
) -> None:
    """store_batch's upsert of a fork locks each replaced block, then deletes its transactions;
    a reorg repair (delete_from) of the same blocks must take them in that order too, or each
    waits for the other until PostgreSQL aborts one (a failed scan, or a failed range)."""
    await store.write(chain_blocks(0, 99))
    async with store.pool.acquire() as writer, store.pool.acquire() as repairer:
        transaction = writer.transaction()
        await transaction.start()
        # The writer's first step on a fork of 50..99: the replaced blocks, updated and locked.
        await writer.execute(
            "UPDATE blocks SET tx_count = tx_count WHERE chain_id = $1 AND number >= 50",
            store.chain_id,
        )
        repair = asyncio.create_task(delete_from(repairer, store.chain_id, 50, 99))
        repairer_pid = repairer.get_server_pid()

        async def repair_waits() -> bool:
            query = "SELECT wait_event_type FROM pg_stat_activity WHERE pid = $1"
            return await store.pool.fetchval(query, repairer_pid) == "Lock"

        await wait_until(repair_waits, 10, "the repair to wait for the writer's locks", 0.02)
        # The writer's next step: the replaced blocks' old transactions.
        await writer.execute(
            "DELETE FROM transactions WHERE chain_id = $1 AND block_number >= 50", store.chain_id
        )
        await transaction.commit()
        assert await repair == 50
    blocks, transactions = await store.rows()
    assert sorted(blocks) == list(range(50))
    assert sorted({number for number, _ in transactions}) == list(range(50))
    covered = await coverage(store.pool, store.chain_id, 0, 99)
    assert covered.gaps == [(50, 99)]
