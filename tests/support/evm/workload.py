"""Blocks of mixed transactions on anvil: every kind of receipt and log the datasets store.

Transactions go through anvil's unlocked accounts (`eth_sendTransaction`) with every field
explicit — type, nonce, gas and fees — so no estimate runs against a state that a transaction
earlier in the same block is about to change. With automine off, one batch of sends and one
`evm_mine` make one block of several transactions; after each block the workload checks that
anvil mined exactly what was sent.

anvil 1.7.1 silently drops a transaction whose fee cap (gasPrice, or maxFeePerGas for type 2)
is higher than that of the same sender's previous transaction in the same block: neither mined
nor left in the pool. Each sender's transactions in a block therefore get their nonces in
order of falling fee cap.
"""

from __future__ import annotations

import random
from collections import defaultdict
from dataclasses import dataclass, field
from typing import Any

from tests.support.evm import contracts
from tests.support.evm.jsonrpc import JsonRpc

GWEI = 10**9
CALL_GAS = 600_000
DEPLOY_GAS = 1_500_000
# Data lengths at and around the edges of a 32-byte word, and the 0..256 bounds.
EDGE_DATA_LENGTHS = [0, 1, 31, 32, 33, 64, 255, 256]
# How often each kind of transaction is sent (relative weights).
KINDS = {
    "token_transfer": 4,
    "token_transfer_reverted": 1,
    "emit": 6,
    "emit_from_child": 2,
    "revert": 1,
    "create_child": 1,
    "deploy": 1,
    "eth_transfer": 2,
}


@dataclass
class Deployed:
    """The contracts of the workload, and the children the factory has created so far."""

    token: str
    emitter: str
    reverter: str
    factory: str
    children: list[str] = field(default_factory=list)


@dataclass
class Snapshot:
    """An anvil snapshot, and the workload's own state at that block."""

    id: str
    children: list[str]


