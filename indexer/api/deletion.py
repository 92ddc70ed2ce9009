"""Deleting a chain: hide it, stop its workflows, then purge its rows in short batches.

`DELETE /chains/{name}` renames the row out of sight in one statement (workers then find the chain
unknown and fail without retrying; the name is free to re-create, with a new id), terminates its
workflows, and answers. The purger removes the rows a batch of blocks per transaction, so no lock
is held for long; it runs after every delete and at start, so a purge a stopped process left
half-way is finished by the next one.
"""

from __future__ import annotations

import asyncio
import contextlib

import asyncpg
from temporalio.client import Client, WorkflowExecutionStatus
from temporalio.service import RPCError

from indexer.api.state import ApiState
from indexer.store.chains import purge_batch, retired_chains
from indexer.temporal_client import chain_workflows_query, head_scan_id, scheduler_id

MAX_TERMINATED = 10_000  # more open workflows than this fail on their own: the chain is unknown
TERMINATE_CONCURRENCY = 16
PURGE_INTERVAL_SECONDS = 60.0  # also finish purges another API process left half-way


async def _terminate(client: Client, workflow_id: str) -> bool:
    try:
        await client.get_workflow_handle(workflow_id).terminate(reason="chain deleted")
    except RPCError:  # not running (or gone): nothing to stop
        return False
    return True


async def stop_chain_workflows(client: Client, chain: str) -> int:
    """Terminate the chain's HeadScan and Scheduler, then its backfills and ranges; how many."""
    stopped = 0
    for starter in (head_scan_id(chain), scheduler_id(chain)):  # first: they start the others
        stopped += await _terminate(client, starter)
    query = f"({chain_workflows_query(chain)}) AND ExecutionStatus = 'Running'"
    running = [
        execution.id
        async for execution in client.list_workflows(query, limit=MAX_TERMINATED)
        if execution.status == WorkflowExecutionStatus.RUNNING
    ]
    limit = asyncio.Semaphore(TERMINATE_CONCURRENCY)

    async def terminate(workflow_id: str) -> bool:
        async with limit:
            return await _terminate(client, workflow_id)

    return stopped + sum(await asyncio.gather(*(terminate(i) for i in running)))


async def purge_retired(pool: asyncpg.Pool, batch_blocks: int) -> int:
    """Purge every deleted chain's rows, a batch per transaction; returns the batches run."""
    batches = 0
    for chain_id in await retired_chains(pool):
        while await purge_batch(pool, chain_id, batch_blocks):
            batches += 1
    return batches


async def run_purger(state: ApiState, interval: float = PURGE_INTERVAL_SECONDS) -> None:
    """Purge at start, after each delete (`purge_wanted`), and every `interval` seconds."""
    while True:
        state.purge_wanted.clear()
        try:
            await purge_retired(state.pool, state.purge_batch_blocks)
        except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            state.log.warning("purging deleted chains failed, will retry: %s", exc)
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(state.purge_wanted.wait(), interval)
