"""The RPC client against the simulated chain served in-process: head-1, retries, rate limits."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator

import pytest
import pytest_asyncio
from aiohttp import web
from aiohttp.test_utils import TestServer
from aiohttp.typedefs import Handler
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.chain.errors import RpcUnavailable, parse_retry_after, read_retry_after
from indexer.chain.fetcher import Fetcher
from indexer.chain.limiter import AdaptiveLimiter
from indexer.chain.model import BadChainData
from indexer.chain.sender import RpcSettings
from indexer.chain.transport import Transport
from indexer.simchain.server import SimChain, SimChainConfig, build_app
from tests.support.provider_proxy import first, raw_answer
from tests.support.proxied_chain import FAST_RETRIES, Provider
from tests.support.simchain import set_faults


class Chain:
    def __init__(
        self, sim: SimChain, transport: Transport, metrics: Metrics, answered: list[int]
    ) -> None:
        self.sim, self.transport, self.metrics = sim, transport, metrics
        self.client = Fetcher(transport)
        self.answered = answered  # the body size of every JSON-RPC answer the chain sent

    async def set_faults(self, **faults: float) -> None:
        """Through the chain's own admin endpoint, as the integration tests do."""
        await set_faults(self.transport.url.rstrip("/"), **faults)

    def count(self, outcome: str, method: str = "eth_getBlockByNumber") -> float:
        value = self.metrics.registry.get_sample_value(
            "tindexer_rpc_requests_total",
            {"chain": "t", "provider": "default", "method": method, "outcome": outcome},
        )
        return value or 0.0


@pytest_asyncio.fixture(loop_scope="session")
async def chain(request: pytest.FixtureRequest) -> AsyncIterator[Chain]:
    config: SimChainConfig = getattr(request, "param", SimChainConfig(backlog=500, block_time=0))
    sim = SimChain(config)
    answered: list[int] = []

    @web.middleware
    async def record(request: web.Request, handler: Handler) -> web.StreamResponse:
        response = await handler(request)
        if request.path == "/" and isinstance(response, web.Response) and response.body:
            answered.append(len(response.body))  # type: ignore[arg-type]
        return response

    app = build_app(sim)
    app.middlewares.append(record)
    server = TestServer(app)
    await server.start_server()
    metrics = Metrics(CollectorRegistry())
    settings = RpcSettings(batch_size=20, max_concurrency=4, timeout_seconds=1, max_retries=3)
    transport = Transport(str(server.make_url("/")), "t", settings, metrics)
    try:
        yield Chain(sim, transport, metrics, answered)
    finally:
        await transport.close()
        await server.close()


async def test_blocks_come_back_parsed_linked_and_complete(chain: Chain) -> None:
    blocks = await chain.client.get_blocks(10, 109)
    assert [b.number for b in blocks] == list(range(10, 110))
    assert blocks[5].hash == chain.sim.block_hash(15)[2:]
    assert all(len(b.transactions) == 3 for b in blocks)
    # 101 blocks (9 too, for 10's parent) in MIN_REQUESTS_PER_BATCH (8) requests of 13, not 6 of 20
    assert chain.count("ok") == 8


async def test_a_batch_comes_back_with_the_answer_bytes_it_read(chain: Chain) -> None:
    """What the worker's budget measures a batch by: every answer body it took, receipts too."""
    fetched = await chain.client.get_blocks_batch(10, 49, receipts=True)
    assert [b.number for b in fetched.blocks] == list(range(10, 50))
    assert all(tx.receipt is not None for b in fetched.blocks for tx in b.transactions)
    assert len(chain.answered) == 10  # blocks 9..49: 5 requests of 10 (at least 10 calls), each
    # followed by its receipts
    assert fetched.answer_bytes == sum(chain.answered) > 0
    chain.answered.clear()
    after = await chain.client.get_blocks_batch(50, 59, previous=fetched.blocks[-1])
    assert [b.number for b in after.blocks] == list(range(50, 60))
    assert len(chain.answered) == 1  # block 49 not asked again
    assert after.answer_bytes == chain.answered[0]


async def test_the_first_blocks_parent_is_checked_against_the_provider(chain: Chain) -> None:
    # A bad parentHash on a range's first block, stored, would block the range before it.
    await chain.set_faults(bad_parent_ratio=1.0)
    with pytest.raises(BadChainData, match="block 100: parentHash"):
        await chain.client.get_blocks(100, 100)


@pytest.mark.parametrize(
    "chain", [SimChainConfig(backlog=50, block_time=0, announce_ahead=True)], indirect=True
)
async def test_head_minus_one_when_the_announced_head_is_not_served(chain: Chain) -> None:
    assert await chain.client.latest_available_block() == 49


