"""Scheduler: starts a large backlog as IndexRange workflows in batches, bounded in flight."""

from __future__ import annotations

from datetime import timedelta

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.inputs import (
        SchedulerInput,
        SchedulerTick,
        SchedulerTickInput,
        StartRangesInput,
        StartRangesResult,
    )
    from indexer.workflows.policies import (
        HEARTBEAT_TIMEOUT,
        PATIENT,
        SCHEDULER_TICK_TIMEOUT,
        START_RANGES_TIMEOUT,
    )
    from indexer.workflows.ranges import take_ranges

FULL_WAIT = timedelta(seconds=1)  # how long to wait when max_inflight_ranges are unfinished


@workflow.defn(name="Scheduler")
class Scheduler:
    @workflow.run
    async def run(self, request: SchedulerInput) -> int:
        """Returns the ranges started by this run; the rest go on in the next run."""
        gaps = request.gaps
        started = 0
        ticked = False
        while gaps:
            first_tick = not ticked
            ticked = True
            tick = await workflow.execute_activity(
                "scheduler_tick",
                SchedulerTickInput(request.chain, first_tick and request.runs > 0),
                result_type=SchedulerTick,
                start_to_close_timeout=SCHEDULER_TICK_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
            knobs = tick.knobs
            if started >= knobs.continue_as_new_threshold:
                workflow.continue_as_new(SchedulerInput(request.chain, gaps, request.runs + 1))
            room = min(
                knobs.max_inflight_ranges - tick.inflight,
                knobs.scheduler_batch_size,
                knobs.continue_as_new_threshold - started,
            )
            if room <= 0:
                await workflow.sleep(FULL_WAIT)
                continue
            batch, gaps = take_ranges(gaps, knobs.blocks_per_workflow, room)
            await workflow.execute_activity(
                "start_ranges",
                StartRangesInput(
                    request.chain, batch, "scheduler", knobs.parallelism, knobs.index_max_attempts
                ),
                result_type=StartRangesResult,
                start_to_close_timeout=START_RANGES_TIMEOUT,
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
            started += len(batch)
        return started
