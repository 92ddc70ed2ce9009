"""The simulated chain's full transactions, receipts and logs: consistent with its blocks, found
by hash, broken on request by the receipt faults, and shaped like mainnet in that profile."""

from __future__ import annotations

import collections
import json
from collections.abc import Callable
from typing import Any

import aiohttp
import pytest
from typer.testing import CliRunner

from indexer.cli import app
from indexer.simchain.server import SimChain, SimChainConfig
from tests.support.simchain import (
    FAULTS_OFF,
    assert_chain_links,
    receipt_mismatches,
    running_sim,
)

# Every field of a block as a current geth returns it (Prague), totalDifficulty aside.
HEADER_FIELDS = {
    "baseFeePerGas",
    "blobGasUsed",
    "difficulty",
    "excessBlobGas",
    "extraData",
    "gasLimit",
    "gasUsed",
    "hash",
    "logsBloom",
    "miner",
    "mixHash",
    "nonce",
    "number",
    "parentBeaconBlockRoot",
    "parentHash",
    "receiptsRoot",
    "requestsHash",
    "sha3Uncles",
    "size",
    "stateRoot",
    "timestamp",
    "transactions",
    "transactionsRoot",
    "uncles",
    "withdrawals",
    "withdrawalsRoot",
}
TX_FIELDS = {  # of every type; then by type, what a node adds
    "blockHash",
    "blockNumber",
    "from",
    "gas",
    "gasPrice",
    "hash",
    "input",
    "nonce",
    "to",
    "transactionIndex",
    "value",
    "type",
    "chainId",
    "v",
    "r",
    "s",
}
TX_FIELDS_BY_TYPE = {
    "0x0": set(),
    "0x1": {"accessList", "yParity"},
    "0x2": {"accessList", "yParity", "maxFeePerGas", "maxPriorityFeePerGas"},
    "0x3": {
        "accessList",
        "yParity",
        "maxFeePerGas",
        "maxPriorityFeePerGas",
        "maxFeePerBlobGas",
        "blobVersionedHashes",
    },
}
RECEIPT_FIELDS = {
    "blockHash",
    "blockNumber",
    "transactionHash",
    "transactionIndex",
    "from",
    "to",
    "contractAddress",
    "cumulativeGasUsed",
    "gasUsed",
    "effectiveGasPrice",
    "status",
    "type",
    "logsBloom",
    "logs",
}
LOG_FIELDS = {
    "address",
    "topics",
    "data",
    "blockHash",
    "blockNumber",
    "transactionHash",
    "transactionIndex",
    "logIndex",
    "removed",
}


def static(**overrides: Any) -> SimChainConfig:
    return SimChainConfig(**{"backlog": 400, "block_time": 0, "seed": 3, **overrides})


def blocks_and_receipts(
    chain: SimChain, numbers: range
) -> list[tuple[dict[str, Any], list[dict[str, Any]]]]:
    pairs = []
    for number in numbers:
        block, receipts = chain.block(number, full=True), chain.receipts(number)
        assert block is not None and receipts is not None
        pairs.append((block, receipts))
    return pairs


def bloom_bits(hex_bloom: str) -> int:
    assert len(hex_bloom) == 2 + 512, "a bloom is 256 bytes"
    return int(hex_bloom, 16)


def is_hex(value: Any, size: int | None = None) -> bool:
    if not isinstance(value, str) or value[:2] != "0x":
        return False
    try:
        bytes.fromhex(value[2:])
    except ValueError:
        return False
    return size is None or len(value) == 2 + 2 * size


