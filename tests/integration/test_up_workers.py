"""`tindexer up` with worker_processes: its chains are indexed by `tindexer worker` processes it
starts and stops, not by its own process."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from pathlib import Path

import aiohttp
import psutil

from indexer import services
from indexer.embedded import free_port, free_ports_from
from indexer.store.chains import get_chain
from tests.support.harness import Harness, fully_indexed
from tests.support.waiting import wait_until
from tests.support.workers import metrics_text, parse_samples, sample_sum

ROOT = Path(__file__).resolve().parents[2]
BACKLOG = 300


async def stored(harness: Harness, name: str) -> bool:
    """Whether up has added the chain and its backlog is indexed."""
    return await get_chain(harness.pool, name) is not None and await fully_indexed(
        harness, name, BACKLOG
    )


async def scrape(port: int, tmp_path: Path) -> str:
    """/metrics on `port`; if it does not answer, an error with the worker processes' logs."""
    try:
        return await metrics_text("127.0.0.1", port)
    except (aiohttp.ClientError, OSError) as exc:
        logs = sorted((tmp_path / "data").glob("worker-*.log"))
        tails = "\n".join(f"{log.name}:\n{log.read_text(errors='replace')[-3000:]}" for log in logs)
        raise AssertionError(f"/metrics on {port}: {exc!r}\n{tails}") from exc


async def test_up_with_worker_processes_indexes_through_them_and_stops_them(
    harness: Harness, tmp_path: Path, database_url: str, temporal_address: str
) -> None:
    sim_port = free_port()
    metrics_port = free_port()
    base = free_ports_from(2)
    name = f"up-workers-{os.getpid()}"
    harness.chains.append(name)  # its HeadScan outlives `up`: terminated after the test
    config = tmp_path / "up.toml"
    config.write_text(
        f'task_queue = "{harness.task_queue}"\n'
        f"api_port = {free_port()}\nmetrics_port = {metrics_port}\n"
        f"worker_processes = 2\nworker_metrics_port_base = {base}\n\n"
        f'[[chain]]\nname = "{name}"\nrpc_url = "http://{services.HOST}:{sim_port}"\n'
    )
    args = [sys.executable, "-m", "indexer.cli", "up", "--config", str(config)]
    args += ["--data-dir", str(tmp_path / "data")]
    env = {**os.environ, "DATABASE_URL": database_url, "TEMPORAL_ADDRESS": temporal_address}
    with services.sim_chain(sim_port, tmp_path / "sim.log", backlog=BACKLOG, block_time=1):
        process = await asyncio.create_subprocess_exec(
            *args,
            cwd=ROOT,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.STDOUT,
        )
        try:
            await wait_until(lambda: stored(harness, name), 120, "the backlog")
            workers = [
                child
                for child in psutil.Process(process.pid).children(recursive=True)
                if "worker" in child.cmdline()
            ]
            assert len(workers) == 2, [w.cmdline() for w in workers]
            texts = [await scrape(port, tmp_path) for port in (metrics_port, base, base + 1)]
            own, *theirs = [
                sample_sum(parse_samples(text), "tindexer_blocks_indexed_total", chain=name)
                for text in texts
            ]
            assert own == 0  # up itself indexes nothing
            assert sum(theirs) >= BACKLOG
            process.send_signal(signal.SIGTERM)
            output, _ = await asyncio.wait_for(process.communicate(), 60)
        finally:
            if process.returncode is None:
                process.kill()
                await process.wait()
    text = output.decode(errors="replace")
    assert process.returncode == 0, text
    assert f"worker process 1: /metrics on 127.0.0.1:{base + 1}" in text, text
    assert not any(worker.is_running() for worker in workers)  # stopped with up
