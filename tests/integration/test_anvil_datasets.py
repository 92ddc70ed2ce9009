"""Issue 13 on a real node: an anvil chain of hand-assembled contracts — a token, a log emitter,
a reverter, a factory — and legacy, EIP-2930 and EIP-1559 transactions, indexed with every
dataset; PostgreSQL must hold exactly what the node says, with and without
eth_getBlockReceipts at the provider."""

from __future__ import annotations

import re
import time
from collections import Counter
from typing import Any

import pytest

from tests.support.db_compare import NodeChain, assert_matches_node, read_node
from tests.support.evm import contracts
from tests.support.evm.jsonrpc import JsonRpc
from tests.support.evm.workload import Deployed, Workload
from tests.support.harness import Harness, fully_indexed
from tests.support.provider_proxy import ProviderProxy
from tests.support.waiting import wait_until

pytestmark = pytest.mark.anvil

BLOCKS_WITH_TRANSACTIONS = 60  # 0..10 transactions each: about 300
EMPTY_BLOCKS = 40
ALL_DATASETS = ["blocks", "transactions", "receipts", "logs"]
BLOCKS_PER_WORKFLOW = 16
CHANGE_ONE_LOG = """
UPDATE logs SET data = data || '\\x00'::bytea
 WHERE (chain_id, block_number, log_index) = (
       SELECT chain_id, block_number, log_index FROM logs WHERE chain_id = $1
        ORDER BY block_number DESC, log_index DESC LIMIT 1)
RETURNING block_number, log_index
"""


async def seed(url: str) -> tuple[int, Deployed]:
    """The contracts, blocks of mixed transactions, then empty blocks; the head."""
    async with JsonRpc(url) as node:
        workload = Workload(node)
        deployed = await workload.setup()
        await workload.mine(BLOCKS_WITH_TRANSACTIONS)
        await workload.mine_empty(EMPTY_BLOCKS)
        return await workload.head(), deployed


def word(value: str) -> int:
    return int(value, 16)


def check_contract_logs(node: NodeChain, deployed: Deployed) -> Counter[str]:
    """Each call's receipt is what its contract's assembly says; how many of each were seen."""
    seen: Counter[str] = Counter()
    emitters = {deployed.emitter, *deployed.children}
    transfer = f"0x{contracts.TRANSFER_TOPIC:064x}"
    for tx, receipt in node.transactions():
        logs: list[dict[str, Any]] = receipt["logs"]
        status = word(receipt["status"])
        seen[f"type {word(tx['type'])}"] += 1
        if tx["to"] is None:
            seen["direct deploy"] += 1
            assert receipt["contractAddress"] is not None and status == 1
            for log in logs:
                assert log["address"] == receipt["contractAddress"]
        elif tx["to"] == deployed.token:
            calldata = bytes.fromhex(tx["input"][2:])
            to, amount = calldata[4:36], calldata[36:68]
            if status == 0:
                seen["reverted transfer"] += 1
                assert logs == []
                continue
            seen["transfer"] += 1
            [log] = logs
            assert log["topics"] == [
                transfer,
                "0x" + tx["from"][2:].rjust(64, "0"),
                "0x" + to.hex(),
            ]
            assert log["data"] == "0x" + amount.hex()
        elif tx["to"] in emitters:
            seen["emit from a child" if tx["to"] != deployed.emitter else "emit"] += 1
            calldata = bytes.fromhex(tx["input"][2:])
            count = calldata[0]
            [log] = logs
            assert log["address"] == tx["to"] and status == 1
            topics = [calldata[1 + 32 * i : 33 + 32 * i] for i in range(count)]
            assert log["topics"] == ["0x" + t.hex() for t in topics]
            assert log["data"] == "0x" + calldata[1 + 32 * count :].hex()
            seen[f"LOG{count}"] += 1
            seen[f"{(len(log['data']) - 2) // 2} bytes of data"] += 1
        elif tx["to"] == deployed.reverter:
            seen["reverter"] += 1
            assert status == 0 and logs == []
        elif tx["to"] == deployed.factory:
            seen["child created"] += 1
            born, created = logs
            assert status == 1 and created["address"] == deployed.factory
            assert word(created["data"]) == word(born["address"])  # the child it announces
            assert born["address"] in deployed.children
            assert word(born["data"]) == word(deployed.factory)  # the child's creator
        else:
            seen["ether transfer"] += 1
            assert status == 1 and logs == []
    return seen


