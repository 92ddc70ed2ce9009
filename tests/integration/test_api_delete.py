"""Issue 12, item 8: deleting a chain is explicit, stops all its workflows and purges in batches.

The purge runs a batch of blocks per transaction, so a lock on one row stops it half-way with the
earlier batches committed; meanwhile the chain is gone from every read and its name can be
re-created with a new id that sees none of the old rows. An API process stopped mid-purge leaves
the rest to the next one, which finishes it when it starts.
"""

from __future__ import annotations

import asyncio
import uuid

from temporalio.client import WorkflowExecutionStatus

from indexer.config import ChainConfig
from indexer.store.chains import set_head, upsert_chain
from indexer.temporal_client import index_range_id
from indexer.workflows.inputs import Range
from tests.support.api import ApiClient, serving_api
from tests.support.harness import Harness
from tests.support.rows import row_counts, store_blocks
from tests.support.waiting import wait_until

UNCONFIRMED = {
    "error": "confirm the deletion: pass the chain's name as `confirm`",
    "field": "confirm",
}
# Deadlock detector only: a DELETE answers in milliseconds, never waiting for its purge.
UNBLOCKED_SECONDS = 10.0
LOCK_WAITERS = """
SELECT count(*) FROM pg_stat_activity
 WHERE datname = current_database() AND wait_event_type = 'Lock'
"""


async def add_named_chain(harness: Harness, name: str) -> int:
    harness.chains.append(name)  # its workflows are terminated after the test
    row = await upsert_chain(harness.pool, ChainConfig(name=name, rpc_url="http://127.0.0.1:9"))
    return row.id


async def status_of(harness: Harness, workflow_id: str) -> WorkflowExecutionStatus | None:
    return (await harness.client.get_workflow_handle(workflow_id).describe()).status


async def test_delete_needs_confirmation_and_stops_every_workflow_of_the_chain(
    harness: Harness, api: ApiClient
) -> None:
    name = f"d{uuid.uuid4().hex[:8]}"
    neighbour = f"{name}net"  # its workflow IDs start with the deleted chain's: they must live
    chain_id = await add_named_chain(harness, name)
    await add_named_chain(harness, neighbour)
    size = (await harness.chain(name)).config.blocks_per_workflow
    last = 100 * size - 1  # 100 ranges, more than max_inflight_ranges (64)
    await set_head(harness.pool, chain_id, last)
    await store_blocks(harness.pool, chain_id, 0, 4)
    for chain in (name, neighbour):
        await harness.start(chain)  # no worker polls the queue: they stay running
    # 10..19 starts one IndexRange; 0..last is 100 ranges: a backfill Scheduler.
    for block_range, mode in (((10, 19), "direct"), ((0, last), "scheduler")):
        body = {"from": block_range[0], "to": block_range[1]}
        status, started = await api.call("POST", f"/chains/{name}/backfill", body)
        assert (status, started["mode"], started["started"]) == (202, mode, 1), started
    ids = [
        f"headscan:{name}",
        index_range_id(name, Range(10, 19), size),
        f"backfill:{name}:0-{last}",
    ]

    async def all_visible() -> bool:
        query = f"WorkflowId = '{ids[1]}' OR WorkflowId = '{ids[2]}'"
        return (await harness.client.count_workflows(query)).count == 2

    await wait_until(all_visible, 30, "the backfills in Temporal's visibility store")

    for query in ("", "?confirm=", f"?confirm={neighbour}", f"?confirm={name.upper()}"):
        assert await api.call("DELETE", f"/chains/{name}{query}") == (400, UNCONFIRMED), query
    assert (await api.call("DELETE", f"/chains/{name}?confirm={name}", token=None))[0] == 401
    assert (await api.get(f"/chains/{name}"))[0] == 200

    assert (await api.call("DELETE", f"/chains/{name}?confirm={name}"))[0] == 204
    assert [await status_of(harness, i) for i in ids] == [WorkflowExecutionStatus.TERMINATED] * 3
    assert await status_of(harness, f"headscan:{neighbour}") == WorkflowExecutionStatus.RUNNING
    assert (await api.get(f"/chains/{name}"))[0] == 404
    assert (await api.call("DELETE", f"/chains/{name}?confirm={name}"))[0] == 404
    assert [chain["name"] for chain in (await api.get("/chains"))[1]["chains"]] == [neighbour]

    async def purged() -> bool:
        return await row_counts(harness.pool, chain_id) == (0, 0, 0)

    await wait_until(purged, 30, "the deleted chain's rows purged")
    assert await harness.pool.fetchval("SELECT count(*) FROM chains WHERE id = $1", chain_id) == 0


async def test_purge_runs_in_batches_and_resumes_after_a_stop(harness: Harness) -> None:
    name = f"p{uuid.uuid4().hex[:8]}"
    old_id = await add_named_chain(harness, name)
    await store_blocks(harness.pool, old_id, 0, 9)
    assert await row_counts(harness.pool, old_id) == (10, 10, 1)
    async with harness.pool.acquire() as holder:
        locked = holder.transaction()
        await locked.start()
        # A row of the second batch (blocks 3..5), locked: that batch waits, the first commits.
        await holder.execute(
            "SELECT 1 FROM blocks WHERE chain_id = $1 AND number = 4 FOR UPDATE", old_id
        )
        async with serving_api(harness, purge_batch_blocks=3) as api:
            delete = api.call("DELETE", f"/chains/{name}?confirm={name}")
            assert await asyncio.wait_for(delete, UNBLOCKED_SECONDS) == (204, None)

            async def first_batch_gone() -> bool:
                remaining = await harness.pool.fetchval(
                    "SELECT min(number) FROM blocks WHERE chain_id = $1", old_id
                )
                waiting = await harness.pool.fetchval(LOCK_WAITERS)
                return remaining == 3 and waiting >= 1

            await wait_until(first_batch_gone, 30, "blocks 0..2 purged, 3..5 waiting")
            assert await row_counts(harness.pool, old_id) == (7, 7, 1)

            # The name is free at once; the new chain has a new id and none of the old rows.
            status, created = await api.call(
                "POST", "/chains", {"name": name, "rpc_url": "http://127.0.0.1:9"}
            )
            assert status == 201, created
            new_id = (await harness.chain(name)).id
            assert new_id != old_id
            await set_head(harness.pool, new_id, 9)
            status, progress = await api.get(f"/chains/{name}/status")
            assert (status, progress["indexed_blocks"], progress["missing_blocks_count"]) == (
                200,
                0,
                10,
            )
            assert [c["name"] for c in (await api.get("/chains"))[1]["chains"]] == [name]
        # The API stopped with its purge half-way (the waiting batch rolled back).
        await locked.rollback()
    assert await row_counts(harness.pool, old_id) == (7, 7, 1)

    async with serving_api(harness, purge_batch_blocks=3):  # a new process resumes at start

        async def purged() -> bool:
            return await row_counts(harness.pool, old_id) == (0, 0, 0)

        await wait_until(purged, 30, "the purge resumed and finished")
    assert await harness.pool.fetchval("SELECT count(*) FROM chains WHERE id = $1", old_id) == 0
    assert (await harness.chain(name)).id == new_id
