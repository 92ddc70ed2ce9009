"""A range cancelled at any await point gives back every byte it reserved (activities/stream.py).

The fetch and the store are stand-ins that yield to the event loop a few times, so cancelling
after the n-th yield, for every n until the range finishes, cancels the range at each of its
await points in turn: while it probes, waits for bytes, fetches, queues, hands a batch over or
stores it.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from indexer.activities.stream import Batch, stream_range
from indexer.chain.fetcher import FetchedBlocks
from indexer.worker_budget import ByteBudget
from tests.support.rows import bare_block

BYTES_PER_BLOCK = 50  # what the stand-in provider answers per block
YIELDS = 2  # event-loop yields inside each fetch and each store


class Fetching:
    now = 0
    most = 0  # the most batches fetched at once, in the run that finished


async def fetch(first: int, last: int, linked: bool) -> FetchedBlocks:
    Fetching.now += 1
    Fetching.most = max(Fetching.most, Fetching.now)
    try:
        for _ in range(YIELDS):
            await asyncio.sleep(0)
    finally:
        Fetching.now -= 1
    asked = last - first + 1 + (0 if linked or first == 0 else 1)
    return FetchedBlocks([bare_block(n) for n in range(first, last + 1)], asked * BYTES_PER_BLOCK)


def storing(stored: list[int]) -> Callable[[Batch], Awaitable[None]]:
    async def store(batch: Batch) -> None:
        for _ in range(YIELDS):
            await asyncio.sleep(0)
        stored.extend(b.number for b in batch.blocks)

    return store


# One range alone (a batch of ~10 blocks once measured, room for several at once), or two
# ranges sharing a budget of a few batches of 2 or 3 blocks (their batches wait for each other).
CASES = {"alone": (8_000, [(1, 60)]), "sharing": (1_500, [(1, 40), (100, 139)])}


@pytest.mark.parametrize("case", CASES)
async def test_a_range_cancelled_at_any_await_point_releases_every_reserved_byte(
    case: str,
) -> None:
    budget_bytes, ranges = CASES[case]
    cancelled_at = []
    for step in range(100_000):
        budget = ByteBudget(budget_bytes)
        stored: list[int] = []
        Fetching.most = 0
        work = asyncio.ensure_future(
            asyncio.gather(
                *(
                    stream_range(budget, "c", low, high, fetch=fetch, store=storing(stored))
                    for low, high in ranges
                )
            )
        )
        for _ in range(step):
            await asyncio.sleep(0)
        if work.done():
            break
        work.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await work
        for _ in range(3):  # tasks the cancel left to finish their own cleanup
            await asyncio.sleep(0)
        assert (step, budget.in_flight) == (step, 0)
        assert not budget._waiters and not budget._probes, step
        cancelled_at.append(step)
    else:
        raise AssertionError("the ranges never finished")
    await work
    expected = [n for low, high in ranges for n in range(low, high + 1)]
    assert sorted(stored) == expected  # the last run, not cancelled, stored every block
    assert budget.in_flight == 0
    assert len(cancelled_at) >= 30  # really cancelled at many points, not once or twice
    # Batches were fetched several at once, so cancels also hit several in flight.
    assert Fetching.most >= 3 * len(ranges), Fetching.most