class Workload:
    """Sends blocks of transactions of every kind; deterministic for a seed (bar timestamps)."""

    def __init__(self, node: JsonRpc, seed: int = 13) -> None:
        self.node = node
        self.rng = random.Random(seed)
        self.accounts: list[str] = []
        self.nonces: dict[str, int] = {}
        self.deployed: Deployed | None = None
        self.sent: list[str] = []  # every transaction hash mined so far, in order

    async def setup(self) -> Deployed:
        """Automine off; deploy the four contracts in one block of three transaction types."""
        self.accounts = await self.node.call("eth_accounts")
        await self.node.call("evm_setAutomine", False)
        await self._load_nonces()
        deployer = self.accounts[0]
        inits = [
            (contracts.TOKEN_INIT, 2),
            (contracts.EMITTER_INIT, 2),
            (contracts.REVERTER_INIT, 1),
            (contracts.FACTORY_INIT, 0),
        ]
        txs = [
            self._typed({"from": deployer, "data": "0x" + init.hex(), "gas": hex(DEPLOY_GAS)}, t)
            for init, t in inits
        ]
        receipts = await self._mine_block(txs)
        token, emitter, reverter, factory = (r["contractAddress"] for r in receipts)
        assert all(r["status"] == "0x1" for r in receipts), receipts
        self.deployed = Deployed(token, emitter, reverter, factory)
        return self.deployed

    async def mine(self, blocks: int, most: int = 10, least: int = 0) -> None:
        """`blocks` blocks of least..most transactions each (with least 0, a few are empty)."""
        for _ in range(blocks):
            count = self.rng.randint(least, most)
            await self._mine_block([self._transaction() for _ in range(count)])

    async def mine_empty(self, blocks: int) -> None:
        await self.node.call("anvil_mine", hex(blocks))

    async def head(self) -> int:
        return int(await self.node.call("eth_blockNumber"), 16)

    async def snapshot(self) -> Snapshot:
        assert self.deployed is not None
        return Snapshot(await self.node.call("evm_snapshot"), list(self.deployed.children))

    async def revert(self, snapshot: Snapshot) -> None:
        """Back to the snapshot's block: the node's state, the nonces and the known children."""
        assert self.deployed is not None
        assert await self.node.call("evm_revert", snapshot.id) is True
        self.deployed.children = list(snapshot.children)
        await self._load_nonces()

    # --- one block ------------------------------------------------------------------------

    async def _mine_block(self, txs: list[dict[str, Any]]) -> list[dict[str, Any]]:
        """Send `txs` (nonces assigned here), mine one block; the receipts of `txs`, in order."""
        by_sender: dict[str, list[dict[str, Any]]] = defaultdict(list)
        for tx in txs:
            by_sender[tx["from"]].append(tx)
        ordered = []
        for sender, own in by_sender.items():
            own.sort(key=_fee_cap, reverse=True)  # see the module doc
            for tx in own:
                tx["nonce"] = hex(self.nonces[sender])
                self.nonces[sender] += 1
                ordered.append(tx)
        hashes = await self.node.batch([("eth_sendTransaction", [tx]) for tx in ordered])
        await self.node.call("evm_mine")
        block = await self.node.call("eth_getBlockByNumber", "latest", False)
        assert sorted(block["transactions"]) == sorted(hashes), (
            f"anvil mined {len(block['transactions'])} of {len(hashes)} transactions sent"
        )
        receipts: list[dict[str, Any]] = await self.node.call("eth_getBlockReceipts", "latest")
        self.sent += block["transactions"]
        self._note_children(receipts)
        by_hash = {r["transactionHash"]: r for r in receipts}
        hash_of = {id(tx): h for tx, h in zip(ordered, hashes, strict=True)}
        return [by_hash[hash_of[id(tx)]] for tx in txs]

    def _note_children(self, receipts: list[dict[str, Any]]) -> None:
        if self.deployed is None:  # the contracts' own block
            return
        topic = f"0x{contracts.CHILD_CREATED_TOPIC:064x}"
        for receipt in receipts:
            for log in receipt["logs"]:
                if log["topics"] == [topic] and log["address"] == self.deployed.factory:
                    self.deployed.children.append("0x" + log["data"][-40:])

    async def _load_nonces(self) -> None:
        counts = await self.node.batch(
            [("eth_getTransactionCount", [account, "latest"]) for account in self.accounts]
        )
        self.nonces = {a: int(n, 16) for a, n in zip(self.accounts, counts, strict=True)}

    # --- one transaction ------------------------------------------------------------------

    def _transaction(self) -> dict[str, Any]:
        """A random transaction of a random kind and type (nonce assigned when sent)."""
        assert self.deployed is not None
        d, rng, accounts = self.deployed, self.rng, self.accounts
        kind = rng.choices(list(KINDS), weights=list(KINDS.values()))[0]
        if kind == "emit_from_child" and not d.children:
            kind = "emit"
        sender = rng.choice(accounts)
        tx: dict[str, Any] = {"gas": hex(CALL_GAS)}
        if kind == "token_transfer":
            # Only the deployer holds tokens and never receives any: no transfer in a block
            # depends on the order anvil puts the block's transactions in.
            sender = accounts[0]
            amount = rng.randrange(10**18)
            tx |= {"to": d.token, "data": contracts.transfer_calldata(self._recipient(), amount)}
        elif kind == "token_transfer_reverted":
            sender = accounts[-1]  # holds no tokens, and never receives any
            amount = rng.randrange(1, 10**18)
            tx |= {"to": d.token, "data": contracts.transfer_calldata(self._recipient(), amount)}
        elif kind in ("emit", "emit_from_child"):
            target = d.emitter if kind == "emit" else rng.choice(d.children)
            topics = [rng.getrandbits(256) for _ in range(rng.randint(0, 4))]
            tx |= {"to": target, "data": contracts.emit_calldata(topics, self._data())}
        elif kind == "revert":
            tx |= {"to": d.reverter, "data": "0x" + rng.randbytes(rng.randint(0, 8)).hex()}
        elif kind == "create_child":
            tx |= {"to": d.factory, "data": "0x"}
        elif kind == "deploy":
            init = rng.choice([contracts.EMITTER_INIT, contracts.REVERTER_INIT])
            tx |= {"data": "0x" + init.hex(), "gas": hex(DEPLOY_GAS)}
        else:  # eth_transfer, sometimes with calldata an account ignores
            data = rng.randbytes(rng.choice([0, 0, 4, 68])).hex()
            tx |= {"to": rng.choice(accounts), "data": "0x" + data}
        tx["from"] = sender
        tx["value"] = hex(rng.choice([0, 0, 1, 10**15 + rng.randrange(10**15)]))
        return self._typed(tx, rng.choice([0, 1, 2]))

    def _typed(self, tx: dict[str, Any], tx_type: int) -> dict[str, Any]:
        """`tx` as a legacy, EIP-2930 or EIP-1559 transaction, with its fees."""
        rng = self.rng
        tx["type"] = hex(tx_type)
        if tx_type == 2:
            tx["maxFeePerGas"] = hex(rng.randint(5, 20) * GWEI)
            tx["maxPriorityFeePerGas"] = hex(rng.randint(0, 2 * GWEI))
        else:
            tx["gasPrice"] = hex(rng.randint(2 * GWEI, 5 * GWEI))
        if tx_type == 1:
            tx["accessList"] = self._access_list(tx.get("to"))
        return tx

    def _access_list(self, target: str | None) -> list[dict[str, Any]]:
        rng = self.rng
        entries = []
        for _ in range(rng.randint(0, 2)):
            address = target if target and rng.random() < 0.5 else rng.choice(self.accounts)
            keys = [f"0x{rng.getrandbits(256):064x}" for _ in range(rng.randint(0, 3))]
            entries.append({"address": address, "storageKeys": keys})
        return entries

    def _recipient(self) -> str:
        return self.rng.choice(self.accounts[1:-1])

    def _data(self) -> bytes:
        rng = self.rng
        size = rng.choice(EDGE_DATA_LENGTHS) if rng.random() < 0.4 else rng.randint(0, 256)
        return rng.randbytes(size)


def _fee_cap(tx: dict[str, Any]) -> int:
    return int(tx.get("maxFeePerGas") or tx["gasPrice"], 16)
