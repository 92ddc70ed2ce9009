"""A rolling deploy mid-backfill: old and new workers overlap, two Schedulers share the backlog.

Two old workers poll the task queue; a new deploy brings two new ones up one at a time, each
re-issuing the HeadScan start as `tindexer up` does (the ID is deterministic, so it finds the
running one), and SIGTERMs an old one after each new one is ready. Meanwhile a second Scheduler
(an admin-API backfill of the whole chain, `backfill:{chain}:0-N`) runs next to HeadScan's
own. Deterministic range IDs and the is-covered check must keep every range indexed once.
"""

from __future__ import annotations

import itertools
import time
from collections.abc import Callable

from temporalio.client import WorkflowExecutionStatus
from temporalio.common import WorkflowIDConflictPolicy, WorkflowIDReusePolicy

from indexer.worker import DRAIN_TIMEOUT
from indexer.workflows.inputs import IndexRangeResult, Range, SchedulerInput
from tests.support.faults import (
    POLL_SECONDS,
    UNAVAILABLE,
    FaultReport,
    assert_exactly_indexed,
    indexed_blocks,
    record,
    wait_covered,
    wait_indexed,
)
from tests.support.harness import Harness
from tests.support.simchain import set_faults
from tests.support.waiting import wait_until
from tests.support.workers import WorkerProcess, WorkerProcesses

BACKLOG = 40_000


async def test_rolling_deploy_with_two_schedulers_indexes_each_range_once(
    harness: Harness,
    sim_chain: Callable[..., str],
    database_url: str,
    worker_processes: WorkerProcesses,
) -> None:
    # During the roll a slow provider (100 ms a request, 2 in flight per worker: about 500
    # blocks/s per worker) keeps the backfill from finishing first; 4 ranges in flight per
    # worker drain in a few seconds. After the roll the provider is fast again.
    url = sim_chain(backlog=BACKLOG, txs_per_block=1, latency_seconds=0.1)
    row = await harness.add_chain(
        url,
        head_poll_interval_seconds=0.5,
        blocks_per_workflow=500,
        rpc_batch_size=25,
        rpc_max_concurrency=2,
    )
    chain = row.config.name
    address = harness.client.service_client.config.target_host

    def start_worker() -> WorkerProcess:
        return worker_processes.start(
            harness.task_queue, database_url, address, max_concurrent_activities=4
        )

    async def deploy_one() -> WorkerProcess:
        worker = start_worker()
        await worker.ready()
        await harness.start(chain)  # what a new `tindexer up` does: finds the running HeadScan
        return worker

    began = time.monotonic()
    old = [start_worker() for _ in range(2)]
    for worker in old:
        await worker.ready()
    await harness.start(chain)
    await harness.client.start_workflow(
        "Scheduler",
        SchedulerInput(chain, [Range(0, BACKLOG - 1)]),
        id=f"backfill:{chain}:0-{BACKLOG - 1}",
        task_queue=harness.task_queue,
        id_reuse_policy=WorkflowIDReusePolicy.ALLOW_DUPLICATE,
        id_conflict_policy=WorkflowIDConflictPolicy.USE_EXISTING,
    )

    await wait_indexed(harness, row.id, BACKLOG // 20, 60, "a twentieth of the backfill")
    drains = []
    for retiring in old:
        await deploy_one()
        drains.append(await retiring.terminate(timeout=DRAIN_TIMEOUT.total_seconds() + 10))
        assert retiring.process.returncode == 0, retiring.tail()
    fault_end = time.monotonic()
    at_roll_end = await indexed_blocks(harness.pool, row.id)
    assert at_roll_end < BACKLOG, "the backfill finished before the roll did"
    await set_faults(url, latency_seconds=0)
    done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)

    await wait_until(
        lambda: _all_closed(harness, chain),
        60,
        "every IndexRange run to close",
        POLL_SECONDS,
        retry_on=UNAVAILABLE,
    )
    indexing, skipped, blocks = await _index_range_runs(harness, chain)
    overlaps = [(a, b) for a, b in itertools.pairwise(indexing) if b[0] <= a[1]]
    assert not overlaps, f"ranges indexed twice: {overlaps[:5]}"
    assert indexing[0][0] == 0 and indexing[-1][1] == BACKLOG - 1
    assert all(b[0] == a[1] + 1 for a, b in itertools.pairwise(indexing))
    assert blocks == BACKLOG  # the blocks the runs say they wrote: each block once
    record(
        FaultReport.from_check(
            "8-rolling-deploy",
            "2 old + 2 new worker processes rolled one by one (start new, SIGTERM old)"
            " mid-backfill; HeadScan start re-issued by each new worker; a second Scheduler"
            " (admin backfill) over the same backlog",
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - began,
            metrics={
                "IndexRange runs that wrote blocks": len(indexing),
                "IndexRange runs that found their range indexed (skipped)": skipped,
                "ranges indexed twice": len(overlaps),
                "blocks written by IndexRange runs (sum of results)": blocks,
            },
            details={
                "drain_seconds": [round(d, 2) for d in drains],
                "blocks_indexed_at_roll_end": at_roll_end,
            },
        )
    )


async def _all_closed(harness: Harness, chain: str) -> bool:
    async for execution in harness.client.list_workflows(
        f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
        " AND ExecutionStatus = 'Running'"
    ):
        del execution
        return False
    return True


async def _index_range_runs(harness: Harness, chain: str) -> tuple[list[tuple[int, int]], int, int]:
    """Ranges of the runs that wrote blocks (sorted), runs that skipped, and blocks written."""
    indexing: list[tuple[int, int]] = []
    skipped = blocks = 0
    async for execution in harness.client.list_workflows(
        f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
    ):
        assert execution.status == WorkflowExecutionStatus.COMPLETED, execution.id
        handle = harness.client.get_workflow_handle(
            execution.id, run_id=execution.run_id, result_type=IndexRangeResult
        )
        result = await handle.result()
        if result.skipped:
            skipped += 1
            continue
        start, end = execution.id.rsplit(":", 1)[1].split("-")
        indexing.append((int(start), int(end)))
        blocks += result.blocks
    return sorted(indexing), skipped, blocks
