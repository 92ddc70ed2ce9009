"""What a cluster test is handed: the module's network (core host, chain) and its own site."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from tests.support.cluster import Cluster, Host
from tests.support.cluster_hosts import Core, start_worker
from tests.support.harness import Harness
from tests.support.workers import WorkerProcess

# The chain: 20,000 blocks with receipts and logs (the default profile: 3 transactions
# and about 4 logs per block), static, so what must be stored is known exactly.
BACKLOG = 20_000

FIGURES: list[str] = []  # one line per measured figure, printed after the results


@dataclass
class Network:
    """The module's cluster: its core host and the simulated chain's URL."""

    cluster: Cluster
    core: Core
    chain_url: str


@dataclass
class Site:
    """One test's share of the cluster: a database, a harness on it, the hosts it started."""

    network: Network
    harness: Harness
    database_url: str
    hosts: list[Host] = field(default_factory=list)

    async def worker(
        self,
        role: str,
        slots: int = 4,
        database_url: str | None = None,
        temporal_address: str | None = None,
    ) -> tuple[Host, WorkerProcess]:
        """A worker host on the test's task queue, once its /metrics answers; it reaches
        PostgreSQL and Temporal on core unless given other addresses (a proxy's)."""
        host, worker = start_worker(
            self.network.cluster,
            role,
            self.harness.task_queue,
            database_url or self.database_url,
            temporal_address or self.network.core.temporal_address,
            max_concurrent_activities=slots,
        )
        self.hosts.append(host)
        await worker.ready()
        return host, worker

    async def add_chain(self, **knobs: Any) -> Any:
        """The module's simulated chain as a new chain of the test's database."""
        return await self.harness.add_chain(
            self.network.chain_url, head_poll_interval_seconds=0.5, **knobs
        )
