"""The doctor for the admin API: answer from the scrapes earlier requests already made.

The CLI scrapes, sleeps a window and scrapes again. An HTTP request should not sleep each time,
so the API keeps the rounds of scrapes it made and judges a new one against the newest earlier
round at least `window_seconds` old: only a request with no such round (the first, or the first
after a quiet spell) waits for the window.
"""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from indexer.doctor.report import FAMILIES, Report, judge
from indexer.doctor.scrape import INDEXER, TEMPORAL, Scrape, scrape_all

API_WINDOW_SECONDS = 5.0  # shorter than the CLI's 10 s: a request that must wait waits less
# A round older than this judges a window too long to say what throttles *now*.
MAX_ROUND_AGE_SECONDS = 60.0
# Rounds kept: at least half a window apart, so MAX_ROUNDS - 1 of them always span more than a
# window however fast requests come, and a request soon finds a round old enough.
MAX_ROUNDS = 6


@dataclass
class Round:
    scrapes: list[Scrape]
    at: float  # time.monotonic() when the round was complete


class DoctorSampler:
    """Scrapes the indexer's endpoints (and the Temporal server's) for GET /doctor."""

    def __init__(
        self,
        metrics_urls: list[str],
        temporal_url: str | None,
        window_seconds: float = API_WINDOW_SECONDS,
    ) -> None:
        self.metrics_urls = list(metrics_urls)
        self.temporal_url = temporal_url
        self.window_seconds = window_seconds
        self.targets = [(url, INDEXER) for url in metrics_urls]
        if temporal_url:
            self.targets.append((temporal_url, TEMPORAL))
        self._rounds: list[Round] = []
        self._lock = asyncio.Lock()

    async def _scrape(self) -> Round:
        """A new round; kept unless the newest kept one is less than half a window old."""
        round_ = Round(await scrape_all(self.targets, FAMILIES), time.monotonic())
        kept = [r for r in self._rounds if round_.at - r.at <= MAX_ROUND_AGE_SECONDS]
        if not kept or round_.at - kept[-1].at >= self.window_seconds / 2:
            kept.append(round_)
        self._rounds = kept[-MAX_ROUNDS:]
        return round_

    def _baseline(self, now: float) -> Round | None:
        old_enough = [r for r in self._rounds if now - r.at >= self.window_seconds]
        return old_enough[-1] if old_enough else None

    async def report(self) -> Report:
        """Verdicts over at least `window_seconds`, waiting only when no earlier round serves."""
        async with self._lock:
            latest = await self._scrape()
            baseline = self._baseline(latest.at)
            if baseline is None:
                baseline = self._rounds[0]  # the oldest recent round, maybe `latest` itself
                await asyncio.sleep(
                    max(0.0, self.window_seconds - (time.monotonic() - baseline.at))
                )
                latest = await self._scrape()
            return judge(baseline.scrapes, latest.scrapes, self.temporal_url)
