"""Every header and transaction field of a full block, parsed and checked by both decoders.

The fake block is the shape anvil and geth answer today (Prague: withdrawals, blob gas,
requestsHash; legacy, access-list, EIP-1559 and blob transactions): parse_block (the reference)
must read every field, and the msgspec fast path (chain/wire.py) must build the same Block,
or refuse the same bad values — never accept one the reference refuses.
"""

from __future__ import annotations

import copy
import json
from typing import Any

import pytest

from indexer.chain.model import BadChainData, Block, Transaction, Withdrawal, parse_block
from indexer.chain.wire import decode_block_batch, to_block
from tests.support.mutations import Mutation, set_field


def word(seed: int, size: int = 32) -> str:
    return "0x" + bytes((seed + i) % 256 for i in range(size)).hex()


def fake_block(number: int = 7) -> dict[str, Any]:
    block_hash = word(number)
    common = {"blockHash": block_hash, "blockNumber": hex(number), "chainId": "0x7a69"}
    signature = {"r": word(90), "s": word(91), "v": "0x1", "yParity": "0x1"}
    transactions = [
        {  # legacy, contract creation
            **common,
            **signature,
            "type": "0x0",
            "hash": word(10),
            "transactionIndex": "0x0",
            "from": word(11, 20),
            "to": None,
            "value": "0x0",
            "gas": "0xd866",
            "gasPrice": "0x77359400",
            "nonce": "0x1",
            "input": "0x600a600c600039600a6000f3",
        },
        {  # EIP-2930 access list
            **common,
            **signature,
            "type": "0x1",
            "hash": word(20),
            "transactionIndex": "0x1",
            "from": word(21, 20),
            "to": word(22, 20),
            "value": "0xde0b6b3a7640000",
            "gas": "0x7a120",
            "gasPrice": "0x77359400",
            "nonce": "0x0",
            "input": "0xa9059cbb" + "00" * 64,
            "accessList": [
                {"address": word(23, 20), "storageKeys": [word(24), word(25)]},
                {"address": word(26, 20), "storageKeys": []},
            ],
        },
        {  # EIP-1559
            **common,
            **signature,
            "type": "0x2",
            "hash": word(30),
            "transactionIndex": "0x2",
            "from": word(31, 20),
            "to": word(32, 20),
            "value": "0x10",
            "gas": "0x5208",
            "gasPrice": "0x3b9aca07",
            "maxFeePerGas": "0x77359400",
            "maxPriorityFeePerGas": "0x1",
            "nonce": "0x2",
            "input": "0x",
            "accessList": [],
        },
        {  # EIP-4844 blob transaction
            **common,
            **signature,
            "type": "0x3",
            "hash": word(40),
            "transactionIndex": "0x3",
            "from": word(41, 20),
            "to": word(42, 20),
            "value": "0x0",
            "gas": "0x5208",
            "gasPrice": "0x3b9aca07",
            "maxFeePerGas": "0x77359400",
            "maxPriorityFeePerGas": "0x1",
            "maxFeePerBlobGas": "0x3b9aca00",
            "blobVersionedHashes": [word(43), word(44)],
            "nonce": "0x3",
            "input": "0x",
            "accessList": [],
        },
    ]
    return {
        "hash": block_hash,
        "parentHash": word(number - 1),
        "sha3Uncles": word(50),
        "miner": word(51, 20),
        "stateRoot": word(52),
        "transactionsRoot": word(53),
        "receiptsRoot": word(54),
        "logsBloom": word(55, 256),
        "difficulty": "0x0",
        "number": hex(number),
        "gasLimit": "0x1c9c380",
        "gasUsed": "0x2d6e6",
        "timestamp": "0x6b0e1e04",
        "extraData": "0xd883010e06846765746888676f312e32322e34856c696e7578",
        "mixHash": word(56),
        "nonce": "0x0000000000000042",
        "baseFeePerGas": "0x3b9aca06",
        "withdrawalsRoot": word(57),
        "blobGasUsed": "0x40000",
        "excessBlobGas": "0x0",
        "parentBeaconBlockRoot": word(58),
        "requestsHash": word(59),
        "totalDifficulty": "0xc70d815d562d3cfa955",
        "size": "0x2d8",
        "uncles": [],
        "transactions": transactions,
        "withdrawals": [
            {"index": "0x1a", "validatorIndex": "0x3e8", "address": word(60, 20), "amount": "0x1"},
            {"index": "0x1b", "validatorIndex": "0x0", "address": word(61, 20), "amount": "0x0"},
        ],
    }


