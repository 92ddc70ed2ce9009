"""Long-running workflows keep their histories bounded: a Scheduler held full by an RPC outage
grows its history slowly and continues as new at its bound, carrying its backlog; a HeadScan
whose scans carry 10,000 gaps continues as new by size long before SCANS_PER_RUN scans."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from temporalio.api.workflow.v1 import WorkflowExecutionInfo
from temporalio.client import WorkflowExecution, WorkflowExecutionStatus
from temporalio.testing import ActivityEnvironment

from indexer.activities.chain_cache import ChainCache
from indexer.activities.scan_head import MAX_GAPS_PER_SCAN
from indexer.activities.scheduling import SchedulingActivities
from indexer.temporal_client import (
    HEAD_SCAN,
    head_scan_id,
    index_range_id,
    scheduler_id,
    start_index_range,
    start_once,
    start_scheduler,
)
from indexer.workflows.headscan import SCANS_PER_RUN
from indexer.workflows.inputs import (
    HeadScanInput,
    HistoryBounds,
    Range,
    SchedulerInput,
    SchedulerTickInput,
)
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness
from tests.support.simchain import clear_faults, set_faults
from tests.support.waiting import wait_until

BACKLOG = 200  # blocks 0..199: 20 ranges of 10
RANGE_BLOCKS = 10
INFLIGHT = 2
# An outage of this long, seen from the Scheduler: the rate its history grows at is measured.
HOLD_SECONDS = 30.0
# The code before the fix ticked every second while full: 3 activity and 3 workflow-task events,
# plus a timer and its workflow task (5), about 11 events a second, 660 a minute. Waiting inside
# the tick with a doubling wait adds 6 events per wait: 1+2+4+8+16 s are 5 waits in 31 s.
MAX_EVENTS_PER_MINUTE_FULL = 120


async def runs(harness: Harness, workflow_id: str) -> list[WorkflowExecution]:
    """Every run of the workflow ID, oldest first."""
    found = [e async for e in harness.client.list_workflows(f"WorkflowId = '{workflow_id}'")]
    return sorted(found, key=lambda e: e.start_time)


async def run_info(harness: Harness, execution: WorkflowExecution) -> WorkflowExecutionInfo:
    """The run's own description: its history's length and size, as the server counts them."""
    handle = harness.client.get_workflow_handle(execution.id, run_id=execution.run_id)
    return (await handle.describe()).raw_description.workflow_execution_info


async def running_ranges(harness: Harness, chain: str) -> list[str]:
    query = (
        f"WorkflowType = 'IndexRange' AND ExecutionStatus = 'Running'"
        f" AND WorkflowId STARTS_WITH 'index:{chain}:'"
    )
    return sorted([e.id async for e in harness.client.list_workflows(query)])


async def ranges_running(harness: Harness, chain: str, count: int) -> bool:
    return len(await running_ranges(harness, chain)) == count


async def scheduler_history_length(harness: Harness, chain: str) -> int:
    """Events in the Scheduler's current run."""
    handle = harness.client.get_workflow_handle(scheduler_id(chain))
    return (await handle.describe()).raw_description.workflow_execution_info.history_length


async def hold_scheduler_full(
    harness: Harness, url: str, history: HistoryBounds | None = None
) -> str:
    """A chain whose every RPC call fails, and its Scheduler full: INFLIGHT ranges started, none
    able to finish. Returns the chain's name."""
    await set_faults(url, error_ratio=1.0)
    row = await harness.add_chain(
        url,
        blocks_per_workflow=RANGE_BLOCKS,
        max_inflight_ranges=INFLIGHT,
        scheduler_batch_size=INFLIGHT,
        rpc_max_retries=100,  # the ranges keep trying inside their activity: unfinished
    )
    chain = row.config.name
    request = SchedulerInput(chain, [Range(0, BACKLOG - 1)], history=history or HistoryBounds())
    await start_scheduler(harness.client, request, scheduler_id(chain), harness.task_queue)
    await wait_until(
        lambda: ranges_running(harness, chain, INFLIGHT), 30, f"{INFLIGHT} ranges in flight"
    )
    return chain


async def test_a_full_scheduler_history_grows_slowly_and_still_starts_at_once(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=1)
    async with harness.worker():
        chain = await hold_scheduler_full(harness, url)
        began, before = time.monotonic(), await scheduler_history_length(harness, chain)
        await asyncio.sleep(HOLD_SECONDS)  # the outage: what is measured is its duration
        grown = await scheduler_history_length(harness, chain) - before
        per_minute = grown / (time.monotonic() - began) * 60
        assert per_minute <= MAX_EVENTS_PER_MINUTE_FULL, f"{grown} events in {HOLD_SECONDS}s"
        assert await running_ranges(harness, chain) == [
            index_range_id(chain, Range(0, 9), RANGE_BLOCKS),
            index_range_id(chain, Range(10, 19), RANGE_BLOCKS),
        ]
        # The wait has grown past 15 s by now, yet a range that ends is replaced within the
        # tick's count interval (1 s) plus a start: the ranges started per minute do not drop.
        ended = time.monotonic()
        await harness.client.get_workflow_handle(
            index_range_id(chain, Range(0, 9), RANGE_BLOCKS)
        ).terminate()

        async def replaced() -> bool:
            return index_range_id(chain, Range(20, 29), RANGE_BLOCKS) in await running_ranges(
                harness, chain
            )

        await wait_until(replaced, 30, "the next range to start")
        assert time.monotonic() - ended < 10, "the Scheduler slept through the room it had"


