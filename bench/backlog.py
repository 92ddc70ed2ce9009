"""End to end: 750,000 blocks (and 75,000) through Temporal into PostgreSQL, beside the ceilings.

Each size runs `tindexer loadtest` (fresh services; the worker in its own process with metrics
and tracing on). In the same invocation it measures the two ceilings on the same machine:
  * RPC ceiling: a fetch-only loop — the same RpcClient and settings, the same simulated chain
    and block contents — fetching and parsing blocks with no Temporal and no database;
  * COPY ceiling: the same rows written by the same bulk store (COPY into staging + upsert +
    range record) from memory, with no fetching and no Temporal.
The indexer's rate is then reported as a fraction of the lower ceiling.

    .venv/bin/python bench/backlog.py          # or `make bench-backlog`
    .venv/bin/python bench/backlog.py --quick  # 75,000 and 7,500 blocks
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import itertools
import os
import sys
import tempfile
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

from bench.common import RESULTS, provenance, write_result

TXS_PER_BLOCK = 3
CEILING_BLOCKS = 150_000
CEILING_CONCURRENCY = 8  # ranges in flight at once, as a worker runs several activities


async def rpc_ceiling(url: str, blocks: int, blocks_per_range: int) -> float:
    """Blocks/s a fetch-only loop reaches: RPC batches, JSON parsing, block checks."""
    from indexer.chain.rpc import RpcClient, RpcSettings
    from indexer.config import ChainConfig

    config = ChainConfig(name="ceiling", rpc_url=url)
    client = RpcClient(
        url,
        "ceiling",
        RpcSettings(
            batch_size=config.rpc_batch_size,
            max_concurrency=config.rpc_max_concurrency,
            timeout_seconds=config.rpc_timeout_seconds,
        ),
    )
    starts = iter(range(0, blocks, blocks_per_range))

    async def fetcher() -> None:
        for start in starts:
            await client.get_blocks(start, min(start + blocks_per_range, blocks) - 1)

    started = time.perf_counter()
    await asyncio.gather(*(fetcher() for _ in range(CEILING_CONCURRENCY)))
    seconds = time.perf_counter() - started
    await client.close()
    return blocks / seconds


async def copy_ceiling(database_url: str, blocks: int, blocks_per_range: int) -> float:
    """Blocks/s the bulk store reaches with the same rows prepared in memory."""
    from indexer.chain.model import parse_block
    from indexer.chain.simchain import SimChain, SimChainConfig
    from indexer.config import ChainConfig
    from indexer.store.blocks import store_range
    from indexer.store.chains import upsert_chain
    from indexer.store.db import create_pool

    sim = SimChain(SimChainConfig(backlog=blocks, block_time=0, txs_per_block=TXS_PER_BLOCK))
    ranges = [
        [parse_block(sim.block(n, True), n) for n in range(s, min(s + blocks_per_range, blocks))]
        for s in range(0, blocks, blocks_per_range)
    ]
    pool = await create_pool(database_url, max_size=CEILING_CONCURRENCY)
    row = await upsert_chain(
        pool, ChainConfig(name=f"copy{uuid.uuid4().hex[:6]}", rpc_url="http://127.0.0.1:9")
    )
    todo = iter(ranges)

    async def writer() -> None:
        async with pool.acquire() as conn:
            for block_range in todo:
                await store_range(conn, row.id, block_range)

    started = time.perf_counter()
    await asyncio.gather(*(writer() for _ in range(CEILING_CONCURRENCY)))
    seconds = time.perf_counter() - started
    await pool.close()
    return blocks / seconds


async def ceilings(blocks: int, blocks_per_range: int) -> dict[str, float]:
    from indexer.runtime import child_process, embedded_postgres, free_port, sim_chain_args

    work = Path(tempfile.mkdtemp(prefix="tindexer-ceiling-"))
    port = free_port()
    with contextlib.ExitStack() as stack:
        database_url = os.environ.get("DATABASE_URL") or stack.enter_context(
            embedded_postgres(work / "pg")
        )
        stack.enter_context(
            child_process(
                sim_chain_args(port, backlog=blocks, block_time=0, txs_per_block=TXS_PER_BLOCK),
                "127.0.0.1",
                port,
                log_path=work / "sim.log",
            )
        )
        rpc = await rpc_ceiling(f"http://127.0.0.1:{port}", blocks, blocks_per_range)
        copy = await copy_ceiling(database_url, blocks, blocks_per_range)
    return {"rpc": round(rpc, 1), "copy": round(copy, 1)}


def plot(series: list[dict[str, float]], path: Path, title: str) -> None:
    """Blocks/s and backlog over time, from the run's own samples."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s["seconds"] for s in series]
    rates = [0.0] + [
        (b["indexed"] - a["indexed"]) / (b["seconds"] - a["seconds"])
        for a, b in itertools.pairwise(series)
    ]
    figure, left = plt.subplots(figsize=(9, 4.5))
    left.plot(seconds, rates, color="tab:blue", label="blocks/s")
    left.set_xlabel("seconds since HeadScan started")
    left.set_ylabel("blocks indexed per second", color="tab:blue")
    right = left.twinx()
    right.plot(seconds, [s["backlog"] for s in series], color="tab:red", label="backlog")
    right.set_ylabel("blocks missing (backlog)", color="tab:red")
    left.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def summary(result: Any) -> dict[str, Any]:
    return {
        "blocks": result.blocks,
        "txs_per_block": result.txs_per_block,
        "schedule_seconds": result.schedule_seconds,
        "index_seconds": result.index_seconds,
        "blocks_per_second": result.blocks_per_second,
        "failed_starts": result.failed_starts,
        "rate_limited": result.rate_limited,
        "activity_timeout_rate": result.activity_timeout_rate,
        "activity_attempts": result.activity_attempts,
        "lost_blocks": result.lost_blocks,
        "duplicate_blocks": result.duplicate_blocks,
        "peak_rss_bytes": result.peak_rss_bytes,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    args = parser.parse_args()
    from indexer.config import ChainConfig
    from indexer.loadtest import run_loadtest

    big, small = (75_000, 7_500) if args.quick else (750_000, 75_000)
    blocks_per_range = ChainConfig(name="d", rpc_url="http://x").blocks_per_workflow
    print(f"ceilings on {CEILING_BLOCKS:,} blocks …", flush=True)
    ceiling = await ceilings(CEILING_BLOCKS, blocks_per_range)
    print(f"  rpc ceiling {ceiling['rpc']:,.0f} blocks/s, copy ceiling {ceiling['copy']:,.0f}")
    print(f"{small:,} blocks end to end …", flush=True)
    small_run = await run_loadtest(small, TXS_PER_BLOCK)
    print(f"{big:,} blocks end to end …", flush=True)
    big_run = await run_loadtest(big, TXS_PER_BLOCK)
    lower = min(ceiling.values())
    plot_path = RESULTS / f"backlog{'-quick' if args.quick else ''}.png"
    plot(big_run.series, plot_path, f"{big:,} blocks through Temporal into PostgreSQL")
    rss_ratio = big_run.peak_rss_bytes["worker"] / small_run.peak_rss_bytes["worker"]
    result = {
        **provenance("make bench-backlog (.venv/bin/python bench/backlog.py)"),
        **summary(big_run),
        "rpc_ceiling_blocks_per_second": ceiling["rpc"],
        "copy_ceiling_blocks_per_second": ceiling["copy"],
        "fraction_of_lower_ceiling": round(big_run.blocks_per_second / lower, 3),
        "worker_peak_rss_ratio_big_over_small": round(rss_ratio, 3),
        "plot": plot_path.name,
        "series": big_run.series,
        "small": summary(small_run),
    }
    path = write_result("backlog" if not args.quick else "backlog-quick", result)
    print(
        f"\n{big:,} blocks: scheduled in {big_run.schedule_seconds} s, indexed in "
        f"{big_run.index_seconds} s ({big_run.blocks_per_second:,.0f} blocks/s = "
        f"{result['fraction_of_lower_ceiling']:.0%} of the lower ceiling {lower:,.0f}); "
        f"lost {big_run.lost_blocks}, duplicated {big_run.duplicate_blocks}, failed starts "
        f"{big_run.failed_starts:.0f}, timeout rate {big_run.activity_timeout_rate:.3%}; "
        f"worker RSS {rss_ratio:.2f}x of the {small:,}-block run. wrote {path}"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
