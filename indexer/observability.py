"""The indexer's side of observability: its progress collector and version, for the exporter.

The exporter serves /metrics and runs its generic collectors (Temporal, PostgreSQL health, the
pool); it knows nothing of chains or the store, so the indexer registers its own here.
"""

from __future__ import annotations

import contextlib
from collections.abc import AsyncIterator
from typing import Any

import asyncpg

from exporter.collectors.base import PeriodicCollector
from exporter.metrics import Metrics
from exporter.wiring import observed
from indexer import __version__
from indexer.progress import ChainStatus, RateTracker, chain_statuses, eta_seconds
from indexer.store.chains import list_chains

# A refresh reads every chain (two queries for all: progress.chain_statuses); it once took a few
# queries per chain, over 2 s at 100 chains on a busy 2-core machine. Scrapes never wait on it.
PROGRESS_TIMEOUT_SECONDS = 30.0


class ProgressCollector(PeriodicCollector):
    name = "progress"

    def __init__(self, metrics: Metrics, pool: asyncpg.Pool, interval: float = 2.0) -> None:
        super().__init__(metrics, interval, timeout=PROGRESS_TIMEOUT_SECONDS)
        self.pool = pool
        self.rates = RateTracker()
        self.chains: set[str] = set()
        self.datasets: dict[str, set[str]] = {}  # chain -> datasets whose gauges are set

    def _follow(self, listed: set[str]) -> None:
        """A new chain's counters start at zero; a deleted chain's series go, alerts with them."""
        for chain in listed - self.chains:
            self.metrics.touch_chain(chain)
        for chain in self.chains - listed:
            self.metrics.forget_chain(chain)
            self.datasets.pop(chain, None)
        self.rates.forget(listed)
        self.chains = listed

    def _export_datasets(self, status: ChainStatus) -> None:
        """Each enabled dataset's backlog; a dataset taken off the chain loses its series."""
        gauge = self.metrics.dataset_missing_blocks
        enabled = {d.dataset for d in status.datasets}
        for dataset in self.datasets.get(status.chain, set()) - enabled:
            gauge.remove(status.chain, dataset)
        for d in status.datasets:
            gauge.labels(status.chain, d.dataset).set(d.missing_blocks)
        self.datasets[status.chain] = enabled

    async def refresh(self) -> None:
        rows = await list_chains(self.pool)
        self._follow({row.config.name for row in rows})
        for status in await chain_statuses(self.pool, rows):
            self._export(status)

    def _export(self, status: ChainStatus) -> None:
        """Set one chain's gauges, with no await in between."""
        m = self.metrics
        if status.head is None:
            return
        chain = status.chain
        m.chain_head.labels(chain).set(status.head)
        m.chain_last_indexed.labels(chain).set(
            status.last_indexed if status.last_indexed is not None else -1
        )
        m.chain_missing_blocks.labels(chain).set(status.missing_blocks)
        m.chain_gap_ranges.labels(chain).set(status.gap_ranges)
        m.chain_live_sync.labels(chain).set(1 if status.is_live_sync else 0)
        self._export_datasets(status)
        rate = self.rates.observe(chain, status.indexed_blocks)
        eta = eta_seconds(status.missing_blocks, rate)
        if eta is not None:
            m.backfill_eta.labels(chain).set(eta)


@contextlib.asynccontextmanager
async def serving_metrics(
    metrics: Metrics,
    host: str,
    port: int,
    *,
    pool: asyncpg.Pool | None = None,
    progress: bool = False,
    **parts: Any,
) -> AsyncIterator[None]:
    """`exporter.wiring.observed` with the indexer's version and, if asked, its progress gauges.

    `parts` are the rest of `observed`'s keywords (database_url, client, sdk, task_queues).
    """
    collectors = [ProgressCollector(metrics, pool)] if progress and pool is not None else []
    async with observed(
        metrics, host, port, pool=pool, version=__version__, extra_collectors=collectors, **parts
    ):
        yield