def fast(blocks: list[Any], numbers: list[int]) -> list[Block] | None:
    """What the transport's decoder does with a batch: the fast path, or None when it hands over."""
    ids = list(range(1, len(blocks) + 1))
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": i, "result": block} for i, block in zip(ids, blocks, strict=True)]
    ).encode()
    wire = decode_block_batch(body, ids)
    return None if wire is None else [to_block(w, n) for w, n in zip(wire, numbers, strict=True)]


def bare(value: str) -> str:
    return value[2:]


def test_the_reference_reads_every_header_and_transaction_field() -> None:
    raw = fake_block()
    block = parse_block(raw, 7)
    assert block == Block(
        number=7,
        hash=bare(word(7)),
        parent_hash=bare(word(6)),
        timestamp=0x6B0E1E04,
        miner=bare(word(51, 20)),
        gas_used=0x2D6E6,
        gas_limit=0x1C9C380,
        base_fee_per_gas=0x3B9ACA06,
        transactions=block.transactions,  # compared one by one below
        size=0x2D8,
        extra_data="d883010e06846765746888676f312e32322e34856c696e7578",
        state_root=bare(word(52)),
        transactions_root=bare(word(53)),
        receipts_root=bare(word(54)),
        logs_bloom=bare(word(55, 256)),
        sha3_uncles=bare(word(50)),
        mix_hash=bare(word(56)),
        nonce="0000000000000042",
        difficulty=0,
        total_difficulty=0xC70D815D562D3CFA955,
        blob_gas_used=0x40000,
        excess_blob_gas=0,
        withdrawals_root=bare(word(57)),
        parent_beacon_block_root=bare(word(58)),
        requests_hash=bare(word(59)),
        withdrawals=[
            Withdrawal(0x1A, 0x3E8, bare(word(60, 20)), 1),
            Withdrawal(0x1B, 0, bare(word(61, 20)), 0),
        ],
    )
    legacy, access, eip1559, blob = block.transactions
    assert legacy == Transaction(
        hash=bare(word(10)),
        tx_index=0,
        from_address=bare(word(11, 20)),
        to_address=None,
        value=0,
        gas=0xD866,
        gas_price=0x77359400,
        nonce=1,
        input="600a600c600039600a6000f3",
        type=0,
    )
    assert access.type == 1 and access.input == "a9059cbb" + "00" * 64
    assert access.access_list == [
        {"address": word(23, 20), "storageKeys": [word(24), word(25)]},
        {"address": word(26, 20), "storageKeys": []},
    ]
    assert (eip1559.type, eip1559.max_fee_per_gas, eip1559.max_priority_fee_per_gas) == (
        2,
        0x77359400,
        1,
    )
    assert (eip1559.input, eip1559.access_list, eip1559.blob_versioned_hashes) == ("", [], None)
    assert blob.max_fee_per_blob_gas == 0x3B9ACA00
    assert blob.blob_versioned_hashes == [bare(word(43)), bare(word(44))]


