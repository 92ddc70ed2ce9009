"""The fetch and COPY ceilings that bench/backlog.py and bench/mainnet.py measure beside a run.

Both set up the same way: a scratch PostgreSQL (or DATABASE_URL) and a simulated chain with no
block time; then each ceiling runs with one process and with as many processes as the indexer
has workers (one Python process is bound to one core, so with several workers the fair ceiling
is what as many processes reach together; the higher count is the ceiling), every process
timing only its own share, all started together. A benchmark supplies what differs: the
chain's content, the ranges, and the share each process runs (`ShareTarget`).
"""

from __future__ import annotations

import asyncio
import contextlib
import multiprocessing
import os
import statistics
import time
import uuid
from collections.abc import Awaitable, Callable
from typing import Any

import psutil

from bench.common import scratch_directory

Ranges = list[tuple[int, int]]
Ready = Callable[[], object]
Measured = dict[str, dict[int, dict[str, float]]]  # kind ("rpc", "copy") -> processes -> figures
# One process of a ceiling: `target(kind, share, barrier, results)` prepares, waits at the
# barrier for the others, and puts its (start, end) in results. Module-level: children spawn.
ShareTarget = Callable[[str, tuple[Any, ...], Any, Any], None]
FIGURES = ("blocks_per_second", "machine_busy")


def rpc_client(url: str) -> Any:
    """The indexer's own JSON-RPC client with the settings a default chain gets."""
    from indexer.activities.chain_cache import rpc_settings
    from indexer.chain.fetcher import Fetcher
    from indexer.config import ChainConfig

    config = ChainConfig(name="ceiling", rpc_url=url)
    return Fetcher.for_url(url, "ceiling", rpc_settings(config))


async def timed(
    work: Callable[[], Awaitable[None]], concurrency: int, ready: Ready
) -> tuple[float, float]:
    """Say ready (then wait for the others), run `concurrency` copies of `work`: (start, end)."""
    ready()
    started = time.time()
    await asyncio.gather(*(work() for _ in range(concurrency)))
    return started, time.time()


async def store_prepared(
    database_url: str,
    chain_id: int,
    prepared: list[Any],
    datasets: Any,
    concurrency: int,
    ready: Ready,
) -> tuple[float, float]:
    """COPY-only: blocks prepared in memory, written by the indexer's bulk store. (start, end)"""
    from indexer.store.blocks import store_batch
    from indexer.store.db import create_pool

    pool = await create_pool(database_url, max_size=concurrency)
    todo = iter(prepared)

    async def writer() -> None:
        async with pool.acquire() as conn:
            for blocks in todo:
                await store_batch(conn, chain_id, blocks, datasets)

    span = await timed(writer, concurrency, ready)
    await pool.close()
    return span


def _busy_cpu_seconds() -> tuple[float, float]:
    """(busy, total) CPU seconds of the whole machine so far, summed over its cores."""
    times = psutil.cpu_times()
    idle = times.idle + getattr(times, "iowait", 0.0)
    total = sum(times)
    return total - idle, total


def ceiling(
    kind: str, processes: int, shares: list[tuple[Any, ...]], blocks: int, target: ShareTarget
) -> tuple[float, float]:
    """(blocks/s, fraction of the machine's cores busy meanwhile) of `processes` processes
    each running its share, all started together."""
    context = multiprocessing.get_context("spawn")  # fresh interpreters: no inherited loop
    barrier, results = context.Barrier(processes + 1), context.Queue()
    children = [
        context.Process(target=target, args=(kind, share, barrier, results)) for share in shares
    ]
    for child in children:
        child.start()
    barrier.wait()  # this process too: the clock of the whole machine starts with theirs
    busy_before, total_before = _busy_cpu_seconds()
    spans = [results.get(timeout=600) for _ in children]
    busy_after, total_after = _busy_cpu_seconds()
    for child in children:
        child.join()
    rate = blocks / (max(end for _, end in spans) - min(start for start, _ in spans))
    return rate, (busy_after - busy_before) / (total_after - total_before)


def _figures(blocks_per_second: float, machine_busy: float) -> dict[str, float]:
    return {
        "blocks_per_second": round(blocks_per_second, 1),
        "machine_busy": round(machine_busy, 3),
    }


async def measure(
    prefix: str,
    chain_options: dict[str, object],
    workers: int,
    rpc: tuple[int, Callable[[str, int], list[tuple[Any, ...]]]],
    copy: tuple[int, Callable[[str, str, int, int], list[tuple[Any, ...]]]],
    target: ShareTarget,
) -> Measured:
    """Both ceilings, with one process and with `workers`, on fresh services.

    `rpc` is (blocks, shares(url, processes)); `copy` is (blocks, shares(url, database_url,
    chain_id, processes)), the chain a fresh one so every range is new. `chain_options` are
    the simulated chain's (`backlog` included).
    """
    from indexer import services
    from indexer.config import ChainConfig
    from indexer.embedded import free_port
    from indexer.store.chains import upsert_chain
    from indexer.store.db import create_pool

    work = scratch_directory(prefix)
    port = free_port()
    counts = sorted({1, workers})
    result: Measured = {"rpc": {}, "copy": {}}
    with contextlib.ExitStack() as stack:
        database_url = stack.enter_context(
            services.database(os.environ.get("DATABASE_URL"), work / "pg")
        )
        stack.enter_context(services.sim_chain(port, work / "sim.log", **chain_options))
        url = f"http://{services.HOST}:{port}"
        rpc_blocks, rpc_shares = rpc
        for n in counts:
            rate = ceiling("rpc", n, rpc_shares(url, n), rpc_blocks, target)
            result["rpc"][n] = _figures(*rate)
        copy_blocks, copy_shares = copy
        pool = await create_pool(database_url, max_size=1)
        for n in counts:
            name = f"copy{uuid.uuid4().hex[:6]}"  # a fresh chain: every range is new
            row = await upsert_chain(pool, ChainConfig(name=name, rpc_url=url))
            rate = ceiling(
                "copy", n, copy_shares(url, database_url, row.id, n), copy_blocks, target
            )
            result["copy"][n] = _figures(*rate)
        await pool.close()
    return result


def medians(runs: list[Measured]) -> Measured:
    """Each figure's median over the runs, by kind and process count."""
    return {
        kind: {
            n: {
                figure: statistics.median(run[kind][n][figure] for run in runs)
                for figure in FIGURES
            }
            for n in runs[0][kind]
        }
        for kind in ("rpc", "copy")
    }


def best(measured: Measured, kind: str) -> float:
    """The ceiling: the higher blocks/s of the process counts."""
    return max(figures["blocks_per_second"] for figures in measured[kind].values())
