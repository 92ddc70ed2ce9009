"""A chain's progress: status from the indexed-range set, throughput samples, and the ETA.

Live sync and the backlog are reported side by side, never blended into one percentage.
Nothing in PostgreSQL says when a block was indexed, so throughput comes from samples of the
indexed-block count over a sliding window, taken each time a status is computed.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass

import asyncpg

from indexer.store.chains import ChainRow
from indexer.store.ranges import coverage

RATE_WINDOW_SECONDS = 60.0  # long enough to smooth batchy commits, short enough to follow changes
MIN_SPAN_SECONDS = 1.0  # a rate from samples closer than this is mostly noise


class RateTracker:
    """Blocks per second per chain; None until two samples at least a second apart exist."""

    def __init__(
        self,
        window_seconds: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.clock = clock
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def observe(self, chain: str, indexed_blocks: int) -> float | None:
        """Record the chain's indexed count now; return its rate over the window."""
        now = self.clock()
        samples = self._samples.setdefault(chain, deque())
        if samples and indexed_blocks < samples[-1][1]:
            samples.clear()  # a reorg or a deleted and re-created chain: start over
        samples.append((now, indexed_blocks))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        if t1 - t0 < MIN_SPAN_SECONDS:
            return None
        return (n1 - n0) / (t1 - t0)

    def forget(self, chains: set[str]) -> None:
        for chain in set(self._samples) - chains:
            del self._samples[chain]


def eta_seconds(missing_blocks: int, rate: float | None) -> float | None:
    """Seconds until nothing is missing at `rate` blocks/s: 0 when done, None when unknown."""
    if missing_blocks == 0:
        return 0.0
    if rate is None or rate <= 0:
        return None
    return missing_blocks / rate


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
