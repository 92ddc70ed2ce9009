"""A chain's rows written straight into PostgreSQL (no node), and counted, for API tests."""

from __future__ import annotations

import asyncpg

from indexer.chain.model import Block, Transaction
from indexer.store.blocks import store_range

COUNT_ROWS = """
SELECT (SELECT count(*) FROM blocks WHERE chain_id = $1),
       (SELECT count(*) FROM transactions WHERE chain_id = $1),
       (SELECT count(*) FROM indexed_ranges WHERE chain_id = $1)
"""


async def store_blocks(pool: asyncpg.Pool, chain_id: int, first: int, last: int) -> None:
    """Blocks first..last with one transaction each, stored and marked indexed as a worker does."""
    blocks = []
    parent = f"{first:064x}"  # hashes and addresses are lower-case hex without 0x
    for number in range(first, last + 1):
        digest = f"{number + 1:064x}"
        txs = [Transaction(f"{number:062x}09", 0, "01" * 20, None, 1, None, None, None)]
        blocks.append(Block(number, digest, parent, 0, None, None, None, None, txs))
        parent = digest
    async with pool.acquire() as conn:
        await store_range(conn, chain_id, blocks)


async def row_counts(pool: asyncpg.Pool, chain_id: int) -> tuple[int, int, int]:
    """The chain's (blocks, transactions, indexed ranges)."""
    blocks, transactions, ranges = await pool.fetchrow(COUNT_ROWS, chain_id)
    return blocks, transactions, ranges
