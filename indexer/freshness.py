"""The freshness SLI: from the head scan that first saw a block to the commit that stored it.

Why PostgreSQL carries the first-seen time (store/sightings.py), not the workflow input: the
block is seen by a scan activity and stored by a range activity, often in another worker
process, and the range that stores it may have been started by an earlier scan (workflow IDs
are deterministic and a running range is reused), by the Scheduler, or by a retry: an input
field would be lost on every one of those paths, while a row keyed by block number is found by
whichever commit stores the block. A scan writes one row (the blocks it revealed), a commit
reads the rows overlapping its batch with one indexed query, and both times come from the
database's clock, so hosts with skewed clocks still measure true durations.

Only blocks a head scan saw appear at the head count: a backfill's blocks have no sighting. A
block re-indexed after a reorg counts again, from its height's first sighting.
"""

from __future__ import annotations

from collections.abc import Sequence

import asyncpg
from prometheus_client.utils import floatToGoString

from exporter.metric_families.freshness import FRESHNESS_BUCKETS
from exporter.metrics import Metrics
from indexer.chain.model import Block
from indexer.config import ChainConfig
from indexer.store.sightings import record_sighting, sightings


def objective_bound(seconds: float) -> float:
    """The largest bucket bound within `seconds` (the smallest bound below every one)."""
    within = [bound for bound in FRESHNESS_BUCKETS if bound <= seconds]
    return within[-1] if within else FRESHNESS_BUCKETS[0]


class Freshness:
    """Records sightings at the head and observes freshness at commit, for one worker."""

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self.pool = pool
        self.metrics = metrics
        self._bounds: dict[str, str] = {}  # the objective's `le` last exported per chain

    async def saw_head(self, chain_id: int, head: int) -> None:
        """A head scan saw `head`: the blocks above the chain's stored head appeared now."""
        await record_sighting(self.pool, chain_id, head)

    async def committed(
        self, chain: str, chain_id: int, config: ChainConfig, blocks: Sequence[Block]
    ) -> None:
        """Observe the freshness of the blocks a commit just made queryable (those seen at
        the head), and their age since their own timestamp."""
        if not blocks:
            return
        found, now = await sightings(self.pool, chain_id, blocks[0].number, blocks[-1].number)
        if not found:
            return
        self._export_objective(chain, config)
        fresh = self.metrics.block_freshness.labels(chain)
        age = self.metrics.block_age_at_commit.labels(chain)
        for block in blocks:
            seen = next((s.seen for s in found if s.first <= block.number <= s.last), None)
            if seen is not None:
                fresh.observe(max(0.0, now - seen))
                age.observe(max(0.0, now - block.timestamp))

    def _export_objective(self, chain: str, config: ChainConfig) -> None:
        """The chain's objective as the SLO reads it: its target, at its bucket bound."""
        bound = floatToGoString(objective_bound(config.freshness_objective()))
        previous = self._bounds.get(chain)
        if previous is not None and previous != bound:
            self.metrics.freshness_objective.remove(chain, previous)
        self._bounds[chain] = bound
        self.metrics.freshness_objective.labels(chain, bound).set(config.freshness_target)
