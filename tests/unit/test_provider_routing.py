"""Two providers in front of one simulated chain, through real proxies: failover, rate, lag.

The router is built from a ChainConfig as workers build it (chain_cache.chain_fetcher), and
every request crosses real HTTP to a ProviderProxy that can die, throttle or lag.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from contextlib import AsyncExitStack
from typing import Any

import pytest
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.activities.chain_cache import chain_fetcher
from indexer.chain import provider as provider_module
from indexer.chain.errors import MethodNotFound
from indexer.chain.fetcher import Fetcher
from indexer.chain.router import Router
from indexer.config import ChainConfig, ProviderConfig
from indexer.simchain.server import SimChainConfig
from tests.support.provider_proxy import ProviderProxy, first, raw_answer
from tests.support.simchain import running_sim
from tests.support.waiting import wait_until

BLOCKS = "eth_getBlockByNumber"


def routed(metrics: Metrics, *providers: tuple[str, ProviderProxy, dict[str, Any]]) -> Fetcher:
    config = ChainConfig(
        name="t",
        providers=[ProviderConfig(name=n, url=p.url, **limits) for n, p, limits in providers],
        rpc_batch_size=10,
        rpc_max_concurrency=4,
        rpc_timeout_seconds=2,
        rpc_max_retries=3,
    )  # fmt: skip
    return chain_fetcher(config, metrics)


def sample(metrics: Metrics, name: str, provider: str) -> float | None:
    return metrics.registry.get_sample_value(name, {"chain": "t", "provider": provider})


async def test_a_killed_provider_is_routed_around_at_once_and_gets_traffic_when_back() -> None:
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=3000, block_time=0)) as sim:
        a, b = ProviderProxy(sim.url), ProviderProxy(sim.url)
        async with AsyncExitStack() as a_alive, b.running():
            await a_alive.enter_async_context(a.running())
            router = routed(metrics, ("a", a, {}), ("b", b, {}))
            try:
                blocks = await router.get_blocks(0, 399)
                assert [block.number for block in blocks] == list(range(400))
                assert a.calls[BLOCKS] > 0 and b.calls[BLOCKS] > 0  # both in rotation
                port = a.port
                await a_alive.aclose()  # killed

                started = time.monotonic()
                blocks = await router.get_blocks(400, 1999)
                failover_seconds = time.monotonic() - started
                assert [block.number for block in blocks] == list(range(400, 2000))
                assert all(block.hash == sim.chain.block_hash(block.number)[2:] for block in blocks)
                assert failover_seconds < 5, failover_seconds
                assert sample(metrics, "tindexer_provider_up", "a") == 0
                assert sample(metrics, "tindexer_provider_up", "b") == 1
                assert sample(metrics, "tindexer_provider_circuit_opened_total", "a") == 1
                errors = metrics.registry.get_sample_value(
                    "tindexer_rpc_requests_total",
                    {"chain": "t", "provider": "a", "method": BLOCKS, "outcome": "error"},
                )
                assert errors is not None and errors >= 3

                async with a.running(port=port):  # back
                    before = a.calls[BLOCKS]

                    async def a_serves_blocks_again() -> bool:
                        await router.get_blocks(2000, 2099)
                        return a.calls[BLOCKS] > before

                    await wait_until(a_serves_blocks_again, 60, "provider a back in rotation")
                    assert sample(metrics, "tindexer_provider_up", "a") == 1
            finally:
                await router.close()


async def test_a_provider_limited_to_20_per_second_never_gets_more_the_other_takes_the_rest() -> (
    None
):
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=20_000, block_time=0)) as sim:
        limited, free = ProviderProxy(sim.url), ProviderProxy(sim.url)
        limited.max_requests_per_second = 20  # its plan: 429 above 20 requests in a second
        async with limited.running(), free.running():
            router = routed(
                metrics,
                # weighted to take everything it may: only its limit sends work elsewhere
                ("limited", limited, {"max_requests_per_second": 20, "weight": 100}),
                ("free", free, {}),
            )
            try:
                started = time.monotonic()
                start = 0
                while time.monotonic() - started < 7:  # enough for several 5 s windows
                    blocks = await router.get_blocks(start, start + 399)
                    assert [block.number for block in blocks] == list(range(start, start + 400))
                    start = (start + 400) % 19_600
            finally:
                await router.close()
        assert limited.busiest_window(5.0) <= 100, limited.busiest_window(5.0)
        assert limited.busiest_window(5.0) >= 50  # it took a good part of what it allows...
        assert len(free.arrivals) > 2 * len(limited.arrivals)  # ...and the other took the rest
        assert sample(metrics, "tindexer_provider_rate_limit_requests_per_second", "limited") == (
            18.0
        )


async def test_a_provider_100_blocks_behind_is_never_asked_above_its_head() -> None:
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=1000, block_time=0)) as sim:
        behind, current = ProviderProxy(sim.url), ProviderProxy(sim.url)
        behind.head_lag = 100
        async with behind.running(), current.running():
            router = routed(metrics, ("behind", behind, {}), ("current", current, {}))
            try:
                head = await router.latest_available_block()
                assert head == 999
                assert sample(metrics, "tindexer_provider_head_lag_blocks", "behind") == 100
                assert sample(metrics, "tindexer_provider_head_lag_blocks", "current") == 0
                assert sample(metrics, "tindexer_provider_head", "behind") == 899
                for start in range(0, 1000, 200):
                    blocks = await router.get_blocks(start, start + 199, receipts=True)
                    assert [block.number for block in blocks] == list(range(start, start + 200))
            finally:
                await router.close()
        assert behind.blocks_above_head == []
        assert behind.calls[BLOCKS] > 0  # still used below its head (weight 1/20)


async def test_without_head_scans_a_null_answer_teaches_the_router_a_providers_head() -> None:
    """A worker that runs no HeadScan knows no heads: the first null from the lagging provider
    sends the batch to the other at once, and its blocks above that head go elsewhere after."""
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=1000, block_time=0)) as sim:
        behind, current = ProviderProxy(sim.url), ProviderProxy(sim.url)
        behind.head_lag = 100
        async with behind.running(), current.running():
            router = routed(metrics, ("behind", behind, {}), ("current", current, {}))
            try:
                for _ in range(6):
                    blocks = await router.get_blocks(850, 999)
                    assert [block.number for block in blocks] == list(range(850, 1000))
            finally:
                await router.close()
        # A block it answered null is never asked of it again (batches already in flight to it
        # were its only other nulls), and it still served the blocks it has.
        asked = behind.blocks_above_head
        assert len(asked) == len(set(asked)) and set(asked) <= set(range(900, 1000))
        assert behind.calls[BLOCKS] > len(asked)


async def test_receipts_go_to_the_provider_that_serves_them() -> None:
    """One provider is configured without eth_getBlockReceipts, the other lacks it without
    saying so until asked: every receipt comes from the first by eth_getBlockReceipts... until
    both lack it, when the chain falls back to eth_getTransactionReceipt."""
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=400, block_time=0)) as sim:
        declared = ProviderProxy(sim.url, unsupported_methods={"eth_getBlockReceipts"})
        serving, silent = ProviderProxy(sim.url), ProviderProxy(sim.url)
        async with declared.running(), serving.running():
            lacks = {"unsupported_methods": ["eth_getBlockReceipts"]}
            router = routed(metrics, ("declared", declared, lacks), ("serving", serving, {}))
            try:
                blocks = await router.get_blocks(1, 200, receipts=True)
                assert all(tx.receipt is not None for b in blocks for tx in b.transactions)
            finally:
                await router.close()
        assert declared.calls["eth_getBlockReceipts"] == 0  # never asked: it said so
        assert serving.calls["eth_getBlockReceipts"] > 0
        assert router.receipts_method == "eth_getBlockReceipts"

        silent.unsupported_methods = {"eth_getBlockReceipts"}
        async with declared.running(), silent.running():
            router = routed(metrics, ("declared", declared, lacks), ("silent", silent, {}))
            try:
                blocks = await router.get_blocks(1, 200, receipts=True)
                assert all(tx.receipt is not None for b in blocks for tx in b.transactions)
            finally:
                await router.close()
        # Asked once (one batch of at most 10 calls, each refused), then known.
        assert 1 <= silent.refused["eth_getBlockReceipts"] <= 10
        assert silent.calls["eth_getBlockReceipts"] == silent.refused["eth_getBlockReceipts"]
        assert router.receipts_method == "eth_getTransactionReceipt"


async def test_a_provider_failing_its_probe_with_a_429_is_probed_again_and_comes_back() -> None:
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=2000, block_time=0)) as sim:
        flaky, steady = ProviderProxy(sim.url), ProviderProxy(sim.url)
        flaky.answer = raw_answer(b"bad gateway", status=502)
        async with flaky.running(), steady.running():
            router = routed(metrics, ("flaky", flaky, {}), ("steady", steady, {}))
            try:

                async def out_of_rotation() -> bool:
                    await router.get_blocks(0, 99)
                    return sample(metrics, "tindexer_provider_up", "flaky") == 0

                await wait_until(out_of_rotation, 30, "flaky out of rotation")
                # Its first probe is throttled, then it answers again.
                flaky.answer = first(1, raw_answer(b"slow down", 429, {"Retry-After": "1"}))

                async def back() -> bool:
                    await router.get_blocks(0, 99)
                    return sample(metrics, "tindexer_provider_up", "flaky") == 1

                await wait_until(back, 60, "flaky back after a throttled probe")
            finally:
                await router.close()
        assert flaky.throttled == 0  # the 429 came from `answer`, not from a plan
        assert sample(metrics, "tindexer_provider_circuit_opened_total", "flaky") == 1


async def test_a_probe_cancelled_mid_flight_is_sent_again_and_the_provider_returns() -> None:
    """A range that ends while its batch is a provider's probe must not leave the provider
    marked as probing for ever (out of rotation until a restart)."""
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=500, block_time=0)) as sim:
        a, b = ProviderProxy(sim.url), ProviderProxy(sim.url)
        async with a.running(), b.running():
            fetcher = routed(metrics, ("a", a, {}), ("b", b, {}))
            router = fetcher.sender
            assert isinstance(router, Router)
            try:
                a.answer = raw_answer(b"down", status=503)
                await fetcher.get_blocks(0, 199)  # a fails its batches: its circuit opens
                assert sample(metrics, "tindexer_provider_up", "a") == 0
                provider = next(p for p in router.providers if p.name == "a")
                a.answer, a.delay_seconds = None, 5.0  # back, but slow: the probe hangs
                assert provider.open_until is not None
                await asyncio.sleep(max(0.0, provider.open_until - time.monotonic()))
                arrived = len(a.arrivals)
                probe = asyncio.create_task(fetcher.get_blocks(200, 209))

                async def probe_reached_a() -> bool:
                    return len(a.arrivals) > arrived

                await wait_until(probe_reached_a, 10, "the probe to reach a")
                probe.cancel()  # the activity holding it ended
                with contextlib.suppress(asyncio.CancelledError):
                    await probe
                a.delay_seconds = 0.0

                async def back_in_rotation() -> bool:
                    await fetcher.get_blocks(210, 219)
                    return sample(metrics, "tindexer_provider_up", "a") == 1

                await wait_until(back_in_rotation, 30, "a probed again and back in rotation")
            finally:
                await fetcher.close()


async def test_a_method_refused_by_every_provider_is_asked_again_after_it_expires() -> None:
    """A brief -32601 from every provider must not stop the chain until a restart."""
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=100, block_time=0)) as sim:
        a, b = ProviderProxy(sim.url), ProviderProxy(sim.url)
        async with a.running(), b.running():
            fetcher = routed(metrics, ("a", a, {}), ("b", b, {}))
            router = fetcher.sender
            assert isinstance(router, Router)
            try:
                a.unsupported_methods = b.unsupported_methods = {BLOCKS}
                with pytest.raises(MethodNotFound):
                    await fetcher.get_blocks(0, 9)
                a.unsupported_methods = b.unsupported_methods = set()
                for provider in router.providers:  # LACK_SECONDS later
                    provider.lacks_until = {m: 0.0 for m in provider.lacks_until}
                blocks = await fetcher.get_blocks(0, 9)
                assert [block.number for block in blocks] == list(range(10))
            finally:
                await fetcher.close()


async def test_a_provider_on_another_chain_is_kept_out_then_returns_once_it_answers_right(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Asked again about once a minute (here 0.2 s): a provider fixed by its operator returns."""
    monkeypatch.setattr(provider_module, "WRONG_CHAIN_RECHECK_SECONDS", 0.2)
    metrics = Metrics(CollectorRegistry())
    async with running_sim(SimChainConfig(backlog=100, block_time=0)) as sim:
        right, wrong = ProviderProxy(sim.url), ProviderProxy(sim.url)

        def another_chain(call: dict[str, Any], answer: dict[str, Any]) -> None:
            if call.get("method") == "eth_chainId":
                answer["result"] = hex(999)

        wrong.rewrite = another_chain
        async with right.running(), wrong.running():
            fetcher = routed(metrics, ("right", right, {}), ("wrong", wrong, {}))
            try:
                await fetcher.latest_available_head()
                assert sample(metrics, "tindexer_provider_chain_id_mismatch", "wrong") == 1
                await fetcher.get_blocks(0, 99)
                assert wrong.calls[BLOCKS] == 0  # asked its chain id only
                wrong.reset()  # its operator fixed it
                await asyncio.sleep(0.3)
                await fetcher.latest_available_head()
                assert sample(metrics, "tindexer_provider_chain_id_mismatch", "wrong") == 0
                assert sample(metrics, "tindexer_provider_chain_id", "wrong") == 1337
                await fetcher.get_blocks(0, 99)
                assert wrong.calls[BLOCKS] > 0  # back in rotation
            finally:
                await fetcher.close()
