"""A range streamed batch by batch: fetch the next batch while the last one is being stored.

Each batch is cut by bytes (the chain's measured answer bytes per block), holds a reservation
in the worker's ByteBudget from before its first request until its rows are committed, and is
stored in its own short transaction that records its blocks in indexed_ranges. A range thus
costs the worker at most a few batches of memory, however long it is or however heavy its
blocks, and a crash loses at most the batches in flight.
"""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable
from dataclasses import dataclass

from indexer.chain.answer_room import answer_room
from indexer.chain.fetcher import FetchedBlocks
from indexer.chain.model import Block
from indexer.worker_budget import ByteBudget, Reservation

# A batch aims at this many answer bytes (and at most an eighth of the budget, so a range, which
# holds two batches, leaves room for others): at the default 32 MiB budget, ~7 mainnet blocks
# with receipts, ~900 3-transaction blocks. A batch in memory (decoded blocks, COPY lines) is
# many times its answer bytes, so the share sets the worker's peak RSS: one worker with every
# slot offered peaked at 368 MiB on mainnet blocks with an eighth and 572 MiB with a quarter,
# indexing as fast (97.5 and 98.4 blocks/s; bench/worker_rss.py). Each batch is a transaction
# with its interval-set updates, so smaller batches cost PostgreSQL more (bench/mainnet.py,
# results/mainnet.json).
MAX_BATCH_BYTES = 16 * 1024 * 1024
BUDGET_SHARE = 8
# Batches fetched (or being fetched) while one is stored: one is enough to overlap the two,
# and each one more only holds more memory.
PIPELINE_DEPTH = 1
# A chain's first batch in a worker measures its blocks (the others wait for it): a few blocks.
PROBE_BLOCKS = 4


# fetch(first, last, previous): blocks first..last checked to link to `previous` (block
# first-1 as the batch before fetched it; None for a range's first batch), with their bytes.
FetchBatch = Callable[[int, int, Block | None], Awaitable[FetchedBlocks]]


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
    depth: int = PIPELINE_DEPTH,
) -> None:
    """Fetch blocks start..end in batches and hand each to `store`, in order, one at a time.

    `fetch` reads one batch (Fetcher.get_blocks_batch, wrapped for tracing and timing); the
    answer bytes it returns correct the batch's reservation, which is released once `store`
    has written it. While one batch is being stored, at most `depth` more are fetched or being
    fetched: a range holds at most depth + 1 batches. The first block of each batch is checked
    to link to the last of the batch before; the first of all against block start-1 from the
    provider. A failure on either side stops both and releases every reservation.
    """
    queue: asyncio.Queue[Batch | None] = asyncio.Queue()
    # Batches of this range not yet stored: the one being stored and `depth` fetched or being
    # fetched. A batch takes its place before it reserves bytes, and gives it up once stored.
    unstored = asyncio.Semaphore(depth + 1)

    async def produce() -> None:
        previous: Block | None = None
        number = start
        while number <= end:
            await unstored.acquire()
            try:
                probing = await budget.claim_probe(chain)
            except BaseException:
                unstored.release()
                raise
            count = batch_blocks(budget, chain, end - number + 1)
            last = number + (min(count, PROBE_BLOCKS) if probing else count) - 1
            asked = last - number + 1 + (1 if previous is None and number > 0 else 0)
            try:
                reservation = await budget.reserve(budget.estimate(chain, asked))
            except BaseException:
                if probing:
                    budget.probe_failed(chain)
                unstored.release()
                raise
            # Answers are read under the reservation: a padded one waits for room, not passes.
            reading = answer_room.set(budget.answers(reservation))
            try:
                try:
                    fetched = await fetch(number, last, previous)
                finally:
                    answer_room.reset(reading)
                reservation.correct(fetched.answer_bytes)
                budget.observe(chain, fetched.answer_bytes, asked)
                queue.put_nowait(Batch(fetched.blocks, reservation, fetched.answer_bytes))
            except BaseException:
                if probing:
                    budget.probe_failed(chain)
                reservation.release()
                unstored.release()
                raise
            previous, number = fetched.blocks[-1], last + 1
        queue.put_nowait(None)

    producer = asyncio.create_task(produce())
    getter: asyncio.Future[Batch | None] | None = None
    try:
        while True:
            getter = asyncio.ensure_future(queue.get())
            await asyncio.wait({getter, producer}, return_when=asyncio.FIRST_COMPLETED)
            if not getter.done() and producer.done() and producer.exception() is not None:
                getter.cancel()
                producer.result()  # raises the producer's failure
            batch = await getter
            if batch is None:
                break
            try:
                await store(batch)
            finally:
                batch.reservation.release()
                unstored.release()
        await producer
    finally:
        # A getter done before it could be cancelled took a batch from the queue that nothing
        # else will release (cancelled while awaited or stored, it is released already; a
        # second release is harmless).
        if (
            getter is not None
            and not getter.cancel()
            and not getter.cancelled()
            and (taken := getter.result()) is not None
        ):
            taken.reservation.release()
        producer.cancel()
        with contextlib.suppress(BaseException):
            await producer
        while not queue.empty():
            left = queue.get_nowait()
            if left is not None:
                left.reservation.release()
