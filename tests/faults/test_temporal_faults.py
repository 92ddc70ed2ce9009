"""The Temporal dev server stopped and started again on its database file, mid-backfill."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

from temporalio.api.workflowservice.v1 import GetSystemInfoRequest

from indexer.temporal_client import CONNECT_PATIENCE_SECONDS, fail_fast_client
from tests.support.faults import (
    FaultReport,
    assert_exactly_indexed,
    indexed_blocks,
    record,
    start_backfill,
    wait_covered,
    wait_indexed,
)
from tests.support.harness import Harness
from tests.support.own_services import OwnTemporal
from tests.support.workers import Samples, WorkerProcesses, sample_sum

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
    # 8 ranges at a time: the rest of the backfill needs Temporal to dispatch it.
    backfill, worker = await start_backfill(
        harness,
        worker_processes,
        url,
        database_url,
        own_temporal.address,
        max_concurrent_activities=8,
    )
    row = backfill.row
    await wait_indexed(harness, row.id, BACKLOG // 4, 60, "a quarter of the backfill")
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
        FaultReport.from_check(
            "3-temporal-restart",
            f"Temporal dev server stopped mid-backfill, started {DOWN_SECONDS:.0f} s later"
            " on the same port and SQLite file",
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - backfill.began,
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


async def test_a_workers_start_client_waits_for_temporal_like_its_first(
    own_temporal: OwnTemporal, own_temporal_harness: Harness
) -> None:
    """A worker connects a second, retry-less client to start workflows; a Temporal that is
    briefly away as it does must not make `tindexer worker` exit."""
    await own_temporal.stop()
    connecting = asyncio.create_task(fail_fast_client(own_temporal_harness.client))
    await asyncio.sleep(1.0)
    assert not connecting.done(), connecting  # refused connects are tried again, not raised
    await own_temporal.start()
    starter = await asyncio.wait_for(connecting, CONNECT_PATIENCE_SECONDS)
    assert (await starter.workflow_service.get_system_info(GetSystemInfoRequest())).server_version
