"""Bulk writes: COPY into staging, upsert, record the range — all in one commit."""

from __future__ import annotations

import asyncpg

from indexer.chain.model import BadChainData, Block
from indexer.store.ranges import add_range, remove_range

BLOCK_COLUMNS = [
    "chain_id",
    "number",
    "hash",
    "parent_hash",
    "timestamp",
    "miner",
    "gas_used",
    "gas_limit",
    "base_fee_per_gas",
    "tx_count",
]
TRANSACTION_COLUMNS = [
    "chain_id",
    "block_number",
    "tx_index",
    "hash",
    "from_address",
    "to_address",
    "value",
    "gas",
    "gas_price",
    "nonce",
]

UPSERT_BLOCKS = """
INSERT INTO blocks SELECT * FROM staging_blocks
ON CONFLICT (chain_id, number) DO UPDATE SET
    hash = EXCLUDED.hash, parent_hash = EXCLUDED.parent_hash, timestamp = EXCLUDED.timestamp,
    miner = EXCLUDED.miner, gas_used = EXCLUDED.gas_used, gas_limit = EXCLUDED.gas_limit,
    base_fee_per_gas = EXCLUDED.base_fee_per_gas, tx_count = EXCLUDED.tx_count
WHERE blocks.hash IS DISTINCT FROM EXCLUDED.hash
"""

UPSERT_TRANSACTIONS = """
INSERT INTO transactions SELECT * FROM staging_transactions
ON CONFLICT (chain_id, block_number, tx_index) DO UPDATE SET
    hash = EXCLUDED.hash, from_address = EXCLUDED.from_address, to_address = EXCLUDED.to_address,
    value = EXCLUDED.value, gas = EXCLUDED.gas, gas_price = EXCLUDED.gas_price,
    nonce = EXCLUDED.nonce
WHERE transactions.hash IS DISTINCT FROM EXCLUDED.hash
"""

# After a reorg a block may have fewer transactions than the one it replaced.
DELETE_SURPLUS_TRANSACTIONS = """
DELETE FROM transactions t USING blocks b
 WHERE t.chain_id = $1 AND t.block_number BETWEEN $2 AND $3
   AND b.chain_id = t.chain_id AND b.number = t.block_number AND t.tx_index >= b.tx_count
"""

NEIGHBOURS = """
SELECT number, hash, parent_hash FROM blocks
 WHERE chain_id = $1 AND number IN ($2 - 1, $3 + 1)
"""


def block_record(chain_id: int, block: Block) -> tuple[object, ...]:
    return (
        chain_id,
        block.number,
        block.hash,
        block.parent_hash,
        block.timestamp,
        block.miner,
        block.gas_used,
        block.gas_limit,
        block.base_fee_per_gas,
        len(block.transactions),
    )


def transaction_records(chain_id: int, blocks: list[Block]) -> list[tuple[object, ...]]:
    return [
        (
            chain_id,
            block.number,
            tx.tx_index,
            tx.hash,
            tx.from_address,
            tx.to_address,
            tx.value,
            tx.gas,
            tx.gas_price,
            tx.nonce,
        )
        for block in blocks
        for tx in block.transactions
    ]


class ParentMismatch(BadChainData):
    """The range does not link to a stored neighbour: one side is from an abandoned fork."""


async def _check_neighbours(conn: asyncpg.Connection, chain_id: int, blocks: list[Block]) -> None:
    first, last = blocks[0], blocks[-1]
    for record in await conn.fetch(NEIGHBOURS, chain_id, first.number, last.number):
        if record["number"] == first.number - 1 and bytes(record["hash"]) != first.parent_hash:
            raise ParentMismatch(
                f"block {first.number}: parentHash does not match stored block {first.number - 1}"
            )
        if record["number"] == last.number + 1 and bytes(record["parent_hash"]) != last.hash:
            raise ParentMismatch(
                f"block {last.number}: hash is not the parentHash of stored block {last.number + 1}"
            )


async def store_range(conn: asyncpg.Connection, chain_id: int, blocks: list[Block]) -> None:
    """Write consecutive blocks and mark their range indexed atomically; re-runs change nothing."""
    if not blocks:
        return
    start, end = blocks[0].number, blocks[-1].number
    async with conn.transaction():
        await _check_neighbours(conn, chain_id, blocks)
        await conn.copy_records_to_table(
            "staging_blocks",
            records=[block_record(chain_id, b) for b in blocks],
            columns=BLOCK_COLUMNS,
        )
        await conn.execute(UPSERT_BLOCKS)
        transactions = transaction_records(chain_id, blocks)
        if transactions:
            await conn.copy_records_to_table(
                "staging_transactions", records=transactions, columns=TRANSACTION_COLUMNS
            )
            await conn.execute(UPSERT_TRANSACTIONS)
        await conn.execute(DELETE_SURPLUS_TRANSACTIONS, chain_id, start, end)
        await add_range(conn, chain_id, start, end)


async def delete_from(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> int:
    """Forget blocks start..end (a reorg's orphans) and their transactions; returns the count."""
    # Rows before the range lock, in the same order as store_range, so the two cannot deadlock.
    async with conn.transaction():
        await conn.execute(
            "DELETE FROM transactions WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3",
            chain_id,
            start,
            end,
        )
        status = await conn.execute(
            "DELETE FROM blocks WHERE chain_id = $1 AND number BETWEEN $2 AND $3",
            chain_id,
            start,
            end,
        )
        await remove_range(conn, chain_id, start, end)
    return int(status.split()[-1])
