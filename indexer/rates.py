"""Indexing throughput per chain, from samples of its indexed-block count over a sliding window.

Nothing in PostgreSQL says when a block was indexed, so the API samples the count each time
it computes a status (and on a timer) and divides the change by the time between samples.
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable

RATE_WINDOW_SECONDS = 60.0  # long enough to smooth batchy commits, short enough to follow changes
MIN_SPAN_SECONDS = 1.0  # a rate from samples closer than this is mostly noise


class RateTracker:
    """Blocks per second per chain; None until two samples at least a second apart exist."""

    def __init__(
        self,
        window_seconds: float = RATE_WINDOW_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.window = window_seconds
        self.clock = clock
        self._samples: dict[str, deque[tuple[float, int]]] = {}

    def observe(self, chain: str, indexed_blocks: int) -> float | None:
        """Record the chain's indexed count now; return its rate over the window."""
        now = self.clock()
        samples = self._samples.setdefault(chain, deque())
        if samples and indexed_blocks < samples[-1][1]:
            samples.clear()  # a reorg or a deleted and re-created chain: start over
        samples.append((now, indexed_blocks))
        while len(samples) > 2 and now - samples[1][0] >= self.window:
            samples.popleft()
        (t0, n0), (t1, n1) = samples[0], samples[-1]
        if t1 - t0 < MIN_SPAN_SECONDS:
            return None
        return (n1 - n0) / (t1 - t0)

    def forget(self, chains: set[str]) -> None:
        for chain in set(self._samples) - chains:
            del self._samples[chain]
