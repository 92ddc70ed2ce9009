"""The `tindexer` command: up, worker(s), api, status, doctor, sim-chain, dashboards, alerts, …"""

from __future__ import annotations

import asyncio
import contextlib
import faulthandler
import logging
import os
import signal
import sys
from pathlib import Path
from typing import Annotated

import typer
from pydantic import ValidationError
from rich.console import Console
from rich.table import Table

from alerts.cli import app as alerts_app
from dashboards.cli import app as dashboards_app
from indexer.config import (
    ChainConfig,
    ConfigError,
    Settings,
    format_validation_error,
    load_settings,
)
from indexer.doctor.cli import doctor

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
app.add_typer(dashboards_app, name="dashboards")
app.add_typer(alerts_app, name="alerts")
app.command()(doctor)
console = Console()

ConfigOption = Annotated[
    Path | None,
    typer.Option("--config", "-c", help="TOML config file (default: $TINDEXER_CONFIG)."),
]
DataDirOption = Annotated[
    Path, typer.Option(help="Where embedded PostgreSQL and Temporal keep their data.")
]


def _settings(config: Path | None, **overrides: object) -> Settings:
    try:
        return load_settings(config, **overrides)
    except ConfigError as exc:
        console.print(f"[red]error:[/red] {exc}")
        raise typer.Exit(2) from None


def _finish(code: int) -> None:
    """Exit without interpreter teardown, where the Temporal SDK's runtime can segfault."""
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)


def _stop_before_start(signum: int, frame: object) -> None:
    """SIGTERM before the worker's loop took the signal over: nothing runs yet, so just go.

    (Raising into a half-started asyncio.run can hang its teardown on the SDK's threads.)
    """
    _finish(0)


def _rpc_url_chain(name: str, rpc_url: str, datasets: str | None) -> ChainConfig:
    """The --rpc-url chain; its --datasets checked as the config file and the API check them."""
    wanted = {} if datasets is None else {"datasets": [d.strip() for d in datasets.split(",")]}
    try:
        return ChainConfig(name=name, rpc_url=rpc_url, **wanted)
    except ValidationError as exc:
        console.print(f"[red]error:[/red] invalid chain\n{format_validation_error(exc)}")
        raise typer.Exit(2) from None


@app.command()
def up(
    config: ConfigOption = None,
    rpc_url: Annotated[
        str | None, typer.Option(help="Index this node instead of the simulated chain.")
    ] = None,
    chain_name: Annotated[str, typer.Option(help="Name of the --rpc-url chain.")] = "main",
    datasets: Annotated[
        str | None,
        typer.Option(
            help="What the --rpc-url chain indexes, comma-separated, from blocks, transactions,"
            " receipts, logs (default: all). Config-file chains set `datasets` there."
        ),
    ] = None,
    data_dir: DataDirOption = Path(".tindexer"),
    backlog: Annotated[int, typer.Option(help="Simulated chain: blocks at start.")] = 100_000,
    block_time: Annotated[float, typer.Option(help="Simulated chain: seconds per block.")] = 1.0,
    sim_port: Annotated[int, typer.Option(help="Simulated chain port.")] = 8545,
    temporal_port: Annotated[int, typer.Option(help="Embedded Temporal port.")] = 7233,
    temporal_ui_port: Annotated[int, typer.Option(help="Embedded Temporal UI port.")] = 8233,
    temporal_metrics_port: Annotated[
        int | None,
        typer.Option(help="Embedded Temporal's /metrics port [default: 8234, or the config's]."),
    ] = None,
    exit_when_live: Annotated[
        bool, typer.Option(help="Stop once every chain is live (for scripts and tests).")
    ] = False,
) -> None:
    """Start everything on embedded defaults and index until Ctrl-C."""
    from indexer.up import UpOptions, run_up

    settings = _settings(config, data_dir=data_dir, temporal_metrics_port=temporal_metrics_port)
    chains = list(settings.chains)
    if datasets is not None and not rpc_url:
        console.print("[red]error:[/red] --datasets needs --rpc-url (in a config file: `datasets`)")
        raise typer.Exit(2)
    if rpc_url:
        chains = [_rpc_url_chain(chain_name, rpc_url, datasets)]
    options = UpOptions(
        settings=settings,
        chains=chains,
        backlog=backlog,
        block_time=block_time,
        sim_port=sim_port,
        temporal_port=temporal_port,
        temporal_ui_port=temporal_ui_port,
        exit_when_live=exit_when_live,
    )
    code = 0
    try:
        code = run_up(options, console)
    except KeyboardInterrupt:
        console.print("stopped.")
    _finish(code)


