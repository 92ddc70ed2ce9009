"""Chain configuration as activities see it: from Postgres, cached briefly, with RPC clients."""

from __future__ import annotations

import time
from dataclasses import replace

import asyncpg
from temporalio.exceptions import ApplicationError

from exporter.metrics import Metrics
from indexer.chain.providers import ProviderSet
from indexer.chain.rpc import RpcClient, RpcSettings
from indexer.config import ChainConfig, ProviderConfig
from indexer.store.chains import ChainRow, get_chain
from indexer.workflows.inputs import Knobs

RECONCILE_INTERVAL_SECONDS = 2.0  # a stored config change reaches running workers this fast
# A worker spends 90 % of its share of a provider's max_requests_per_second: requests leave
# evenly spaced, but network and event-loop jitter can bunch them on arrival, and a provider
# counting per second would answer the bunch 429.
RATE_HEADROOM = 0.9


def rpc_settings(config: ChainConfig) -> RpcSettings:
    return RpcSettings(
        batch_size=config.rpc_batch_size,
        max_concurrency=config.rpc_max_concurrency,
        timeout_seconds=config.rpc_timeout_seconds,
        max_retries=config.rpc_max_retries,
        max_response_bytes=config.rpc_max_response_bytes,
    )


def provider_settings(config: ChainConfig, provider: ProviderConfig) -> RpcSettings:
    """One provider's client settings: the chain's, within the provider's own limits.

    A chain of several providers retries a failed batch on another provider at once, so each
    provider's client tries once; the router retries. max_requests_per_second is split between
    the chain's max_replicas workers: each worker keeps to its share, so together they never
    pass the provider's limit (fewer replicas running leave some of it unused); each keeps
    RATE_HEADROOM of its share.
    """
    settings = rpc_settings(config)
    rate = provider.max_requests_per_second
    return replace(
        settings,
        batch_size=min(settings.batch_size, provider.max_batch_size or settings.batch_size),
        max_concurrency=provider.max_concurrency or settings.max_concurrency,
        max_retries=settings.max_retries if len(config.effective_providers()) == 1 else 0,
        max_requests_per_second=(
            None if rate is None else rate * RATE_HEADROOM / max(1, config.max_replicas)
        ),
    )


def provider_set(config: ChainConfig, metrics: Metrics) -> ProviderSet:
    """The chain's providers behind one client; batches fit the smallest max_batch_size."""
    providers = [(p, provider_settings(config, p)) for p in config.effective_providers()]
    settings = rpc_settings(config)
    smallest = min(own.batch_size for _, own in providers)
    return ProviderSet(config.name, providers, replace(settings, batch_size=smallest), metrics)


def knobs(config: ChainConfig) -> Knobs:
    return Knobs(
        blocks_per_workflow=config.blocks_per_workflow,
        scheduler_batch_size=config.scheduler_batch_size,
        parallelism=config.effective_parallelism(),
        continue_as_new_threshold=config.continue_as_new_threshold,
        catchup_threshold=config.catchup_threshold,
        max_inflight_ranges=config.max_inflight_ranges,
        head_poll_interval_seconds=config.head_poll_interval_seconds,
        index_max_attempts=config.index_max_attempts,
    )


class ChainCache:
    """Looks chains up by name; a PATCHed config takes effect within RECONCILE_INTERVAL_SECONDS."""

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self.pool = pool
        self.metrics = metrics
        self._rows: dict[str, tuple[float, ChainRow]] = {}
        self._clients: dict[str, tuple[object, RpcSettings, RpcClient]] = {}
        self._retired: list[RpcClient] = []

    async def chain(self, name: str) -> ChainRow:
        cached = self._rows.get(name)
        if cached and time.monotonic() - cached[0] < RECONCILE_INTERVAL_SECONDS:
            return cached[1]
        row = await get_chain(self.pool, name)
        if row is None:
            raise ApplicationError(
                f"unknown chain {name!r}", type="UnknownChain", non_retryable=True
            )
        if name not in self._rows:
            self.metrics.touch_chain(name)
        self._rows[name] = (time.monotonic(), row)
        return row

    def rpc(self, config: ChainConfig) -> RpcClient:
        """The chain's shared client (its providers); replaced when they or its settings change."""
        settings = rpc_settings(config)
        providers = (tuple(config.effective_providers()), config.max_replicas)
        cached = self._clients.get(config.name)
        if cached and cached[0] == providers and cached[1] == settings:
            return cached[2]
        if cached:
            self._retired.append(cached[2])  # activities may still be using it
        client = provider_set(config, self.metrics)
        self._clients[config.name] = (providers, settings, client)
        return client

    async def close(self) -> None:
        for client in [*(c for _, _, c in self._clients.values()), *self._retired]:
            await client.close()
        self._clients.clear()
        self._retired.clear()
