"""Chain handlers: list, create, read, change, delete, and backfill a block range."""

from __future__ import annotations

import asyncio
import re
from typing import Any

from aiohttp import web
from temporalio.service import RPCError

from indexer.api.backfill import BackfillPlan, plan_backfill, start_backfill
from indexer.api.deletion import stop_chain_workflows
from indexer.api.errors import ApiError, not_found
from indexer.api.reads import read_connection
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
from indexer.public_url import public_url
from indexer.store.chains import (
    ChainRow,
    get_chain,
    insert_chain,
    list_chains,
    retire_chain,
    update_chain,
)
from indexer.store.ranges import coverage
from indexer.temporal_client import start_head_scan
from indexer.workflows.inputs import Range

TEMPORAL_TIMEOUT_SECONDS = 10.0  # a Temporal call from a request handler never hangs longer
NAME = re.compile(NAME_PATTERN)


def chain_document(config: ChainConfig) -> dict[str, Any]:
    """A chain as the API shows it: every provider URL as scheme://host[:port], never its key,
    to anyone."""
    document = config.model_dump(mode="json")
    if config.rpc_url is not None:
        document["rpc_url"] = public_url(config.rpc_url)
    for provider in document["providers"]:
        provider["url"] = public_url(provider["url"])
    return document


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
    state = state_of(request)
    async with read_connection(state.pool, state.reads) as conn:
        rows = await list_chains(conn)
    return web.json_response({"chains": [chain_document(row.config) for row in rows]})


async def create_chain(request: web.Request) -> web.Response:
    """Store a new chain and start its HeadScan; 409 if the name is taken."""
    state = state_of(request)
    config = new_chain(await read_json_object(request), state.allow_link_local_rpc)
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
    state = state_of(request)
    name = chain_name(request)
    async with read_connection(state.pool, state.reads) as conn:
        row = await get_chain(conn, name)
    if row is None:
        raise not_found(name)
    return web.json_response(chain_document(row.config))


async def patch_chain(request: web.Request) -> web.Response:
    """Apply every given field, replicas included; running parts pick it up on their next read."""
    state = state_of(request)
    name = chain_name(request)
    body = await read_json_object(request)
    row = await update_chain(
        state.pool,
        name,
        lambda current: patched_chain(current, body, state.allow_link_local_rpc),
    )
    if row is None:
        raise not_found(name)
    return web.json_response(chain_document(row.config))


async def delete_chain_handler(request: web.Request) -> web.Response:
    """Delete the chain (`?confirm=<name>`): hide it, stop its workflows, purge its rows after."""
    state = state_of(request)
    name = chain_name(request)
    if request.query.get("confirm") != name:
        raise ApiError(400, "confirm the deletion: pass the chain's name as `confirm`", "confirm")
    if await retire_chain(state.pool, name) is None:
        raise not_found(name)
    state.purge_wanted.set()
    try:
        async with asyncio.timeout(TEMPORAL_TIMEOUT_SECONDS * 3):
            stopped = await stop_chain_workflows(state.temporal, name)
        state.log.info("chain %s deleted; %d of its workflows terminated", name, stopped)
    except (RPCError, RuntimeError, TimeoutError) as exc:
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
        state.log.warning("backfill of %s: Temporal is unavailable: %s", name, exc)
        raise ApiError(503, "Temporal is unavailable") from None
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