@app.command()
def worker(
    config: ConfigOption = None,
    max_concurrent_activities: Annotated[
        int,
        typer.Option(
            min=1,
            help="Ranges at once (while the memory budget has room) and, apart, scans and"
            " scheduling activities at once.",
        ),
    ] = 32,
    max_concurrent_workflow_tasks: Annotated[
        int, typer.Option(min=2, help="The Temporal SDK's default: 100.")
    ] = 100,
    pollers: Annotated[
        int, typer.Option(min=1, help="Pollers per task type, on each of the worker's queues.")
    ] = 5,
    start_clients: Annotated[
        int, typer.Option(min=1, help="Temporal connections that start workflows.")
    ] = 1,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics here (default: settings, 9464).")
    ] = None,
    memory_budget: Annotated[
        int | None,
        typer.Option(
            min=1024 * 1024,
            help="JSON-RPC answer bytes the worker holds at once"
            " (default: settings' worker_memory_budget_bytes, 32 MiB).",
        ),
    ] = None,
) -> None:
    """Run one worker against $TEMPORAL_ADDRESS and $DATABASE_URL (for scaling out)."""
    from indexer.worker import WorkerTuning, run_worker_process

    settings = _settings(config, metrics_port=metrics_port)
    if not settings.database_url or not settings.temporal_address:
        console.print("[red]error:[/red] `tindexer worker` needs DATABASE_URL and TEMPORAL_ADDRESS")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    faulthandler.enable()  # a crash in native code (the SDK's core, a C extension) leaves a trace
    with contextlib.suppress(KeyboardInterrupt):
        # A SIGTERM before the loop's drain handler exists stops cleanly too; `tindexer
        # workers` starts workers with SIGTERM blocked, so one sent while importing waits here.
        signal.signal(signal.SIGTERM, _stop_before_start)
        signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGTERM})
        tuning = WorkerTuning(
            max_concurrent_activities=max_concurrent_activities,
            max_concurrent_workflow_tasks=max_concurrent_workflow_tasks,
            pollers=pollers,
            start_clients=start_clients,
            memory_budget_bytes=memory_budget or settings.worker_memory_budget_bytes,
        )
        asyncio.run(run_worker_process(settings, tuning))
    _finish(0)


@app.command()
def status(config: ConfigOption = None, data_dir: DataDirOption = Path(".tindexer")) -> None:
    """Per chain: head, last indexed, missing blocks, gap ranges, live sync."""
    from indexer.progress_view import print_status

    settings = _settings(config, data_dir=data_dir)
    _finish(asyncio.run(print_status(settings, console)))


