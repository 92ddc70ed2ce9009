"""Every garbage answer is bad chain data: counted as `bad_data`, retried, and never returned.

Through the proxy, a real client meets answers of every wrong shape (for the JSON-RPC envelope,
a head, a full block and a header) and must end in BadChainData after its retries, never in an
AttributeError or TypeError, and never with a value that would fail (or pass) PostgreSQL's COPY.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import pytest
from aiohttp import web

from indexer.chain.model import BadChainData
from tests.support.mutations import Mutation, set_field
from tests.support.provider_proxy import raw_answer
from tests.support.proxied_chain import FAST_RETRIES, Provider

ATTEMPTS = FAST_RETRIES.max_retries + 1


def answering(make: Callable[[list[dict[str, Any]]], Any]) -> Callable[..., web.Response]:
    """Answer each request with the JSON `make` builds from its calls (so ids can match)."""

    def answer(calls: list[dict[str, Any]]) -> web.Response:
        return web.json_response(make(calls))

    return answer


def results(value: Any) -> Callable[[list[dict[str, Any]]], Any]:
    """Well-formed answers, each with `value` as its result."""
    return lambda calls: [{"jsonrpc": "2.0", "id": c["id"], "result": value} for c in calls]


ENVELOPES: dict[str, Callable[..., web.Response]] = {
    "a number for an answer": answering(lambda calls: [5]),
    "a string for the batch": answering(lambda calls: "hello"),
    "null for the batch": answering(lambda calls: None),
    "an empty batch": answering(lambda calls: []),
    "an empty object": answering(lambda calls: {}),
    "an id that is a list": answering(
        lambda calls: [{"jsonrpc": "2.0", "id": [c["id"]], "result": "0x10"} for c in calls]
    ),
    "an id that is an object": answering(
        lambda calls: [{"jsonrpc": "2.0", "id": {"n": c["id"]}, "result": "0x10"} for c in calls]
    ),
    "two answers for one id": answering(lambda calls: results("0x10")(calls) * 2),
    "another call's id": answering(
        lambda calls: [{"jsonrpc": "2.0", "id": c["id"] + 1000, "result": "0x10"} for c in calls]
    ),
    "no result": answering(lambda calls: [{"jsonrpc": "2.0", "id": c["id"]} for c in calls]),
    "nested 100,000 deep": raw_answer(b"[" * 100_000 + b"]" * 100_000),
    "not JSON": raw_answer(b"\xff\xfe garbage"),
}
HEADS = {
    "a JSON number": 16,
    "null": None,
    "a list": ["0x10"],
    "no digits": "0x",
    "negative": "-0x1",
    "an underscore": "0x1_0",
    "no 0x": "10",
    "a leading space": " 0x10",
    "upper-case 0X": "0X10",
    "4,000 digits": "0x" + "f" * 4000,
    "above bigint": hex(2**63),
}


def check_bad_data(provider: Provider, method: str) -> None:
    assert provider.count("bad_data", method) == ATTEMPTS  # each attempt counted, all retried
    assert provider.count("ok", method) == 0


@pytest.mark.parametrize("answer", ENVELOPES.values(), ids=ENVELOPES.keys())
async def test_a_malformed_envelope_is_bad_data(
    provider: Provider, answer: Callable[..., web.Response]
) -> None:
    provider.proxy.answer = answer
    with pytest.raises(BadChainData, match=f"failed after {ATTEMPTS} attempts"):
        await provider.client().latest_available_block()
    check_bad_data(provider, "eth_blockNumber")


@pytest.mark.parametrize("head", HEADS.values(), ids=HEADS.keys())
async def test_a_head_that_is_no_bigint_quantity_is_bad_data(provider: Provider, head: Any) -> None:
    provider.proxy.answer = answering(results(head))
    with pytest.raises(BadChainData, match="eth_blockNumber result is not a hex quantity"):
        await provider.client().latest_available_block()
    check_bad_data(provider, "eth_blockNumber")


def in_every_full_block(mutation: Mutation) -> Callable[[dict[str, Any], dict[str, Any]], None]:
    def rewrite(call: dict[str, Any], answer: dict[str, Any]) -> None:
        if call.get("method") == "eth_getBlockByNumber" and call["params"][1] is True:
            mutation(answer["result"])

    return rewrite


BLOCKS: dict[str, Mutation] = {
    "a 4,000-digit timestamp": set_field("timestamp", "0x" + "f" * 4000),
    "a timestamp above bigint": set_field("timestamp", "0x8000000000000000"),
    "a 4,000-digit value": set_field("transactions.0.value", "0x" + "1" * 4000),
    "a value above uint256": set_field("transactions.0.value", "0x1" + "0" * 64),
    "a negative value": set_field("transactions.0.value", "-0x1"),
    "an underscore in gas": set_field("transactions.0.gas", "0x1_0"),
    "a gas price with a space": set_field("transactions.1.gasPrice", " 0x10"),
    "a nonce without 0x": set_field("transactions.1.nonce", "10"),
    "gas used as a JSON number": set_field("gasUsed", 21000),
    "a hash that is a number": set_field("hash", 5),
}


@pytest.mark.parametrize("mutation", BLOCKS.values(), ids=BLOCKS.keys())
async def test_a_bad_full_block_is_bad_data_and_never_returned(
    provider: Provider, mutation: Mutation
) -> None:
    provider.proxy.rewrite = in_every_full_block(mutation)
    with pytest.raises(BadChainData, match=f"failed after {ATTEMPTS} attempts"):
        await provider.client().get_blocks(1, 3)
    check_bad_data(provider, "eth_getBlockByNumber")


@pytest.mark.parametrize(
    "result",
    ["0x1", ["0x1"], {"number": "0x1", "hash": "0x" + "ab " * 16 + "ab" * 8}, {"number": "0x1"}],
    ids=["a string", "a list", "a hash with spaces", "no hash"],
)
async def test_a_bad_header_is_bad_data(provider: Provider, result: Any) -> None:
    # Reorg repair compares these hashes with the stored ones: a garbage hash there would
    # delete good blocks.
    provider.proxy.answer = answering(results(result))
    with pytest.raises(BadChainData, match=f"failed after {ATTEMPTS} attempts"):
        await provider.client().get_block_hashes(1, 1)
    check_bad_data(provider, "eth_getBlockByNumber")


async def test_a_lone_error_without_an_id_is_still_the_error(provider: Provider) -> None:
    error = {"code": -32601, "message": "the method eth_blockNumber does not exist"}
    provider.proxy.answer = raw_answer(json.dumps({"jsonrpc": "2.0", "error": error}).encode())
    client = provider.client()
    with pytest.raises(Exception, match="JSON-RPC error -32601"):
        await client.latest_available_block()
    assert provider.count("error", "eth_blockNumber") == 1  # permanent: not retried
