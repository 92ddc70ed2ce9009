"""Receipts checked against their block, by the reference (receipts.py) and the fast path.

Pure data: a block of three transactions and its receipts as a node answers them. Each kind
of mismatch (count, hash, block, index, log, topics, removed, status) must be BadChainData
with the same message from both parsers; well-formed receipts must come out the same.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Callable
from typing import Any

import pytest

from indexer.chain.model import BadChainData, Block, Log, Receipt, parse_block
from indexer.chain.receipts import parse_block_receipts, parse_receipt
from indexer.chain.receipts_wire import (
    decode_block_receipts_batch,
    decode_transaction_receipts_batch,
    to_block_receipts,
    to_receipt,
)
from tests.support.mutations import set_field

Edit = Callable[[list[dict[str, Any]]], object]


def word(seed: int, size: int = 32) -> str:
    return "0x" + bytes((seed + i) % 256 for i in range(size)).hex()


NUMBER = 12
BLOCK_HASH = word(1)
TX_HASHES = [word(10), word(20), word(30)]


def raw_block() -> dict[str, Any]:
    return {
        "number": hex(NUMBER),
        "hash": BLOCK_HASH,
        "parentHash": word(2),
        "timestamp": "0x6553f10c",
        "transactions": [
            {
                "hash": tx_hash,
                "transactionIndex": hex(i),
                "from": word(40 + i, 20),
                "to": None if i == 1 else word(50 + i, 20),
                "value": "0x0",
            }
            for i, tx_hash in enumerate(TX_HASHES)
        ],
    }


def block() -> Block:
    return parse_block(raw_block(), NUMBER)


def raw_log(position: int, log_index: int, topics: int) -> dict[str, Any]:
    return {
        "address": word(60 + log_index, 20),
        "topics": [word(70 + log_index + t) for t in range(topics)],
        "data": "0x" + "00ff" * log_index,
        "blockHash": BLOCK_HASH,
        "blockNumber": hex(NUMBER),
        "blockTimestamp": "0x6553f10c",
        "transactionHash": TX_HASHES[position],
        "transactionIndex": hex(position),
        "logIndex": hex(log_index),
        "removed": False,
    }


def raw_receipts() -> list[dict[str, Any]]:
    """A transfer with two logs, a contract creation with none, a reverted call with one."""
    logs = [[raw_log(0, 0, 3), raw_log(0, 1, 0)], [], [raw_log(2, 2, 4)]]
    return [
        {
            "type": "0x2",
            "status": "0x0" if i == 2 else "0x1",
            "cumulativeGasUsed": hex(21000 * (i + 1)),
            "logs": logs[i],
            "logsBloom": word(80, 256),
            "transactionHash": tx_hash,
            "transactionIndex": hex(i),
            "blockHash": BLOCK_HASH,
            "blockNumber": hex(NUMBER),
            "gasUsed": "0x5208",
            "effectiveGasPrice": "0x77359400",
            "from": word(40 + i, 20),
            "to": None if i == 1 else word(50 + i, 20),
            "contractAddress": word(90, 20) if i == 1 else None,
        }
        for i, tx_hash in enumerate(TX_HASHES)
    ]


def fast(receipts: Any, target: Block) -> list[Receipt]:
    """What the client does with one eth_getBlockReceipts answer: fast path or reference."""
    body = json.dumps([{"jsonrpc": "2.0", "id": 1, "result": receipts}]).encode()
    wire = decode_block_receipts_batch(body, [1])
    if wire is None:
        return parse_block_receipts(receipts, target)
    return to_block_receipts(wire[0], target)


def test_receipts_and_logs_are_read_and_tied_to_their_block() -> None:
    receipts = parse_block_receipts(raw_receipts(), block())
    assert [r.tx_hash for r in receipts] == [h[2:] for h in TX_HASHES]
    assert [r.status for r in receipts] == [1, 1, 0]
    assert [r.contract_address for r in receipts] == [None, word(90, 20)[2:], None]
    assert [r.cumulative_gas_used for r in receipts] == [21000, 42000, 63000]
    assert receipts[0] == Receipt(
        tx_index=0,
        tx_hash=TX_HASHES[0][2:],
        block_hash=BLOCK_HASH[2:],
        block_number=NUMBER,
        status=1,
        gas_used=21000,
        cumulative_gas_used=21000,
        effective_gas_price=0x77359400,
        contract_address=None,
        logs=[
            Log(
                0,
                0,
                TX_HASHES[0][2:],
                word(60, 20)[2:],
                [word(70)[2:], word(71)[2:], word(72)[2:]],
                "",
            ),
            Log(1, 0, TX_HASHES[0][2:], word(61, 20)[2:], [], "00ff"),
        ],
    )
    assert len(receipts[2].logs[0].topics) == 4


def test_the_fast_path_reads_the_same_receipts_without_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    expected = parse_block_receipts(raw_receipts(), block())

    def refused(*args: Any) -> Any:
        raise AssertionError("well-formed receipts went the slow way")

    monkeypatch.setattr("indexer.chain.receipts_wire.parse_block_receipts", refused)
    monkeypatch.setattr("indexer.chain.receipts_wire.parse_receipt", refused)
    assert fast(raw_receipts(), block()) == expected
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i + 1, "result": r} for i, r in enumerate(raw_receipts())]
    ).encode()
    wire = decode_transaction_receipts_batch(body, [1, 2, 3])
    assert wire is not None
    assert [to_receipt(w, block(), i) for i, w in enumerate(wire)] == expected


def test_before_byzantium_a_receipt_has_no_status() -> None:
    receipts = raw_receipts()
    for receipt in receipts:
        del receipt["status"], receipt["effectiveGasPrice"]
        receipt["root"] = word(99)
    assert [r.status for r in fast(receipts, block())] == [None, None, None]
    assert fast(receipts, block()) == parse_block_receipts(receipts, block())


def test_upper_case_hex_is_accepted_by_both() -> None:
    receipts = raw_receipts()
    receipts[0]["transactionHash"] = "0x" + receipts[0]["transactionHash"][2:].upper()
    receipts[0]["logs"][0]["data"] = "0xABCD"
    decoded = fast(receipts, block())
    assert decoded == parse_block_receipts(receipts, block())
    assert decoded[0].tx_hash == TX_HASHES[0][2:] and decoded[0].logs[0].data == "abcd"


def swap(receipts: list[dict[str, Any]]) -> None:
    receipts[0], receipts[2] = receipts[2], receipts[0]


MISMATCHES: dict[str, tuple[Edit, str]] = {
    "one receipt missing": (lambda r: r.pop(), "2 receipts for 3 transactions"),
    "one receipt too many": (lambda r: r.append(copy.deepcopy(r[0])), "4 receipts for 3"),
    "no receipts": (lambda r: r.clear(), "0 receipts for 3 transactions"),
    "receipts swapped": (swap, "receipt 0: transactionHash is 0x"),
    "another transaction's hash": (
        set_field("1.transactionHash", word(99)),
        "receipt 1: transactionHash",
    ),
    "another block's hash": (set_field("2.blockHash", word(98)), "receipt 2: blockHash is 0x"),
    "another block's number": (set_field("0.blockNumber", hex(NUMBER + 1)), "blockNumber is 13"),
    "wrong transaction index": (set_field("1.transactionIndex", "0x2"), "transactionIndex is 2"),
    "log of another block": (
        set_field("0.logs.1.blockHash", word(98)),
        "receipt 0 log 1: blockHash",
    ),
    "log of another transaction": (
        set_field("2.logs.0.transactionHash", TX_HASHES[0]),
        "receipt 2 log 0: transactionHash",
    ),
    "log with another index": (
        set_field("0.logs.0.transactionIndex", "0x1"),
        "log 0: transactionIndex",
    ),
    "log of another block number": (set_field("2.logs.0.blockNumber", "0x1"), "log 0: blockNumber"),
    "log index repeated": (set_field("2.logs.0.logIndex", "0x1"), "logIndex 1 after 1"),
    "log index going back": (set_field("0.logs.1.logIndex", "0x0"), "logIndex 0 after 0"),
    "log index above integer": (set_field("0.logs.1.logIndex", hex(2**31)), "'logIndex'"),
    "topic of 31 bytes": (set_field("0.logs.0.topics.1", word(5, 31)), "log 0 topic 1"),
    "topic of 33 bytes": (set_field("2.logs.0.topics.3", word(5, 33)), "log 0 topic 3"),
    "topic null": (set_field("0.logs.0.topics.0", None), "log 0 topic 0"),
    "five topics": (set_field("2.logs.0.topics", [word(t) for t in range(5)]), "0 to 4 topics"),
    "topics missing": (set_field("2.logs.0.topics", KeyError), "0 to 4 topics"),
    "removed log": (set_field("0.logs.0.removed", True), "removed is True"),
    "removed not a boolean": (set_field("0.logs.0.removed", "false"), "removed is 'false'"),
    "log data of odd length": (set_field("0.logs.1.data", "0xabc"), "'data'"),
    "log data missing": (set_field("0.logs.1.data", KeyError), "missing field 'data'"),
    "log address short": (set_field("0.logs.1.address", word(5, 19)), "'address'"),
    "log not an object": (set_field("0.logs.1", "0x"), "expected a log object"),
    "status 2": (set_field("1.status", "0x2"), "status is '0x2', not 0x0 or 0x1"),
    "status not hex": (set_field("1.status", "ok"), "'status'"),
    "status as a JSON number": (set_field("1.status", 1), "'status'"),
    "gasUsed above bigint": (set_field("1.gasUsed", hex(2**63)), "'gasUsed'"),
    "cumulativeGasUsed missing": (
        set_field("1.cumulativeGasUsed", KeyError),
        "'cumulativeGasUsed'",
    ),
    "effectiveGasPrice negative": (set_field("1.effectiveGasPrice", "-0x1"), "'effectiveGasPrice'"),
    "contractAddress short": (set_field("1.contractAddress", word(5, 19)), "'contractAddress'"),
    "logs not a list": (set_field("1.logs", None), "'logs' is not a list"),
    "receipt null": (set_field("1", None), "receipt 1: the provider returned null"),
    "transaction hash with 0x twice": (
        set_field("0.transactionHash", "0x0x" + TX_HASHES[0][4:]),
        "'transactionHash'",
    ),
}


@pytest.mark.parametrize("mutation", MISMATCHES.values(), ids=MISMATCHES.keys())
def test_a_mismatch_is_bad_data_with_the_same_message_from_both(
    mutation: tuple[Edit, str],
) -> None:
    change, message = mutation
    receipts = raw_receipts()
    change(receipts)
    with pytest.raises(BadChainData, match=None) as reference:
        parse_block_receipts(copy.deepcopy(receipts), block())
    assert message in str(reference.value)
    assert str(reference.value).startswith(f"block {NUMBER}")
    with pytest.raises(BadChainData) as from_fast:
        fast(receipts, block())
    assert str(from_fast.value) == str(reference.value)


@pytest.mark.parametrize("result", [None, {}, "0x"], ids=["null", "object", "string"])
def test_an_answer_that_is_not_a_list_of_receipts_is_bad_data(result: Any) -> None:
    with pytest.raises(BadChainData, match=f"block {NUMBER}: "):
        fast(result, block())


def test_a_reorg_between_block_and_receipts_says_so() -> None:
    receipts = raw_receipts()
    for receipt in receipts:
        receipt["blockHash"] = word(77)
    with pytest.raises(BadChainData, match="reorg between the block and its receipts"):
        fast(receipts, block())


def test_a_transaction_receipt_is_checked_against_its_position() -> None:
    receipt = raw_receipts()[1]
    assert parse_receipt(receipt, block(), 1).contract_address == word(90, 20)[2:]
    for position in (0, 2, 3):
        with pytest.raises(BadChainData, match=f"block {NUMBER} receipt {position}: "):
            parse_receipt(copy.deepcopy(receipt), block(), position)
        body = json.dumps([{"jsonrpc": "2.0", "id": 1, "result": receipt}]).encode()
        wire = decode_transaction_receipts_batch(body, [1])
        assert wire is not None
        with pytest.raises(BadChainData, match=f"block {NUMBER} receipt {position}: "):
            to_receipt(wire[0], block(), position)