@app.command()
def api(
    config: ConfigOption = None,
    host: Annotated[str | None, typer.Option(help="Bind address (default 127.0.0.1).")] = None,
    port: Annotated[int | None, typer.Option(help="Port (default 8088; 0 picks one).")] = None,
    metrics_port: Annotated[
        int | None,
        typer.Option(help="Also serve /metrics on metrics_host and this port (default: none)."),
    ] = None,
) -> None:
    """Serve the admin API (chains, status, gaps, backfill) against the configured services."""
    from indexer.api.app import serve
    from indexer.api.auth import generate_token
    from indexer.doctor.report import default_metrics_urls
    from indexer.doctor.sampler import DoctorSampler

    settings = _settings(config)
    if not settings.database_url or not settings.temporal_address:
        console.print("[red]error:[/red] `tindexer api` needs DATABASE_URL and TEMPORAL_ADDRESS")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    token = settings.api_token
    if not token:
        token = generate_token()
        console.print(f"API token (shown once; set TINDEXER_API_TOKEN to choose one): {token}")
    bind_host = host or settings.api_host

    def ready(bound: int) -> None:
        console.print(f"admin API on http://{bind_host}:{bound}")

    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            serve(
                settings.database_url,
                settings.temporal_address,
                settings.temporal_namespace,
                settings.task_queue,
                token,
                bind_host,
                settings.api_port if port is None else port,
                ready,
                hosts=settings.api_allowed_hosts,
                allow_link_local_rpc=settings.allow_link_local_rpc,
                doctor=DoctorSampler(default_metrics_urls(settings), settings.temporal_metrics_url),
                metrics_address=(
                    None if metrics_port is None else (settings.metrics_host, metrics_port)
                ),
            )
        )
    _finish(0)


@app.command()
def workers(
    config: ConfigOption = None,
    autoscale: Annotated[
        bool, typer.Option(help="Follow each chain's backlog within its min/max replicas.")
    ] = False,
    replicas: Annotated[int, typer.Option(min=0, help="Without --autoscale: run this many.")] = 1,
    blocks_per_replica: Annotated[
        int, typer.Option(min=1, help="Backlog blocks one replica is expected to carry.")
    ] = 50_000,
    scale_down_window: Annotated[
        float, typer.Option(min=0, help="Seconds of lower recommendations before shrinking.")
    ] = 300.0,
    interval: Annotated[float, typer.Option(min=0.1, help="Seconds between reconciles.")] = 5.0,
    recommend_only: Annotated[
        bool, typer.Option(help="Export tindexer_replicas_* only; start nothing (for KEDA).")
    ] = False,
    metrics_port: Annotated[
        int | None, typer.Option(help="Serve /metrics here (default: settings, 9464).")
    ] = None,
    max_concurrent_activities: Annotated[int, typer.Option(min=1)] = 32,
    log_dir: Annotated[Path | None, typer.Option(help="One log file per worker here.")] = None,
    worker_metrics_port_base: Annotated[
        int | None,
        typer.Option(help="Worker n serves /metrics on this + n (default: metrics port + 1)."),
    ] = None,
) -> None:
    """Supervise `tindexer worker` processes: a fixed number, or as the backlog needs."""
    from prometheus_client import start_http_server

    from exporter.metrics import default_metrics
    from indexer.supervisor import SupervisorOptions, run_supervisor

    settings = _settings(config)
    if not settings.database_url or not settings.temporal_address:
        console.print(
            "[red]error:[/red] `tindexer workers` needs DATABASE_URL and TEMPORAL_ADDRESS"
        )
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    worker_args = ["--max-concurrent-activities", str(max_concurrent_activities)]
    if config is not None:
        worker_args += ["--config", str(config)]
    options = SupervisorOptions(
        autoscale=autoscale or recommend_only,
        replicas=replicas,
        blocks_per_replica=blocks_per_replica,
        scale_down_window_seconds=scale_down_window,
        interval_seconds=interval,
        recommend_only=recommend_only,
        worker_args=worker_args,
        log_dir=log_dir,
    )
    port = settings.metrics_port if metrics_port is None else metrics_port
    options.worker_metrics_port_base = (
        port + 1 if worker_metrics_port_base is None else worker_metrics_port_base
    )
    metrics = default_metrics()
    start_http_server(port, addr=settings.metrics_host, registry=metrics.registry)
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(
            run_supervisor(settings.database_url, settings.temporal_address, options, metrics)
        )
    _finish(0)


