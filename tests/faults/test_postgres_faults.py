"""PostgreSQL restarted, or away for 20 seconds, mid-backfill: the worker rides it out."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import asyncpg
import pytest

from indexer.activities.index_range import store_within
from indexer.chain.model import Block, Transaction
from indexer.config import ChainConfig
from indexer.datasets import Dataset
from indexer.store.chains import upsert_chain
from indexer.store.db import create_pool
from tests.support.faults import (
    POLL_SECONDS,
    UNAVAILABLE,
    FaultReport,
    assert_exactly_indexed,
    indexed_blocks,
    record,
    start_backfill,
    wait_covered,
    wait_indexed,
)
from tests.support.harness import Harness
from tests.support.own_services import OwnPostgres
from tests.support.waiting import wait_until
from tests.support.workers import WorkerProcesses, sample_sum

BACKLOG = 30_000
OUTAGE_SECONDS = 20.0
ERRORS = "tindexer_activity_duration_seconds_count"


@pytest.mark.parametrize("outage", ["restart", "down-20s"])
async def test_postgres_restart_or_outage_mid_backfill(
    own_postgres: OwnPostgres,
    own_postgres_harness: Harness,
    sim_chain: Callable[..., str],
    worker_processes: WorkerProcesses,
    outage: str,
) -> None:
    harness = own_postgres_harness
    url = sim_chain(backlog=BACKLOG, txs_per_block=2)
    backfill, worker = await start_backfill(harness, worker_processes, url, own_postgres.url)
    row = backfill.row
    await wait_indexed(harness, row.id, BACKLOG // 4, 60, "a quarter of the backfill")
    before = await worker.scrape()
    at_fault = await indexed_blocks(harness.pool, row.id)
    assert at_fault < BACKLOG, "the backfill finished before the fault"
    during = before
    if outage == "restart":
        await own_postgres.restart()
    else:
        await own_postgres.stop()
        await asyncio.sleep(OUTAGE_SECONDS - 6)
        during = await worker.scrape()  # collectors refresh every 5 s: they have seen it
        await asyncio.sleep(6)
        assert worker.process.poll() is None, "the worker died while PostgreSQL was away"
        await own_postgres.start()
    fault_end = time.monotonic()
    done = await wait_covered(harness, row.id, BACKLOG - 1, 120)
    after = await worker.scrape()
    assert worker.process.poll() is None, "the worker did not survive"
    check = await assert_exactly_indexed(harness, row.id, url, BACKLOG - 1)

    failed = sample_sum(after, ERRORS, outcome="error") - sample_sum(
        before, ERRORS, outcome="error"
    )
    assert failed >= 1, "no activity attempt failed: the fault missed the backfill"
    collector_errors = sample_sum(after, "tindexer_collector_errors_total", collector="postgres")
    metrics = {
        'tindexer_activity_duration_seconds_count{outcome="error"} (increase)': failed,
        'tindexer_collector_errors_total{collector="postgres"}': collector_errors,
    }
    if outage == "down-20s":
        assert sample_sum(during, "tindexer_pg_up") == 0
        assert collector_errors >= 1
        metrics["tindexer_pg_up (during the outage)"] = sample_sum(during, "tindexer_pg_up")

    async def health_back() -> bool:  # the health collector reconnects on its next refresh
        return sample_sum(await worker.scrape(), "tindexer_pg_up") == 1

    await wait_until(
        health_back, 15, "tindexer_pg_up to be 1 again", POLL_SECONDS, retry_on=UNAVAILABLE
    )
    record(
        FaultReport.from_check(
            f"2-postgres-{outage}",
            (
                "PostgreSQL fast restart (pg_ctl restart -m fast) mid-backfill"
                if outage == "restart"
                else f"PostgreSQL stopped for {OUTAGE_SECONDS:.0f} s mid-backfill, then started"
            ),
            check,
            recover_seconds=done - fault_end,
            total_seconds=done - backfill.began,
            metrics=metrics,
            details={"blocks_indexed_at_fault": at_fault, "worker_survived": True},
        )
    )


def synthetic_blocks(count: int, txs_per_block: int) -> list[Block]:
    """Linked blocks with transactions, enough to make a COPY of tens of megabytes."""
    blocks = []
    for n in range(count):
        txs = [
            Transaction(f"{n:032x}{i:032x}", i, "ab" * 20, "cd" * 20, 10**18, 21_000, 10**9, i)
            for i in range(txs_per_block)
        ]
        parent = f"{n - 1:064x}" if n else "0" * 64
        blocks.append(Block(n, f"{n:064x}", parent, 1_700_000_000 + n, "ef" * 20, 1, 2, 3, txs))
    return blocks


async def test_store_stuck_on_a_connection_lost_mid_copy_is_abandoned(
    own_postgres: OwnPostgres,
) -> None:
    """asyncpg waits forever when the server dies in the middle of a big COPY; the store is
    bounded, fails, and the pool serves again once PostgreSQL is back, with nothing written."""
    pool = await create_pool(own_postgres.url, max_size=2)
    try:
        datasets: list[Dataset] = ["blocks", "transactions"]  # the blocks carry no receipts
        config = ChainConfig(name="stuck", rpc_url="http://127.0.0.1:1", datasets=datasets)
        chain = await upsert_chain(pool, config)
        blocks = synthetic_blocks(100_000, 4)
        store = asyncio.create_task(store_within(pool, chain.id, blocks, 5, datasets))

        async def copying() -> bool:
            if store.done():  # failed before its COPY began: say why, don't wait it out
                store.result()
            active = await pool.fetchval(
                "SELECT count(*) FROM pg_stat_activity WHERE query LIKE 'COPY%'"
            )
            return bool(active)

        await wait_until(copying, 30, "the COPY to start", interval=0.02, retry_on=UNAVAILABLE)
        await own_postgres.stop()
        stopped = time.monotonic()
        done, _ = await asyncio.wait({store}, timeout=20)
        assert done, "the store still waits on the lost connection"  # without the bound: forever
        assert time.monotonic() - stopped < 10
        with pytest.raises((TimeoutError, asyncpg.InterfaceError, asyncpg.PostgresError)):
            store.result()
        await own_postgres.start()
        assert await pool.fetchval("SELECT count(*) FROM blocks") == 0
        assert await pool.fetchval("SELECT count(*) FROM indexed_ranges") == 0
    finally:
        await asyncio.wait_for(pool.close(), 10)
