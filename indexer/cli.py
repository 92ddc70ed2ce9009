"""The `tindexer` command: up, worker, status, sim-chain."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from indexer.config import ChainConfig, ConfigError, Settings, load_settings

app = typer.Typer(add_completion=False, no_args_is_help=True, help=__doc__)
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


@app.command()
def up(
    config: ConfigOption = None,
    rpc_url: Annotated[
        str | None, typer.Option(help="Index this node instead of the simulated chain.")
    ] = None,
    chain_name: Annotated[str, typer.Option(help="Name of the --rpc-url chain.")] = "main",
    data_dir: DataDirOption = Path(".tindexer"),
    backlog: Annotated[int, typer.Option(help="Simulated chain: blocks at start.")] = 100_000,
    block_time: Annotated[float, typer.Option(help="Simulated chain: seconds per block.")] = 1.0,
    sim_port: Annotated[int, typer.Option(help="Simulated chain port.")] = 8545,
    temporal_port: Annotated[int, typer.Option(help="Embedded Temporal port.")] = 7233,
    temporal_ui_port: Annotated[int, typer.Option(help="Embedded Temporal UI port.")] = 8233,
    exit_when_live: Annotated[
        bool, typer.Option(help="Stop once every chain is live (for scripts and tests).")
    ] = False,
) -> None:
    """Start everything on embedded defaults and index until Ctrl-C."""
    from indexer.up import UpOptions, run_up

    settings = _settings(config, data_dir=data_dir)
    chains = list(settings.chains)
    if rpc_url:
        chains = [ChainConfig(name=chain_name, rpc_url=rpc_url)]
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
    max_concurrent_activities: Annotated[int, typer.Option(min=1)] = 32,
) -> None:
    """Run one worker against $TEMPORAL_ADDRESS and $DATABASE_URL (for scaling out)."""
    from indexer.up import run_worker_process

    settings = _settings(config)
    if not settings.database_url or not settings.temporal_address:
        console.print("[red]error:[/red] `tindexer worker` needs DATABASE_URL and TEMPORAL_ADDRESS")
        raise typer.Exit(2)
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s %(message)s")
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(run_worker_process(settings, max_concurrent_activities))
    _finish(0)


@app.command()
def status(config: ConfigOption = None, data_dir: DataDirOption = Path(".tindexer")) -> None:
    """Per chain: head, last indexed, missing blocks, gap ranges, live sync."""
    from indexer.up import print_status

    settings = _settings(config, data_dir=data_dir)
    _finish(asyncio.run(print_status(settings, console)))


@app.command("sim-chain")
def sim_chain(
    host: str = "127.0.0.1",
    port: int = 8545,
    backlog: int = 100_000,
    block_time: float = 1.0,
    txs_per_block: int = 3,
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
) -> None:
    """Serve the deterministic simulated chain (JSON-RPC) with optional faults."""
    from indexer.chain.simchain import Faults, SimChainConfig, serve

    faults = Faults(
        rate_limit_ratio=rate_limit_ratio,
        retry_after_seconds=retry_after_seconds,
        timeout_ratio=timeout_ratio,
        malformed_ratio=malformed_ratio,
        error_ratio=error_ratio,
        null_block_ratio=null_block_ratio,
        bad_parent_ratio=bad_parent_ratio,
        latency_seconds=latency_seconds,
    )
    sim = SimChainConfig(
        chain_id=chain_id,
        backlog=backlog,
        block_time=block_time,
        txs_per_block=txs_per_block,
        seed=seed,
        announce_ahead=announce_ahead,
        faults=faults,
    )
    with contextlib.suppress(KeyboardInterrupt):
        asyncio.run(serve(sim, host, port))


if __name__ == "__main__":
    app()
