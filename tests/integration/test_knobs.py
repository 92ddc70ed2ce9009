"""Each scheduling knob doing its job, on a real Temporal dev server and a real PostgreSQL."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any

from temporalio.client import (
    Client,
    Interceptor,
    OutboundInterceptor,
    StartWorkflowInput,
    WorkflowExecution,
    WorkflowExecutionStatus,
    WorkflowHandle,
)

from indexer.store.chains import ChainRow
from indexer.workflows.inputs import IndexRangeResult
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness, fully_indexed
from tests.support.waiting import wait_until


async def executions(client: Client, query: str) -> list[WorkflowExecution]:
    return [execution async for execution in client.list_workflows(query)]


async def index_range_runs(harness: Harness, chain: str) -> list[WorkflowExecution]:
    return await executions(
        harness.client, f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
    )


async def index_everything(
    harness: Harness, row: ChainRow, head: int, timeout: float = 120
) -> None:
    """Backfill to the head, then let every IndexRange run close while the worker still runs."""
    chain = row.config.name
    await harness.start(chain)
    await wait_until(lambda: fully_indexed(harness, chain, head), timeout, "backfill")

    async def ranges_closed() -> bool:
        running = await executions(
            harness.client,
            f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
            " AND ExecutionStatus = 'Running'",
        )
        return not running

    await wait_until(ranges_closed, 60, "every IndexRange run to close")


async def assert_stored_exactly(harness: Harness, url: str, row: ChainRow, head: int) -> None:
    stored = await harness.stored_blocks(row.id)
    assert sorted(stored) == list(range(head + 1))
    assert stored == await expected_blocks(url, 0, head)
    assert await harness.ranges(row.id) == [(0, head)]


async def indexing_runs(harness: Harness, chain: str) -> list[tuple[int, int]]:
    """Ranges of the IndexRange runs that wrote blocks. A run started again in the moment its
    range's first run finished either returns skipped or, if the worker stopped first, never
    ran; both are left out. Call it after the worker has stopped.
    """
    ranges = []
    for execution in await index_range_runs(harness, chain):
        handle = harness.client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=IndexRangeResult
        )
        status = (await handle.describe()).status  # not visibility's: that trails a moment
        assert status != WorkflowExecutionStatus.FAILED, execution.id
        if status != WorkflowExecutionStatus.COMPLETED:
            continue  # started in that moment, after the worker stopped: it wrote nothing
        if not (await handle.result()).skipped:
            ranges.append(range_of(execution))
    return sorted(ranges)


def range_of(execution: WorkflowExecution) -> tuple[int, int]:
    start, end = execution.id.rsplit(":", 1)[1].split("-")
    return int(start), int(end)


async def test_scheduler_continues_as_new_at_threshold_without_skipping_or_repeating(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=600, txs_per_block=1)
    row = await harness.add_chain(
        url,
        blocks_per_workflow=10,
        catchup_threshold=0,  # everything through the Scheduler
        continue_as_new_threshold=20,
        scheduler_batch_size=5,
        max_inflight_ranges=1_000,
    )
    chain = row.config.name
    async with harness.worker():
        await index_everything(harness, row, 599)
        await wait_until(
            lambda: _scheduler_idle(harness, chain), 30, "the scheduler to finish its backlog"
        )
    runs = await executions(harness.client, f"WorkflowId = 'scheduler:{chain}'")
    continued = [r for r in runs if r.status == WorkflowExecutionStatus.CONTINUED_AS_NEW]
    assert len(continued) >= 2, [r.status for r in runs]  # 60 ranges / 20 per run
    assert len({r.run_id for r in runs}) == len(runs)
    # Every range indexed by exactly one run, and together they tile 0..599 exactly.
    assert await indexing_runs(harness, chain) == [(s, s + 9) for s in range(0, 600, 10)]
    await assert_stored_exactly(harness, url, row, 599)


async def _scheduler_idle(harness: Harness, chain: str) -> bool:
    running = await executions(
        harness.client, f"WorkflowId = 'scheduler:{chain}' AND ExecutionStatus = 'Running'"
    )
    return not running


async def test_small_backlog_is_scheduled_directly_newest_first(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=200, txs_per_block=1)
    row = await harness.add_chain(
        url, blocks_per_workflow=10, catchup_threshold=1_000, parallelism=1
    )
    async with harness.worker():
        await index_everything(harness, row, 199)
    ranges = await index_range_runs(harness, row.config.name)
    in_start_order = sorted(ranges, key=lambda r: r.start_time)
    assert [range_of(r) for r in in_start_order] == [(s, s + 9) for s in range(190, -1, -10)]
    assert await executions(harness.client, f"WorkflowId = 'scheduler:{row.config.name}'") == []
    await assert_stored_exactly(harness, url, row, 199)


class StartConcurrency(Interceptor):
    """Counts IndexRange starts in flight through this client, independently of the indexer."""

    def __init__(self) -> None:
        self.current = 0
        self.peak = 0

    def intercept_client(self, next: OutboundInterceptor) -> OutboundInterceptor:
        meter = self

        class Outbound(OutboundInterceptor):
            async def start_workflow(self, input: StartWorkflowInput) -> WorkflowHandle[Any, Any]:
                if input.workflow != "IndexRange":
                    return await super().start_workflow(input)
                meter.current += 1
                meter.peak = max(meter.peak, meter.current)
                try:
                    await asyncio.sleep(0.01)  # widen the window so overlap is observable
                    return await super().start_workflow(input)
                finally:
                    meter.current -= 1

        return Outbound(next)


async def test_parallelism_bounds_concurrent_starts(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=400, txs_per_block=1)
    row = await harness.add_chain(
        url, blocks_per_workflow=5, catchup_threshold=0, parallelism=3, scheduler_batch_size=40
    )
    meter = StartConcurrency()
    config = harness.client.config()
    config["interceptors"] = [meter]
    harness.client = Client(**config)
    async with harness.worker():
        await index_everything(harness, row, 399)
    assert meter.peak == 3
    await assert_stored_exactly(harness, url, row, 399)


async def test_max_inflight_ranges_bounds_unfinished_ranges(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=1_000, txs_per_block=1, latency_seconds=0.05)
    row = await harness.add_chain(
        url,
        blocks_per_workflow=10,
        catchup_threshold=0,
        max_inflight_ranges=4,
        scheduler_batch_size=50,
        rpc_batch_size=5,
    )
    async with harness.worker():
        await index_everything(harness, row, 999)
    ranges = await index_range_runs(harness, row.config.name)
    assert len({r.id for r in ranges}) == 100
    events = sorted(
        [(r.start_time, 1) for r in ranges] + [(r.close_time, -1) for r in ranges if r.close_time],
        key=lambda event: (event[0], event[1]),  # a close before a start at the same instant
    )
    open_now = peak = 0
    for _, change in events:
        open_now += change
        peak = max(peak, open_now)
    assert peak == 4
    await assert_stored_exactly(harness, url, row, 999)


async def test_one_block_per_workflow_still_indexes_correctly(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=300, txs_per_block=2)
    row = await harness.add_chain(url, blocks_per_workflow=1, catchup_threshold=100)
    async with harness.worker():
        await index_everything(harness, row, 299)
    assert await indexing_runs(harness, row.config.name) == [(n, n) for n in range(300)]
    await assert_stored_exactly(harness, url, row, 299)
