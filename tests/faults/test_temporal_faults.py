"""The Temporal dev server stopped and started again on its database file, mid-backfill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from tests.faults.conftest import (
    BLOCKS_PER_WORKFLOW,
    FaultReport,
    OwnTemporal,
    Samples,
    WorkerProcesses,
    assert_exactly_indexed,
    indexed_blocks,
    record,
    sample_sum,
    wait_covered,
    wait_for,
)
from tests.support.harness import Harness

BACKLOG = 30_000
DOWN_SECONDS = 5.0


async def test_temporal_restarted_on_its_database_mid_backfill(
    own_temporal: OwnTemporal,
    own_temporal_harness: Harness,
    sim_chain: Callable[..., str],
    database_url: str,
    worker_processes: WorkerProcesses,
) -> None:
    harness = own_temporal_harness
    url = sim_chain(backlog=BACKLOG, txs_per_block=2)
    row = await harness.add_chain(
        url, head_poll_interval_seconds=0.5, blocks_per_workflow=BLOCKS_PER_WORKFLOW
    )
    began = time.monotonic()
    # 8 ranges at a time: the rest of the backfill needs Temporal to dispatch it.
    worker = worker_processes.start(
        harness.task_queue, database_url, own_temporal.address, max_concurrent_activities=8
    )
    await worker.ready()
    await harness.start(row.config.name)

    async def quarter() -> bool:
        return await indexed_blocks(harness.pool, row.id) >= BACKLOG // 4

    await wait_for(quarter, 60, "a quarter of the backfill")
    before = await worker.scrape()
    await own_temporal.stop()
    at_stop = await indexed_blocks(harness.pool, row.id)
    await asyncio.sleep(DOWN_SECONDS)
    during = await worker.scrape()
    at_restart = await indexed_blocks(harness.pool, row.id)
    assert at_restart < BACKLOG, "the backfill finished while Temporal was down"
    assert worker.process.poll() is None, "the worker died with Temporal"
    await own_temporal.start()
    fault_end = time.monotonic()
    done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    after = await worker.scrape()
    assert worker.process.poll() is None, "the worker did not survive"
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)

    def failures(samples: Samples) -> float:
        return sample_sum(samples, "temporal_long_request_failure_total") + sample_sum(
            samples, "temporal_request_failure_total"
        )

    failed = failures(after) - failures(before)
    assert failed >= 1, "no Temporal request failed: the outage went unnoticed"
    record(
        FaultReport(
            case="3-temporal-restart",
            fault=f"Temporal dev server stopped mid-backfill, started {DOWN_SECONDS:.0f} s later"
            " on the same port and SQLite file",
            blocks_expected=check.expected,
            blocks_found=check.found,
            duplicates=check.duplicates,
            recover_seconds=done - fault_end,
            total_seconds=done - began,
            metrics={
                "temporal_request_failure_total + temporal_long_request_failure_total"
                " (increase)": failed,
                "tindexer_blocks_indexed_total while Temporal stopped and was down (in-flight"
                " ranges finishing)": (
                    sample_sum(during, "tindexer_blocks_indexed_total")
                    - sample_sum(before, "tindexer_blocks_indexed_total")
                ),
            },
            details={
                "blocks_indexed_when_stopped": at_stop,
                "blocks_indexed_at_restart": at_restart,
                "worker_survived": True,
            },
        )
    )
