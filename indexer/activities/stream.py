"""A range streamed batch by batch: as many batches fetched at once as the worker's budget
admits, stored one at a time in block order.

Each batch is cut by bytes (the chain's measured answer bytes per block), holds a reservation
in the worker's ByteBudget from before its first request until its rows are committed, and is
stored in its own short transaction that records its blocks in indexed_ranges. A range thus
costs the worker at most the batches the budget lets it hold, however long it is or however
heavy its blocks, and a crash loses at most the batches in flight: those before are committed,
and a retry skips them.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from indexer.chain.answer_room import answer_room
from indexer.chain.fetcher import FetchedBlocks
from indexer.chain.model import Block, check_links
from indexer.worker_budget import ByteBudget, Reservation

# A batch aims at this many answer bytes (and at most an eighth of the budget, so one range
# leaves room for others): at the default 32 MiB budget, ~7 mainnet blocks with receipts, ~900
# 3-transaction blocks. A batch in memory (decoded blocks, COPY lines) is many times its answer
# bytes, so the share sets the worker's peak RSS: one worker with every slot offered peaked at
# 368 MiB on mainnet blocks with an eighth and 572 MiB with a quarter, indexing as fast (97.5
# and 98.4 blocks/s; bench/worker_rss.py). Each batch is a transaction with its interval-set
# updates, so smaller batches cost PostgreSQL more (bench/mainnet.py, results/mainnet.json).
MAX_BATCH_BYTES = 16 * 1024 * 1024
BUDGET_SHARE = 8
# Batches of one range being fetched at once: what one range asks of the node at once. One
# batch at a time left the node idle between a batch's requests (0.56x cryo on anvil); past the
# first, a batch starts only if the budget has its bytes now, so the budget (not this) decides
# how far fetches run ahead of the store. Batches fetched and waiting for the store do not
# count: counted, four of them left the node idle until the first was stored. Each batch sends
# its own requests, which the provider's transport bounds (RpcSettings.max_concurrency). On
# anvil (2,000 blocks of ~20 transactions, a loaded 2-core machine) 8 took 6-7.5 s in most
# rounds but 16-19 s in a third of them, with the node no busier (requests queued in the node
# past their timeout?); 4 took 5 s in most (bench/results/i22-anvil-datasets-after-*.json).
MAX_BATCHES_IN_FLIGHT = 4
# A chain's first batch in a worker measures its blocks (the others wait for it): a few blocks.
PROBE_BLOCKS = 4


# fetch(first, last, linked): blocks first..last, checked to chain through parentHash among
# themselves, with their bytes. Not `linked` (a range's first batch): block first's parent is
# checked too, against block first-1 from the provider. `linked`: the stream checks block
# first's parent against the batch before once both are in (Fetcher.get_blocks_batch).
FetchBatch = Callable[[int, int, bool], Awaitable[FetchedBlocks]]


@dataclass
class Batch:
    blocks: list[Block]
    reservation: Reservation
    answer_bytes: int


def batch_blocks(budget: ByteBudget, chain: str, remaining: int) -> int:
    """How many blocks the next batch asks for: its target bytes at the chain's bytes/block."""
    target = min(MAX_BATCH_BYTES, budget.budget_bytes // BUDGET_SHARE)
    return max(1, min(remaining, int(target // budget.bytes_per_block(chain))))


async def stream_range(
    budget: ByteBudget,
    chain: str,
    start: int,
    end: int,
    *,
    fetch: FetchBatch,
    store: Callable[[Batch], Awaitable[None]],
    most: int = MAX_BATCHES_IN_FLIGHT,
) -> None:
    """Fetch blocks start..end in batches and hand each to `store`, in order, one at a time.

    `fetch` reads one batch (Fetcher.get_blocks_batch, wrapped for tracing and timing); the
    answer bytes it returns correct the batch's reservation, which is released once `store`
    has written it. The range always has one batch going; more start while the budget has
    their bytes at once (ByteBudget.try_reserve: no waiting, and never ahead of a range that
    waits), up to `most` being fetched at once (fetched ones wait for the store within the
    budget). A batch is stored only after every batch before it, once its first block is
    checked to link to the last of the batch before (the first of all is checked against block
    start-1 by `fetch`). A failure anywhere stops the range after the batches before it are
    stored, and every reservation is released, on every path.
    """
    queue: asyncio.Queue[asyncio.Task[Batch] | None] = asyncio.Queue()
    # Batches not yet handed to `store`: their fetches to cancel and bytes to release on the
    # way out (stored ones are dropped, so their blocks are not kept).
    fetches: set[asyncio.Task[Batch]] = set()
    reservations: set[Reservation] = set()
    unstored = 0  # batches holding bytes: being fetched, fetched, or being stored
    being_fetched = 0  # batches whose answers are being read
    fetch_ended = asyncio.Event()  # set as each fetch ends: another may start
    measuring = False  # this range claimed the chain's probe and has not measured it yet

    def unmeasured() -> None:
        """The probe failed or never ran (cancelled): let another caller measure."""
        nonlocal measuring
        if measuring:
            measuring = False
            budget.probe_failed(chain)

    async def fetch_batch(first: int, last: int, asked: int, reservation: Reservation) -> Batch:
        nonlocal measuring, being_fetched
        # Answers are read under the reservation: a padded one waits for room, not passes.
        reading = answer_room.set(budget.answers(reservation))
        try:
            try:
                fetched = await fetch(first, last, first > start)
            finally:
                answer_room.reset(reading)
                being_fetched -= 1
                fetch_ended.set()
        except BaseException:
            unmeasured()
            raise
        reservation.correct(fetched.answer_bytes)
        budget.observe(chain, fetched.answer_bytes, asked)
        measuring = False
        return Batch(fetched.blocks, reservation, fetched.answer_bytes)

    async def produce() -> None:
        nonlocal unstored, measuring, being_fetched
        number = start
        while number <= end:
            probing = await budget.claim_probe(chain)
            measuring = measuring or probing
            count = batch_blocks(budget, chain, end - number + 1)
            last = number + (min(count, PROBE_BLOCKS) if probing else count) - 1
            asked = last - number + 1 + (1 if number == start and number > 0 else 0)
            size = budget.estimate(chain, asked)
            if probing or unstored == 0:
                try:
                    reservation = await budget.reserve(size)
                except BaseException:
                    unmeasured()
                    raise
            elif being_fetched >= most or (admitted := budget.try_reserve(size)) is None:
                await _room_or_fetch_ended(budget, fetch_ended)
                continue
            else:
                reservation = admitted
            reservations.add(reservation)
            unstored += 1
            being_fetched += 1
            fetching = asyncio.create_task(fetch_batch(number, last, asked, reservation))
            fetches.add(fetching)
            queue.put_nowait(fetching)
            number = last + 1
        queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    try:
        previous: Block | None = None
        while (fetching := await _next(queue, producer)) is not None:
            batch = await fetching
            fetches.discard(fetching)
            if previous is not None:
                check_links([previous, batch.blocks[0]])
            try:
                await store(batch)
            finally:
                batch.reservation.release()
                reservations.discard(batch.reservation)
                unstored -= 1
            previous = batch.blocks[-1]
        await producer
    finally:
        ending: list[asyncio.Task[Batch] | asyncio.Task[None]] = [producer, *fetches]
        for task in ending:
            task.cancel()
        for task in ending:
            with contextlib.suppress(BaseException):
                await task  # cancelled, or its failure is already the range's
        for reservation in reservations:
            reservation.release()
        unmeasured()  # a probe cancelled before it ran


async def _room_or_fetch_ended(budget: ByteBudget, fetch_ended: asyncio.Event) -> None:
    """Until bytes are given back (by this range's store or another's) or one of the range's
    fetches ends: either may let its next batch start."""
    fetch_ended.clear()
    waits = {asyncio.ensure_future(budget.freed()), asyncio.ensure_future(fetch_ended.wait())}
    try:
        await asyncio.wait(waits, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for wait in waits:
            wait.cancel()


async def _next(
    queue: asyncio.Queue[asyncio.Task[Batch] | None], producer: asyncio.Task[None]
) -> asyncio.Task[Batch] | None:
    """The queue's next batch, or the producer's failure if it fails first. An item taken
    just as this is cancelled is lost to the caller only: its fetch and bytes are tracked."""
    getter = asyncio.ensure_future(queue.get())
    try:
        await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
        if not getter.done():
            producer.result()  # raises its failure; if it simply ended, the queue ends with None
        return await getter
    finally:
        getter.cancel()
