"""`tindexer up`, `worker` and `status`: embedded services, the worker, the progress view."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import signal
from collections.abc import AsyncIterator, Coroutine
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg
from rich.console import Console
from rich.progress import BarColumn, Progress, TaskID, TaskProgressColumn, TextColumn
from rich.table import Table
from temporalio.client import Client

from exporter.metrics import Metrics, default_metrics
from exporter.temporal_sdk import SdkMetrics
from exporter.tracing import configure_tracing
from exporter.wiring import observed
from indexer.api.app import serving_api
from indexer.api.auth import generate_token
from indexer.api.state import ApiState
from indexer.config import ChainConfig, Settings
from indexer.rates import RateTracker
from indexer.runtime import (
    child_process,
    embedded_postgres,
    sim_chain_args,
    temporal_dev_server_args,
)
from indexer.status import ChainStatus, chain_status
from indexer.store.chains import list_chains, upsert_chain
from indexer.store.db import create_pool
from indexer.worker import WorkerTuning, connect_temporal, running_worker, start_head_scan

REFRESH_SECONDS = 1.0
LIVE_LINE_SECONDS = 10.0


@dataclass
class UpOptions:
    settings: Settings
    chains: list[ChainConfig]
    backlog: int
    block_time: float
    sim_port: int
    temporal_port: int
    temporal_ui_port: int
    exit_when_live: bool = False


def _eta(missing: int, rate: float) -> str:
    if missing == 0:
        return "0s"
    if rate <= 0:
        return "?"
    seconds = int(missing / rate)
    return f"{seconds // 60}m{seconds % 60:02d}s" if seconds >= 60 else f"{seconds}s"


def live_line(status: ChainStatus) -> str:
    mark = "[green]live[/green]" if status.is_live_sync else "[yellow]behind[/yellow]"
    return (
        f"{status.chain}: {mark} · head {status.head:,} · last indexed {status.last_indexed:,}"
        f" · missing {status.missing_blocks:,} · gaps {status.gap_ranges}"
    )


async def _statuses(pool: asyncpg.Pool) -> list[ChainStatus]:
    return [await chain_status(pool, row) for row in await list_chains(pool)]


async def show_progress(pool: asyncpg.Pool, console: Console, exit_when_live: bool) -> None:
    """A progress bar per chain until its backfill is done, then a live-sync line now and then."""
    rates = RateTracker(window_seconds=15.0)
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        TaskProgressColumn(),
        TextColumn("{task.fields[rate]:>8,.0f} blocks/s · ETA {task.fields[eta]}"),
    )
    with Progress(*columns, console=console, transient=False) as progress:
        tasks: dict[str, TaskID] = {}
        while True:
            statuses = [s for s in await _statuses(pool) if s.head is not None]
            for s in statuses:
                rate = rates.observe(s.chain, s.indexed_blocks) or 0.0
                if s.chain not in tasks:
                    tasks[s.chain] = progress.add_task(f"backfill {s.chain}", rate=0.0, eta="?")
                progress.update(
                    tasks[s.chain],
                    total=s.indexed_blocks + s.missing_blocks,
                    completed=s.indexed_blocks,
                    rate=rate,
                    eta=_eta(s.missing_blocks, rate),
                )
            if statuses and all(s.backfilled for s in statuses):
                break
            await asyncio.sleep(REFRESH_SECONDS)
    while True:
        for s in await _statuses(pool):
            if s.head is not None:
                console.print(live_line(s))
        if exit_when_live:
            return
        await asyncio.sleep(LIVE_LINE_SECONDS)


@contextlib.asynccontextmanager
async def observed_services(
    settings: Settings, database_url: str, temporal_address: str, *, progress: bool
) -> AsyncIterator[tuple[asyncpg.Pool, Client, Metrics]]:
    """The pool, a traced client with SDK metrics, and /metrics with its collectors."""
    configure_tracing("tindexer")
    metrics = default_metrics()
    sdk = SdkMetrics(metrics)
    pool = await create_pool(database_url)
    try:
        client = await connect_temporal(
            temporal_address, settings.temporal_namespace, runtime=sdk.runtime
        )
        async with observed(
            metrics,
            settings.metrics_host,
            settings.metrics_port,
            pool=pool,
            database_url=database_url,
            client=client,
            sdk=sdk,
            task_queues=[settings.task_queue],
            progress=progress,
        ):
            yield pool, client, metrics
    finally:
        await close_pool(pool)


async def index(
    settings: Settings,
    chains: list[ChainConfig],
    database_url: str,
    temporal_address: str,
    console: Console,
    exit_when_live: bool,
) -> None:
    async with observed_services(settings, database_url, temporal_address, progress=True) as (
        pool,
        client,
        metrics,
    ):
        for chain in chains:
            await upsert_chain(pool, chain)
        console.print(f"metrics on http://{settings.metrics_host}:{settings.metrics_port}/metrics")
        token = settings.api_token or generate_token()
        api = ApiState(pool=pool, temporal=client, token=token, task_queue=settings.task_queue)
        async with (
            serving_api(api, settings.api_host, settings.api_port) as api_port,
            running_worker(client, pool, settings.task_queue, metrics=metrics),
        ):
            console.print(f"admin API on http://{settings.api_host}:{api_port}")
            if not settings.api_token:
                console.print(
                    f"API token (shown once; set TINDEXER_API_TOKEN to choose): {token}",
                    soft_wrap=True,
                )
            for chain in chains:
                await start_head_scan(client, chain.name, settings.task_queue)
            await until_stopped(show_progress(pool, console, exit_when_live))
            console.print("stopping: draining the worker …")


async def until_stopped(work: Coroutine[Any, Any, object]) -> None:
    """Run `work` until it ends or SIGINT/SIGTERM arrives, then return normally for cleanup."""
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(signum, stop.set)
    task = asyncio.create_task(work)
    stopper = asyncio.create_task(stop.wait())
    try:
        await asyncio.wait({task, stopper}, return_when=asyncio.FIRST_COMPLETED)
    finally:
        for signum in (signal.SIGINT, signal.SIGTERM):
            loop.remove_signal_handler(signum)
        for pending in (task, stopper):
            pending.cancel()
        await asyncio.gather(task, stopper, return_exceptions=True)
    if task.done() and not task.cancelled() and task.exception() is not None:
        raise task.exception()  # type: ignore[misc]


async def close_pool(pool: asyncpg.Pool, timeout: float = 10.0) -> None:
    """Close gracefully, but never hang on a connection an interrupted task still holds."""
    try:
        await asyncio.wait_for(pool.close(), timeout)
    except TimeoutError:
        pool.terminate()


def run_up(options: UpOptions, console: Console) -> int:
    """Start what is not configured (Postgres, Temporal, the sim chain), then index."""
    settings = options.settings
    data_dir = Path(settings.data_dir)
    data_dir.mkdir(parents=True, exist_ok=True)
    logging.basicConfig(
        level=logging.WARNING,
        filename=data_dir / "tindexer.log",
        format="%(asctime)s %(levelname)s %(name)s %(message)s",
    )
    chains = options.chains
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url
        if not database_url:
            console.print(f"starting embedded PostgreSQL in {data_dir / 'postgres'} …")
            database_url = stack.enter_context(embedded_postgres(data_dir / "postgres"))
        temporal_address = settings.temporal_address
        if not temporal_address:
            console.print(
                f"starting Temporal dev server on 127.0.0.1:{options.temporal_port}"
                f" (UI http://127.0.0.1:{options.temporal_ui_port}) …"
            )
            stack.enter_context(
                child_process(
                    temporal_dev_server_args(
                        options.temporal_port,
                        options.temporal_ui_port,
                        data_dir / "temporal.db",
                    ),
                    "127.0.0.1",
                    options.temporal_port,
                    log_path=data_dir / "temporal.log",
                )
            )
            temporal_address = f"127.0.0.1:{options.temporal_port}"
        if not chains:
            console.print(
                f"starting simulated chain on 127.0.0.1:{options.sim_port}: backlog"
                f" {options.backlog:,} blocks, one more every {options.block_time:g}s …"
            )
            stack.enter_context(
                child_process(
                    sim_chain_args(
                        options.sim_port,
                        backlog=options.backlog,
                        block_time=options.block_time,
                    ),
                    "127.0.0.1",
                    options.sim_port,
                    log_path=data_dir / "sim-chain.log",
                )
            )
            chains = [ChainConfig(name="sim", rpc_url=f"http://127.0.0.1:{options.sim_port}")]
        asyncio.run(
            index(settings, chains, database_url, temporal_address, console, options.exit_when_live)
        )
    return 0


async def run_worker_process(settings: Settings, tuning: WorkerTuning) -> None:
    """A worker on its own, for more capacity; stops (draining) on Ctrl-C or SIGTERM."""
    assert settings.database_url and settings.temporal_address
    async with (
        observed_services(
            settings, settings.database_url, settings.temporal_address, progress=False
        ) as (pool, client, metrics),
        running_worker(
            client,
            pool,
            settings.task_queue,
            metrics=metrics,
            tuning=tuning,
        ),
    ):
        await until_stopped(asyncio.Event().wait())


async def print_status(settings: Settings, console: Console) -> int:
    """The `tindexer status` table; reads PostgreSQL only."""
    with contextlib.ExitStack() as stack:
        database_url = settings.database_url or stack.enter_context(
            embedded_postgres(Path(settings.data_dir) / "postgres")
        )
        conn = await asyncpg.connect(database_url)
        try:
            rows = await list_chains(conn)
            statuses = [await chain_status(conn, row) for row in rows]
        finally:
            await conn.close()
    table = Table(
        "chain", "head", "last indexed", "missing blocks", "gap ranges", "largest gap", "live sync"
    )
    for s in statuses:
        gap = f"{s.largest_gap[0]:,}..{s.largest_gap[1]:,}" if s.largest_gap else "-"
        table.add_row(
            s.chain,
            f"{s.head:,}" if s.head is not None else "-",
            f"{s.last_indexed:,}" if s.last_indexed is not None else "-",
            f"{s.missing_blocks:,}",
            str(s.gap_ranges),
            gap,
            "yes" if s.is_live_sync else "no",
        )
    console.print(table)
    return 0
