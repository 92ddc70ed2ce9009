"""Several batches of one range in flight while the budget has room, one when it is tight, stored
in block order whatever order their fetches end in, linked across batches (activities/stream.py).

The fetch and the store are stand-ins: each fetch waits until the test lets it answer, so the
test decides the order in which batches arrive and sees how many are being fetched at once.
"""

from __future__ import annotations

import asyncio
import contextlib
from dataclasses import dataclass, field

import pytest

from indexer.activities.stream import MAX_BATCHES_IN_FLIGHT, Batch, stream_range
from indexer.chain.fetcher import FetchedBlocks
from indexer.chain.model import BadChainData
from indexer.worker_budget import ByteBudget
from tests.support.rows import bare_block

BYTES_PER_BLOCK = 100  # what the stand-in provider answers per block


@dataclass
class Provider:
    """Answers a batch once the test releases it; records what was asked and what was stored."""

    broken_parent: int | None = None  # a block whose parentHash points elsewhere
    asked: list[tuple[int, int, bool]] = field(default_factory=list)
    answers: dict[int, asyncio.Event] = field(default_factory=dict)  # by first block
    fetching: int = 0
    most_fetching: int = 0
    stored: list[int] = field(default_factory=list)

    async def fetch(self, first: int, last: int, linked: bool) -> FetchedBlocks:
        self.asked.append((first, last, linked))
        self.fetching += 1
        self.most_fetching = max(self.most_fetching, self.fetching)
        try:
            await self.answers.setdefault(first, asyncio.Event()).wait()
        finally:
            self.fetching -= 1
        asked = last - first + 1 + (0 if linked or first == 0 else 1)
        blocks = [
            bare_block(n, parent=0xDEAD if n == self.broken_parent else None)
            for n in range(first, last + 1)
        ]
        return FetchedBlocks(blocks, asked * BYTES_PER_BLOCK)

    def answer(self, first: int) -> None:
        self.answers.setdefault(first, asyncio.Event()).set()

    def answer_all(self) -> None:
        for first, _, _ in self.asked:
            self.answer(first)

    async def store(self, batch: Batch) -> None:
        await asyncio.sleep(0)
        self.stored.extend(b.number for b in batch.blocks)


async def settle() -> None:
    for _ in range(50):
        await asyncio.sleep(0)


async def run_until_done(work: asyncio.Task[None], provider: Provider) -> None:
    while not work.done():
        provider.answer_all()
        await settle()
    await work


async def measured(budget: ByteBudget, provider: Provider) -> None:
    """The chain's probe batch (block 0 onward, 4 blocks): measured at BYTES_PER_BLOCK."""
    probe = asyncio.create_task(
        stream_range(budget, "c", 0, 3, fetch=provider.fetch, store=provider.store)
    )
    await run_until_done(probe, provider)
    provider.asked.clear()
    provider.stored.clear()


async def test_a_range_fetches_several_batches_at_once_while_the_budget_has_room() -> None:
    budget = ByteBudget(100_000)  # batches of 12,500 bytes: about 80 blocks; room for 8
    provider = Provider()
    await measured(budget, provider)
    work = asyncio.create_task(
        stream_range(budget, "c", 4, 2_003, fetch=provider.fetch, store=provider.store)
    )
    await settle()
    assert provider.fetching == MAX_BATCHES_IN_FLIGHT  # the cap, not the budget, stopped it
    assert budget.in_flight <= budget.budget_bytes
    starts = [first for first, _, _ in provider.asked]
    assert starts == sorted(starts) and starts[0] == 4
    # Only the range's first batch has its parent fetched; the others are linked by the stream.
    assert [linked for _, _, linked in provider.asked] == [False] + [True] * (len(starts) - 1)
    await run_until_done(work, provider)
    assert provider.stored == list(range(4, 2_004))
    assert budget.in_flight == 0 and budget.high_water > budget.budget_bytes / 2


