"""A worker's chain cache (activities/chain_cache.py) on a real PostgreSQL: a replaced fetcher is
closed once the last activity using it is done, and a deleted chain's series leave the worker's
metrics."""

from __future__ import annotations

from collections.abc import AsyncIterator

import aiohttp
import pytest
import pytest_asyncio
from prometheus_client import CollectorRegistry
from temporalio.exceptions import ApplicationError

from exporter.metrics import Metrics
from indexer.activities import chain_cache
from indexer.activities.chain_cache import ChainCache
from indexer.chain.fetcher import Fetcher
from indexer.chain.router import Router
from indexer.config import ChainConfig
from indexer.lifecycle import close_pool
from indexer.store.chains import retire_chain, upsert_chain
from indexer.store.db import create_pool


@pytest_asyncio.fixture(loop_scope="session")
async def cache(database_url: str) -> AsyncIterator[ChainCache]:
    pool = await create_pool(database_url, max_size=4)
    cache = ChainCache(pool, Metrics(CollectorRegistry()))
    try:
        yield cache
    finally:
        await cache.close()
        await close_pool(pool)


def sessions(fetcher: Fetcher) -> list[aiohttp.ClientSession]:
    """Open an HTTP session in each of the fetcher's provider transports (no request sent)."""
    assert isinstance(fetcher.sender, Router)
    return [provider.transport._http() for provider in fetcher.sender.providers]


async def test_a_replaced_fetcher_is_closed_once_no_activity_uses_it(cache: ChainCache) -> None:
    config = ChainConfig(name="replaced", rpc_url="http://127.0.0.1:9/")
    async with cache.fetcher(config) as first:
        async with cache.fetcher(config) as same:
            assert same is first  # shared while the config holds
        old = sessions(first)
        patched = config.model_copy(update={"rpc_batch_size": 7})
        async with cache.fetcher(patched) as second:
            assert second is not first and second.settings.batch_size == 7
            assert not any(session.closed for session in old)  # a range still uses it
        assert not any(session.closed for session in old)
    assert all(session.closed for session in old)  # its last user is done
    assert cache._retired == []

    unused = sessions(second)
    async with cache.fetcher(config) as third:  # replaced again, nobody using `second`
        assert third is not second
        assert all(session.closed for session in unused)  # closed at once


async def test_a_deleted_chain_loses_its_series_in_the_worker(
    cache: ChainCache, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(chain_cache, "RECONCILE_INTERVAL_SECONDS", 0.0)  # read it every time
    metrics = cache.metrics
    kept, gone = "kept", "gone"
    opened: dict[str, list[aiohttp.ClientSession]] = {}
    for name in (kept, gone):
        await upsert_chain(cache.pool, ChainConfig(name=name, rpc_url="http://127.0.0.1:9/"))
        row = await cache.chain(name)
        async with cache.fetcher(row.config) as fetcher:
            opened[name] = sessions(fetcher)
        metrics.head_lag.labels(name).set(3)

    def lag(chain: str) -> float | None:
        return metrics.registry.get_sample_value("tindexer_rpc_head_lag_blocks", {"chain": chain})

    assert (lag(kept), lag(gone)) == (3, 3)
    assert await retire_chain(cache.pool, gone) is not None
    with pytest.raises(ApplicationError, match="unknown chain 'gone'") as raised:
        await cache.chain(gone)
    assert raised.value.type == "UnknownChain"
    assert lag(gone) is None  # every series of the chain is gone...
    assert (
        metrics.registry.get_sample_value("tindexer_blocks_indexed_total", {"chain": gone}) is None
    )
    assert all(session.closed for session in opened[gone])  # ...and its fetcher closed
    assert not any(session.closed for session in opened[kept])
    assert lag(kept) == 3  # the other chain's stay
    assert metrics.registry.get_sample_value("tindexer_blocks_indexed_total", {"chain": kept}) == 0


async def test_a_chain_id_stored_after_it_was_learned_keeps_the_fetcher(
    cache: ChainCache, anvil: str
) -> None:
    """The scan stores the chain id the router learned; the next activity, reading it back,
    keeps the same router, so a provider found down stays down (a rebuilt one would show it up
    again until it failed three batches). Another stored id still rebuilds it."""
    config = ChainConfig(name="learned", rpc_url=anvil)
    async with cache.fetcher(config) as first:
        learned = await first.pinned_chain_id()  # asked of anvil
        first.metrics.provider_up.labels("learned", "default").set(0)
    async with cache.fetcher(config, learned) as again:
        assert again is first
    up = cache.metrics.registry.get_sample_value(
        "tindexer_provider_up", {"chain": "learned", "provider": "default"}
    )
    assert up == 0
    async with cache.fetcher(config, learned + 1) as other:
        assert other is not first
