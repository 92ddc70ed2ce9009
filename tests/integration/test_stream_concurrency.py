"""Several batches of one range fetched at once from a real provider (the simulated chain,
behind a proxy counting requests in flight): the blocks as the node has them, in order, and
never more requests at once than the provider's max_concurrency (issue 22, item 4)."""

from __future__ import annotations

import asyncio
from collections.abc import Callable

from aiohttp import web

from indexer.activities.stream import Batch, stream_range
from indexer.chain.fetcher import FetchedBlocks, Fetcher
from indexer.chain.sender import RpcSettings
from indexer.worker_budget import ByteBudget
from tests.support.chaindata import expected_blocks
from tests.support.provider_proxy import ProviderProxy

MAX_CONCURRENCY = 3


class CountingProxy(ProviderProxy):
    """The proxy, counting the HTTP requests it is answering at once."""

    in_flight = 0
    most_in_flight = 0

    async def _handle(self, request: web.Request) -> web.StreamResponse:
        self.in_flight += 1
        self.most_in_flight = max(self.most_in_flight, self.in_flight)
        try:
            return await super()._handle(request)
        finally:
            self.in_flight -= 1


async def test_batches_fetched_at_once_stay_within_the_providers_concurrency(
    sim_chain: Callable[..., str],
) -> None:
    url = sim_chain(backlog=600, txs_per_block=2, latency_seconds=0.02)
    proxy = CountingProxy(url)
    async with proxy.running() as provider:
        settings = RpcSettings(batch_size=10, max_concurrency=MAX_CONCURRENCY)
        rpc = Fetcher.for_url(provider, "c", settings)
        budget = ByteBudget(4 * 1024 * 1024)  # batches of ~512 KiB: a few hundred blocks
        fetching = most_fetching = 0
        stored: list[tuple[int, str]] = []

        async def fetch(first: int, last: int, linked: bool) -> FetchedBlocks:
            nonlocal fetching, most_fetching
            fetching += 1
            most_fetching = max(most_fetching, fetching)
            try:
                return await rpc.get_blocks_batch(first, last, linked=linked)
            finally:
                fetching -= 1

        async def store(batch: Batch) -> None:
            await asyncio.sleep(0.01)  # a commit's round trip
            stored.extend((b.number, b.hash) for b in batch.blocks)

        try:
            await stream_range(budget, "c", 1, 599, fetch=fetch, store=store)
        finally:
            await rpc.close()
    expected = await expected_blocks(url, 1, 599)
    assert stored == [(n, expected[n].hash.hex()) for n in range(1, 600)]
    assert most_fetching > MAX_CONCURRENCY  # more batches than the provider takes requests
    assert proxy.most_in_flight == MAX_CONCURRENCY  # ...and its limit held, and was used
    assert budget.in_flight == 0
