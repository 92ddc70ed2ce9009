"""The simulated chain's state: its config, injected faults, deterministic blocks, reorgs.

`server.py` serves it over JSON-RPC; tests and benchmarks also use it directly.
"""

from __future__ import annotations

import bisect
import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from indexer.simchain import hashes
from indexer.simchain.profiles import PROFILES
from indexer.simchain.render import BlockRenderer

UNSERVED_FORK = 1_000_000  # added to a fork version: a fork no reorg reaches


@dataclass
class Faults:
    """Injected faults. Ratios are probabilities in [0, 1], drawn per HTTP request (a
    batch is one request) unless noted, from a `random.Random` seeded by the chain seed.
    A request meets them in this order: latency, rate limit (answered at once), timeout
    (sleeps, then answers), error, malformed; then per call null block and bad parent (for
    blocks), or missing, other block's and wrong count (for receipts, in that order).
    """

    rate_limit_ratio: float = 0.0  # HTTP 429 + Retry-After, JSON-RPC error -32005
    retry_after_seconds: float = 1.0  # the Retry-After value, written with str()
    timeout_ratio: float = 0.0  # sleep timeout_sleep_seconds, then answer normally
    timeout_sleep_seconds: float = 30.0
    malformed_ratio: float = 0.0  # 200 with the real body cut in half
    error_ratio: float = 0.0  # every call answered with JSON-RPC error -32000
    null_block_ratio: float = 0.0  # per call: an existing block is answered with null
    bad_parent_ratio: float = 0.0  # per call: the block's parentHash is garbage
    latency_seconds: float = 0.0  # added to every request
    # per call: eth_getBlockReceipts answers null or [] (even odds), eth_getTransactionReceipt null
    receipts_missing_ratio: float = 0.0
    # per call: the receipts of another block, of the same height in a fork never served or of
    # a neighbour (even odds): wrong blockHash, wrong transaction hashes, maybe wrong number
    receipts_other_block_ratio: float = 0.0
    # per call: eth_getBlockReceipts leaves one receipt out (of a block with transactions)
    receipts_wrong_count_ratio: float = 0.0


@dataclass
class SimChainConfig:
    """How the simulated chain looks. Every block has exactly `txs_per_block` transactions
    (default: the profile's), drawn as `profile` (profiles.py) says."""

    chain_id: int = 1337
    backlog: int = 100_000  # blocks 0..backlog-1 exist at start
    block_time: float = 1.0  # seconds per new block; 0 = a static chain
    txs_per_block: int | None = None
    profile: str = "default"
    seed: int = 0
    announce_ahead: bool = False  # eth_blockNumber says head+1, which is not served yet
    faults: Faults = field(default_factory=Faults)


