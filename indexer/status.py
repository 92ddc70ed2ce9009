"""A chain's state from the indexed-range set: live sync and backlog, never one percentage."""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from indexer.store.chains import ChainRow
from indexer.store.ranges import coverage


@dataclass(frozen=True)
class ChainStatus:
    chain: str
    head: int | None
    last_indexed: int | None
    indexed_blocks: int
    missing_blocks: int
    gap_ranges: int
    largest_gap: tuple[int, int] | None
    is_live_sync: bool

    @property
    def backfilled(self) -> bool:
        """Live, and nothing missing below the newest indexed block: the backfill is done."""
        if not self.is_live_sync or self.head is None or self.last_indexed is None:
            return False
        return self.missing_blocks == self.head - self.last_indexed

    @property
    def historical_progress(self) -> float:
        """Indexed blocks over blocks that exist (first block to head)."""
        total = self.indexed_blocks + self.missing_blocks
        return self.indexed_blocks / total if total else 1.0


async def chain_status(pool: asyncpg.Pool | asyncpg.Connection, row: ChainRow) -> ChainStatus:
    """Live sync means the newest indexed block is within `live_sync_lag` of the head."""
    config = row.config
    if row.head is None:
        return ChainStatus(config.name, None, None, 0, 0, 0, None, False)
    covered = await coverage(pool, row.id, config.start_block, row.head)
    live = (
        covered.last_indexed is not None and row.head - covered.last_indexed <= config.live_sync_lag
    )
    return ChainStatus(
        chain=config.name,
        head=row.head,
        last_indexed=covered.last_indexed,
        indexed_blocks=covered.indexed_blocks,
        missing_blocks=covered.missing_blocks,
        gap_ranges=len(covered.gaps),
        largest_gap=covered.largest_gap,
        is_live_sync=live,
    )
