"""The simulated chain behind a ProviderProxy, as the RPC client's tests use it: one URL with an
API key in its path and in its query, clients of it, and their counted outcomes."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.chain.fetcher import Fetcher
from indexer.chain.sender import RpcSettings
from indexer.simchain.server import SimChain
from tests.support.provider_proxy import KEY_PATH, ProviderProxy

PATH_KEY = KEY_PATH.rsplit("/", 1)[1]
QUERY_KEY = "fedcba9876543210fedcba9876543210"
# Quick retries: these tests count attempts, they do not wait them out.
FAST_RETRIES = RpcSettings(
    batch_size=5,
    max_concurrency=4,
    timeout_seconds=2,
    max_retries=2,
    backoff_base_seconds=0.01,
    backoff_max_seconds=0.05,
)


class Provider:
    """The proxy in front of the chain, and clients of it that share one metrics registry."""

    def __init__(self, sim: SimChain, proxy: ProviderProxy) -> None:
        self.sim = sim
        self.proxy = proxy
        self.url = f"{proxy.url}?apikey={QUERY_KEY}"
        self.metrics = Metrics(CollectorRegistry())
        self._clients: list[Fetcher] = []

    def client(self, url: str | None = None, **settings: Any) -> Fetcher:
        """A client of chain "t" (of `url`, by default the proxy's) with FAST_RETRIES."""
        client = Fetcher.for_url(
            url or self.url, "t", replace(FAST_RETRIES, **settings), self.metrics
        )
        self._clients.append(client)
        return client

    def count(self, outcome: str, method: str = "eth_getBlockByNumber") -> float:
        labels = {"chain": "t", "provider": "default", "method": method, "outcome": outcome}
        return self.metrics.registry.get_sample_value("tindexer_rpc_requests_total", labels) or 0

    async def close(self) -> None:
        for client in self._clients:
            await client.close()