class SimChain:
    """The chain's state: deterministic blocks, growth over time, reorgs."""

    def __init__(self, config: SimChainConfig, clock: Callable[[], float] = time.monotonic) -> None:
        if config.backlog < 1:
            raise ValueError("backlog must be at least 1 (the genesis block)")
        if config.profile not in PROFILES:
            raise ValueError(f"unknown profile {config.profile!r} (known: {', '.join(PROFILES)})")
        profile = PROFILES[config.profile]
        txs = profile.txs_per_block if config.txs_per_block is None else config.txs_per_block
        if txs < 0 or config.block_time < 0:
            raise ValueError("txs_per_block and block_time must not be negative")
        self.config = config
        self.txs_per_block = txs
        self._clock = clock
        self._started = clock()
        self._mined = 0
        # First replaced block of every reorg, sorted: the fork version of block n is the
        # number of entries <= n, so versions never decrease along the chain and
        # parentHash(n) == block_hash(n - 1) always holds.
        self._reorg_starts: list[int] = []
        # No cache of rendered blocks: rendering costs less than an LRU's bookkeeping plus
        # the memory churn of 3 KB strings (measured: ~12 % faster without one).
        self._renderer = BlockRenderer(config.seed, config.chain_id, txs, profile)

    def head(self) -> int:
        """The current latest block number."""
        grown = 0
        if self.config.block_time > 0:
            grown = int((self._clock() - self._started) / self.config.block_time)
        return self.config.backlog - 1 + self._mined + grown

    @property
    def reorgs(self) -> int:
        """How many reorgs have happened."""
        return len(self._reorg_starts)

    def fork_version(self, number: int) -> int:
        """How many reorgs have replaced block `number`."""
        return bisect.bisect_right(self._reorg_starts, number)

    def block_hash(self, number: int) -> str:
        """The block's current hash (the zero hash for number -1, genesis's parent)."""
        return hashes.block_hash(self.config.seed, number, self.fork_version(number))

    def block_number_of(self, block_hash: str, head: int | None = None) -> int | None:
        """The number of the current block with this hash, or None."""
        number = hashes.block_number_of(block_hash)
        if number is None or number > (self.head() if head is None else head):
            return None
        return number if self.block_hash(number) == block_hash.lower() else None

    def block_text(self, number: int, full: bool, head: int | None = None) -> str | None:
        """The block as JSON-RPC result text, or None above head (or below genesis)."""
        if number < 0 or number > (self.head() if head is None else head):
            return None
        starts = self._reorg_starts
        if not starts:  # the common case skips two bisects
            return self._renderer.render(number, 0, 0, full)
        fork = bisect.bisect_right(starts, number)
        parent_fork = bisect.bisect_right(starts, number - 1)
        return self._renderer.render(number, fork, parent_fork, full)

    def block(self, number: int, full: bool) -> dict[str, Any] | None:
        """The block as JSON-RPC would return it (hex strings), None above head."""
        text = self.block_text(number, full)
        return None if text is None else json.loads(text)

    def receipts_text(self, number: int, head: int | None = None, fork: int | None = None) -> str:
        """The block's receipts as JSON-RPC result text ("null" above head or below genesis).
        `fork` serves another fork's receipts (a fault)."""
        if number < 0 or number > (self.head() if head is None else head):
            return "null"
        version = self.fork_version(number) if fork is None else fork
        return self._renderer.receipts(number, version)

    def receipts(self, number: int) -> list[dict[str, Any]] | None:
        """The block's receipts as eth_getBlockReceipts returns them, None above head."""
        result: list[dict[str, Any]] | None = json.loads(self.receipts_text(number))
        return result

    def receipts_without(self, number: int, index: int) -> str:
        """The block's receipts with the one at `index` left out (a fault)."""
        fork = self.fork_version(number)
        kept = (
            self._renderer.receipt(number, fork, i) for i in range(self.txs_per_block) if i != index
        )
        return "[" + ",".join(kept) + "]"

    def tx_location(self, tx_hash: str, head: int | None = None) -> tuple[int, int] | None:
        """(block number, index) of the current transaction with this hash, or None."""
        location = hashes.tx_location(tx_hash)
        if location is None:
            return None
        number, index = location
        if number > (self.head() if head is None else head) or index >= self.txs_per_block:
            return None
        fork = self.fork_version(number)
        return location if self._renderer.tx_hash(number, fork, index) == tx_hash.lower() else None

    def receipt_text(self, number: int, index: int, fork: int | None = None) -> str:
        """One transaction's receipt as JSON-RPC result text (the location must exist)."""
        version = self.fork_version(number) if fork is None else fork
        return self._renderer.receipt(number, version, index)

    def receipt(self, tx_hash: str) -> dict[str, Any] | None:
        """The receipt eth_getTransactionReceipt returns for `tx_hash`, None if unknown."""
        location = self.tx_location(tx_hash)
        if location is None:
            return None
        result: dict[str, Any] = json.loads(self.receipt_text(*location))
        return result

    def tx_hashes(self, number: int) -> list[str]:
        """The 0x-prefixed hashes of the current block's transactions."""
        fork = self.fork_version(number)
        return [self._renderer.tx_hash(number, fork, i) for i in range(self.txs_per_block)]

    def reorg(self, depth: int) -> None:
        """Replace the newest `depth` blocks with another fork of the same height."""
        head = self.head()
        if not 1 <= depth <= head:
            raise ValueError(f"reorg depth must be in 1..{head} (genesis stays)")
        bisect.insort(self._reorg_starts, head - depth + 1)

    def mine(self, blocks: int) -> None:
        """Add `blocks` blocks immediately."""
        if blocks < 0:
            raise ValueError("cannot mine a negative number of blocks")
        self._mined += blocks
