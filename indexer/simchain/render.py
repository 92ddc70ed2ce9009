"""Blocks and receipts of the simulated chain as JSON-RPC result text.

A block's content comes from one of the profile's `pool_blocks` slots (content.py), drawn on
first use and kept as templates; a request fills in what makes the block unique: its number,
timestamp, hashes (hashes.py) and withdrawal indices. The slot of block n in fork version f is
(n + f * FORK_STRIDE) mod pool_blocks, so a reorg replaces a block's transactions and logs,
not only its hashes.
"""

from __future__ import annotations

from indexer.simchain import hashes
from indexer.simchain.content import SlotContent, draw_slot
from indexer.simchain.profiles import DEFAULT, Profile

GENESIS_TIMESTAMP = 1_700_000_000
SECONDS_PER_BLOCK = 12  # timestamps follow the block number, never the wall clock
FORK_STRIDE = 7_919


class BlockRenderer:
    """Renders one chain's blocks and receipts (hex quantities, like a node)."""

    def __init__(
        self, seed: int, chain_id: int, txs_per_block: int, profile: Profile = DEFAULT
    ) -> None:
        self.seed = seed
        self.chain_id = chain_id
        self.txs_per_block = txs_per_block
        self.profile = profile
        self._slots: list[SlotContent | None] = [None] * profile.pool_blocks
        self._slot_mask = profile.pool_blocks - 1
        self._withdrawals = profile.withdrawals_per_block
        self._withdrawal_offsets = range(profile.withdrawals_per_block)

    def content(self, number: int, fork: int) -> SlotContent:
        """The templates of block `number` in fork version `fork`, drawn on first use."""
        slot = (number + fork * FORK_STRIDE) & self._slot_mask
        content = self._slots[slot]
        if content is None:
            content = draw_slot(self.seed, self.chain_id, self.profile, self.txs_per_block, slot)
            self._slots[slot] = content
        return content

    def render(self, number: int, fork: int, parent_fork: int, full: bool) -> str:
        """The block's JSON text. `parent_fork` is the fork version of block number-1,
        which differs from `fork` when a reorg replaced blocks from `number` on."""
        seed = self.seed
        own_hash, state_root, number_tail = hashes.block_digest(seed, number, fork)
        values = [
            hex(number),
            own_hash,
            hashes.block_digest(seed, number - 1, parent_fork)[0],
            state_root,
            hex(GENESIS_TIMESTAMP + number * SECONDS_PER_BLOCK),
            number_tail,
        ]
        first_withdrawal = number * self._withdrawals
        values += [hex(first_withdrawal + offset) for offset in self._withdrawal_offsets]
        values += hashes.tx_randoms(seed, number, fork, self.txs_per_block)
        content = self._slots[(number + fork * FORK_STRIDE) & self._slot_mask]
        if content is None:
            content = self.content(number, fork)
        return (content.full if full else content.hashes).fill(values)

    def receipts(self, number: int, fork: int) -> str:
        """The block's receipts (eth_getBlockReceipts) as JSON text."""
        own_hash, _, number_tail = hashes.block_digest(self.seed, number, fork)
        prefix = f'"blockHash":"0x{own_hash}","blockNumber":"{hex(number)}","transactionHash":"0x'
        randoms = hashes.tx_randoms(self.seed, number, fork, self.txs_per_block)
        values = [prefix + random for random in randoms]
        values.append(number_tail)
        content = self.content(number, fork)
        for index in content.creations:  # a creation's address: its hash's random part
            values.append(randoms[index])
        return content.receipts.fill(values)

    def receipt(self, number: int, fork: int, index: int) -> str:
        """One transaction's receipt (eth_getTransactionReceipt) as JSON text."""
        own_hash, _, number_tail = hashes.block_digest(self.seed, number, fork)
        random = hashes.tx_hash(self.seed, number, fork, index)[:40]
        prefix = f'"blockHash":"0x{own_hash}","blockNumber":"{hex(number)}","transactionHash":"0x'
        values = (prefix + random, random, number_tail)
        return self.content(number, fork).receipt[index].fill(values)

    def tx_hash(self, number: int, fork: int, index: int) -> str:
        """A transaction's hash, 0x-prefixed."""
        return "0x" + hashes.tx_hash(self.seed, number, fork, index)
