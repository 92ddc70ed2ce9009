"""The fast block decoder (chain/wire.py) agrees with the reference parser (chain/model.py).

For well-formed batches it must build the same Blocks; for every kind of bad block it must
end in the same BadChainData message, or leave the batch to the careful path.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest

from indexer.chain.model import BadChainData, Block, parse_block
from indexer.chain.wire import decode_block_batch, to_block
from indexer.simchain.server import SimChain, SimChainConfig


def batch_body(blocks: list[Any], first_id: int = 1) -> bytes:
    answers = [
        {"jsonrpc": "2.0", "id": first_id + i, "result": block} for i, block in enumerate(blocks)
    ]
    return json.dumps(answers).encode()


def fast(blocks: list[Any], numbers: list[int]) -> list[Block] | None:
    """What RpcClient does with a batch: the fast path, or None when it hands over."""
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


def _set(path: str, value: Any) -> Callable[[dict[str, Any]], None]:
    def mutate(raw: dict[str, Any]) -> None:
        target: Any = raw
        *parents, last = path.split(".")
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if value is KeyError:
            del target[last]
        else:
            target[last] = value

    return mutate


BAD_BLOCKS = {
    "non-hex hash": _set("hash", "0x" + "g" * 64),
    "short parentHash": _set("parentHash", "0x" + "a" * 62),
    "hash without 0x": _set("hash", "00" + "a" * 64),
    "spaces in an address": _set("transactions.0.from", "0x" + "ab" * 19 + "  "),
    "underscores in a hash": _set("transactions.1.hash", "0x" + "a" * 62 + "_a"),
    "empty to": _set("transactions.0.to", ""),
    "wrong block number": _set("number", "0x7"),
    "number not hex": _set("number", "seven"),
    "value as a JSON number": _set("transactions.0.value", 5),
    "transaction index out of order": _set("transactions.1.transactionIndex", "0x0"),
    "missing parentHash": _set("parentHash", KeyError),
    "missing timestamp": _set("timestamp", KeyError),
    "transaction hashes instead of objects": _set("transactions", ["0x" + "a" * 64]),
    "transactions not a list": _set("transactions", {}),
}


@pytest.mark.parametrize("mutation", BAD_BLOCKS.values(), ids=BAD_BLOCKS.keys())
def test_a_bad_block_is_refused_with_the_reference_message(
    mutation: Callable[[dict[str, Any]], None],
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
