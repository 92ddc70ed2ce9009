"""Chain configuration as activities see it: from Postgres, cached briefly, with fetchers."""

from __future__ import annotations

import contextlib
import time
from collections.abc import AsyncIterator
from dataclasses import dataclass, replace

import asyncpg
from temporalio.exceptions import ApplicationError

from exporter.metrics import Metrics
from indexer.chain.fetcher import Fetcher
from indexer.chain.router import Router
from indexer.chain.sender import RpcSettings
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


def chain_fetcher(config: ChainConfig, metrics: Metrics, chain_id: int | None = None) -> Fetcher:
    """The chain's fetcher, through a router of its providers pinned to `chain_id` (else the
    chain_id knob; else learned); batches fit the smallest max_batch_size."""
    providers = [(p, provider_settings(config, p)) for p in config.effective_providers()]
    settings = rpc_settings(config)
    smallest = min(own.batch_size for _, own in providers)
    router = Router(
        config.name,
        providers,
        replace(settings, batch_size=smallest),
        metrics,
        chain_id=config.chain_id if config.chain_id is not None else chain_id,
    )
    return Fetcher(router)


def chain_failure(exc: Exception) -> ApplicationError:
    """Bad chain data and exhausted RPC retries become a clear, retryable activity failure."""
    return ApplicationError(f"{type(exc).__name__}: {exc}", type=type(exc).__name__)


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
        live_edge_blocks=config.live_edge_blocks,
    )


@dataclass
class _Fetchers:
    """A chain's fetcher, what it was built from, and the activities using it."""

    providers: object
    settings: RpcSettings
    fetcher: Fetcher
    users: int = 0
    retired: bool = False

    def serves(self, providers: object, settings: RpcSettings, pinned: int | None) -> bool:
        """Whether this fetcher fits the config. A chain id its router learned and the scan
        then stored is no change: rebuilding would forget which providers are down."""
        learned = getattr(self.fetcher.sender, "chain_id", None)
        return (
            self.providers == providers
            and self.settings == settings
            and (pinned is None or pinned == learned)
        )


class ChainCache:
    """Looks chains up by name; a PATCHed config takes effect within RECONCILE_INTERVAL_SECONDS.

    A chain's fetcher is replaced when its providers or settings change; the one replaced is
    closed once the last activity using it is done. A chain found deleted loses its series in
    this worker's metrics (Metrics.forget_chain) and its fetcher.
    """

    def __init__(self, pool: asyncpg.Pool, metrics: Metrics) -> None:
        self.pool = pool
        self.metrics = metrics
        self._rows: dict[str, tuple[float, ChainRow]] = {}
        self._fetchers: dict[str, _Fetchers] = {}
        self._retired: list[_Fetchers] = []  # replaced, still used by an activity

    async def chain(self, name: str) -> ChainRow:
        cached = self._rows.get(name)
        if cached and time.monotonic() - cached[0] < RECONCILE_INTERVAL_SECONDS:
            return cached[1]
        row = await get_chain(self.pool, name)
        if row is None:
            if self._rows.pop(name, None) is not None:
                self.metrics.forget_chain(name)  # deleted since it was last read
            await self._retire(self._fetchers.pop(name, None))
            raise ApplicationError(
                f"unknown chain {name!r}", type="UnknownChain", non_retryable=True
            )
        if name not in self._rows:
            self.metrics.touch_chain(name)
        self._rows[name] = (time.monotonic(), row)
        return row

    @contextlib.asynccontextmanager
    async def fetcher(
        self, config: ChainConfig, chain_id: int | None = None
    ) -> AsyncIterator[Fetcher]:
        """The chain's shared fetcher (its providers, pinned to `chain_id` when known), for the
        duration of the block."""
        settings = rpc_settings(config)
        pinned = config.chain_id if config.chain_id is not None else chain_id
        providers = (tuple(config.effective_providers()), config.max_replicas)
        cached = self._fetchers.get(config.name)
        stale = None
        if cached is None or not cached.serves(providers, settings, pinned):
            stale, cached = (
                cached,
                _Fetchers(providers, settings, chain_fetcher(config, self.metrics, pinned)),
            )
            self._fetchers[config.name] = cached  # before any await: nobody builds it twice
        cached.users += 1
        try:
            await self._retire(stale)
            yield cached.fetcher
        finally:
            cached.users -= 1
            if cached.retired and cached.users == 0:
                self._retired.remove(cached)
                await cached.fetcher.close()

    async def _retire(self, fetchers: _Fetchers | None) -> None:
        """Close a replaced fetcher now if no activity uses it, else when the last one is done."""
        if fetchers is None or fetchers.retired:
            return
        fetchers.retired = True
        if fetchers.users:
            self._retired.append(fetchers)
        else:
            await fetchers.fetcher.close()

    async def close(self) -> None:
        for fetchers in [*self._fetchers.values(), *self._retired]:
            await fetchers.fetcher.close()
        self._fetchers.clear()
        self._retired.clear()