async def test_a_tight_budget_fetches_one_batch_at_a_time() -> None:
    budget = ByteBudget(100_000)
    provider = Provider()
    await measured(budget, provider)
    other = await budget.reserve(85_000)  # another range's bytes: room for one batch only
    work = asyncio.create_task(
        stream_range(budget, "c", 4, 503, fetch=provider.fetch, store=provider.store)
    )
    await settle()
    while not work.done():
        assert provider.fetching <= 1
        provider.answer_all()
        await settle()
    await work
    assert provider.most_fetching == 1 and len(provider.asked) > 3
    assert provider.stored == list(range(4, 504))
    other.release()
    assert budget.in_flight == 0


async def test_batches_are_stored_in_block_order_whatever_order_their_fetches_end_in() -> None:
    budget = ByteBudget(100_000)
    provider = Provider()
    await measured(budget, provider)
    work = asyncio.create_task(
        stream_range(budget, "c", 4, 803, fetch=provider.fetch, store=provider.store)
    )
    await settle()
    asked = list(provider.asked)
    assert len(asked) >= 3
    for first, _, _ in reversed(asked[1:]):  # all but the first answer, the last one first
        provider.answer(first)
    await settle()
    assert provider.stored == []  # none is stored before the first
    provider.answer(asked[0][0])
    for _ in range(10):
        await settle()
    assert provider.stored == list(range(4, asked[-1][1] + 1))
    await run_until_done(work, provider)
    assert provider.stored == list(range(4, 804))
    assert budget.in_flight == 0


async def test_a_batch_not_linking_to_the_batch_before_fails_after_the_batches_before() -> None:
    budget = ByteBudget(100_000)
    provider = Provider()
    await measured(budget, provider)
    work = asyncio.create_task(
        stream_range(budget, "c", 4, 803, fetch=provider.fetch, store=provider.store)
    )
    await settle()
    third = provider.asked[2][0]
    provider.broken_parent = third  # the first block of the third batch
    with pytest.raises(BadChainData, match=f"block {third}: parentHash"):
        await run_until_done(work, provider)
    assert provider.stored == list(range(4, third))
    assert budget.in_flight == 0


async def test_a_range_cancelled_with_several_batches_in_flight_releases_them_all() -> None:
    budget = ByteBudget(100_000)
    provider = Provider()
    await measured(budget, provider)
    work = asyncio.create_task(
        stream_range(budget, "c", 4, 2_003, fetch=provider.fetch, store=provider.store)
    )
    await settle()
    provider.answer(provider.asked[1][0])  # one fetched, waiting for the first to be stored
    await settle()
    # Its fetch ended, so another batch started in its place.
    assert provider.fetching == MAX_BATCHES_IN_FLIGHT and len(provider.asked) > 4
    assert budget.in_flight > 0
    work.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await work
    await settle()
    assert budget.in_flight == 0 and provider.fetching == 0 and provider.stored == []


async def test_batches_fetched_ahead_of_a_slow_store_leave_the_provider_busy() -> None:
    """Fetched batches waiting for the store are not fetches: the range goes on asking, up to
    MAX_BATCHES_IN_FLIGHT at once, until the budget (not a count of unstored batches) is full."""
    budget = ByteBudget(100_000)  # batches of 12,500 bytes: room for 8
    provider = Provider()
    await measured(budget, provider)
    stores = asyncio.Event()

    async def slow_store(batch: Batch) -> None:
        await stores.wait()
        await provider.store(batch)

    work = asyncio.create_task(
        stream_range(budget, "c", 4, 2_003, fetch=provider.fetch, store=slow_store)
    )
    for _ in range(10):  # every fetch answered while the first batch's store waits
        provider.answer_all()
        await settle()
        assert provider.fetching <= MAX_BATCHES_IN_FLIGHT
    assert provider.stored == [] and provider.fetching == 0
    assert len(provider.asked) > MAX_BATCHES_IN_FLIGHT, provider.asked
    assert budget.budget_bytes / 2 < budget.in_flight <= budget.budget_bytes
    stores.set()
    await run_until_done(work, provider)
    assert provider.stored == list(range(4, 2_004))
    assert budget.in_flight == 0
