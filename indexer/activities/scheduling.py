"""Activities that start workflows: a bounded pool of client starts, and in-flight accounting."""

from __future__ import annotations

import asyncio
import itertools
import random
import time

from opentelemetry import context as otel_context
from opentelemetry import trace
from temporalio import activity
from temporalio.client import Client
from temporalio.service import RPCError, RPCStatusCode

from exporter.metrics import Metrics
from exporter.tracing import tracer
from indexer.activities.chain_cache import ChainCache, knobs
from indexer.activities.heartbeat import heartbeating, worker_stops_within
from indexer.store.ranges import uncovered
from indexer.temporal_client import (
    INDEX_RANGE,
    SCHEDULER,
    index_range_id,
    inflight_ranges_query,
    scheduler_id,
    start_index_range,
    start_scheduler,
)
from indexer.workflows.activity_names import SCHEDULER_TICK, START_RANGES, START_SCHEDULER
from indexer.workflows.inputs import (
    Range,
    SchedulerInput,
    SchedulerTick,
    SchedulerTickInput,
    StartRangesInput,
    StartRangesResult,
)

# How often a tick that waits for room counts the unfinished ranges again: how late, at most,
# the Scheduler notices a range that ended.
ROOM_POLL_SECONDS = 1.0


class SchedulingActivities:
    def __init__(
        self,
        client: Client,
        chains: ChainCache,
        task_queue: str,
        starters: list[Client] | None = None,
    ) -> None:
        self.client = client
        # Starts go through clients that fail fast, taken in turn: each is its own connection.
        self.starters = itertools.cycle(starters or [client])
        self.chains = chains
        self.task_queue = task_queue
        self.metrics: Metrics = chains.metrics

    async def _start_one(self, request: StartRangesInput, block_range: Range, size: int) -> bool:
        """Start one IndexRange unless its slot's is running; True if a new run started."""
        attempt = 0
        while True:
            try:
                return await start_index_range(
                    next(self.starters),
                    request.chain,
                    block_range,
                    size,
                    request.max_attempts,
                    self.task_queue,
                )
            except RPCError as exc:
                # Never drop a range: count the refusal, back off with jitter, try again.
                reason = exc.status.name.lower() if exc.status else "unknown"
                self.metrics.temporal_request_errors.labels("start_workflow", reason).inc()
                rate_limited = exc.status == RPCStatusCode.RESOURCE_EXHAUSTED
                if rate_limited:
                    self.metrics.rate_limited.labels("temporal").inc()
                else:
                    self.metrics.workflow_start_failures.labels(request.chain, reason).inc()
                attempt += 1
                delay = random.uniform(0, min(10.0, 0.2 * 2**attempt))
                activity.logger.warning(
                    "%s starting %s, retrying in %.2fs",
                    "rate limited by temporal" if rate_limited else f"{reason} error",
                    index_range_id(request.chain, block_range, size),
                    delay,
                    extra={"source": "temporal", "chain": request.chain, "wait_seconds": delay},
                )
                await asyncio.sleep(delay)

    @activity.defn(name=START_RANGES)
    async def start_ranges(self, request: StartRangesInput) -> StartRangesResult:
        """Start every range with at most `parallelism` starts in flight, in the given order."""
        chain = await self.chains.chain(request.chain)
        # Ranges indexed since the caller listed its gaps need no new run.
        todo = await uncovered(
            self.chains.pool, chain.id, [(r.start, r.end) for r in request.ranges]
        )
        queue: asyncio.Queue[Range] = asyncio.Queue()
        for block_range in request.ranges:
            if (block_range.start, block_range.end) in todo:
                queue.put_nowait(block_range)
        self.metrics.scheduler_parallelism.labels(request.chain).set(request.parallelism)

        started = 0

        async def starter() -> None:
            nonlocal started
            while not queue.empty():
                block_range = queue.get_nowait()
                if await self._start_one(request, block_range, chain.config.blocks_per_workflow):
                    started += 1
                    self.metrics.workflows_started.labels(request.chain, INDEX_RANGE).inc()
                    self.metrics.blocks_scheduled.labels(request.chain, request.mode).inc(
                        block_range.size
                    )
                activity.heartbeat()

        workers = min(request.parallelism, queue.qsize())
        # Each batch roots its own trace (linked to the caller's), so a trace runs from the
        # batch through IndexRange to fetch and store instead of spanning HeadScan's lifetime.
        caller = trace.get_current_span().get_span_context()
        with (
            tracer().start_as_current_span(
                "schedule_batch",
                context=otel_context.Context(),
                links=[trace.Link(caller)] if caller.is_valid else [],
                attributes={"chain": request.chain, "mode": request.mode, "ranges": workers},
            ),
            self.metrics.schedule_batch_duration.labels(request.chain).time(),
        ):
            # A start retried for seconds under rate limits must not look like a dead worker.
            async with heartbeating():
                await asyncio.gather(*(starter() for _ in range(workers)))
        return StartRangesResult(started=started)

    @activity.defn(name=SCHEDULER_TICK)
    async def scheduler_tick(self, request: SchedulerTickInput) -> SchedulerTick:
        """Unfinished IndexRange workflows of the chain, and its current knobs. Asked to wait,
        it answers as soon as fewer than max_inflight_ranges are unfinished, or when the wait
        ends or its worker begins to stop (a draining worker must not sit out a wait)."""
        chain = await self.chains.chain(request.chain)
        chain_knobs = knobs(chain.config)
        if request.first_of_continued_run:
            self.metrics.scheduler_continue_as_new.labels(request.chain).inc()
        deadline = time.monotonic() + request.wait_for_room_seconds
        async with heartbeating():
            inflight = await self._count_inflight(request.chain)
            while inflight >= chain_knobs.max_inflight_ranges:
                left = deadline - time.monotonic()
                if left <= 0 or await worker_stops_within(min(ROOM_POLL_SECONDS, left)):
                    break
                inflight = await self._count_inflight(request.chain)
        return SchedulerTick(inflight=inflight, knobs=chain_knobs)

    async def _count_inflight(self, chain: str) -> int:
        try:
            count = await self.client.count_workflows(inflight_ranges_query(chain))
        except RPCError as exc:
            status = exc.status.name.lower() if exc.status else "unknown"
            self.metrics.temporal_request_errors.labels("count_workflows", status).inc()
            raise
        self.metrics.inflight_ranges.labels(chain).set(count.count)
        return count.count

    @activity.defn(name=START_SCHEDULER)
    async def start_scheduler(self, request: SchedulerInput) -> bool:
        """Start the chain's Scheduler for a backlog unless one is running; True if started."""
        async with heartbeating():
            started = await start_scheduler(
                self.client, request, scheduler_id(request.chain), self.task_queue
            )
        if started:
            self.metrics.workflows_started.labels(request.chain, SCHEDULER).inc()
        return started
