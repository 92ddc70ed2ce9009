"""Receipts from a real anvil: get_blocks(..., receipts=True) against the node's own answers.

The chain is seeded with contracts of our own, hand-assembled: one emits LOG2 (a constant
topic, the caller, the calldata as data), one LOG0 and LOG4, one always reverts; with legacy,
access-list and EIP-1559 transactions, creations and plain transfers, several per block, and
an empty block. What the client attaches must equal eth_getBlockReceipts read directly from
the node, field by field — and the same through a provider that lacks eth_getBlockReceipts
(the proxy answers method-not-found), where it comes by eth_getTransactionReceipt.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from typing import Any

import pytest
import pytest_asyncio
from aiohttp import web
from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.chain.fetcher import Fetcher
from indexer.chain.model import BadChainData, Block
from indexer.chain.sender import RpcSettings
from tests.support.chaindata import rpc
from tests.support.provider_proxy import ProviderProxy

SETTINGS = RpcSettings(
    batch_size=5,  # blocks 0-4 in one batch; receipts by transaction in several
    max_concurrency=4,
    timeout_seconds=5,
    max_retries=2,
    backoff_base_seconds=0.01,
    backoff_max_seconds=0.05,
)
TOPIC = "0x" + "ab" * 32
# CALLDATACOPY the calldata to memory; LOG2(0, size, TOPIC, CALLER); STOP
EMIT_LOG2 = f"36600060003733{'7f' + 'ab' * 32}366000a200"
# LOG0(0, 0); LOG4(0, 0, 1, 2, 3, 4); STOP
EMIT_LOG0_LOG4 = "60006000a0" + "600460036002600160006000a4" + "00"
REVERT = "60006000fd"


def creation(runtime: str) -> str:
    """Init code returning `runtime`: CODECOPY(0, 12, len); RETURN(0, len)."""
    size = len(runtime) // 2
    return f"0x60{size:02x}600c60003960{size:02x}6000f3{runtime}"


@dataclass
class Seeded:
    url: str
    head: int
    emitter: str
    logger: str
    reverter: str


async def mine_block(url: str, sender_txs: list[dict[str, Any]]) -> None:
    for tx in sender_txs:
        await rpc(url, "eth_sendTransaction", tx)
    await rpc(url, "evm_mine")


async def seed(url: str) -> Seeded:
    accounts = await rpc(url, "eth_accounts")
    alice, bob, carol, dave = accounts[:4]
    await rpc(url, "evm_setAutomine", False)
    gas = "0x100000"
    await mine_block(  # block 1: three creations, one legacy
        url,
        [
            {"from": alice, "data": creation(EMIT_LOG2), "gas": gas},
            {"from": alice, "data": creation(EMIT_LOG0_LOG4), "gas": gas, "gasPrice": "0x77359400"},
            {"from": bob, "data": creation(REVERT), "gas": gas},
        ],
    )
    created = await rpc(url, "eth_getBlockReceipts", "0x1")
    emitter, logger, reverter = (r["contractAddress"] for r in created)
    await mine_block(  # block 2: events, a revert, a transfer; legacy, type 1 and EIP-1559
        url,
        [
            {"from": alice, "to": emitter, "data": "0x" + "01" * 40, "gas": gas},
            {"from": bob, "to": logger, "gas": gas, "gasPrice": "0x77359400"},
            {"from": carol, "to": reverter, "gas": gas},
            {"from": alice, "to": carol, "value": "0xde0b6b3a7640000"},
            {
                "from": bob,
                "to": emitter,
                "data": "0xdeadbeef",
                "gas": gas,
                "gasPrice": "0x77359400",
                "accessList": [{"address": emitter, "storageKeys": ["0x" + "00" * 32]}],
            },
        ],
    )
    await mine_block(url, [])  # block 3: empty
    await mine_block(  # block 4: more events, from others
        url,
        [
            {"from": carol, "to": emitter, "data": "0x", "gas": gas},
            {
                "from": dave,
                "to": logger,
                "gas": gas,
                "maxFeePerGas": "0xb2d05e00",
                "maxPriorityFeePerGas": "0x3b9aca00",
            },
            {"from": bob, "to": emitter, "data": "0x" + "ff" * 300, "gas": gas},
        ],
    )
    head = int(await rpc(url, "eth_blockNumber"), 16)
    return Seeded(url, head, emitter, logger, reverter)


@pytest_asyncio.fixture(loop_scope="session")
async def chain(anvil: str) -> Seeded:
    return await seed(anvil)


@pytest_asyncio.fixture(loop_scope="session")
async def metrics() -> Metrics:
    return Metrics(CollectorRegistry())


@pytest_asyncio.fixture(loop_scope="session")
async def proxy(chain: Seeded) -> AsyncIterator[ProviderProxy]:
    lacking = ProviderProxy(chain.url, unsupported_methods={"eth_getBlockReceipts"})
    async with lacking.running():
        yield lacking


def bare(value: str | None) -> str | None:
    return None if value is None else value[2:].lower()


def quantity(value: str | None) -> int | None:
    return None if value is None else int(value, 16)


def node_receipt_rows(receipts: list[dict[str, Any]]) -> list[tuple[Any, ...]]:
    """The node's receipts, as comparable tuples (logs included)."""
    return [
        (
            quantity(r["transactionIndex"]),
            bare(r["transactionHash"]),
            bare(r["blockHash"]),
            quantity(r["blockNumber"]),
            quantity(r.get("status")),
            quantity(r["gasUsed"]),
            quantity(r["cumulativeGasUsed"]),
            quantity(r.get("effectiveGasPrice")),
            bare(r.get("contractAddress")),
            [
                (
                    quantity(log["logIndex"]),
                    quantity(log["transactionIndex"]),
                    bare(log["transactionHash"]),
                    bare(log["address"]),
                    [bare(topic) for topic in log["topics"]],
                    bare(log["data"]),
                )
                for log in r["logs"]
            ],
        )
        for r in receipts
    ]


