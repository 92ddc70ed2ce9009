"""`tindexer up`: start what is not configured (PostgreSQL, Temporal, the sim chain), then index."""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

from rich.console import Console

from indexer import services
from indexer.api.app import serving_api
from indexer.api.auth import generate_token
from indexer.api.hosts import allowed_hosts
from indexer.api.state import ApiState
from indexer.config import ChainConfig, Settings
from indexer.doctor.report import default_metrics_urls
from indexer.doctor.sampler import DoctorSampler
from indexer.garbage import collected_on_a_clock
from indexer.lifecycle import observed_services, until_stopped
from indexer.progress_view import show_progress
from indexer.store.chains import upsert_chain
from indexer.temporal_client import start_head_scan
from indexer.worker import WorkerTuning, running_worker


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
        api = ApiState(
            pool=pool,
            temporal=client,
            token=token,
            task_queue=settings.task_queue,
            allowed_hosts=allowed_hosts(settings.api_host, settings.api_allowed_hosts),
            allow_link_local_rpc=settings.allow_link_local_rpc,
            metrics=metrics,
            doctor=DoctorSampler(default_metrics_urls(settings), settings.temporal_metrics_url),
        )
        own_worker = (
            running_worker(
                client,
                pool,
                settings.task_queue,
                metrics=metrics,
                tuning=WorkerTuning(memory_budget_bytes=settings.worker_memory_budget_bytes),
            )
            if settings.worker_processes == 0
            else contextlib.nullcontext()  # they run apart (worker_processes)
        )
        async with (
            collected_on_a_clock(),
            serving_api(api, settings.api_host, settings.api_port) as api_port,
            own_worker,
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


def worker_processes(
    stack: contextlib.ExitStack,
    settings: Settings,
    database_url: str,
    temporal_address: str,
    console: Console,
) -> None:
    """Start `tindexer up`'s worker processes (worker_processes), stopped with `stack`: each
    polls up's task queue as `tindexer worker` does, so the work spreads over the cores."""
    if not settings.worker_processes:
        return
    data_dir = Path(settings.data_dir)
    config = data_dir / "worker.toml"  # what the environment does not carry; no secret
    config.write_text(
        f"task_queue = {json.dumps(settings.task_queue)}\n"
        f"temporal_namespace = {json.dumps(settings.temporal_namespace)}\n"
        f"metrics_host = {json.dumps(settings.metrics_host)}\n"
        f"worker_memory_budget_bytes = {settings.worker_memory_budget_bytes}\n"
    )
    env = {"DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    for number, port in enumerate(settings.worker_metrics_ports()):
        stack.enter_context(
            services.worker(
                ["--config", str(config), "--metrics-port", str(port)],
                port,
                data_dir / f"worker-{number}.log",
                env,
            )
        )
        console.print(f"worker process {number}: /metrics on {settings.metrics_host}:{port}")


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
        database_url = stack.enter_context(services.database(database_url, data_dir / "postgres"))
        temporal_address = settings.temporal_address
        if not temporal_address:
            metrics_url = f"http://{services.HOST}:{settings.temporal_metrics_port}/metrics"
            console.print(
                f"starting Temporal dev server on {services.HOST}:{options.temporal_port}"
                f" (UI http://{services.HOST}:{options.temporal_ui_port}, metrics {metrics_url}) …",
                soft_wrap=True,  # URLs stay whole on one line
            )
            # What runs from here (and any child) reads the embedded server's metrics.
            settings = settings.model_copy(update={"temporal_metrics_url": metrics_url})
            os.environ["TINDEXER_TEMPORAL_METRICS_URL"] = metrics_url
            stack.enter_context(
                services.temporal_dev_server(
                    options.temporal_port,
                    data_dir / "temporal.log",
                    ui_port=options.temporal_ui_port,
                    db_file=data_dir / "temporal.db",
                    metrics_port=settings.temporal_metrics_port,
                )
            )
            temporal_address = f"{services.HOST}:{options.temporal_port}"
        if not chains:
            console.print(
                f"starting simulated chain on {services.HOST}:{options.sim_port}: backlog"
                f" {options.backlog:,} blocks, one more every {options.block_time:g}s …"
            )
            stack.enter_context(
                services.sim_chain(
                    options.sim_port,
                    data_dir / "sim-chain.log",
                    backlog=options.backlog,
                    block_time=options.block_time,
                )
            )
            chains = [ChainConfig(name="sim", rpc_url=f"http://{services.HOST}:{options.sim_port}")]
        worker_processes(stack, settings, database_url, temporal_address, console)
        asyncio.run(
            index(settings, chains, database_url, temporal_address, console, options.exit_when_live)
        )
    return 0
