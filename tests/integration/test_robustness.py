"""Idempotency, bad chain data and reorgs: the database stays exactly right."""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import aiohttp
import pytest
from temporalio.client import WorkflowFailureError

from indexer.chain.fetcher import Fetcher
from indexer.embedded import stop_process
from indexer.store.blocks import store_batch
from indexer.workflows.inputs import IndexRangeInput, IndexRangeResult
from tests.support.chaindata import expected_blocks
from tests.support.harness import Harness, fully_indexed
from tests.support.simchain import set_faults
from tests.support.waiting import wait_until


async def index_range(harness: Harness, chain: str, start: int, end: int, attempts: int = 10):
    return await harness.client.execute_workflow(
        "IndexRange",
        IndexRangeInput(chain, start, end, attempts),
        id=f"test-{uuid.uuid4().hex[:8]}",
        task_queue=harness.task_queue,
        result_type=IndexRangeResult,
    )


async def block_count(harness: Harness, chain_id: int) -> tuple[int, int]:
    """(rows, distinct block numbers) stored for the chain."""
    row = await harness.pool.fetchrow(
        "SELECT count(*) AS n, count(DISTINCT number) AS d FROM blocks WHERE chain_id = $1",
        chain_id,
    )
    return row["n"], row["d"]


async def test_same_range_twice_leaves_one_row_per_block(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=300, txs_per_block=3)
    row = await harness.add_chain(url)
    async with harness.worker():
        first = await index_range(harness, row.config.name, 0, 199)
        second = await index_range(harness, row.config.name, 0, 199)
    assert (first.blocks, first.skipped) == (200, False)
    assert (second.blocks, second.skipped) == (0, True)  # started twice, indexed once
    # Forcing the same blocks through the store again changes nothing either.
    rpc = Fetcher.for_url(url, row.config.name, metrics=harness.metrics)
    try:
        blocks = await rpc.get_blocks(0, 199, receipts=True)
    finally:
        await rpc.close()
    async with harness.pool.acquire() as conn:
        await store_batch(conn, row.id, blocks, row.config.datasets)
    assert await block_count(harness, row.id) == (200, 200)
    tx_rows = await harness.pool.fetchval(
        "SELECT count(*) FROM transactions WHERE chain_id = $1", row.id
    )
    assert tx_rows == 600
    assert await harness.ranges(row.id) == [(0, 199)]
    stored = await harness.stored_blocks(row.id)
    assert stored == await expected_blocks(url, 0, 199)


def worker_process(harness: Harness, database_url: str, config: Path) -> subprocess.Popen[bytes]:
    config.write_text(f'task_queue = "{harness.task_queue}"\n')
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "TEMPORAL_ADDRESS": harness.client.service_client.config.target_host,
    }
    return subprocess.Popen(
        [sys.executable, "-m", "indexer.cli", "worker", "--config", str(config)],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )


async def test_worker_killed_mid_range_is_recovered_without_duplicates(
    harness: Harness, sim_chain: Callable[..., str], database_url: str, tmp_path: Path
) -> None:
    url = sim_chain(backlog=200, txs_per_block=2, latency_seconds=0.3)
    row = await harness.add_chain(url, rpc_batch_size=10, rpc_max_concurrency=1)
    worker = worker_process(harness, database_url, tmp_path / "worker.toml")
    try:
        run = asyncio.create_task(index_range(harness, row.config.name, 0, 99))
        await wait_until(lambda: _activity_started(harness, run), 30, "the activity to start")
        await asyncio.sleep(1.0)  # mid-fetch: 10 requests of 0.3 s each
        worker.send_signal(signal.SIGKILL)
        worker.wait()
        # Only whole batches are stored (the range is streamed), each with its entry in
        # indexed_ranges: nothing half-written, nothing counted without its rows.
        committed = sum(end - start + 1 for start, end in await harness.ranges(row.id))
        assert committed < 100
        assert await block_count(harness, row.id) == (committed, committed)
        worker = worker_process(harness, database_url, tmp_path / "worker.toml")
        result = await asyncio.wait_for(run, 90)
    finally:
        stop_process(worker)
    assert result.blocks == 100 - committed  # the retry skips the committed batches
    assert await block_count(harness, row.id) == (100, 100)
    assert await harness.ranges(row.id) == [(0, 99)]
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, 99)


