"""Background heartbeats: proof that the worker running an activity is still alive."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import AsyncIterator

from temporalio import activity

# Well inside the workflows' heartbeat timeout (workflows/policies.HEARTBEAT_TIMEOUT, 10 s), which
# every activity has: a worker that dies (SIGKILL, OOM, a lost host) hands its activities back
# to Temporal within that long, not after their start-to-close timeouts (up to minutes).
HEARTBEAT_SECONDS = 2.0


@contextlib.asynccontextmanager
async def heartbeating(interval: float = HEARTBEAT_SECONDS) -> AsyncIterator[None]:
    """Heartbeat in the background while a long step runs, so a dead worker is noticed fast."""

    async def beat() -> None:
        while True:
            activity.heartbeat()
            await asyncio.sleep(interval)

    task = asyncio.create_task(beat())
    try:
        yield
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


async def worker_stops_within(seconds: float) -> bool:
    """Sleep up to `seconds`; True, at once, if this worker begins shutting down meanwhile."""
    try:
        await asyncio.wait_for(activity.wait_for_worker_shutdown(), seconds)
    except TimeoutError:
        return False
    return True
