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