def client_receipt_rows(block: Block) -> list[tuple[Any, ...]]:
    rows = []
    for tx in block.transactions:
        r = tx.receipt
        assert r is not None, f"block {block.number} transaction {tx.tx_index} has no receipt"
        logs = [
            (log.log_index, log.tx_index, log.tx_hash, log.address, log.topics, log.data)
            for log in r.logs
        ]
        rows.append(
            (
                r.tx_index,
                r.tx_hash,
                r.block_hash,
                r.block_number,
                r.status,
                r.gas_used,
                r.cumulative_gas_used,
                r.effective_gas_price,
                r.contract_address,
                logs,
            )
        )
    return rows


async def expected_receipts(chain: Seeded) -> dict[int, list[tuple[Any, ...]]]:
    return {
        n: node_receipt_rows(await rpc(chain.url, "eth_getBlockReceipts", hex(n)))
        for n in range(1, chain.head + 1)
    }


def method_gauge(metrics: Metrics, method: str) -> float | None:
    labels = {"chain": "t", "method": method}
    return metrics.registry.get_sample_value("tindexer_rpc_receipts_method", labels)


def requests(metrics: Metrics, method: str, outcome: str = "ok") -> float:
    labels = {"chain": "t", "provider": "default", "method": method, "outcome": outcome}
    return metrics.registry.get_sample_value("tindexer_rpc_requests_total", labels) or 0.0


async def test_the_seeded_chain_has_what_the_comparison_needs(chain: Seeded) -> None:
    receipts = [
        r
        for n in range(1, chain.head + 1)
        for r in await rpc(chain.url, "eth_getBlockReceipts", hex(n))
    ]
    assert sum(1 for r in receipts if r["contractAddress"]) == 3
    assert sum(1 for r in receipts if r["status"] == "0x0") == 1
    topic_counts = sorted({len(log["topics"]) for r in receipts for log in r["logs"]})
    assert topic_counts == [0, 2, 4]
    block2 = await rpc(chain.url, "eth_getBlockByNumber", "0x2", True)
    assert sorted({tx["type"] for tx in block2["transactions"]}) == ["0x0", "0x1", "0x2"]
    assert (await rpc(chain.url, "eth_getBlockByNumber", "0x3", False))["transactions"] == []


async def test_receipts_match_the_nodes_block_receipts(chain: Seeded, metrics: Metrics) -> None:
    client = Fetcher.for_url(chain.url, "t", SETTINGS, metrics)
    try:
        blocks = await client.get_blocks(1, chain.head, receipts=True)
    finally:
        await client.close()
    expected = await expected_receipts(chain)
    assert {b.number: client_receipt_rows(b) for b in blocks} == expected
    assert sum(len(rows) for rows in expected.values()) == 11
    # And the transactions themselves: input, type and fees as the node has them.
    for block in blocks:
        raw = await rpc(chain.url, "eth_getBlockByNumber", hex(block.number), True)
        assert block.logs_bloom == bare(raw["logsBloom"]) and len(block.logs_bloom or "") == 512
        assert block.receipts_root == bare(raw["receiptsRoot"])
        assert [
            (tx.input, tx.type, tx.max_fee_per_gas, tx.max_priority_fee_per_gas, tx.gas_price)
            for tx in block.transactions
        ] == [
            (
                bare(t["input"]),
                quantity(t["type"]),
                quantity(t.get("maxFeePerGas")),
                quantity(t.get("maxPriorityFeePerGas")),
                quantity(t.get("gasPrice")),
            )
            for t in raw["transactions"]
        ]
    (access_list_tx,) = [tx for tx in blocks[1].transactions if tx.type == 1]
    assert access_list_tx.access_list == [
        {"address": chain.emitter.lower(), "storageKeys": ["0x" + "00" * 32]}
    ]
    assert method_gauge(metrics, "eth_getBlockReceipts") == 1
    assert method_gauge(metrics, "eth_getTransactionReceipt") == 0
    assert requests(metrics, "eth_getTransactionReceipt") == 0
    # Blocks 1, 2 and 4 have transactions: one batch of 3 calls; the empty block is not asked.
    assert requests(metrics, "eth_getBlockReceipts") == 1