@app.command("sim-chain")
def sim_chain(
    host: str = "127.0.0.1",
    port: int = 8545,
    backlog: int = 100_000,
    block_time: float = 1.0,
    profile: Annotated[
        str,
        typer.Option(
            help="Block content: default (3 cheap transactions, ~1.3 logs each) or mainnet "
            "(~150 transactions, ~300 bytes of calldata and ~2 logs each)."
        ),
    ] = "default",
    txs_per_block: Annotated[
        int | None, typer.Option(help="Transactions per block (default: the profile's).")
    ] = None,
    chain_id: int = 1337,
    seed: int = 0,
    announce_ahead: bool = False,
    rate_limit_ratio: float = 0.0,
    retry_after_seconds: float = 1.0,
    timeout_ratio: float = 0.0,
    malformed_ratio: float = 0.0,
    error_ratio: float = 0.0,
    null_block_ratio: float = 0.0,
    bad_parent_ratio: float = 0.0,
    latency_seconds: float = 0.0,
    receipts_missing_ratio: float = 0.0,
    receipts_other_block_ratio: float = 0.0,
    receipts_wrong_count_ratio: float = 0.0,
) -> None:
    """Serve the deterministic simulated chain (JSON-RPC) with optional faults."""
    from indexer.simchain.profiles import PROFILES
    from indexer.simchain.server import Faults, SimChainConfig, serve

    if profile not in PROFILES:
        console.print(
            f"[red]error:[/red] unknown profile {profile!r} (known: {', '.join(PROFILES)})"
        )
        raise typer.Exit(2)
    faults = Faults(
        rate_limit_ratio=rate_limit_ratio,
        retry_after_seconds=retry_after_seconds,
        timeout_ratio=timeout_ratio,
        malformed_ratio=malformed_ratio,
        error_ratio=error_ratio,
        null_block_ratio=null_block_ratio,
        bad_parent_ratio=bad_parent_ratio,
        latency_seconds=latency_seconds,
        receipts_missing_ratio=receipts_missing_ratio,
        receipts_other_block_ratio=receipts_other_block_ratio,
        receipts_wrong_count_ratio=receipts_wrong_count_ratio,
    )
    sim = SimChainConfig(
        chain_id=chain_id,
        backlog=backlog,
        block_time=block_time,
        txs_per_block=txs_per_block,
        profile=profile,
        seed=seed,
        announce_ahead=announce_ahead,
        faults=faults,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sim, host, port))


@app.command("metrics-doc")
def metrics_doc() -> None:
    """Regenerate docs/metrics.md from exporter/metrics.py."""
    from exporter.docs import write

    console.print(f"wrote {write()}")


@app.command()
def generate() -> None:
    """Regenerate every committed generated file: dashboards, alerts, metrics doc, OpenAPI."""
    from indexer.generate import write

    for path in write():
        console.print(f"wrote {path}")


@app.command()
def loadtest(
    blocks: Annotated[int, typer.Option(min=1, help="Backlog to index end to end.")] = 750_000,
    txs_per_block: Annotated[int, typer.Option(min=0)] = 3,
    workers: Annotated[int, typer.Option(min=1, help="Worker processes (replicas).")] = 1,
    profile: Annotated[
        str | None,
        typer.Option(
            help="Simulated chain's block profile (mainnet: ~150 transactions with calldata,"
            " ~2 logs each); replaces --txs-per-block."
        ),
    ] = None,
    worker_option: Annotated[
        list[str] | None,
        typer.Option(
            help="An extra `tindexer worker` argument, as --worker-option=--memory-budget=N"
            " (repeat for each)."
        ),
    ] = None,
) -> None:
    """Index a simulated backlog end to end on fresh embedded services and report the timings."""
    from indexer.loadtest import run_loadtest

    result = asyncio.run(
        run_loadtest(
            blocks,
            txs_per_block,
            workers=workers,
            profile=profile,
            worker_options=worker_option,
        )
    )
    table = Table("measure", "value")
    for name, value in vars(result).items():
        if name != "series":
            table.add_row(name, f"{value:,}" if isinstance(value, int | float) else str(value))
    table.add_row("activity_timeout_rate", f"{result.activity_timeout_rate:.4%}")
    console.print(table)
    _finish(0)


if __name__ == "__main__":
    app()
