"""Bulk writes: COPY, upsert what exists, record the range and its datasets, in one commit."""

from __future__ import annotations

import io
import itertools
import json
from collections.abc import Iterable, Iterator
from dataclasses import dataclass

import asyncpg

from indexer.chain.model import BadChainData, Block
from indexer.datasets import DATASETS, Dataset, needs_receipts, normalize_datasets
from indexer.store.ranges import (
    add_dataset_ranges,
    add_range,
    dataset_coverage,
    rebuild_indexed_ranges,
    remove_dataset_range,
    remove_range,
)
from indexer.store.rows import (
    BLOCK_COLUMNS,
    LOG_COLUMNS,
    TRANSACTION_COLUMNS,
    WITHDRAWAL_COLUMNS,
    block_lines,
    log_lines,
    transaction_lines,
    withdrawal_lines,
)


async def _copy(conn: asyncpg.Connection, table: str, columns: list[str], rows: bytes) -> None:
    if rows:
        await conn.copy_to_table(table, source=io.BytesIO(rows), columns=columns, format="text")


class ParentMismatch(BadChainData):
    """The range does not link to a stored neighbour: one side is from an abandoned fork."""


NEIGHBOURS = """
SELECT number, hash, parent_hash
  FROM blocks
 WHERE chain_id = $1 AND number IN ($2 - 1, $3 + 1)
"""


async def _check_neighbours(conn: asyncpg.Connection, chain_id: int, blocks: list[Block]) -> None:
    first, last = blocks[0], blocks[-1]
    for record in await conn.fetch(NEIGHBOURS, chain_id, first.number, last.number):
        if record["number"] == first.number - 1 and record["hash"].hex() != first.parent_hash:
            raise ParentMismatch(
                f"block {first.number}: parentHash does not match stored block {first.number - 1}"
            )
        if record["number"] == last.number + 1 and record["parent_hash"].hex() != last.hash:
            raise ParentMismatch(
                f"block {last.number}: hash is not the parentHash of stored block {last.number + 1}"
            )


# The child tables of a block, in the order every writer and deleter takes their row locks
# (after the blocks themselves, before the range lock): in any other order a repair and a store
# of the same blocks could each wait for the other, a deadlock.
CHILD_TABLES = ("transactions", "logs", "withdrawals")

# No row of the range in any table: its rows can be copied straight in, with no staging
# table and no upsert (a quarter less database CPU per block, measured with loadtest). A
# concurrent writer of the same range then fails on the primary key; its retry upserts.
HAS_ROWS = """
SELECT EXISTS (SELECT 1 FROM blocks WHERE chain_id = $1 AND number BETWEEN $2 AND $3)
    OR EXISTS (SELECT 1 FROM transactions WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
    OR EXISTS (SELECT 1 FROM logs WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
    OR EXISTS (SELECT 1 FROM withdrawals WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3)
"""

# The chain's datasets now (read under the range lock, so a concurrent upsert_chain is seen).
CHAIN_DATASETS = "SELECT config -> 'datasets' FROM chains WHERE id = $1"


CHILD_COLUMNS = {
    "transactions": TRANSACTION_COLUMNS,
    "logs": LOG_COLUMNS,
    "withdrawals": WITHDRAWAL_COLUMNS,
}


# The datasets whose rows each child table holds; the first decides whether it is written.
TABLE_DATASETS: dict[str, tuple[Dataset, ...]] = {
    "transactions": ("transactions", "receipts"),
    "logs": ("logs",),
    "withdrawals": ("blocks",),
}


def _written_tables(datasets: tuple[Dataset, ...]) -> list[str]:
    """The child tables `datasets` write, in CHILD_TABLES order (withdrawals go with blocks)."""
    return [table for table in CHILD_TABLES if TABLE_DATASETS[table][0] in datasets]


def _child_lines(
    table: str, chain_id: int, blocks: list[Block], datasets: tuple[Dataset, ...]
) -> bytes:
    if table == "transactions":
        return transaction_lines(chain_id, blocks, receipts="receipts" in datasets)
    if table == "logs":
        return log_lines(chain_id, blocks)
    return withdrawal_lines(chain_id, blocks)


