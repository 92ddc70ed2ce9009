"""The aiohttp application: routes, JSON errors, auth, and the `tindexer api` server loop."""

from __future__ import annotations

import asyncio
import contextlib
import signal
from collections.abc import AsyncIterator, Awaitable, Callable, Coroutine
from typing import Any

import asyncpg
from aiohttp import web
from aiohttp.typedefs import Handler
from temporalio.client import Client

from indexer.api import chains, doctor, health, status
from indexer.api.auth import require_token
from indexer.api.deletion import run_purger
from indexer.api.errors import ApiError, error_response
from indexer.api.hosts import allowed_hosts, check_host
from indexer.api.openapi import build_document
from indexer.api.state import STATE, ApiState, log
from indexer.api.validation import MAX_BODY_BYTES
from indexer.doctor.sampler import DoctorSampler
from indexer.observability import serving_metrics

RATE_SAMPLE_SECONDS = 5.0  # throughput samples even when nobody polls the status
STATUS_POOL_SIZE = 10  # READ_CONNECTIONS for reads, the rest for writes, deletes and probes


@web.middleware
async def json_errors(request: web.Request, handler: Handler) -> web.StreamResponse:
    """Every error as {"error", "field"}: ours, aiohttp's (404, 405, 413) and unexpected ones."""
    try:
        return await handler(request)
    except ApiError as exc:
        return exc.response()
    except web.HTTPException as exc:
        if exc.status < 400:
            raise
        allow = {"Allow": exc.headers["Allow"]} if "Allow" in exc.headers else None
        return error_response(exc.status, exc.reason, None, allow)
    except (OSError, asyncpg.InterfaceError, asyncpg.PostgresConnectionError) as exc:
        log.warning("%s %s: PostgreSQL unavailable: %s", request.method, request.path, exc)
        return error_response(503, "PostgreSQL is unavailable")


async def _read_only(request: web.Request) -> web.Response:
    """Without this, /chains/{name} would claim `PATCH /chains/status` and answer 404."""
    raise web.HTTPMethodNotAllowed(request.method, ["GET"])


def openapi_handler(document: dict[str, Any]) -> Callable[[web.Request], Awaitable[web.Response]]:
    async def serve(request: web.Request) -> web.Response:
        return web.json_response(document)

    return serve


def create_app(state: ApiState, sample_rates: bool = True) -> web.Application:
    """The admin API on `state`; `sample_rates` runs the background throughput sampler."""
    app = web.Application(
        middlewares=[json_errors, check_host, require_token], client_max_size=MAX_BODY_BYTES
    )
    app[STATE] = state
    app.add_routes(
        [
            web.get("/healthz", health.healthz, allow_head=False),
            web.get("/readyz", health.readyz, allow_head=False),
            web.get("/openapi.json", openapi_handler(build_document()), allow_head=False),
            web.get("/chains", chains.list_chains_handler, allow_head=False),
            web.post("/chains", chains.create_chain),
            # Before /chains/{name}: `status` is a reserved chain name.
            web.get("/chains/status", status.chains_status, allow_head=False),
            web.route("*", "/chains/status", _read_only),
            web.get("/chains/{name}", chains.get_chain_handler, allow_head=False),
            web.patch("/chains/{name}", chains.patch_chain),
            web.delete("/chains/{name}", chains.delete_chain_handler),
            web.get("/chains/{name}/status", status.chain_status_handler, allow_head=False),
            web.get("/chains/{name}/gaps", status.chain_gaps, allow_head=False),
            web.post("/chains/{name}/backfill", chains.backfill),
            web.get("/doctor", doctor.doctor, allow_head=False),
        ]
    )
    app.cleanup_ctx.append(_in_background(run_purger))
    if sample_rates:
        app.cleanup_ctx.append(
            _in_background(lambda state: status.sample_rates(state, RATE_SAMPLE_SECONDS))
        )
    return app


def _in_background(
    run: Callable[[ApiState], Coroutine[Any, Any, None]],
) -> Callable[[web.Application], AsyncIterator[None]]:
    """A cleanup context running `run(state)` as a task while the app serves."""

    async def context(app: web.Application) -> AsyncIterator[None]:
        task = asyncio.create_task(run(app[STATE]))
        yield
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task

    return context


@contextlib.asynccontextmanager
async def serving_api(state: ApiState, host: str, port: int) -> AsyncIterator[int]:
    """Serve the admin API for the duration of the block; yields the bound port.

    Unless `state.allowed_hosts` is set, the API answers to localhost names and `host`.
    """
    if state.allowed_hosts is None:
        state.allowed_hosts = allowed_hosts(host, None)
    runner = web.AppRunner(create_app(state), access_log=None)
    await runner.setup()
    try:
        await web.TCPSite(runner, host, port).start()
        yield runner.addresses[0][1] if runner.addresses else port
    finally:
        await runner.cleanup()


async def serve(
    database_url: str,
    temporal_address: str,
    namespace: str,
    task_queue: str,
    token: str,
    host: str,
    port: int,
    ready: Callable[[int], None] | None = None,
    *,
    hosts: list[str] | None = None,
    allow_link_local_rpc: bool = False,
    doctor: DoctorSampler | None = None,
    metrics_address: tuple[str, int] | None = None,
) -> None:
    """Run the API until SIGTERM or SIGINT; `ready(port)` is called once it listens.

    `hosts` are the Host names it answers to (api_allowed_hosts; default: localhost and `host`).
    With `metrics_address` (host, port) it serves its own /metrics there, apart from the API:
    on a host of its own, Prometheus sees it up and reaching PostgreSQL and Temporal.
    """
    from indexer.store.db import create_pool

    pool = await create_pool(database_url, min_size=1, max_size=STATUS_POOL_SIZE)
    try:
        # Lazy: the API starts (and /readyz says why not ready) while Temporal is still down.
        temporal = await Client.connect(temporal_address, namespace=namespace, lazy=True)
        state = ApiState(
            pool=pool,
            temporal=temporal,
            token=token,
            task_queue=task_queue,
            allowed_hosts=allowed_hosts(host, hosts),
            allow_link_local_rpc=allow_link_local_rpc,
        )
        if doctor is not None:
            state.doctor = doctor
        async with contextlib.AsyncExitStack() as serving:
            if metrics_address is not None:
                await serving.enter_async_context(
                    serving_metrics(
                        state.metrics,
                        *metrics_address,
                        pool=pool,
                        database_url=database_url,
                        client=temporal,
                    )
                )
            bound = await serving.enter_async_context(serving_api(state, host, port))
            if ready:
                ready(bound)
            stop = asyncio.Event()
            loop = asyncio.get_running_loop()
            for sig in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(sig, stop.set)
            await stop.wait()
    finally:
        await pool.close()
