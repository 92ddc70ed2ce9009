"""Chain handlers: list, create, read, change, delete, and backfill a block range."""

from __future__ import annotations

import asyncio
import contextlib
import re
from typing import Any

from aiohttp import web
from temporalio.client import Client
from temporalio.service import RPCError

from indexer.api.backfill import BackfillPlan, plan_backfill, start_backfill
from indexer.api.errors import ApiError, not_found
from indexer.api.state import ApiState, state_of
from indexer.api.validation import (
    NAME_PATTERN,
    BackfillRequest,
    backfill_request,
    new_chain,
    patched_chain,
    read_json_object,
)
from indexer.config import ChainConfig
from indexer.store.chains import (
    ChainRow,
    delete_chain,
    get_chain,
    insert_chain,
    list_chains,
    update_chain,
)
from indexer.store.ranges import coverage
from indexer.temporal_client import head_scan_id, scheduler_id, start_head_scan
from indexer.workflows.inputs import Range

TEMPORAL_TIMEOUT_SECONDS = 10.0  # a Temporal call from a request handler never hangs longer
NAME = re.compile(NAME_PATTERN)


def chain_document(config: ChainConfig) -> dict[str, Any]:
    return config.model_dump(mode="json")


def chain_name(request: web.Request) -> str:
    """The {name} of the path; a name no chain can have is a plain 404."""
    name = request.match_info["name"]
    if not NAME.fullmatch(name):
        raise not_found(name)
    return name


async def _existing(state: ApiState, name: str) -> ChainRow:
    row = await get_chain(state.pool, name)
    if row is None:
        raise not_found(name)
    return row


async def list_chains_handler(request: web.Request) -> web.Response:
    rows = await list_chains(state_of(request).pool)
    return web.json_response({"chains": [chain_document(row.config) for row in rows]})


async def create_chain(request: web.Request) -> web.Response:
    """Store a new chain and start its HeadScan; 409 if the name is taken."""
    state = state_of(request)
    config = new_chain(await read_json_object(request))
    row = await insert_chain(state.pool, config)
    if row is None:
        raise ApiError(409, f"a chain named {config.name!r} exists", "name")
    try:
        await asyncio.wait_for(
            start_head_scan(state.temporal, config.name, state.task_queue),
            TEMPORAL_TIMEOUT_SECONDS,
        )
    except (RPCError, RuntimeError, TimeoutError) as exc:
        # Stored is stored: HeadScan starts with the next `tindexer up` or backfill.
        state.log.warning("chain %s stored, but its HeadScan did not start: %s", config.name, exc)
    return web.json_response(
        chain_document(row.config), status=201, headers={"Location": f"/chains/{config.name}"}
    )


async def get_chain_handler(request: web.Request) -> web.Response:
    row = await _existing(state_of(request), chain_name(request))
    return web.json_response(chain_document(row.config))


async def patch_chain(request: web.Request) -> web.Response:
    """Apply every given field, replicas included; running parts pick it up on their next read."""
    state = state_of(request)
    name = chain_name(request)
    body = await read_json_object(request)
    row = await update_chain(state.pool, name, lambda current: patched_chain(current, body))
    if row is None:
        raise not_found(name)
    return web.json_response(chain_document(row.config))


async def _terminate(client: Client, workflow_id: str) -> None:
    with contextlib.suppress(RPCError):  # not running: nothing to stop
        await client.get_workflow_handle(workflow_id).terminate(reason="chain deleted")


async def delete_chain_handler(request: web.Request) -> web.Response:
    """Forget the chain and everything indexed for it; stop its HeadScan and Scheduler."""
    state = state_of(request)
    name = chain_name(request)
    if not await delete_chain(state.pool, name):
        raise not_found(name)
    try:
        async with asyncio.timeout(TEMPORAL_TIMEOUT_SECONDS):
            await _terminate(state.temporal, head_scan_id(name))
            await _terminate(state.temporal, scheduler_id(name))
    except (RuntimeError, TimeoutError) as exc:
        # Left running, they fail on their next step: the chain is unknown.
        state.log.warning("chain %s deleted; stopping its workflows failed: %s", name, exc)
    return web.Response(status=204)


async def backfill(request: web.Request) -> web.Response:
    """Index the missing blocks of from..to as IndexRange workflows with the usual IDs."""
    state = state_of(request)
    name = chain_name(request)
    body = await read_json_object(request)
    wanted: BackfillRequest = backfill_request(body)
    row = await _existing(state, name)
    if row.head is None:
        raise ApiError(409, "the chain's head is not known yet: wait for its first HeadScan", "to")
    if wanted.to_block > row.head:
        raise ApiError(409, f"`to` is beyond the chain's head {row.head}", "to")
    covered = await coverage(state.pool, row.id, wanted.from_block, wanted.to_block)
    plan: BackfillPlan = plan_backfill(
        name,
        wanted,
        [Range(start, end) for start, end in covered.gaps],
        row.config.blocks_per_workflow,
        row.config.max_inflight_ranges,
    )
    try:
        started = await asyncio.wait_for(
            start_backfill(
                state.temporal,
                plan,
                state.task_queue,
                row.config.effective_parallelism(),
                row.config.index_max_attempts,
            ),
            TEMPORAL_TIMEOUT_SECONDS * 3,
        )
    except (RPCError, RuntimeError, TimeoutError) as exc:
        raise ApiError(503, f"Temporal is unavailable: {exc}") from None
    return web.json_response(
        {
            "chain": name,
            "from": wanted.from_block,
            "to": wanted.to_block,
            "missing_blocks": covered.missing_blocks,
            "ranges": plan.range_count,
            "mode": plan.mode,
            "started": started,
            "workflow_id": plan.scheduler_id,
        },
        status=202,
    )
