"""Adaptive concurrency limit (AIMD): halve on overload, grow by one after a run of successes."""

from __future__ import annotations

import asyncio
import time
from types import TracebackType


class AdaptiveLimiter:
    """Bounds requests in flight; the bound adapts to what the provider tolerates."""

    def __init__(self, maximum: int, minimum: int = 1, cooldown_seconds: float = 1.0) -> None:
        self.maximum = maximum
        self.minimum = min(minimum, maximum)
        self.limit = maximum
        self.in_flight = 0
        self._successes = 0
        self._cooldown = cooldown_seconds
        self._last_cut = float("-inf")
        self._changed = asyncio.Condition()

    async def __aenter__(self) -> None:
        async with self._changed:
            await self._changed.wait_for(lambda: self.in_flight < self.limit)
            self.in_flight += 1

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        async with self._changed:
            self.in_flight -= 1
            self._changed.notify_all()

    def on_success(self) -> None:
        """Additive increase: one more slot after `limit` successes in a row."""
        self._successes += 1
        if self._successes >= self.limit and self.limit < self.maximum:
            self.limit += 1
            self._successes = 0

    def on_overload(self) -> None:
        """Multiplicative decrease, at most once per cooldown so one burst of 429s cuts once."""
        now = time.monotonic()
        self._successes = 0
        if now - self._last_cut >= self._cooldown:
            self.limit = max(self.minimum, self.limit // 2)
            self._last_cut = now


class RequestRate:
    """At most `limit` requests per second to one provider, evenly spaced (no burst).

    Slots are handed out 1/rate apart, so any window of T seconds holds at most rate × T + 1
    requests. On a 429 the rate is halved (at most once a second); it then regains a tenth of
    the limit each second without one, back up to the limit.
    """

    CUT = 0.5
    FLOOR = 0.05  # of the limit: a throttled provider is still asked now and then
    RECOVERY_PER_SECOND = 0.1  # of the limit

    def __init__(self, limit: float) -> None:
        self.limit = limit
        self.rate = limit
        self._next_slot = 0.0
        self._updated = time.monotonic()
        self._last_cut = float("-inf")
        self._turn = asyncio.Lock()  # requests leave in the order they asked

    def _recover(self, now: float) -> None:
        regained = self.limit * self.RECOVERY_PER_SECOND * (now - self._updated)
        self.rate = min(self.limit, self.rate + regained)
        self._updated = now

    def wait_seconds(self) -> float:
        """How long a request taken now would wait for its slot."""
        return max(0.0, self._next_slot - time.monotonic())

    def reserve(self) -> float:
        """Take the next slot; the seconds to wait for it."""
        now = time.monotonic()
        self._recover(now)
        slot = max(now, self._next_slot)
        self._next_slot = slot + 1.0 / self.rate
        return slot - now

    async def acquire(self) -> None:
        """Wait for the next slot. Slots are taken when a request leaves, not when it queues:
        one woken late (a busy event loop) pushes the next back rather than leave beside it."""
        async with self._turn:
            wait = self.wait_seconds()
            if wait > 0:
                await asyncio.sleep(wait)
            self.reserve()  # from now if woken late: the next slot is an interval after this

    def on_throttled(self) -> None:
        now = time.monotonic()
        self._recover(now)
        if now - self._last_cut >= 1.0:
            self.rate = max(self.limit * self.FLOOR, self.rate * self.CUT)
            self._last_cut = now
