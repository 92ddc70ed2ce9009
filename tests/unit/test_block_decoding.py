"""The fast block decoder (chain/wire.py) agrees with the reference parser (chain/model.py).

For well-formed batches it must build the same Blocks; for every kind of bad block it must
end in the same BadChainData message, or leave the batch to the careful path.
"""

from __future__ import annotations

import json
from typing import Any

import pytest

from indexer.chain.model import BadChainData, Block, parse_block
from indexer.chain.wire import decode_block_batch, to_block
from indexer.simchain.server import SimChain, SimChainConfig
from tests.support.mutations import Mutation, set_field


def batch_body(blocks: list[Any], first_id: int = 1) -> bytes:
    answers = [
        {"jsonrpc": "2.0", "id": first_id + i, "result": block} for i, block in enumerate(blocks)
    ]
    return json.dumps(answers).encode()


def fast(blocks: list[Any], numbers: list[int]) -> list[Block] | None:
    """What the transport's decoder does with a batch: the fast path, or None when it hands over."""
    ids = list(range(1, len(blocks) + 1))
    wire = decode_block_batch(batch_body(blocks), ids)
    return None if wire is None else [to_block(w, n) for w, n in zip(wire, numbers, strict=True)]


def sim_blocks(count: int, txs_per_block: int) -> list[dict[str, Any]]:
    sim = SimChain(SimChainConfig(backlog=count, block_time=0, txs_per_block=txs_per_block))
    return [json.loads(sim.block_text(n, True) or "null") for n in range(count)]


@pytest.mark.parametrize("txs_per_block", [0, 1, 5])
def test_well_formed_batches_decode_to_the_same_blocks(txs_per_block: int) -> None:
    raws = sim_blocks(50, txs_per_block)
    numbers = list(range(50))
    assert fast(raws, numbers) == [
        parse_block(raw, n) for raw, n in zip(raws, numbers, strict=True)
    ]


def test_upper_case_hex_contract_creation_and_missing_optional_fields() -> None:
    raw = sim_blocks(1, 2)[0]
    raw["hash"] = raw["hash"].upper().replace("0X", "0x")
    raw["transactions"][0]["to"] = None  # a contract creation
    del raw["baseFeePerGas"], raw["transactions"][1]["gasPrice"]
    raw["unknownField"] = {"nested": [1, 2]}
    decoded = fast([raw], [0])
    assert decoded == [parse_block(raw, 0)]
    assert decoded is not None and decoded[0].hash == raw["hash"][2:].lower()


BAD_BLOCKS = {
    "non-hex hash": set_field("hash", "0x" + "g" * 64),
    "short parentHash": set_field("parentHash", "0x" + "a" * 62),
    "hash without 0x": set_field("hash", "00" + "a" * 64),
    "spaces in an address": set_field("transactions.0.from", "0x" + "ab" * 19 + "  "),
    "underscores in a hash": set_field("transactions.1.hash", "0x" + "a" * 62 + "_a"),
    "empty to": set_field("transactions.0.to", ""),
    "wrong block number": set_field("number", "0x7"),
    "number not hex": set_field("number", "seven"),
    "value as a JSON number": set_field("transactions.0.value", 5),
    "transaction index out of order": set_field("transactions.1.transactionIndex", "0x0"),
    "missing parentHash": set_field("parentHash", KeyError),
    "missing timestamp": set_field("timestamp", KeyError),
    "transaction hashes instead of objects": set_field("transactions", ["0x" + "a" * 64]),
    "transactions not a list": set_field("transactions", {}),
    # Quantities: strict hex, and small enough for their column (int(x, 16) takes all of these).
    "negative gas": set_field("transactions.0.gas", "-0x1"),
    "underscore in a value": set_field("transactions.0.value", "0x1_0"),
    "nonce without 0x": set_field("transactions.1.nonce", "10"),
    "space before a gas price": set_field("transactions.0.gasPrice", " 0x10"),
    "upper-case 0X": set_field("baseFeePerGas", "0X10"),
    "empty quantity": set_field("gasUsed", "0x"),
    "plus sign": set_field("gasLimit", "+0x10"),
    "non-ASCII digit": set_field("transactions.0.value", "0x\u0663"),
    "4,000-digit value": set_field("transactions.0.value", "0x" + "f" * 4000),
    "4,000-digit timestamp": set_field("timestamp", "0x" + "1" * 4000),
    "timestamp above bigint": set_field("timestamp", hex(2**63)),
    "gas above bigint": set_field("transactions.1.gas", hex(2**63)),
    "transaction index above integer": set_field("transactions.1.transactionIndex", hex(2**31)),
    "value above uint256": set_field("transactions.0.value", hex(2**256)),
    "base fee above uint256": set_field("baseFeePerGas", "0x1" + "0" * 64),
    "number with leading zeros past bigint's width": set_field("number", "0x" + "0" * 16 + "2"),
}


@pytest.mark.parametrize("mutation", BAD_BLOCKS.values(), ids=BAD_BLOCKS.keys())
def test_a_bad_block_is_refused_with_the_reference_message(
    mutation: Mutation,
) -> None:
    raws = sim_blocks(4, 2)
    mutation(raws[2])
    with pytest.raises(BadChainData) as reference:
        parse_block(raws[2], 2)
    try:
        decoded = fast(raws, [0, 1, 2, 3])
    except BadChainData as error:
        assert str(error) == str(reference.value)
    else:
        assert decoded is None, "the fast path accepted a block the reference parser refuses"


@pytest.mark.parametrize(
    "answers",
    [
        [{"jsonrpc": "2.0", "id": 1, "result": None}],  # not yet available: retried upstream
        [{"jsonrpc": "2.0", "id": 1, "error": {"code": -32005, "message": "rate limited"}}],
        {"jsonrpc": "2.0", "id": None, "error": {"code": -32600, "message": "batch refused"}},
        [],
    ],
    ids=["null block", "error answer", "one error for the batch", "no answers"],
)
def test_unusual_answers_go_to_the_careful_path(answers: Any) -> None:
    assert decode_block_batch(json.dumps(answers).encode(), [1]) is None


def test_answers_are_matched_by_id_not_position() -> None:
    raws = sim_blocks(3, 1)
    body = json.dumps(
        [{"jsonrpc": "2.0", "id": 3 - i, "result": raw} for i, raw in enumerate(reversed(raws))]
    ).encode()
    wire = decode_block_batch(body, [1, 2, 3])
    assert wire is not None
    assert [to_block(w, n) for n, w in enumerate(wire)] == [
        parse_block(raw, n) for n, raw in enumerate(raws)
    ]


def test_quantities_at_the_edge_of_their_columns_are_accepted_by_both() -> None:
    raw = sim_blocks(1, 2)[0]
    for mutation in (
        set_field("timestamp", hex(2**63 - 1)),
        set_field("gasLimit", "0x7FFFFFFFFFFFFFFF"),
        set_field("transactions.0.value", hex(2**256 - 1)),
        set_field("transactions.0.gasPrice", "0x00ff"),
        set_field("transactions.1.nonce", "0x0"),
    ):
        mutation(raw)
    decoded = fast([raw], [0])
    assert decoded == [parse_block(raw, 0)]
    assert decoded is not None and decoded[0].timestamp == 2**63 - 1
    assert decoded[0].transactions[0].value == 2**256 - 1
