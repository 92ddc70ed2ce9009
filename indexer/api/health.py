"""Liveness (the process answers) and readiness (PostgreSQL and Temporal both answer).

Probes are unauthenticated and exempt from the Host check, so they answer fixed words; why a
service is unreachable (addresses, driver messages) goes to the server log only.
"""

from __future__ import annotations

import asyncio
from typing import Any

import asyncpg
from aiohttp import web
from temporalio.service import RPCError

from indexer.api.state import ApiState, state_of
from indexer.store.db import ping

READY_TIMEOUT_SECONDS = 2.0  # a probe that waits longer than this is as good as down
UNREACHABLE = "unreachable"


async def healthz(request: web.Request) -> web.Response:
    return web.json_response({"status": "ok"})


async def _postgres(state: ApiState) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            await ping(state.pool)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
        state.log.warning("not ready: PostgreSQL unreachable: %s: %s", type(exc).__name__, exc)
        return UNREACHABLE
    return "ok"


async def _temporal(state: ApiState) -> str:
    try:
        async with asyncio.timeout(READY_TIMEOUT_SECONDS):
            healthy = await state.temporal.service_client.check_health()
    except (RPCError, RuntimeError, OSError, TimeoutError) as exc:
        state.log.warning("not ready: Temporal unreachable: %s: %s", type(exc).__name__, exc)
        return UNREACHABLE
    return "ok" if healthy else "not serving"


async def readyz(request: web.Request) -> web.Response:
    """200 when both answer within READY_TIMEOUT_SECONDS, else 503 saying which did not."""
    state = state_of(request)
    postgres, temporal = await asyncio.gather(_postgres(state), _temporal(state))
    ready = postgres == "ok" and temporal == "ok"
    body: dict[str, Any] = {
        "status": "ready" if ready else "not ready",
        "postgres": postgres,
        "temporal": temporal,
    }
    return web.json_response(body, status=200 if ready else 503)
