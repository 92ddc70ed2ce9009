"""Background collectors: refresh on an interval into metrics, so a scrape only reads a cache.

A slow or dead dependency then never slows `/metrics`; each collector's duration, last success
and errors are metrics of their own, and one failing refresh never stops the others.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
from abc import ABC, abstractmethod

from exporter.metrics import Metrics

log = logging.getLogger(__name__)

# The most of the process's time one collector may take: a refresh that took long (the progress
# collector reads every chain: ~0.5-1 s at 100 chains on a loaded 2-core machine, every 2 s)
# spaces out the next one, so scrapes and the worker sharing the event loop are not starved.
BUSY_SHARE = 0.2


def pause_after(interval: float, took: float) -> float:
    """Seconds to wait after a refresh that took `took`: the interval, or longer so that
    refreshing takes at most BUSY_SHARE of the time."""
    return max(interval, took * (1 / BUSY_SHARE - 1))


class PeriodicCollector(ABC):
    """Subclasses implement `refresh()`; `run()` calls it every `interval` seconds."""

    name: str = "collector"

    def __init__(self, metrics: Metrics, interval: float = 5.0, timeout: float | None = None):
        self.metrics = metrics
        self.interval = interval
        self.timeout = timeout if timeout is not None else max(1.0, interval)

    @abstractmethod
    async def refresh(self) -> None:
        """Read the source and set this collector's metrics."""

    async def on_failure(self, error: BaseException) -> None:  # noqa: B027 (optional hook)
        """Called after a failed refresh (e.g. to set an `up` gauge to 0)."""

    async def close(self) -> None:  # noqa: B027 (optional hook)
        """Release what the collector holds (connections); called when it stops."""

    async def refresh_once(self) -> bool:
        started = time.perf_counter()
        try:
            await asyncio.wait_for(self.refresh(), self.timeout)
        except Exception as error:  # one collector's failure must not stop the others
            self.metrics.collector_errors.labels(self.name).inc()
            log.warning("collector %s failed: %s: %s", self.name, type(error).__name__, error)
            await self.on_failure(error)
            return False
        finally:
            self.metrics.collector_duration.labels(self.name).set(time.perf_counter() - started)
        self.metrics.collector_last_success.labels(self.name).set(time.time())
        return True

    async def run(self) -> None:
        while True:
            started = time.perf_counter()
            await self.refresh_once()
            await asyncio.sleep(pause_after(self.interval, time.perf_counter() - started))


@contextlib.asynccontextmanager
async def running(*collectors: PeriodicCollector):  # type: ignore[no-untyped-def]
    """Run collectors in the background for the duration of the block."""
    tasks = [asyncio.create_task(c.run(), name=f"collector:{c.name}") for c in collectors]
    try:
        yield
    finally:
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        await asyncio.gather(*(c.close() for c in collectors), return_exceptions=True)