def check_block_and_receipts(block: dict[str, Any], receipts: list[dict[str, Any]]) -> None:
    """Everything a node's block and receipts promise each other, field by field."""
    assert receipt_mismatches(block, receipts) == []
    assert set(block) - {"totalDifficulty"} == HEADER_FIELDS
    for name in ("hash", "parentHash", "stateRoot", "mixHash", "parentBeaconBlockRoot"):
        assert is_hex(block[name], 32), name
    assert block["difficulty"] == "0x0" and block["uncles"] == []
    assert is_hex(block["nonce"], 8) and is_hex(block["extraData"])
    base_fee = int(block["baseFeePerGas"], 16)
    blob_gas = 0
    block_bloom = 0
    for index, (tx, receipt) in enumerate(zip(block["transactions"], receipts, strict=True)):
        assert set(tx) == TX_FIELDS | TX_FIELDS_BY_TYPE[tx["type"]], tx["type"]
        assert set(receipt) - {"blobGasUsed", "blobGasPrice"} == RECEIPT_FIELDS
        assert is_hex(tx["input"]) and is_hex(tx["from"], 20)
        assert receipt["from"] == tx["from"] and receipt["to"] == tx["to"]
        assert receipt["type"] == tx["type"]
        assert receipt["effectiveGasPrice"] == tx["gasPrice"]
        assert int(tx["gasPrice"], 16) > base_fee
        assert int(receipt["gasUsed"], 16) <= int(tx["gas"], 16)
        if tx["type"] in ("0x2", "0x3"):
            priority = int(tx["maxPriorityFeePerGas"], 16)
            assert int(tx["gasPrice"], 16) == base_fee + priority  # the effective price
            assert int(tx["maxFeePerGas"], 16) >= int(tx["gasPrice"], 16)
        if tx["type"] == "0x0":
            assert int(tx["v"], 16) in (
                2 * int(tx["chainId"], 16) + 35,
                2 * int(tx["chainId"], 16) + 36,
            )
        else:
            assert tx["v"] == tx["yParity"] and tx["yParity"] in ("0x0", "0x1")
        if tx["type"] == "0x3":
            hashes = tx["blobVersionedHashes"]
            assert 1 <= len(hashes) <= 6 and all(h[:4] == "0x01" and is_hex(h, 32) for h in hashes)
            assert receipt["blobGasUsed"] == hex(len(hashes) * 131_072)
            blob_gas += len(hashes) * 131_072
        for entry in tx.get("accessList", []):
            assert is_hex(entry["address"], 20)
            assert all(is_hex(key, 32) for key in entry["storageKeys"])
        if tx["to"] is None:
            assert receipt["contractAddress"] is not None and is_hex(receipt["contractAddress"], 20)
        else:
            assert receipt["contractAddress"] is None
        assert receipt["status"] in ("0x0", "0x1")
        if receipt["status"] == "0x0":
            assert receipt["logs"] == []
        for log in receipt["logs"]:
            assert set(log) == LOG_FIELDS and log["removed"] is False
            assert log["transactionIndex"] == hex(index)
            assert is_hex(log["address"], 20)
            assert 1 <= len(log["topics"]) <= 4 and all(is_hex(t, 32) for t in log["topics"])
            assert is_hex(log["data"]) and len(log["data"]) <= 2 + 512
        bits = bloom_bits(receipt["logsBloom"])
        assert (bits != 0) == bool(receipt["logs"])
        block_bloom |= bits
    assert bloom_bits(block["logsBloom"]) == block_bloom
    assert block["blobGasUsed"] == hex(blob_gas)
    if not block["transactions"]:
        assert block["gasUsed"] == "0x0" and receipts == []


# --- consistency ------------------------------------------------------------------------------


@pytest.mark.parametrize("txs_per_block", [None, 0, 1, 4, 7])
def test_receipts_agree_with_their_blocks(txs_per_block: int | None) -> None:
    chain = SimChain(static(txs_per_block=txs_per_block))
    pairs = blocks_and_receipts(chain, range(0, 400))
    for block, receipts in pairs:
        check_block_and_receipts(block, receipts)
        assert len(block["transactions"]) == (3 if txs_per_block is None else txs_per_block)
    assert_chain_links([block for block, _ in pairs])
    indices = [int(w["index"], 16) for block, _ in pairs for w in block["withdrawals"]]
    assert indices == list(range(len(indices)))  # withdrawal indices run on across blocks
    hashes = [tx["hash"] for block, _ in pairs for tx in block["transactions"]]
    assert len(set(hashes)) == len(hashes)


def test_default_profile_has_every_type_logs_reverts_and_creations() -> None:
    chain = SimChain(static(backlog=1_200))
    types: collections.Counter[str] = collections.Counter()
    txs = logs = reverted = creations = 0
    for block, receipts in blocks_and_receipts(chain, range(1_200)):
        for tx, receipt in zip(block["transactions"], receipts, strict=True):
            txs += 1
            types[tx["type"]] += 1
            logs += len(receipt["logs"])
            reverted += receipt["status"] == "0x0"
            creations += tx["to"] is None
    assert set(types) == {"0x0", "0x1", "0x2", "0x3"}
    assert types["0x2"] > txs / 2
    assert 1.0 <= logs / txs <= 1.6  # `tindexer up` indexes logs out of the box
    assert reverted > 0 and creations > 0


def test_mainnet_profile_has_the_size_and_mix_of_a_mainnet_block() -> None:
    chain = SimChain(static(profile="mainnet", backlog=32))
    types: collections.Counter[str] = collections.Counter()
    txs = calldata = logs = 0
    longest = 0
    for block, receipts in blocks_and_receipts(chain, range(32)):  # half the content pool
        assert len(block["transactions"]) == 150
        assert "totalDifficulty" not in block and len(block["withdrawals"]) == 16
        assert int(block["gasUsed"], 16) <= int(block["gasLimit"], 16)
        assert receipt_mismatches(block, receipts) == []
        for tx, receipt in zip(block["transactions"], receipts, strict=True):
            txs += 1
            size = len(tx["input"]) // 2 - 1
            calldata += size
            longest = max(longest, size)
            logs += len(receipt["logs"])
            types[tx["type"]] += 1
    assert txs == 32 * 150
    assert 260 <= calldata / txs <= 340, calldata / txs
    assert longest <= 2_000
    assert 1.8 <= logs / txs <= 2.2, logs / txs
    assert types["0x2"] / txs > 0.8 and set(types) == {"0x0", "0x1", "0x2", "0x3"}
    check_block_and_receipts(*blocks_and_receipts(chain, range(7, 8))[0])


