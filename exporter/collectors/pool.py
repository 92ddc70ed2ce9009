"""This process's asyncpg pool: connections in use, idle, and the most it may open.

An exhausted pool (in_use == max) queues the indexer's queries inside the process, which the
server-side health families cannot see. Reading the pool costs no database round trip.
"""

from __future__ import annotations

import asyncpg

from exporter.collectors.base import PeriodicCollector
from exporter.metrics import Metrics


class PoolCollector(PeriodicCollector):
    """Fills tindexer_pg_pool_connections{state=in_use|idle|max} from an asyncpg Pool."""

    name = "pg_pool"

    def __init__(self, metrics: Metrics, pool: asyncpg.Pool, interval: float = 1.0) -> None:
        super().__init__(metrics, interval)
        self.pool = pool

    async def refresh(self) -> None:
        size, idle = self.pool.get_size(), self.pool.get_idle_size()
        connections = self.metrics.pg_pool_connections
        connections.labels("in_use").set(size - idle)
        connections.labels("idle").set(idle)
        connections.labels("max").set(self.pool.get_max_size())