async def test_retry_after_is_honoured_and_counted(chain: Chain) -> None:
    await chain.set_faults(rate_limit_ratio=1.0, retry_after_seconds=0.3)
    started = time.monotonic()
    with pytest.raises(RpcUnavailable, match="HTTP 429"):
        await chain.client.get_blocks(0, 9)
    # Four attempts, each after the provider's Retry-After of 0.3 s.
    assert time.monotonic() - started >= 0.9
    assert chain.count("rate_limited") == 4
    assert (
        chain.metrics.registry.get_sample_value("tindexer_rate_limited_total", {"source": "rpc"})
        == 4
    )
    assert chain.transport.limiter.limit < 4  # overload cut the concurrency


async def test_transient_faults_are_retried_to_success(chain: Chain) -> None:
    await chain.set_faults(malformed_ratio=0.3, error_ratio=0.2, null_block_ratio=0.02)
    chain.transport.settings = RpcSettings(batch_size=20, max_concurrency=4, max_retries=30)
    blocks = await chain.client.get_blocks(0, 199)
    assert [b.number for b in blocks] == list(range(200))
    assert chain.count("error") > 0


def test_retry_after_parsing() -> None:
    assert parse_retry_after("2") == 2.0
    assert parse_retry_after("0.25") == 0.25
    assert parse_retry_after(None) is None
    assert parse_retry_after("garbage") is None
    assert parse_retry_after("Wed, 21 Oct 2015 07:28:00 GMT") == 0.0  # in the past


@pytest.mark.parametrize(
    ("header", "wait", "clamped"),
    [
        ("1e9", 60.0, True),
        ("inf", 60.0, True),
        ("-inf", 0.0, True),
        ("-5", 0.0, True),
        ("nan", None, True),  # unusable: the client backs off instead
        ("60", 60.0, False),
        ("Fri, 31 Dec 9999 23:59:59 GMT", 60.0, True),
        ("Wed, 21 Oct 2015 07:28:00 GMT", 0.0, False),  # already past: not a clamp
        ("Wed, 21 Oct 99999 07:28:00 GMT", None, False),  # no date: ignored
        ("soon", None, False),
    ],
)
def test_retry_after_is_clamped_to_a_minute(header: str, wait: float | None, clamped: bool) -> None:
    assert read_retry_after(header) == (wait, clamped)


RETRY_AFTERS = {"1e9": 0.3, "inf": 0.3, "Fri, 31 Dec 9999 23:59:59 GMT": 0.3, "-5": 0.0}


@pytest.mark.parametrize(("header", "wait"), RETRY_AFTERS.items(), ids=RETRY_AFTERS.keys())
async def test_a_huge_retry_after_pauses_the_client_no_longer_than_the_clamp(
    provider: Provider, caplog: pytest.LogCaptureFixture, header: str, wait: float
) -> None:
    # The old client slept for 1e9 s (or forever), pausing its chain until a restart.
    provider.proxy.answer = first(1, raw_answer(b"", status=429, headers={"Retry-After": header}))
    client = provider.client(max_retry_after_seconds=0.3)
    started = time.monotonic()
    async with asyncio.timeout(30):
        blocks = await client.get_blocks(1, 3)
    assert time.monotonic() - started >= wait
    assert [b.number for b in blocks] == [1, 2, 3]
    assert [r.wait_seconds for r in caplog.records if hasattr(r, "wait_seconds")] == [wait]
    assert provider.count("rate_limited") == 1 and provider.count("ok") == 1
    clamped = provider.metrics.registry.get_sample_value(
        "tindexer_rpc_retry_after_clamped_total", {"chain": "t", "provider": "default"}
    )
    assert clamped == 1


async def test_a_429_with_no_usable_retry_after_backs_off(
    provider: Provider, caplog: pytest.LogCaptureFixture
) -> None:
    provider.proxy.answer = first(1, raw_answer(b"", status=429, headers={"Retry-After": "nan"}))
    assert [b.number for b in await provider.client().get_blocks(1, 1)] == [1]
    (wait,) = [r.wait_seconds for r in caplog.records if hasattr(r, "wait_seconds")]
    assert 0 <= wait <= FAST_RETRIES.backoff_max_seconds


def test_limiter_halves_on_overload_once_per_cooldown_and_grows_back() -> None:
    limiter = AdaptiveLimiter(8, cooldown_seconds=60)
    limiter.on_overload()
    limiter.on_overload()
    assert limiter.limit == 4
    for _ in range(4):
        limiter.on_success()
    assert limiter.limit == 5
