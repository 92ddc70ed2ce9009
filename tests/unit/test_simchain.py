"""The simulated chain: deterministic blocks, growth, reorgs, faults and its HTTP API."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
import pytest
from aiohttp.test_utils import TestServer
from yarl import URL

from indexer.simchain.server import Faults, SimChain, SimChainConfig, build_app

ZERO_HASH = "0x" + "0" * 64


def static_config(**overrides: Any) -> SimChainConfig:
    """A chain that does not grow with the wall clock, so tests see a fixed head."""
    return SimChainConfig(**{"backlog": 1_000, "block_time": 0, "seed": 7, **overrides})


@dataclass
class Sim:
    chain: SimChain
    session: aiohttp.ClientSession
    url: URL

    async def post(self, payload: Any, path: str = "/") -> tuple[int, Any]:
        async with self.session.post(self.url.with_path(path), json=payload) as response:
            return response.status, await response.json()

    async def rpc(self, method: str, *params: Any) -> Any:
        status, body = await self.post(
            {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        )
        assert status == 200
        return body

    async def faults(self, **faults: Any) -> None:
        status, _ = await self.post(faults, "/_sim/faults")
        assert status == 200


@asynccontextmanager
async def running(config: SimChainConfig) -> AsyncIterator[Sim]:
    """A real HTTP server on a free loopback port, and a client session for it."""
    chain = SimChain(config)
    server = TestServer(build_app(chain))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield Sim(chain, session, server.make_url("/"))
    finally:
        await server.close()


@pytest.fixture
async def sim() -> AsyncIterator[Sim]:
    async with running(static_config()) as started:
        yield started


def get_block(number: int | str, full: bool = True, call_id: int = 1) -> dict[str, Any]:
    tag = hex(number) if isinstance(number, int) else number
    return {
        "jsonrpc": "2.0",
        "id": call_id,
        "method": "eth_getBlockByNumber",
        "params": [tag, full],
    }


# --- the chain itself -------------------------------------------------------------------


def known_block(chain: SimChain, number: int, full: bool = False) -> dict[str, Any]:
    block = chain.block(number, full)
    assert block is not None, f"block {number} should exist"
    return block


def test_parent_hashes_link_every_block_to_the_previous_one() -> None:
    chain = SimChain(static_config(backlog=2_000))
    blocks = [known_block(chain, n) for n in range(2_000)]
    assert blocks[0]["parentHash"] == ZERO_HASH
    for parent, child in itertools.pairwise(blocks):
        assert child["parentHash"] == parent["hash"]
        assert int(child["number"], 16) == int(parent["number"], 16) + 1
    assert len({block["hash"] for block in blocks}) == 2_000
    assert all(len(block["hash"]) == 66 for block in blocks)


def test_same_seed_gives_identical_blocks_and_another_seed_does_not() -> None:
    first, second = SimChain(static_config()), SimChain(static_config())
    other = SimChain(static_config(seed=8))
    for number in (0, 1, 500, 999):
        assert first.block(number, full=True) == second.block(number, full=True)
        assert first.block_hash(number) != other.block_hash(number)
    assert first.block(1_000, full=True) is None


def test_full_block_has_the_node_fields_with_hex_quantities() -> None:
    chain = SimChain(static_config(txs_per_block=4, chain_id=10))
    block = known_block(chain, 42, full=True)
    assert block["number"] == "0x2a"
    assert block["timestamp"] == hex(1_700_000_000 + 42 * 12)
    assert block["uncles"] == []
    for name in ("miner", "gasLimit", "gasUsed", "baseFeePerGas", "size", "nonce"):
        assert isinstance(block[name], str) and block[name].startswith("0x")
    txs = block["transactions"]
    assert [tx["transactionIndex"] for tx in txs] == ["0x0", "0x1", "0x2", "0x3"]
    assert {tx["blockHash"] for tx in txs} == {block["hash"]}
    assert {tx["chainId"] for tx in txs} == {"0xa"}
    assert all(len(tx["from"]) == len(tx["to"]) == 42 for tx in txs)
    hashes_only = known_block(chain, 42)
    assert hashes_only["transactions"] == [tx["hash"] for tx in txs]
    assert known_block(SimChain(static_config(txs_per_block=0)), 5)["transactions"] == []


def test_chain_grows_one_block_per_block_time_and_by_mining() -> None:
    now = [100.0]
    chain = SimChain(static_config(backlog=10, block_time=2.0), clock=lambda: now[0])
    assert chain.head() == 9
    assert chain.block(10, full=False) is None
    now[0] += 5.0
    assert chain.head() == 11
    assert known_block(chain, 11)["parentHash"] == chain.block_hash(10)
    chain.mine(3)
    assert chain.head() == 14


def test_reorg_replaces_exactly_the_newest_blocks_and_keeps_links() -> None:
    chain = SimChain(static_config(backlog=100))
    before = [known_block(chain, n, full=True) for n in range(100)]
    chain.reorg(5)
    after = [known_block(chain, n, full=True) for n in range(100)]
    assert chain.head() == 99
    changed = [n for n in range(100) if before[n]["hash"] != after[n]["hash"]]
    assert changed == [95, 96, 97, 98, 99]
    for n in range(95, 100):
        old_txs = {tx["hash"] for tx in before[n]["transactions"]}
        assert old_txs.isdisjoint(tx["hash"] for tx in after[n]["transactions"])
    assert before[94]["transactions"] == after[94]["transactions"]
    for parent, child in itertools.pairwise(after):
        assert child["parentHash"] == parent["hash"]
    # A deeper reorg later replaces the earlier fork too, and links still hold.
    chain.reorg(10)
    again = [known_block(chain, n) for n in range(100)]
    assert [n for n in range(100) if again[n]["hash"] != after[n]["hash"]] == list(range(90, 100))
    assert all(again[n]["parentHash"] == again[n - 1]["hash"] for n in range(1, 100))
    with pytest.raises(ValueError):
        chain.reorg(100)  # would replace genesis


# --- JSON-RPC over HTTP -----------------------------------------------------------------


async def test_single_calls(sim: Sim) -> None:
    assert (await sim.rpc("eth_chainId"))["result"] == "0x539"
    assert (await sim.rpc("net_version"))["result"] == "1337"
    assert (await sim.rpc("eth_blockNumber"))["result"] == hex(999)
    latest = (await sim.rpc("eth_getBlockByNumber", "latest", False))["result"]
    assert latest == sim.chain.block(999, full=False)
    earliest = (await sim.rpc("eth_getBlockByNumber", "earliest", True))["result"]
    assert earliest["parentHash"] == ZERO_HASH
    assert (await sim.rpc("eth_getBlockByNumber", "0x3e8", True))["result"] is None
    unknown = await sim.rpc("eth_sendRawTransaction", "0x00")
    assert unknown["error"]["code"] == -32601
    assert (await sim.rpc("eth_getBlockByNumber", "soon"))["error"]["code"] == -32602


async def test_batch_answers_every_call_with_its_id(sim: Sim) -> None:
    batch = [get_block(n, full=True, call_id=100 + n) for n in range(500, 600)]
    batch.append({"jsonrpc": "2.0", "id": "chain", "method": "eth_chainId", "params": []})
    batch.append({"jsonrpc": "2.0", "id": 7, "method": "no_such_method", "params": []})
    status, body = await sim.post(batch)
    assert status == 200
    by_id = {item["id"]: item for item in body}
    assert len(body) == 102
    blocks = [by_id[100 + n]["result"] for n in range(500, 600)]
    assert [int(block["number"], 16) for block in blocks] == list(range(500, 600))
    assert all(
        child["parentHash"] == parent["hash"] for parent, child in itertools.pairwise(blocks)
    )
    assert blocks == [sim.chain.block(n, full=True) for n in range(500, 600)]
    assert by_id["chain"]["result"] == "0x539"
    assert by_id[7]["error"]["code"] == -32601


async def test_invalid_json_is_a_parse_error(sim: Sim) -> None:
    async with sim.session.post(sim.url, data=b'{"jsonrpc": "2.0", "id": 1,') as response:
        assert response.status == 200
        body = await response.json()
    assert body["error"]["code"] == -32700
    assert body["id"] is None
    _, body = await sim.post([])
    assert body["error"]["code"] == -32600


async def test_announce_ahead_serves_only_up_to_head_minus_one() -> None:
    async with running(static_config(announce_ahead=True)) as sim:
        announced = int((await sim.rpc("eth_blockNumber"))["result"], 16)
        assert announced == 1_000
        assert (await sim.rpc("eth_getBlockByNumber", hex(announced), False))["result"] is None
        available = (await sim.rpc("eth_getBlockByNumber", hex(announced - 1), False))["result"]
        assert available["hash"] == sim.chain.block_hash(announced - 1)
        latest = (await sim.rpc("eth_getBlockByNumber", "latest", False))["result"]
        assert latest["number"] == hex(announced - 1)


# --- faults -----------------------------------------------------------------------------


async def test_rate_limit_answers_429_with_retry_after(sim: Sim) -> None:
    await sim.faults(rate_limit_ratio=1.0, retry_after_seconds=0.2)
    async with sim.session.post(sim.url, json=get_block(1)) as response:
        assert response.status == 429
        assert response.headers["Retry-After"] == "0.2"
        body = await response.json()
    assert body == {
        "jsonrpc": "2.0",
        "id": None,
        "error": {"code": -32005, "message": "rate limited"},
    }


async def test_timeout_fault_delays_past_the_client_timeout(sim: Sim) -> None:
    await sim.faults(timeout_ratio=1.0, timeout_sleep_seconds=2.0)
    timeout = aiohttp.ClientTimeout(total=0.2)
    with pytest.raises(asyncio.TimeoutError):
        async with sim.session.post(sim.url, json=get_block(1), timeout=timeout) as response:
            await response.read()
    await sim.faults(timeout_ratio=0.0)
    assert (await sim.rpc("eth_blockNumber"))["result"] == hex(999)


async def test_malformed_fault_cuts_the_real_body_in_half(sim: Sim) -> None:
    request = [get_block(n) for n in range(10, 13)]
    async with sim.session.post(sim.url, json=request) as response:
        real = await response.read()
    await sim.faults(malformed_ratio=1.0)
    async with sim.session.post(sim.url, json=request) as response:
        assert response.status == 200
        cut = await response.read()
    assert cut == real[: len(real) // 2]
    with pytest.raises(ValueError):
        json.loads(cut)


async def test_error_fault_fails_every_call_of_the_request(sim: Sim) -> None:
    await sim.faults(error_ratio=1.0)
    status, body = await sim.post([get_block(n, call_id=n) for n in range(3)])
    assert status == 200
    assert [item["id"] for item in body] == [0, 1, 2]
    expected = {"code": -32000, "message": "simulated internal error"}
    assert all(item["error"] == expected and "result" not in item for item in body)


async def test_null_block_fault_returns_null_for_an_existing_block(sim: Sim) -> None:
    await sim.faults(null_block_ratio=1.0)
    assert (await sim.rpc("eth_getBlockByNumber", "0x5", True))["result"] is None
    await sim.faults(null_block_ratio=0.0)
    assert (await sim.rpc("eth_getBlockByNumber", "0x5", True))["result"]["number"] == "0x5"


async def test_bad_parent_fault_breaks_only_the_parent_link(sim: Sim) -> None:
    await sim.faults(bad_parent_ratio=1.0)
    block = (await sim.rpc("eth_getBlockByNumber", "0x5", True))["result"]
    assert block["hash"] == sim.chain.block_hash(5)
    assert block["parentHash"] != sim.chain.block_hash(4)
    assert len(block["parentHash"]) == 66


async def test_latency_fault_delays_every_request(sim: Sim) -> None:
    await sim.faults(latency_seconds=0.15)
    loop = asyncio.get_running_loop()
    started = loop.time()
    await sim.rpc("eth_chainId")
    assert loop.time() - started >= 0.15


async def test_fault_draws_are_deterministic_per_seed() -> None:
    async def statuses() -> list[int]:
        config = static_config(faults=Faults(rate_limit_ratio=0.5))
        async with running(config) as sim:
            results = []
            for _ in range(30):
                async with sim.session.post(sim.url, json=get_block(1)) as response:
                    results.append(response.status)
            return results

    first, second = await statuses(), await statuses()
    assert first == second
    assert set(first) == {200, 429}


# --- admin endpoints --------------------------------------------------------------------


async def test_admin_state_mine_and_reorg(sim: Sim) -> None:
    await sim.rpc("eth_chainId")
    status, state = await sim.post({"blocks": 5}, "/_sim/mine")
    assert (status, state) == (200, {"head": 1_004})
    old = sim.chain.block_hash(1_000)
    status, state = await sim.post({"depth": 5}, "/_sim/reorg")
    assert (status, state) == (200, {"head": 1_004, "reorgs": 1})
    assert sim.chain.block_hash(1_000) != old
    async with sim.session.get(sim.url.with_path("/_sim/state")) as response:
        state = await response.json()
    assert state["head"] == 1_004
    assert state["reorgs"] == 1
    assert state["requests"] == 1
    assert state["faults"] == Faults().__dict__


async def test_admin_faults_replace_given_fields_and_reject_bad_ones(sim: Sim) -> None:
    status, body = await sim.post({"null_block_ratio": 0.25}, "/_sim/faults")
    assert status == 200
    assert body["faults"]["null_block_ratio"] == 0.25
    assert body["faults"]["retry_after_seconds"] == 1.0
    for bad in ({"no_such_fault": 1.0}, {"error_ratio": "high"}, {"error_ratio": 1.5}):
        status, body = await sim.post(bad, "/_sim/faults")
        assert status == 400, bad
        assert "error" in body
    status, _ = await sim.post({"depth": 0}, "/_sim/reorg")
    assert status == 400
    status, _ = await sim.post({"blocks": "many"}, "/_sim/mine")
    assert status == 400