def test_same_seed_same_receipts_and_a_reorg_replaces_them() -> None:
    first, second = SimChain(static()), SimChain(static())
    assert first.receipts(123) == second.receipts(123)
    assert first.receipts(400) is None
    before = first.receipts(399)
    old_hashes = first.tx_hashes(399)
    first.reorg(2)
    after = first.receipts(399)
    assert before is not None and after is not None
    assert {r["transactionHash"] for r in before}.isdisjoint(r["transactionHash"] for r in after)
    assert after[0]["blockHash"] == first.block_hash(399) != before[0]["blockHash"]
    assert all(first.receipt(tx_hash) is None for tx_hash in old_hashes)
    check_block_and_receipts(first.block(399, full=True) or {}, after)
    assert first.receipts(397) == second.receipts(397)


def test_transaction_receipt_agrees_with_block_receipts() -> None:
    chain = SimChain(static(profile="mainnet", backlog=40))
    for number in (0, 1, 39):
        receipts = chain.receipts(number) or []
        for receipt in receipts:
            assert chain.receipt(receipt["transactionHash"]) == receipt
            upper = "0x" + receipt["transactionHash"][2:].upper()
            assert chain.receipt(upper) == receipt
    some_hash = chain.tx_hashes(5)[2]
    assert chain.tx_location(some_hash) == (5, 2)
    unknown = [
        chain.block_hash(5),  # a block's hash is no transaction's
        some_hash[:-1] + ("0" if some_hash[-1] != "0" else "1"),
        "0x" + "ab" * 32,
        some_hash[:-2],
        "0x" + "zz" * 32,
    ]
    assert [chain.receipt(value) for value in unknown] == [None] * len(unknown)
    future = SimChain(static(profile="mainnet", backlog=80)).tx_hashes(60)[0]
    assert chain.receipt(future) is None  # the same chain, 20 blocks on: not mined yet


# --- over HTTP ------------------------------------------------------------------------------


async def test_block_receipts_by_number_tag_and_hash() -> None:
    async with running_sim(static()) as sim:
        chain = sim.chain
        expected = chain.receipts(77)
        by_hash = chain.block_hash(77)
        for params in (
            ["0x4d"],
            [by_hash],
            ["0x" + by_hash[2:].upper()],
            [{"blockHash": by_hash}],
            [{"blockNumber": "0x4d"}],
        ):
            assert (await sim.call("eth_getBlockReceipts", *params))["result"] == expected, params
        latest = (await sim.call("eth_getBlockReceipts", "latest"))["result"]
        assert latest == chain.receipts(399)
        earliest = (await sim.call("eth_getBlockReceipts", "earliest"))["result"]
        assert earliest == chain.receipts(0)
        for missing in ("0x190", "0x" + "12" * 32, chain.tx_hashes(5)[0]):
            assert (await sim.call("eth_getBlockReceipts", missing))["result"] is None, missing
        for bad in ([], ["soon"], [5], [{}]):
            assert (await sim.call("eth_getBlockReceipts", *bad))["error"]["code"] == -32602
        tx_hash = chain.tx_hashes(77)[1]
        answer = await sim.call("eth_getTransactionReceipt", tx_hash)
        assert answer["result"] == (expected or [])[1]
        assert (await sim.call("eth_getTransactionReceipt", "0x" + "ab" * 32))["result"] is None
        assert (await sim.call("eth_getTransactionReceipt"))["error"]["code"] == -32602

        old = chain.block_hash(399)
        await sim.session.post(sim.url + "_sim/reorg", json={"depth": 1})
        assert (await sim.call("eth_getBlockReceipts", old))["result"] is None


async def test_batches_mix_blocks_and_both_receipt_methods() -> None:
    async with running_sim(static()) as sim:
        hashes = sim.chain.tx_hashes(200)
        calls: list[tuple[str, list[Any]]] = []
        for number in range(200, 210):
            calls.append(("eth_getBlockByNumber", [hex(number), True]))
            calls.append(("eth_getBlockReceipts", [hex(number)]))
        calls += [("eth_getTransactionReceipt", [tx_hash]) for tx_hash in hashes]
        answers = await sim.batch(calls)
        for offset in range(0, 20, 2):
            block, receipts = answers[offset]["result"], answers[offset + 1]["result"]
            check_block_and_receipts(block, receipts)
        assert [a["result"] for a in answers[20:]] == answers[1]["result"]