async def test_a_provider_without_block_receipts_gives_the_same_by_transaction(
    chain: Seeded, proxy: ProviderProxy
) -> None:
    metrics = Metrics(CollectorRegistry())
    client = Fetcher.for_url(proxy.url, "t", SETTINGS, metrics)
    try:
        blocks = await client.get_blocks(1, chain.head, receipts=True)
        refused_once = proxy.refused["eth_getBlockReceipts"]
        again = await client.get_blocks(2, chain.head, receipts=True)
    finally:
        await client.close()
    expected = await expected_receipts(chain)
    assert {b.number: client_receipt_rows(b) for b in blocks} == expected
    assert {b.number: client_receipt_rows(b) for b in again} == {
        n: rows for n, rows in expected.items() if n >= 2
    }
    # Found out by one request (3 calls, one per block with transactions), never retried,
    # and not asked again by the same client.
    assert refused_once == 3 and proxy.refused["eth_getBlockReceipts"] == 3
    assert requests(metrics, "eth_getBlockReceipts", "error") == 1
    assert requests(metrics, "eth_getBlockReceipts", "ok") == 0
    # 11 transactions, batches of 5 calls: 3 requests; then 8 transactions: 2 more.
    assert requests(metrics, "eth_getTransactionReceipt") == 3 + 2
    assert proxy.calls["eth_getTransactionReceipt"] == 11 + 8
    assert method_gauge(metrics, "eth_getTransactionReceipt") == 1
    assert method_gauge(metrics, "eth_getBlockReceipts") == 0


async def test_method_not_supported_in_other_words_falls_back_without_retries(
    chain: Seeded, anvil: str
) -> None:
    """-32000 "Method not supported" (no -32601): still the fallback, after one request."""
    proxy = ProviderProxy(anvil)

    def refuse(calls: list[dict[str, Any]]) -> web.Response | None:
        if calls[0].get("method") != "eth_getBlockReceipts":
            return None
        error = {"code": -32000, "message": "Method eth_getBlockReceipts not supported"}
        return web.json_response([{"jsonrpc": "2.0", "id": c["id"], "error": error} for c in calls])

    proxy.answer = refuse
    metrics = Metrics(CollectorRegistry())
    async with proxy.running() as url:
        client = Fetcher.for_url(url, "t", SETTINGS, metrics)
        try:
            blocks = await client.get_blocks(1, chain.head, receipts=True)
        finally:
            await client.close()
    assert {b.number: client_receipt_rows(b) for b in blocks} == await expected_receipts(chain)
    assert proxy.calls["eth_getBlockReceipts"] == 3  # one request of 3 calls, not 3 attempts
    assert method_gauge(metrics, "eth_getTransactionReceipt") == 1


async def test_receipts_of_another_block_are_bad_data_and_never_returned(
    chain: Seeded, anvil: str
) -> None:
    """A reorg between the block and its receipts: every attempt is counted bad_data."""
    proxy = ProviderProxy(anvil)

    def reorged(call: dict[str, Any], answer: dict[str, Any]) -> None:
        if call.get("method") == "eth_getBlockReceipts" and call["params"] == ["0x2"]:
            for receipt in answer["result"]:
                receipt["blockHash"] = "0x" + "ee" * 32

    proxy.rewrite = reorged
    metrics = Metrics(CollectorRegistry())
    async with proxy.running() as url:
        client = Fetcher.for_url(url, "t", SETTINGS, metrics)
        try:
            with pytest.raises(BadChainData, match="block 2 receipt 0: blockHash is 0xee"):
                await client.get_blocks(1, chain.head, receipts=True)
        finally:
            await client.close()
    assert requests(metrics, "eth_getBlockReceipts", "bad_data") == SETTINGS.max_retries + 1
    assert method_gauge(metrics, "eth_getBlockReceipts") is None  # never got a receipt through


async def test_the_method_label_stays_bounded(chain: Seeded) -> None:
    metrics = Metrics(CollectorRegistry())
    client = Fetcher.for_url(chain.url, "t", SETTINGS, metrics)
    try:
        assert (await client.call("web3_clientVersion")).startswith("anvil")
    finally:
        await client.close()
    assert requests(metrics, "other") == 1
    assert requests(metrics, "web3_clientVersion") == 0
