"""What an IndexRange store adds, by dataset: the blocks that lacked each, and their rows.

A range is stored with every dataset of its chain, so a backfill of a dataset added later
rewrites the blocks and transactions it already had. `tindexer_rows_indexed_total` counts only
the rows of blocks that lacked the dataset, so a backfill or a re-run never counts a row twice
and the counters agree with the tables.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg

from indexer.chain.model import Block
from indexer.datasets import Dataset
from indexer.store.ranges import dataset_coverage

Gaps = Sequence[tuple[int, int]]


async def missing_by_dataset(
    pool: asyncpg.Pool, chain_id: int, datasets: Sequence[Dataset], start: int, end: int
) -> dict[Dataset, Gaps]:
    """For each dataset, the runs of start..end whose rows of it are not stored.

    Blocks first: every store writes them, so a range none of whose blocks is stored lacks
    every dataset, and the common case (a new range) costs one query.
    """
    blocks = await dataset_coverage(pool, chain_id, "blocks", start, end)
    if blocks.indexed_blocks == 0:
        return {dataset: [(start, end)] for dataset in datasets}
    missing: dict[Dataset, Gaps] = {"blocks": blocks.gaps}
    for dataset in datasets:
        if dataset != "blocks":
            missing[dataset] = (await dataset_coverage(pool, chain_id, dataset, start, end)).gaps
    return missing


def _inside(number: int, gaps: Gaps) -> bool:
    return any(first <= number <= last for first, last in gaps)


def _rows(block: Block, dataset: Dataset) -> int:
    """The rows `block` has in `dataset`: receipts are transactions stored with their receipt."""
    if dataset == "blocks":
        return 1
    if dataset == "transactions":
        return len(block.transactions)
    if dataset == "receipts":
        return sum(1 for tx in block.transactions if tx.receipt is not None)
    return sum(len(tx.receipt.logs) for tx in block.transactions if tx.receipt is not None)


def new_rows(blocks: Sequence[Block], missing: dict[Dataset, Gaps]) -> dict[Dataset, int]:
    """Rows of each dataset in `blocks` that belong to blocks lacking it: what the store adds."""
    return {
        dataset: sum(_rows(block, dataset) for block in blocks if _inside(block.number, gaps))
        for dataset, gaps in missing.items()
    }


def stored_rows(blocks: Sequence[Block], datasets: Sequence[Dataset]) -> int:
    """Rows a store of `blocks` writes (blocks, transactions, logs): what its deadline scales by."""
    rows = len(blocks)
    if "transactions" in datasets:
        rows += sum(len(block.transactions) for block in blocks)
    if "logs" in datasets:
        rows += sum(_rows(block, "logs") for block in blocks)
    return rows
