"""What the chain itself says, read with plain JSON-RPC: the expected side of every assertion."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import aiohttp


@dataclass(frozen=True)
class ExpectedBlock:
    hash: bytes
    parent_hash: bytes
    tx_hashes: tuple[bytes, ...]


async def rpc(url: str, method: str, *params: Any) -> Any:
    async with aiohttp.ClientSession() as session:
        body = {"jsonrpc": "2.0", "id": 1, "method": method, "params": list(params)}
        async with session.post(url, json=body) as response:
            answer = await response.json(content_type=None)
    assert "error" not in answer, answer
    return answer["result"]


async def expected_blocks(url: str, start: int, end: int) -> dict[int, ExpectedBlock]:
    """Blocks start..end as the node returns them, fetched in batches."""
    result: dict[int, ExpectedBlock] = {}
    async with aiohttp.ClientSession() as session:
        for low in range(start, end + 1, 200):
            numbers = range(low, min(low + 200, end + 1))
            body = [
                {
                    "jsonrpc": "2.0",
                    "id": n,
                    "method": "eth_getBlockByNumber",
                    "params": [hex(n), True],
                }
                for n in numbers
            ]
            async with session.post(url, json=body) as response:
                answers = await response.json(content_type=None)
            for answer in answers:
                block = answer["result"]
                result[int(block["number"], 16)] = ExpectedBlock(
                    hash=bytes.fromhex(block["hash"][2:]),
                    parent_hash=bytes.fromhex(block["parentHash"][2:]),
                    tx_hashes=tuple(bytes.fromhex(tx["hash"][2:]) for tx in block["transactions"]),
                )
    return result


async def mine_with_transactions(url: str, blocks: int, value: int) -> None:
    """`blocks` anvil blocks with one transfer each; `value` makes a fork's transactions
    distinct."""
    accounts = await rpc(url, "eth_accounts")
    for i in range(blocks):
        await rpc(
            url,
            "eth_sendTransaction",
            {"from": accounts[i % 5], "to": accounts[5 + i % 5], "value": hex(value + i)},
        )
        await rpc(url, "evm_mine")
