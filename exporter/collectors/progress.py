"""Per-chain progress gauges from the indexed-range set: head, last indexed, gaps, live, ETA."""

from __future__ import annotations

import asyncpg

from exporter.collectors.base import PeriodicCollector
from exporter.metrics import Metrics
from indexer.rates import RateTracker
from indexer.status import chain_status
from indexer.store.chains import list_chains


class ProgressCollector(PeriodicCollector):
    name = "progress"

    def __init__(self, metrics: Metrics, pool: asyncpg.Pool, interval: float = 2.0) -> None:
        super().__init__(metrics, interval)
        self.pool = pool
        self.rates = RateTracker()

    async def refresh(self) -> None:
        m = self.metrics
        for row in await list_chains(self.pool):
            status = await chain_status(self.pool, row)
            if status.head is None:
                continue
            chain = status.chain
            m.chain_head.labels(chain).set(status.head)
            m.chain_last_indexed.labels(chain).set(
                status.last_indexed if status.last_indexed is not None else -1
            )
            m.chain_missing_blocks.labels(chain).set(status.missing_blocks)
            m.chain_gap_ranges.labels(chain).set(status.gap_ranges)
            m.chain_live_sync.labels(chain).set(1 if status.is_live_sync else 0)
            rate = self.rates.observe(chain, status.indexed_blocks)
            if status.missing_blocks == 0:
                m.backfill_eta.labels(chain).set(0)
            elif rate:
                m.backfill_eta.labels(chain).set(status.missing_blocks / rate)
