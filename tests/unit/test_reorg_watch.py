"""Which headers a head scan fetches (reorg_watch): the tip when nothing changed, the new
headers and a rolling slice when the head advanced, the whole window when anything disagrees."""

from __future__ import annotations

import asyncio
from collections import Counter
from typing import Any

from prometheus_client import CollectorRegistry

from exporter.metrics import Metrics
from indexer.activities.reorg_watch import RECHECK_SLICE, ReorgWatch
from indexer.config import ChainConfig

WINDOW = 64


def digest(number: int, fork: int = 0) -> bytes:
    return bytes([fork]) + number.to_bytes(31, "big")


class Chain:
    """A provider's chain in memory (block n's parent is n - 1's hash); counts header fetches."""

    def __init__(self, head: int) -> None:
        self.hashes = {n: digest(n) for n in range(head + 1)}
        self.fetched: Counter[int] = Counter()

    @property
    def head(self) -> int:
        return max(self.hashes)

    def mine(self, blocks: int = 1) -> None:
        for n in range(self.head + 1, self.head + 1 + blocks):
            self.hashes[n] = digest(n)

    async def get_block_hashes(self, start: int, end: int) -> dict[int, bytes]:
        self.fetched.update(range(start, end + 1))
        return {n: self.hashes[n] for n in range(start, end + 1)}

    async def get_header_links(self, start: int, end: int) -> dict[int, tuple[bytes, bytes]]:
        self.fetched.update(range(start, end + 1))
        return {
            n: (self.hashes[n], self.hashes.get(n - 1, bytes(32))) for n in range(start, end + 1)
        }

    async def tagged_block(self, tag: str) -> int | None:
        raise AssertionError("finality is unset in these tests")


class Store:
    """What stored_hashes reads: a pool whose fetch answers the stored window."""

    def __init__(self) -> None:
        self.blocks: dict[int, bytes] = {}

    async def fetch(self, query: str, chain_id: int, low: int) -> list[dict[str, Any]]:
        return [{"number": n, "hash": h} for n, h in sorted(self.blocks.items()) if n >= low]


CONFIG = ChainConfig(name="c", rpc_url="http://localhost:1", max_reorg_depth=WINDOW)


def scan(watch: ReorgWatch, chain: Chain) -> int:
    """One scan at the chain's head (its hash came with the head); the headers fetched."""
    before = sum(chain.fetched.values())
    outcome = asyncio.run(
        watch.check(1, CONFIG, chain, chain.head, chain.hashes[chain.head])  # type: ignore[arg-type]
    )
    assert outcome.repair is None
    assert outcome.headers == sum(chain.fetched.values()) - before
    return outcome.headers


def setup() -> tuple[ReorgWatch, Chain, Store]:
    store, chain = Store(), Chain(1_000)
    store.blocks = {n: chain.hashes[n] for n in range(900, 1_001)}
    return ReorgWatch(store, Metrics(CollectorRegistry())), chain, store  # type: ignore[arg-type]


def test_the_first_scan_fetches_the_window_then_an_idle_chain_costs_nothing_more() -> None:
    watch, chain, _ = setup()
    assert scan(watch, chain) == WINDOW + 1  # the window and the block below it
    assert [scan(watch, chain) for _ in range(10)] == [0] * 10


def test_a_new_block_costs_its_link_to_the_old_tip_and_a_rolling_slice() -> None:
    watch, chain, _ = setup()
    scan(watch, chain)
    chain.mine()
    assert scan(watch, chain) == 2 + RECHECK_SLICE


def test_every_window_block_is_refetched_within_two_sweeps_of_advancing_scans() -> None:
    watch, chain, store = setup()
    scan(watch, chain)
    sweep = -(-(WINDOW + 1) // RECHECK_SLICE)
    chain.fetched.clear()
    for _ in range(2 * sweep):
        chain.mine()
        store.blocks[chain.head] = chain.hashes[chain.head]
        scan(watch, chain)
    window = range(chain.head - WINDOW, chain.head + 1)
    assert [n for n in window if not chain.fetched[n]] == []


def test_a_block_stored_from_another_fork_is_found_without_a_new_head() -> None:
    """The stored window is compared with the view at every scan: a full check follows. (The
    stale block is the one below the window, which a full check compares but never deletes.)"""
    watch, chain, store = setup()
    scan(watch, chain)
    store.blocks[chain.head - WINDOW] = digest(chain.head - WINDOW, fork=1)
    before = sum(chain.fetched.values())
    outcome = asyncio.run(watch.check(1, CONFIG, chain, chain.head, chain.hashes[chain.head]))  # type: ignore[arg-type]
    assert outcome.full
    assert sum(chain.fetched.values()) - before == WINDOW + 1


def test_a_changed_tip_or_broken_links_fetch_the_whole_window() -> None:
    watch, chain, store = setup()
    store.blocks.clear()  # nothing stored: nothing to repair, only what is fetched counts
    scan(watch, chain)
    chain.hashes[chain.head] = digest(chain.head, fork=2)  # the tip replaced, same height
    assert scan(watch, chain) == WINDOW + 1
    chain.mine()
    chain.hashes[chain.head - 1] = digest(chain.head - 1, fork=3)  # the old tip replaced
    assert scan(watch, chain) > WINDOW
