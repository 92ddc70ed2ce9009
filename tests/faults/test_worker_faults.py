"""Worker processes killed (SIGKILL) or stopped (SIGTERM) mid-backfill: nothing lost or doubled."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path

from temporalio.api.enums.v1 import PendingActivityState

from indexer.worker import DRAIN_TIMEOUT, polls_complete_on_shutdown
from tests.support.faults import (
    FaultReport,
    assert_exactly_indexed,
    assert_nothing_half_written,
    record,
    start_backfill,
    wait_covered,
    wait_indexed,
)
from tests.support.harness import Harness
from tests.support.slow_link import slow_link
from tests.support.workers import WorkerProcesses, sample_sum

BACKLOG = 30_000
# The SIGTERMed worker reaches Temporal over a link with this latency, as a worker far from its
# cluster does, and polls with this many pollers per task type and activity slots: a poll the
# server answers with a task keeps it in flight for LINK_LATENCY, so when the worker stops, some
# of its polls always carry tasks (a handful; on loopback, almost never one).
LINK_LATENCY = 1.0
POLLERS = 16
ACTIVITY_SLOTS = 32


async def test_worker_sigkilled_three_times_mid_backfill(
    harness: Harness,
    sim_chain: Callable[..., str],
    database_url: str,
    worker_processes: WorkerProcesses,
) -> None:
    url = sim_chain(backlog=BACKLOG, txs_per_block=2)
    backfill, worker = await start_backfill(harness, worker_processes, url, database_url)
    row, began = backfill.row, backfill.began
    at_kill = []
    kill_times: list[float] = []
    indexed_by_killed = 0.0
    for fraction in (0.15, 0.4, 0.65):
        await wait_indexed(
            harness, row.id, fraction * BACKLOG, 60, f"{fraction:.0%} of the backfill"
        )
        indexed_by_killed += sample_sum(await worker.scrape(), "tindexer_blocks_indexed_total")
        worker.kill()
        kill_times.append(round(time.monotonic() - began, 2))
        # The dead worker wrote whole ranges or nothing; no other writer runs now.
        at_kill.append(await assert_nothing_half_written(harness.pool, row.id))
        worker = await backfill.start_worker()
    fault_end = time.monotonic()
    assert at_kill[-1] < BACKLOG, "the backfill finished before the last kill"
    done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    samples = await worker.scrape()
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)
    timed_out = await _heartbeat_timeouts(harness, row.config.name)
    # Ranges in flight at a kill were retried on the next worker once their heartbeat lapsed.
    assert timed_out >= 1
    record(
        FaultReport.from_check(
            "1-worker-sigkill",
            "worker process SIGKILLed 3 times mid-backfill, restarted each time",
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - began,
            metrics={
                "index_range activity attempts lost to a kill (heartbeat timeout, Temporal)": (
                    timed_out
                ),
                "tindexer_blocks_indexed_total (killed workers)": indexed_by_killed,
                "tindexer_blocks_indexed_total (last worker)": sample_sum(
                    samples, "tindexer_blocks_indexed_total"
                ),
            },
            details={"blocks_indexed_at_each_kill": at_kill, "kill_seconds": kill_times},
        )
    )


async def _heartbeat_timeouts(harness: Harness, chain: str) -> int:
    """IndexRange activity attempts that timed out (their worker died), from the histories."""
    count = 0
    async for execution in harness.client.list_workflows(
        f"WorkflowType = 'IndexRange' AND WorkflowId STARTS_WITH 'index:{chain}:'"
    ):
        handle = harness.client.get_workflow_handle(execution.id, run_id=execution.run_id)
        history = await handle.fetch_history()
        for event in history.events:
            if event.HasField("activity_task_started_event_attributes"):
                # An attempt > 1 follows a failed or timed-out one: here, the killed worker's.
                count += event.activity_task_started_event_attributes.attempt - 1
    return count


async def _started_activities(harness: Harness, chain: str) -> list[str]:
    """Activities of the chain's running workflows that a worker has started and not ended."""
    started = []
    async for execution in harness.client.list_workflows(
        f"ExecutionStatus = 'Running' AND (WorkflowId STARTS_WITH 'index:{chain}:'"
        f" OR WorkflowId STARTS_WITH 'headscan:{chain}' OR WorkflowId STARTS_WITH"
        f" 'scheduler:{chain}')"
    ):
        description = await harness.client.get_workflow_handle(execution.id).describe()
        for pending in description.raw_description.pending_activities:
            if pending.state == PendingActivityState.PENDING_ACTIVITY_STATE_STARTED:
                started.append(f"{execution.id}/{pending.activity_type.name}")
    return started


async def test_the_dev_server_completes_a_stopping_workers_polls(harness: Harness) -> None:
    """Without it the SDK cuts its polls off at shutdown and tasks in flight are stranded."""
    assert await polls_complete_on_shutdown(harness.client)


async def test_worker_sigterm_drains_and_exits_within_drain_timeout(
    harness: Harness,
    sim_chain: Callable[..., str],
    database_url: str,
    worker_processes: WorkerProcesses,
    tmp_path: Path,
) -> None:
    # 20 ms per RPC request: a 500-block range takes about a second.
    url = sim_chain(backlog=BACKLOG, txs_per_block=2, latency_seconds=0.02)
    host, port = harness.client.service_client.config.target_host.rsplit(":", 1)
    async with slow_link(host, int(port), LINK_LATENCY) as far_temporal:
        backfill, worker = await start_backfill(
            harness,
            worker_processes,
            url,
            database_url,
            temporal_address=far_temporal,
            max_concurrent_activities=ACTIVITY_SLOTS,
            pollers=POLLERS,
        )
        row, began = backfill.row, backfill.began
        await wait_indexed(harness, row.id, 0.3 * BACKLOG, 60, "30% of the backfill")
        before = await worker.scrape()
        exit_seconds = await worker.terminate(timeout=DRAIN_TIMEOUT.total_seconds() + 10)
    fault_end = time.monotonic()
    assert worker.process.returncode == 0, worker.tail()
    assert exit_seconds < DRAIN_TIMEOUT.total_seconds()
    at_exit = await assert_nothing_half_written(harness.pool, row.id)
    assert at_exit < BACKLOG
    # Every activity the worker had was finished or handed back: none is left started on it,
    # waiting out a heartbeat timeout.
    stranded = await _started_activities(harness, row.config.name)
    assert stranded == [], f"activities left started on the stopped worker: {stranded}"
    backfill.temporal_address = harness.client.service_client.config.target_host
    worker = await backfill.start_worker()
    done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)
    record(
        FaultReport.from_check(
            "7-worker-sigterm",
            "SIGTERM to a worker process 1 s away from Temporal mid-backfill; a new worker after",
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - began,
            metrics={
                "exit seconds after SIGTERM": round(exit_seconds, 2),
                "tindexer_blocks_indexed_total (stopped worker, before SIGTERM)": sample_sum(
                    before, "tindexer_blocks_indexed_total"
                ),
            },
            details={"blocks_indexed_at_exit": at_exit},
        )
    )
