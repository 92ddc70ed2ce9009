"""Scheduler: starts a large backlog as IndexRange workflows in batches, bounded in flight."""

from __future__ import annotations

from datetime import timedelta
from typing import NoReturn

from temporalio import workflow

with workflow.unsafe.imports_passed_through():
    from indexer.workflows.activity_names import SCHEDULER_TICK, START_RANGES
    from indexer.workflows.history import SCHEDULER_BOUNDED_HISTORY, history_full
    from indexer.workflows.inputs import (
        Range,
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

# While max_inflight_ranges are unfinished (an RPC outage can hold them for hours), each tick
# waits for room inside its activity, up to a wait that doubles from FULL_WAIT_FIRST to
# FULL_WAIT_MAX: the history grows by 6 events per wait instead of 11 per second, and a range
# that ends is still noticed within a second (activities/scheduling.ROOM_POLL_SECONDS).
FULL_WAIT_FIRST = 1.0
FULL_WAIT_MAX = 30.0
# Runs started before SCHEDULER_BOUNDED_HISTORY sleep this long in the workflow between ticks.
FULL_WAIT = timedelta(seconds=FULL_WAIT_FIRST)


def next_full_wait(previous: float) -> float:
    """The next wait for room while the Scheduler stays full: doubling, capped."""
    return min(FULL_WAIT_MAX, max(FULL_WAIT_FIRST, 2 * previous))


@workflow.defn(name="Scheduler")
class Scheduler:
    @workflow.run
    async def run(self, request: SchedulerInput) -> int:
        """Returns the ranges started by this run; the rest go on in the next run."""
        bounded = workflow.patched(SCHEDULER_BOUNDED_HISTORY)
        gaps = request.gaps
        started = 0
        wait = request.full_wait_seconds if bounded else 0.0
        first_tick = True
        while gaps:
            tick = await workflow.execute_activity(
                SCHEDULER_TICK,
                SchedulerTickInput(request.chain, first_tick and request.runs > 0, wait),
                result_type=SchedulerTick,
                start_to_close_timeout=SCHEDULER_TICK_TIMEOUT + timedelta(seconds=wait),
                heartbeat_timeout=HEARTBEAT_TIMEOUT,
                retry_policy=PATIENT,
            )
            first_tick = False
            knobs = tick.knobs
            if started >= knobs.continue_as_new_threshold:
                _continue(request, gaps, wait)
            room = min(
                knobs.max_inflight_ranges - tick.inflight,
                knobs.scheduler_batch_size,
                knobs.continue_as_new_threshold - started,
            )
            if room <= 0 and not bounded:
                await workflow.sleep(FULL_WAIT)
                continue
            if room <= 0:
                wait = next_full_wait(wait)
            else:
                wait = 0.0
                batch, gaps = take_ranges(gaps, knobs.blocks_per_workflow, room)
                await workflow.execute_activity(
                    START_RANGES,
                    StartRangesInput(
                        request.chain,
                        batch,
                        "scheduler",
                        knobs.parallelism,
                        knobs.index_max_attempts,
                    ),
                    result_type=StartRangesResult,
                    start_to_close_timeout=START_RANGES_TIMEOUT,
                    heartbeat_timeout=HEARTBEAT_TIMEOUT,
                    retry_policy=PATIENT,
                )
                started += len(batch)
            if bounded and gaps and history_full(request.history):
                _continue(request, gaps, wait)
        return started


def _continue(request: SchedulerInput, gaps: list[Range], wait: float) -> NoReturn:
    """Continue as new with the backlog not yet started and the wait reached."""
    workflow.continue_as_new(
        SchedulerInput(request.chain, gaps, request.runs + 1, request.history, wait)
    )