def test_the_fast_path_builds_the_same_blocks_without_the_reference(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    raws = [fake_block(n) for n in (7, 8, 9)]
    expected = [parse_block(raw, n) for raw, n in zip(raws, (7, 8, 9), strict=True)]

    def refused(raw: Any, number: int) -> Block:
        raise AssertionError(f"block {number} went the slow way")

    monkeypatch.setattr("indexer.chain.wire.parse_block", refused)
    assert fast(raws, [7, 8, 9]) == expected


def test_missing_optional_fields_are_none_in_both() -> None:
    raw = fake_block()
    for key in (
        "size",
        "extraData",
        "stateRoot",
        "logsBloom",
        "nonce",
        "mixHash",
        "difficulty",
        "totalDifficulty",
        "blobGasUsed",
        "excessBlobGas",
        "withdrawalsRoot",
        "parentBeaconBlockRoot",
        "requestsHash",
        "withdrawals",
    ):
        del raw[key]
    for tx in raw["transactions"]:
        for key in ("input", "type", "maxFeePerGas", "accessList", "blobVersionedHashes"):
            tx.pop(key, None)
    block = parse_block(raw, 7)
    assert fast([raw], [7]) == [block]
    assert block.withdrawals is None and block.logs_bloom is None and block.nonce is None
    assert all(tx.input == "" and tx.type is None for tx in block.transactions)
    assert all(tx.access_list is None for tx in block.transactions)


def test_upper_case_hex_is_read_lower_case_by_both() -> None:
    raw = fake_block()
    raw["stateRoot"] = raw["stateRoot"].upper().replace("0X", "0x")
    raw["transactions"][1]["input"] = "0xA9059CBB"
    raw["transactions"][1]["accessList"][0]["address"] = "0x" + "AB" * 20
    decoded = fast([raw], [7])
    assert decoded == [parse_block(raw, 7)]
    assert decoded is not None and decoded[0].state_root == bare(word(52)).lower()
    assert decoded[0].transactions[1].input == "a9059cbb"
    assert decoded[0].transactions[1].access_list is not None
    assert decoded[0].transactions[1].access_list[0]["address"] == "0x" + "ab" * 20


def test_values_at_the_edge_of_their_columns_are_accepted_by_both() -> None:
    raw = fake_block()
    for mutation in (
        set_field("transactions.2.type", "0x7fff"),
        set_field("transactions.0.type", "0x7e"),  # an OP-stack deposit
        set_field("withdrawals.0.amount", hex(2**63 - 1)),
        set_field("blobGasUsed", "0x7" + "f" * 15),
        set_field("totalDifficulty", hex(2**256 - 1)),
        set_field("extraData", "0x"),
        set_field("transactions.1.input", "0x" + "ab" * 5000),
    ):
        mutation(raw)
    decoded = fast([raw], [7])
    assert decoded == [parse_block(raw, 7)]
    assert decoded is not None and decoded[0].transactions[2].type == 0x7FFF


BAD_FIELDS = {
    "logsBloom of 255 bytes": set_field("logsBloom", word(1, 255)),
    "logsBloom of 257 bytes": set_field("logsBloom", word(1, 257)),
    "logsBloom empty": set_field("logsBloom", "0x"),
    "nonce of 7 bytes": set_field("nonce", "0x" + "00" * 7),
    "nonce as a quantity": set_field("nonce", "0x42"),
    "short stateRoot": set_field("stateRoot", word(1, 31)),
    "receiptsRoot not hex": set_field("receiptsRoot", "0x" + "zz" * 32),
    "mixHash without 0x": set_field("mixHash", "00" + word(1)[2:]),
    "requestsHash a number": set_field("requestsHash", 5),
    "extraData of odd length": set_field("extraData", "0xabc"),
    "extraData without 0x": set_field("extraData", "abcd"),
    "extraData empty string": set_field("extraData", ""),
    "size negative": set_field("size", "-0x1"),
    "size above bigint": set_field("size", hex(2**63)),
    "difficulty above uint256": set_field("difficulty", hex(2**256)),
    "blobGasUsed above bigint": set_field("blobGasUsed", "0x8" + "0" * 15),
    "excessBlobGas with an underscore": set_field("excessBlobGas", "0x1_0"),
    "withdrawals not a list": set_field("withdrawals", {}),
    "withdrawal not an object": set_field("withdrawals.0", "0x1"),
    "withdrawal without amount": set_field("withdrawals.0.amount", KeyError),
    "withdrawal amount above bigint": set_field("withdrawals.1.amount", hex(2**63)),
    "withdrawal address short": set_field("withdrawals.1.address", word(1, 19)),
    "withdrawal index not hex": set_field("withdrawals.0.index", "0xq"),
    "withdrawal index repeated": set_field("withdrawals.1.index", "0x1a"),
    "input of odd length": set_field("transactions.1.input", "0xa9059cb"),
    "input without 0x": set_field("transactions.1.input", "a9059cbb"),
    "input empty string": set_field("transactions.1.input", ""),
    "input with a second 0x": set_field("transactions.1.input", "0x0xa9059c"),
    "input with a newline": set_field("transactions.1.input", "0xa9\n059c"),
    "input with an x inside": set_field("transactions.1.input", "0xa9x59c"),
    "input with 0x inside": set_field("transactions.1.input", "0xa90x9c"),
    "input not ASCII": set_field("transactions.1.input", "0xa9\u0663\u0663"),
    "input a number": set_field("transactions.1.input", 12),
    "type above smallint": set_field("transactions.2.type", "0x8000"),
    "type with five digits": set_field("transactions.2.type", "0x00002"),
    "type not hex": set_field("transactions.2.type", "0x2g"),
    "maxFeePerGas negative": set_field("transactions.2.maxFeePerGas", "-0x1"),
    "maxPriorityFeePerGas with a space": set_field("transactions.2.maxPriorityFeePerGas", "0x 1"),
    "maxFeePerBlobGas above uint256": set_field("transactions.3.maxFeePerBlobGas", hex(2**256)),
    "blob hash short": set_field("transactions.3.blobVersionedHashes.1", word(1, 31)),
    "blob hash null": set_field("transactions.3.blobVersionedHashes.0", None),
    "blob hashes not a list": set_field("transactions.3.blobVersionedHashes", word(1)),
    "access list not a list": set_field("transactions.1.accessList", {}),
    "access list entry not an object": set_field("transactions.1.accessList.0", word(1, 20)),
    "access list address short": set_field("transactions.1.accessList.0.address", word(1, 19)),
    "access list without storageKeys": set_field(
        "transactions.1.accessList.1.storageKeys", KeyError
    ),
    "access list storage key not hex": set_field(
        "transactions.1.accessList.0.storageKeys.1", "0x" + "g" * 64
    ),
    "quantity with 0x twice": set_field("transactions.2.value", "0x0x1"),
    "quantity 0X": set_field("transactions.2.gas", "0X5208"),
    "quantity without digits": set_field("transactions.2.nonce", "0x"),
}


@pytest.mark.parametrize("mutation", BAD_FIELDS.values(), ids=BAD_FIELDS.keys())
def test_a_bad_field_is_refused_by_both_with_the_reference_message(mutation: Mutation) -> None:
    raws = [fake_block(n) for n in (6, 7, 8)]
    mutation(raws[1])
    with pytest.raises(BadChainData) as reference:
        parse_block(copy.deepcopy(raws[1]), 7)
    try:
        decoded = fast(raws, [6, 7, 8])
    except BadChainData as error:
        assert str(error) == str(reference.value)
    else:
        assert decoded is None, "the fast path accepted a block the reference parser refuses"


def test_the_reference_names_the_field_it_refuses() -> None:
    raw = fake_block()
    set_field("transactions.1.accessList.0.storageKeys.1", "0x12")(raw)
    with pytest.raises(BadChainData, match=r"block 7 transaction 1 accessList\[0\]"):
        parse_block(raw, 7)
    raw = fake_block()
    set_field("withdrawals.1.amount", hex(2**63))(raw)
    with pytest.raises(BadChainData, match="block 7 withdrawal 1: field 'amount'"):
        parse_block(raw, 7)


def test_a_repeated_withdrawal_index_is_bad_chain_data_named_by_both() -> None:
    """The withdrawals table's key is (chain, block, index): a block repeating an index used to
    pass decoding and fail the store's COPY as a unique violation, a database error retried
    for ever; it is refused at decoding as bad chain data (the provider's fault), by both."""
    raw = fake_block()
    set_field("withdrawals", [*raw["withdrawals"], {**raw["withdrawals"][0], "amount": "0x5"}])(raw)
    assert [w["index"] for w in raw["withdrawals"]] == ["0x1a", "0x1b", "0x1a"]
    message = (
        "block 7 withdrawal 2: index 26 repeats withdrawal 0's"
        " (a block's withdrawal indexes are unique)"
    )
    with pytest.raises(BadChainData) as reference:
        parse_block(copy.deepcopy(raw), 7)
    assert str(reference.value) == message
    with pytest.raises(BadChainData) as fast_path:
        fast([fake_block(6), raw], [6, 7])
    assert str(fast_path.value) == message