async def store_batch(
    conn: asyncpg.Connection,
    chain_id: int,
    blocks: list[Block],
    datasets: Iterable[Dataset],
) -> None:
    """Write consecutive blocks and mark their range indexed atomically; re-runs change nothing.

    Blocks and their withdrawals always; transactions, their receipts and logs as `datasets`
    say (receipt columns are NULL for a transaction without a receipt). The range is recorded
    in dataset_ranges for each dataset written, and in indexed_ranges once it holds every
    dataset of the chain. A range already stored is brought up to date: replaced blocks (a
    reorg) lose all their old rows, and a dataset the range lacks is filled in.
    """
    if not blocks:
        return
    written = tuple(normalize_datasets({*datasets, "blocks"}))
    if needs_receipts(written) and any(
        tx.receipt is None for block in blocks for tx in block.transactions
    ):
        # A caller's mistake, not the chain's: recorded as indexed, the receipts and logs of
        # these blocks would be missing for good.
        raise ValueError(f"store_batch of {written}: blocks were fetched without receipts")
    start, end = blocks[0].number, blocks[-1].number
    async with conn.transaction():
        await _check_neighbours(conn, chain_id, blocks)
        if not await conn.fetchval(HAS_ROWS, chain_id, start, end):
            await _copy(conn, "blocks", BLOCK_COLUMNS, block_lines(chain_id, blocks))
            for table in _written_tables(written):
                rows = _child_lines(table, chain_id, blocks, written)
                await _copy(conn, table, CHILD_COLUMNS[table], rows)
        else:
            await _rewrite(conn, chain_id, blocks, written)
        await add_dataset_ranges(conn, chain_id, written, start, end)
        stored = await conn.fetchval(CHAIN_DATASETS, chain_id)
        chain_datasets = json.loads(stored) if stored is not None else list(DATASETS)
        if set(chain_datasets) <= set(written):
            await add_range(conn, chain_id, start, end)
        else:
            # The chain gained a dataset since this write was planned: the range is indexed
            # only where the new dataset is already stored too.
            await rebuild_indexed_ranges(conn, chain_id, chain_datasets)


CLEAR_STAGING_BLOCKS = "DELETE FROM staging_blocks"

# Blocks whose stored hash differs (a reorg), locked before the upsert touches any row.
LOCK_REPLACED_BLOCKS = """
SELECT b.number
  FROM blocks b
  JOIN staging_blocks s ON s.chain_id = b.chain_id AND s.number = b.number
 WHERE b.chain_id = $1 AND b.number BETWEEN $2 AND $3  -- bounds any plan to the range
   AND b.hash <> s.hash
 ORDER BY b.number
   FOR UPDATE OF b
"""

_HEADER = BLOCK_COLUMNS[2:]  # all but the key
# Inserts new blocks, and updates those whose row differs in any column: a reorg, or a block
# stored before its header columns existed. Returns the blocks it wrote.
UPSERT_BLOCKS = f"""
INSERT INTO blocks ({", ".join(BLOCK_COLUMNS)})
SELECT {", ".join(BLOCK_COLUMNS)} FROM staging_blocks
ON CONFLICT (chain_id, number) DO UPDATE SET
    ({", ".join(_HEADER)})
    = ROW({", ".join(f"EXCLUDED.{c}" for c in _HEADER)})
WHERE ({", ".join(f"blocks.{c}" for c in _HEADER)})
      IS DISTINCT FROM ({", ".join(f"EXCLUDED.{c}" for c in _HEADER)})
RETURNING number
"""

# Child rows of some blocks: only those touched, by primary-key prefix. (An earlier join-based
# cleanup ran on every write and, with the planner's statistics stale during a bulk backfill,
# took minutes per range.)
DELETE_CHILDREN = {
    table: f"DELETE FROM {table} WHERE chain_id = $1 AND block_number = ANY ($2::bigint[])"
    for table in CHILD_TABLES
}


