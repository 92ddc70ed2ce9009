"""The simulated chain's admin endpoints (/_sim/...): faults, reorgs, its head; an in-process
chain for unit tests; and the consistency a block and its receipts must show."""

from __future__ import annotations

import itertools
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass
from typing import Any

import aiohttp
from aiohttp.test_utils import TestServer

from indexer.simchain.server import SimChain, SimChainConfig, build_app

# Every fault field that is a ratio or a delay, all off when cleared.
FAULTS_OFF = {
    "rate_limit_ratio": 0,
    "timeout_ratio": 0,
    "malformed_ratio": 0,
    "error_ratio": 0,
    "null_block_ratio": 0,
    "bad_parent_ratio": 0,
    "latency_seconds": 0,
    "receipts_missing_ratio": 0,
    "receipts_other_block_ratio": 0,
    "receipts_wrong_count_ratio": 0,
}


async def sim_post(url: str, path: str, body: dict[str, Any]) -> dict[str, Any]:
    """POST `body` to the chain at `url` (no trailing slash); its JSON answer, asserted 200."""
    async with (
        aiohttp.ClientSession() as session,
        session.post(f"{url}{path}", json=body) as response,
    ):
        assert response.status == 200, await response.text()
        answer: dict[str, Any] = await response.json()
        return answer


async def set_faults(url: str, **faults: float) -> None:
    """Replace the given fault fields (ratios, latency, Retry-After…) of the chain at `url`."""
    await sim_post(url, "/_sim/faults", faults)


async def clear_faults(url: str) -> None:
    await set_faults(url, **FAULTS_OFF)


async def sim_head(url: str) -> int:
    async with aiohttp.ClientSession() as session, session.get(f"{url}/_sim/state") as response:
        return int((await response.json())["head"])


# --- an in-process chain ----------------------------------------------------------------------


@dataclass
class RunningSim:
    """A simulated chain served on a free loopback port, and a client session for it."""

    chain: SimChain
    session: aiohttp.ClientSession
    url: str

    async def call(self, method: str, *params: Any) -> Any:
        """One JSON-RPC call; its whole answer (result or error)."""
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with self.session.post(self.url, json=body) as response:
            assert response.status == 200
            answer: dict[str, Any] = await response.json()
            return answer

    async def batch(self, calls: list[tuple[str, list[Any]]]) -> list[dict[str, Any]]:
        """A batch of (method, params); the answers in call order (ids are the positions)."""
        body = [
            {"jsonrpc": "2.0", "id": i, "method": method, "params": params}
            for i, (method, params) in enumerate(calls)
        ]
        async with self.session.post(self.url, json=body) as response:
            assert response.status == 200
            answers: list[dict[str, Any]] = await response.json()
        assert sorted(answer["id"] for answer in answers) == list(range(len(calls)))
        return sorted(answers, key=lambda answer: answer["id"])

    async def faults(self, **faults: float) -> None:
        await set_faults(self.url.rstrip("/"), **faults)


@asynccontextmanager
async def running_sim(config: SimChainConfig) -> AsyncIterator[RunningSim]:
    """Serve a new SimChain(config) in this process until the block ends."""
    chain = SimChain(config)
    server = TestServer(build_app(chain))
    await server.start_server()
    try:
        async with aiohttp.ClientSession() as session:
            yield RunningSim(chain, session, str(server.make_url("/")))
    finally:
        await server.close()


# --- what a block and its receipts must agree on ------------------------------------------------


def receipt_mismatches(block: dict[str, Any], receipts: Any) -> list[str]:
    """How eth_getBlockReceipts' answer disagrees with the full block eth_getBlockByNumber
    gave (empty: consistent): count, hash by hash, index by index, block hash and number,
    cumulative gas, logs' positions and ids."""
    if not isinstance(receipts, list):
        return [f"receipts are {receipts!r}, not a list"]
    txs = block["transactions"]
    problems = []
    if len(receipts) != len(txs):
        problems.append(f"{len(receipts)} receipts for {len(txs)} transactions")
    log_index = 0
    cumulative = 0
    for position, (tx, receipt) in enumerate(zip(txs, receipts, strict=False)):
        ids = {
            "transactionHash": tx["hash"],
            "transactionIndex": hex(position),
            "blockHash": block["hash"],
            "blockNumber": block["number"],
        }
        for key, expected in ids.items():
            if receipt.get(key) != expected:
                problems.append(f"receipt {position}: {key} {receipt.get(key)} != {expected}")
        gas = int(receipt["cumulativeGasUsed"], 16)
        if gas <= cumulative or gas - cumulative != int(receipt["gasUsed"], 16):
            problems.append(f"receipt {position}: cumulativeGasUsed {gas} after {cumulative}")
        cumulative = gas
        for log in receipt["logs"]:
            if log.get("logIndex") != hex(log_index):
                problems.append(f"receipt {position}: logIndex {log.get('logIndex')}")
            for key, expected in ids.items():
                if log.get(key) != expected:
                    problems.append(f"receipt {position} log: {key} {log.get(key)} != {expected}")
            log_index += 1
    if receipts and len(receipts) == len(txs) and hex(cumulative) != block["gasUsed"]:
        problems.append(f"gas of the receipts {cumulative} != block gasUsed {block['gasUsed']}")
    return problems


def assert_chain_links(blocks: list[dict[str, Any]]) -> None:
    for parent, child in itertools.pairwise(blocks):
        assert child["parentHash"] == parent["hash"], child["number"]