async def test_a_waiting_tick_answers_at_once_when_its_worker_shuts_down(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    """A tick waiting for room must not hold a draining worker for the rest of its wait."""
    row = await harness.add_chain(sim_chain(backlog=10), max_inflight_ranges=1)
    chain = row.config.name
    # One unfinished range, on a task queue no worker polls: the chain is full until the end.
    await start_index_range(harness.client, chain, Range(0, 9), RANGE_BLOCKS, 1, harness.task_queue)
    await wait_until(lambda: ranges_running(harness, chain, 1), 30, "the range to be running")
    scheduling = SchedulingActivities(
        harness.client, ChainCache(harness.pool, harness.metrics), harness.task_queue
    )
    environment = ActivityEnvironment()
    began = time.monotonic()
    tick = asyncio.create_task(
        environment.run(scheduling.scheduler_tick, SchedulerTickInput(chain, False, 30.0))
    )
    await asyncio.sleep(1.5)  # a count or two into its wait
    assert not tick.done()
    environment.worker_shutdown()
    answer = await asyncio.wait_for(tick, 5)
    assert answer.inflight == 1
    assert time.monotonic() - began < 10  # not the 30 s it was allowed to wait


async def test_a_full_scheduler_continues_as_new_at_its_bound_with_its_backlog(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=1)
    bounds = HistoryBounds(max_events=20)
    async with harness.worker():
        chain = await hold_scheduler_full(harness, url, bounds)

        async def continued_twice() -> bool:
            closed = [
                r
                for r in await runs(harness, scheduler_id(chain))
                if r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
            ]
            return len(closed) >= 2

        await wait_until(continued_twice, 60, "the Scheduler to continue as new twice")
        await clear_faults(url)

        async def done() -> bool:
            last = (await runs(harness, scheduler_id(chain)))[-1]
            return last.status == WorkflowExecutionStatus.COMPLETED

        await wait_until(done, 120, "the Scheduler to start the whole backlog")
        await wait_until(lambda: ranges_running(harness, chain, 0), 60, "every range to finish")
    scheduler_runs = await runs(harness, scheduler_id(chain))
    for run in scheduler_runs[:-1]:
        assert run.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
        # The bound is checked once per tick (and start): one more of those may follow it.
        assert (await run_info(harness, run)).history_length <= bounds.max_events + 14
    # Carried across every run: each range started exactly once, none skipped.
    started = [
        e.id
        async for e in harness.client.list_workflows(
            f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
        )
    ]
    assert sorted(started) == sorted(
        index_range_id(chain, Range(s, s + RANGE_BLOCKS - 1), RANGE_BLOCKS)
        for s in range(0, BACKLOG, RANGE_BLOCKS)
    )
    row = await harness.chain(chain)
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, BACKLOG - 1)
    assert await harness.ranges(row.id) == [(0, BACKLOG - 1)]


async def test_headscan_with_10000_gaps_per_scan_continues_as_new_by_size(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    # Every odd block indexed already: each scan finds 10,000 one-block gaps (the most a scan
    # returns) and hands them to the Scheduler, about 600 kB of history per scan.
    head = 2 * MAX_GAPS_PER_SCAN
    url = sim_chain(backlog=head + 1, txs_per_block=1)
    row = await harness.add_chain(
        url,
        head_poll_interval_seconds=0.2,
        catchup_threshold=0,  # every gap to the Scheduler, which starts one range at a time
        max_inflight_ranges=1,
        blocks_per_workflow=1,
    )
    chain = row.config.name
    await harness.pool.execute(
        "INSERT INTO indexed_ranges (chain_id, start_block, end_block)"
        " SELECT $1, n, n FROM generate_series(1, $2, 2) AS n",
        row.id,
        head,
    )
    bounds = HistoryBounds()  # the defaults: what a deployed HeadScan runs with
    async with harness.worker():
        await start_once(
            harness.client, HEAD_SCAN, HeadScanInput(chain), head_scan_id(chain), harness.task_queue
        )

        async def continued() -> bool:
            return any(
                r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW
                for r in await runs(harness, head_scan_id(chain))
            )

        await wait_until(continued, 90, "HeadScan to continue as new")
    first = (await runs(harness, head_scan_id(chain)))[0]
    info = await run_info(harness, first)
    history = await harness.client.get_workflow_handle(
        first.id, run_id=first.run_id
    ).fetch_history()
    scans = sum(e.HasField("timer_fired_event_attributes") for e in history.events)
    assert scans < SCANS_PER_RUN
    # Each scan's 10,000 gaps were decoded within the sandbox's deadlock limit, every time.
    assert not any(e.HasField("workflow_task_failed_event_attributes") for e in history.events)
    assert info.history_length < bounds.max_events  # so it ended by size
    # Over the bound by at most one scan's worth (about 600 kB), far from Temporal's 50 MB.
    assert bounds.max_bytes <= info.history_size_bytes < bounds.max_bytes + 1024 * 1024
