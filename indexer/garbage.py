"""A worker's cyclic garbage collection: on a clock, not by allocation counts.

CPython collects its youngest generation every 700 container allocations and promotes what
survives. A worker holds the blocks of its batches in flight (tens of thousands of lists) for
seconds, so they all reach the oldest generation, and every full collection (one per 25 % growth
of it) walks them all again: 12 % of a worker's CPU on a 3-transaction backlog, 6 % on
mainnet-shaped blocks (time in gc callbacks, `tindexer loadtest`, 150,000 and 6,000 blocks).
Reference counting frees everything but cycles (tracebacks, tasks, the workflow sandbox's
modules), and none of those needs collecting within milliseconds. So a worker process collects
the young generations every YOUNG_SECONDS and everything every FULL_EVERY of those: 3 % of its
CPU on the same backlog, and a cycle is garbage for at most FULL_EVERY x YOUNG_SECONDS.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
from collections.abc import AsyncIterator

YOUNG_SECONDS = 1.0
FULL_EVERY = 10


@contextlib.asynccontextmanager
async def collected_on_a_clock() -> AsyncIterator[None]:
    """Automatic collection off for the block, a collection every YOUNG_SECONDS instead; as it
    was afterwards. With automatic collection already off (a profiler, a test), nothing
    changes."""
    if not gc.isenabled():
        yield
        return
    gc.disable()
    collector = asyncio.create_task(_collect())
    try:
        yield
    finally:
        collector.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await collector
        gc.enable()


async def _collect() -> None:
    for young in itertools.count(1):
        await asyncio.sleep(YOUNG_SECONDS)
        gc.collect(2 if young % FULL_EVERY == 0 else 1)
