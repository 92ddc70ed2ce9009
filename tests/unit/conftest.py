"""Unit-test fixtures: a misbehaving provider, in-process, in front of the simulated chain."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest_asyncio
from aiohttp.test_utils import TestServer

from indexer.simchain.server import SimChain, SimChainConfig, build_app
from tests.support.provider_proxy import ProviderProxy
from tests.support.proxied_chain import Provider


@pytest_asyncio.fixture
async def provider() -> AsyncIterator[Provider]:
    """The simulated chain (50 blocks of 2 transactions) behind a proxy, and clients of it."""
    sim = SimChain(SimChainConfig(backlog=50, block_time=0, txs_per_block=2))
    server = TestServer(build_app(sim))
    await server.start_server()
    proxy = ProviderProxy(str(server.make_url("/")))
    try:
        async with proxy.running():
            provider = Provider(sim, proxy)
            try:
                yield provider
            finally:
                await provider.close()
    finally:
        await server.close()