# --- faults ---------------------------------------------------------------------------------


async def test_missing_receipts_fault_answers_null_or_an_empty_list() -> None:
    async with running_sim(static()) as sim:
        await sim.faults(receipts_missing_ratio=1.0)
        answers = await sim.batch([("eth_getBlockReceipts", [hex(n)]) for n in range(100, 140)])
        results = [json.dumps(answer["result"]) for answer in answers]
        assert set(results) == {"null", "[]"}
        tx_hash = sim.chain.tx_hashes(100)[0]
        assert (await sim.call("eth_getTransactionReceipt", tx_hash))["result"] is None
        # Blocks are untouched, and clearing the fault brings the receipts back.
        assert (await sim.call("eth_getBlockByNumber", "0x64", False))["result"] is not None
        await sim.faults(**FAULTS_OFF)
        assert (await sim.call("eth_getBlockReceipts", "0x64"))["result"] == sim.chain.receipts(100)


async def test_other_block_fault_serves_receipts_whose_ids_disagree() -> None:
    async with running_sim(static()) as sim:
        await sim.faults(receipts_other_block_ratio=1.0)
        numbers = range(100, 140)
        answers = await sim.batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
        kinds = set()
        for number, answer in zip(numbers, answers, strict=True):
            block = sim.chain.block(number, full=True)
            assert block is not None
            receipts = answer["result"]
            assert len(receipts) == len(block["transactions"])  # only the ids disagree
            assert receipt_mismatches(block, receipts) != []
            assert {r["blockHash"] for r in receipts} != {block["hash"]}
            assert {r["transactionHash"] for r in receipts}.isdisjoint(
                tx["hash"] for tx in block["transactions"]
            )
            same_height = {r["blockNumber"] for r in receipts} == {block["number"]}
            kinds.add("another fork" if same_height else "a neighbour")
        assert kinds == {"another fork", "a neighbour"}
        tx_hash = sim.chain.tx_hashes(100)[0]
        receipt = (await sim.call("eth_getTransactionReceipt", tx_hash))["result"]
        assert receipt["transactionHash"] != tx_hash
        assert receipt["blockHash"] != sim.chain.block_hash(100)


async def test_wrong_count_fault_leaves_one_receipt_out() -> None:
    async with running_sim(static(txs_per_block=5)) as sim:
        await sim.faults(receipts_wrong_count_ratio=1.0)
        numbers = range(100, 130)
        answers = await sim.batch([("eth_getBlockReceipts", [hex(n)]) for n in numbers])
        dropped = set()
        for number, answer in zip(numbers, answers, strict=True):
            full = sim.chain.receipts(number) or []
            receipts = answer["result"]
            assert len(receipts) == 4
            assert [r for r in full if r not in receipts] != []
            dropped.add(next(i for i, r in enumerate(full) if r not in receipts))
            assert all(r in full for r in receipts)  # the rest is the block's own
        assert len(dropped) > 1  # not always the same one
    async with running_sim(static(txs_per_block=0)) as sim:
        await sim.faults(receipts_wrong_count_ratio=1.0)
        assert (await sim.call("eth_getBlockReceipts", "0x5"))["result"] == []


async def test_receipt_faults_are_drawn_per_call_with_a_ratio() -> None:
    async with running_sim(static()) as sim:
        await sim.faults(receipts_missing_ratio=0.3)
        answers = await sim.batch([("eth_getBlockReceipts", [hex(n)]) for n in range(300)])
        missing = sum(answer["result"] in (None, []) for answer in answers)
        assert 45 <= missing <= 135


# --- the command ----------------------------------------------------------------------------


async def test_sim_chain_command_serves_the_mainnet_profile(
    sim_chain: Callable[..., str],
) -> None:
    url = sim_chain(backlog=20, profile="mainnet", receipts_wrong_count_ratio=1.0)
    body = [
        {"jsonrpc": "2.0", "id": 1, "method": "eth_getBlockByNumber", "params": ["0x3", True]},
        {"jsonrpc": "2.0", "id": 2, "method": "eth_getBlockReceipts", "params": ["0x3"]},
    ]
    async with aiohttp.ClientSession() as session, session.post(url, json=body) as response:
        answers = sorted(await response.json(), key=lambda answer: answer["id"])
    assert len(answers[0]["result"]["transactions"]) == 150
    assert len(answers[1]["result"]) == 149  # the fault given on the command line


def test_sim_chain_command_rejects_an_unknown_profile() -> None:
    result = CliRunner().invoke(app, ["sim-chain", "--profile", "testnet"])
    assert result.exit_code == 2
    assert "unknown profile" in result.output