async def _rewrite(
    conn: asyncpg.Connection, chain_id: int, blocks: list[Block], written: tuple[Dataset, ...]
) -> None:
    """Rows that may already exist: upsert the blocks through staging, then give each child
    table fresh rows for the blocks that need them — written or replaced, or lacking a dataset
    being written — and none for a replaced block whose dataset is not written now."""
    start, end = blocks[0].number, blocks[-1].number
    await conn.execute(CLEAR_STAGING_BLOCKS)  # a savepoint's caller may have left rows in it
    await _copy(conn, "staging_blocks", BLOCK_COLUMNS, block_lines(chain_id, blocks))
    replaced = {r["number"] for r in await conn.fetch(LOCK_REPLACED_BLOCKS, chain_id, start, end)}
    changed = {r["number"] for r in await conn.fetch(UPSERT_BLOCKS)}
    written_tables = _written_tables(written)
    emptied: dict[Dataset, set[int]] = {}  # blocks whose rows of a dataset not written are gone
    for table in CHILD_TABLES:
        if table in written_tables:
            numbers = set(changed)
            for dataset in TABLE_DATASETS[table]:
                if dataset in written:
                    gaps = (await dataset_coverage(conn, chain_id, dataset, start, end)).gaps
                    numbers.update(n for low, high in gaps for n in range(low, high + 1))
        else:
            numbers = replaced
        for dataset in TABLE_DATASETS[table]:
            if dataset not in written:
                emptied.setdefault(dataset, set()).update(numbers)
        if not numbers:
            continue
        await conn.execute(DELETE_CHILDREN[table], chain_id, sorted(numbers))
        if table in written_tables:
            chosen = [b for b in blocks if b.number in numbers]
            rows = _child_lines(table, chain_id, chosen, written)
            await _copy(conn, table, CHILD_COLUMNS[table], rows)
    for dataset, numbers in emptied.items():
        for low, high in _runs(numbers):
            await remove_dataset_range(conn, chain_id, dataset, low, high)


def _runs(numbers: Iterable[int]) -> Iterator[tuple[int, int]]:
    """Sorted runs of consecutive numbers, as (first, last)."""
    for _, run in itertools.groupby(enumerate(sorted(numbers)), lambda pair: pair[1] - pair[0]):
        members = [n for _, n in run]
        yield members[0], members[-1]


STORED_HASHES = """
SELECT number, hash
  FROM blocks
 WHERE chain_id = $1
   AND number >= $2
"""


async def stored_hashes(
    conn: asyncpg.Connection | asyncpg.Pool, chain_id: int, low: int
) -> dict[int, bytes]:
    """Hash of every stored block numbered `low` or above: the window a reorg check compares."""
    return {r["number"]: bytes(r["hash"]) for r in await conn.fetch(STORED_HASHES, chain_id, low)}


@dataclass(frozen=True)
class BlockCensus:
    """How many block rows a chain has, how many distinct numbers, and the lowest and highest."""

    rows: int
    distinct: int
    lowest: int | None
    highest: int | None


BLOCK_CENSUS = """
SELECT count(*)               AS rows,
       count(DISTINCT number) AS distinct_numbers,
       min(number)            AS lowest,
       max(number)            AS highest
  FROM blocks
 WHERE chain_id = $1
"""


async def block_census(conn: asyncpg.Connection | asyncpg.Pool, chain_id: int) -> BlockCensus:
    """Count the chain's block rows: a lost block or a duplicate shows as rows != distinct."""
    record = await conn.fetchrow(BLOCK_CENSUS, chain_id)
    return BlockCensus(
        rows=record["rows"],
        distinct=record["distinct_numbers"],
        lowest=record["lowest"],
        highest=record["highest"],
    )


DELETE_BLOCKS_BETWEEN = """
DELETE FROM blocks
 WHERE chain_id = $1 AND number BETWEEN $2 AND $3
"""
DELETE_CHILDREN_BETWEEN = [
    f"DELETE FROM {table} WHERE chain_id = $1 AND block_number BETWEEN $2 AND $3"
    for table in CHILD_TABLES
]


async def delete_from(conn: asyncpg.Connection, chain_id: int, start: int, end: int) -> int:
    """Forget blocks start..end (a reorg's orphans) and all their rows; returns the block count.

    The range leaves indexed_ranges and every dataset's ranges.
    """
    # Blocks, then the child tables in CHILD_TABLES order, then the range lock: the order
    # store_batch takes them in (its upsert locks a replaced block before deleting that block's
    # rows). In another order a repair and a store of the same blocks each wait for the other.
    async with conn.transaction():
        status = await conn.execute(DELETE_BLOCKS_BETWEEN, chain_id, start, end)
        for statement in DELETE_CHILDREN_BETWEEN:
            await conn.execute(statement, chain_id, start, end)
        await remove_range(conn, chain_id, start, end)
    return int(status.split()[-1])
