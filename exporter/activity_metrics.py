"""A worker interceptor that times every activity attempt and counts its timeouts."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from temporalio import activity
from temporalio.worker import (
    ActivityInboundInterceptor,
    ExecuteActivityInput,
    Interceptor,
)

from exporter.metrics import Metrics


class ActivityMetricsInterceptor(Interceptor):
    def __init__(self, metrics: Metrics) -> None:
        self.metrics = metrics

    def intercept_activity(self, next: ActivityInboundInterceptor) -> ActivityInboundInterceptor:
        return _TimedActivity(next, self.metrics)


class _TimedActivity(ActivityInboundInterceptor):
    def __init__(self, next: ActivityInboundInterceptor, metrics: Metrics) -> None:
        super().__init__(next)
        self.metrics = metrics

    async def execute_activity(self, input: ExecuteActivityInput) -> Any:
        name = activity.info().activity_type
        started = time.perf_counter()
        outcome = "error"
        try:
            result = await super().execute_activity(input)
            outcome = "ok"
            return result
        except asyncio.CancelledError:
            details = activity.cancellation_details()
            if details is not None and details.timed_out:
                outcome = "timeout"
                self.metrics.activity_timeouts.labels(name).inc()
            else:
                outcome = "cancelled"
            raise
        finally:
            self.metrics.activity_duration.labels(name, outcome).observe(
                time.perf_counter() - started
            )