async def _activity_started(harness: Harness, run: asyncio.Task[object]) -> bool:
    async for execution in harness.client.list_workflows(
        f"WorkflowType = 'IndexRange' AND TaskQueue = '{harness.task_queue}'"
    ):
        description = await harness.client.get_workflow_handle(execution.id).describe()
        if description.raw_description.pending_activities:
            return True
    return False


def failure_messages(error: BaseException) -> str:
    messages = []
    current: BaseException | None = error
    while current is not None:
        messages.append(str(current))
        current = current.__cause__ or getattr(current, "cause", None)
    return " | ".join(messages)


BAD_DATA = [
    ({"malformed_ratio": 1.0}, "malformed JSON"),
    ({"null_block_ratio": 1.0}, "returned null"),
    ({"error_ratio": 1.0}, "JSON-RPC error -32000"),
    ({"rate_limit_ratio": 1.0, "retry_after_seconds": 0.05}, "HTTP 429"),
    ({"bad_parent_ratio": 1.0}, "does not match"),
]


@pytest.mark.parametrize(("faults", "message"), BAD_DATA, ids=[m for _, m in BAD_DATA])
async def test_bad_chain_data_fails_clearly_and_marks_nothing(
    harness: Harness, sim_chain: Callable[..., str], faults: dict[str, float], message: str
) -> None:
    url = sim_chain(backlog=100, txs_per_block=2)
    row = await harness.add_chain(url, rpc_max_retries=2)
    await set_faults(url, **faults)
    async with harness.worker():
        with pytest.raises(WorkflowFailureError) as failure:
            await index_range(harness, row.config.name, 0, 49, attempts=2)
    assert message in failure_messages(failure.value)
    assert await block_count(harness, row.id) == (0, 0)
    assert await harness.ranges(row.id) == []


async def test_flaky_provider_still_yields_every_block(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=1_000, txs_per_block=2)
    await set_faults(
        url,
        rate_limit_ratio=0.3,
        retry_after_seconds=0.05,
        malformed_ratio=0.1,
        null_block_ratio=0.05,
        error_ratio=0.1,
    )
    row = await harness.add_chain(url, blocks_per_workflow=50, rpc_batch_size=10)
    async with harness.worker():
        await harness.start(row.config.name)
        await wait_until(lambda: fully_indexed(harness, row.config.name, 999), 120, "backfill")
    await set_faults(url, rate_limit_ratio=0, malformed_ratio=0, null_block_ratio=0, error_ratio=0)
    assert await harness.stored_blocks(row.id) == await expected_blocks(url, 0, 999)
    assert await harness.ranges(row.id) == [(0, 999)]
    rate_limited = harness.metrics.registry.get_sample_value(
        "tindexer_rate_limited_total", {"source": "rpc"}
    )
    assert rate_limited is not None and rate_limited > 0


async def test_reorg_of_depth_five_is_detected_and_repaired(
    harness: Harness, sim_chain: Callable[..., str]
) -> None:
    url = sim_chain(backlog=200, txs_per_block=3)
    row = await harness.add_chain(url, blocks_per_workflow=20)
    chain = row.config.name
    async with harness.worker():
        await harness.start(chain)
        await wait_until(lambda: fully_indexed(harness, chain, 199), 60, "backfill")
        before = await harness.stored_blocks(row.id)
        async with (
            aiohttp.ClientSession() as session,
            session.post(f"{url}/_sim/reorg", json={"depth": 5}) as response,
        ):
            assert response.status == 200
        after_reorg = await expected_blocks(url, 0, 199)

        async def repaired() -> bool:
            return await harness.stored_blocks(row.id) == after_reorg

        await wait_until(repaired, 30, "the reorg to be repaired")
    changed = sorted(n for n in range(200) if before[n] != after_reorg[n])
    assert changed == [195, 196, 197, 198, 199]
    assert all(before[n].tx_hashes != after_reorg[n].tx_hashes for n in changed)
    assert await harness.ranges(row.id) == [(0, 199)]
    registry = harness.metrics.registry
    assert registry.get_sample_value("tindexer_reorgs_total", {"chain": chain}) == 1
    assert registry.get_sample_value("tindexer_reorg_depth_sum", {"chain": chain}) == 5
