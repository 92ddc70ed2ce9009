"""Polling until a condition holds: the one way every test waits for a real service."""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable


async def wait_until(
    condition: Callable[[], Awaitable[object]],
    timeout: float,
    what: str,
    interval: float = 0.2,
    *,
    retry_on: tuple[type[BaseException], ...] = (),
    diagnose: Callable[[], Awaitable[str]] | None = None,
) -> float:
    """Poll the async `condition` until true; fail with `what` after `timeout` seconds.

    Returns the monotonic time it became true (the fault suite measures recovery with it).
    An exception in `retry_on` counts as "not yet"; `diagnose` adds detail to the failure.
    """
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if await condition():
                return time.monotonic()
        except retry_on:
            pass
        await asyncio.sleep(interval)
    detail = f": {await diagnose()}" if diagnose else ""
    raise AssertionError(f"timed out after {timeout}s waiting for {what}{detail}")


def wait_until_sync(
    condition: Callable[[], object], timeout: float, what: str, interval: float = 0.05
) -> None:
    """`wait_until` for a test with no event loop (the worker pool's child processes)."""
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, f"timed out after {timeout}s waiting for {what}"
        time.sleep(interval)


@contextlib.asynccontextmanager
async def teardown_step(what: str, seconds: float = 60) -> AsyncIterator[None]:
    """Bound a fixture's clean-up: a hang fails naming the step and the await it hung in.

    Without it a stuck close (a pool waiting on a connection, a collector that never stops)
    runs into pytest's whole-test timeout, which shows threads, not the asyncio task that hung.
    """
    try:
        async with asyncio.timeout(seconds):
            yield
    except TimeoutError as error:
        raise AssertionError(f"teardown: {what} did not finish in {seconds} s") from error