async def test_the_workload_has_every_kind_of_receipt_and_log(anvil: str) -> None:
    """What the datasets tests rely on: the hand-assembled contracts do what their assembly
    says, and the chain holds every kind of transaction, receipt and log the issue names."""
    head, deployed = await seed(anvil)
    node = await read_node(anvil, 0, head)
    seen = check_contract_logs(node, deployed)
    for kind in ("direct deploy", "transfer", "reverted transfer", "emit", "emit from a child"):
        assert seen[kind] >= 1, seen
    for kind in ("reverter", "child created", "ether transfer", "type 0", "type 1", "type 2"):
        assert seen[kind] >= 1, seen
    assert all(seen[f"LOG{n}"] >= 1 for n in range(5)), seen
    assert seen["0 bytes of data"] >= 1 and seen["256 bytes of data"] >= 1, seen
    access_lists = [tx["accessList"] for tx, _ in node.transactions() if tx["type"] == "0x1"]
    assert any(entries and entries[0]["storageKeys"] for entries in access_lists)
    assert sum(len(block["transactions"]) > 1 for block in node.blocks.values()) >= 30
    async with JsonRpc(anvil) as rpc:
        for signature, topic in contracts.SIGNATURES.items():
            assert word(await rpc.call("web3_sha3", "0x" + signature.encode().hex())) == topic


async def test_every_dataset_matches_the_node_exactly(harness: Harness, anvil: str) -> None:
    head, _ = await seed(anvil)
    row = await harness.add_chain(
        anvil, blocks_per_workflow=BLOCKS_PER_WORKFLOW, catchup_threshold=50, datasets=ALL_DATASETS
    )
    began = time.monotonic()
    async with harness.worker():
        await harness.start(row.config.name)
        await wait_until(
            lambda: fully_indexed(harness, row.config.name, head), 90, "anvil backfill"
        )
    print(f"\nindexed {head + 1} anvil blocks in {time.monotonic() - began:.2f} s")
    compared = await assert_matches_node(harness.pool, row.id, anvil, head, ALL_DATASETS)
    assert compared.rows["blocks"] == head + 1
    assert compared.rows["transactions"] >= 200
    assert compared.rows["logs"] >= 150
    assert await harness.ranges(row.id) == [(0, head)]
    await assert_a_changed_byte_is_found(harness, row.id, anvil, head)


async def assert_a_changed_byte_is_found(
    harness: Harness, chain_id: int, url: str, head: int
) -> None:
    """The comparison can fail: one byte more in one log's data, seen inside a transaction
    that is then rolled back, and the comparator names that log."""
    async with harness.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        try:
            changed = await conn.fetchrow(CHANGE_ONE_LOG, chain_id)
            assert changed is not None
            key = (changed["block_number"], changed["log_index"])
            with pytest.raises(AssertionError, match=re.escape(f"logs {key} data")):
                await assert_matches_node(conn, chain_id, url, head, ALL_DATASETS)
        finally:
            await transaction.rollback()


async def test_a_provider_without_eth_get_block_receipts_gives_the_same_rows(
    harness: Harness, anvil: str
) -> None:
    """The provider answers eth_getBlockReceipts with method-not-found: the indexer falls back
    to eth_getTransactionReceipt, says so in a metric, and stores exactly the same rows."""
    head, _ = await seed(anvil)
    proxy = ProviderProxy(anvil, unsupported_methods={"eth_getBlockReceipts"})
    async with proxy.running() as url:
        row = await harness.add_chain(
            url,
            blocks_per_workflow=BLOCKS_PER_WORKFLOW,
            catchup_threshold=50,
            datasets=ALL_DATASETS,
        )
        chain = row.config.name
        async with harness.worker():
            await harness.start(chain)
            await wait_until(lambda: fully_indexed(harness, chain, head), 90, "anvil backfill")
        compared = await assert_matches_node(harness.pool, row.id, anvil, head, ALL_DATASETS)
    assert compared.rows["transactions"] >= 200
    # Asked, told it does not exist, and every ask refused: no receipt came that way. Asked
    # once: by the first fetch only (one range's blocks at most), not again for every range.
    refused = proxy.refused["eth_getBlockReceipts"]
    assert 1 <= refused <= BLOCKS_PER_WORKFLOW
    assert refused == proxy.calls["eth_getBlockReceipts"]
    assert proxy.calls["eth_getTransactionReceipt"] >= compared.rows["transactions"]
    fallback = {"chain": chain, "method": "eth_getTransactionReceipt"}
    assert harness.sample("tindexer_rpc_receipts_method", **fallback) == 1
    assert (
        harness.sample("tindexer_rpc_receipts_method", chain=chain, method="eth_getBlockReceipts")
        == 0
    )
