"""End to end: 750,000 blocks (and 75,000) through Temporal into PostgreSQL, beside the ceilings.

Each size runs `tindexer loadtest` (fresh services; one worker process per core, as replicas,
with metrics and tracing on). In the same invocation it measures the two ceilings on the same
machine, each with one process and with as many processes as there are workers (the higher
counts), medians of `--repeats` runs:
  * RPC ceiling: a fetch-only loop — the same Fetcher and settings, the same simulated chain
    and block contents — fetching and parsing blocks with no Temporal and no database;
  * COPY ceiling: the same rows written by the same bulk store (a fresh range copied straight
    in, with its range record) from memory, with no fetching and no Temporal.
The indexer's rate is then reported as a fraction of the lower ceiling.

    .venv/bin/python bench/backlog.py          # or `make bench-backlog`
    .venv/bin/python bench/backlog.py --quick  # 75,000 and 7,500 blocks
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


from bench.ceilings import (
    Measured,
    Ranges,
    Ready,
    best,
    measure,
    medians,
    rpc_client,
    store_prepared,
    timed,
)
from bench.common import RESULTS, provenance, write_result

TXS_PER_BLOCK = 3
# What the ceilings fetch (blocks with their transactions, no receipts) and store, so the end to
# end run indexes the same: the datasets of the 750k figure since it was first measured.
# Receipts and logs on the same blocks are bench/mainnet.py's subject (every dataset).
DATASETS = ("blocks", "transactions")
CEILING_BLOCKS = 150_000
CEILING_CONCURRENCY = 8  # ranges in flight at once per process, as a worker runs several
WORKERS = os.cpu_count() or 1  # worker processes in the end-to-end runs: one per core


async def fetch_ranges(url: str, ranges: Ranges, ready: Ready) -> tuple[float, float]:
    """Fetch-only loop over `ranges`: RPC batches, JSON decoding, block checks. (start, end)."""
    client = rpc_client(url)
    todo = iter(ranges)

    async def fetcher() -> None:
        for start, end in todo:
            await client.get_blocks(start, end)

    span = await timed(fetcher, CEILING_CONCURRENCY, ready)
    await client.close()
    return span


async def copy_ranges(
    database_url: str, chain_id: int, ranges: Ranges, ready: Ready
) -> tuple[float, float]:
    """The same rows, prepared in memory, written by the indexer's bulk store. (start, end)."""
    from indexer.chain.model import parse_block
    from indexer.simchain.server import SimChain, SimChainConfig

    last = max(end for _, end in ranges)
    sim = SimChain(SimChainConfig(backlog=last + 1, block_time=0, txs_per_block=TXS_PER_BLOCK))
    prepared = [
        [parse_block(sim.block(n, True), n) for n in range(start, end + 1)] for start, end in ranges
    ]
    return await store_prepared(
        database_url, chain_id, prepared, DATASETS, CEILING_CONCURRENCY, ready
    )


def _ceiling_share(kind: str, args: tuple[Any, ...], barrier: Any, results: Any) -> None:
    """One process of a ceiling run: prepare, wait for the others, time its share."""
    run: Any = fetch_ranges if kind == "rpc" else copy_ranges
    results.put(asyncio.run(run(*args, barrier.wait)))


async def ceilings(blocks: int, blocks_per_range: int, workers: int) -> Measured:
    """Both ceilings with one process and with as many as the indexer has workers."""
    ranges = [
        (start, min(start + blocks_per_range, blocks) - 1)
        for start in range(0, blocks, blocks_per_range)
    ]
    return await measure(
        "tindexer-ceiling-",
        {"backlog": blocks, "block_time": 0, "txs_per_block": TXS_PER_BLOCK},
        workers,
        rpc=(blocks, lambda url, n: [(url, ranges[i::n]) for i in range(n)]),
        copy=(
            blocks,
            lambda url, db, chain_id, n: [(db, chain_id, ranges[i::n]) for i in range(n)],
        ),
        target=_ceiling_share,
    )


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
        "cpu_seconds": result.cpu_seconds,
    }


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true")
    parser.add_argument("--workers", type=int, default=WORKERS)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each ceiling (median)")
    parser.add_argument(
        "--blocks-per-workflow", type=int, help="the chain's range size (default: its default)"
    )
    parser.add_argument("--name", help="bench/results/<name>.json (default: backlog)")
    args = parser.parse_args()
    from indexer.config import ChainConfig
    from indexer.loadtest import run_loadtest

    big, small = (75_000, 7_500) if args.quick else (750_000, 75_000)
    blocks_per_range = ChainConfig(name="d", rpc_url="http://x").blocks_per_workflow
    print(f"ceilings on {CEILING_BLOCKS:,} blocks, medians of {args.repeats} …", flush=True)
    runs = [
        await ceilings(CEILING_BLOCKS, blocks_per_range, args.workers) for _ in range(args.repeats)
    ]
    by_processes = medians(runs)
    ceiling = {kind: best(by_processes, kind) for kind in by_processes}
    # Both ceilings keep every core busy, so on this one machine a pipeline that fetches AND
    # stores each block, with zero overhead of its own, reaches at most this:
    both = 1 / (1 / ceiling["rpc"] + 1 / ceiling["copy"])
    print(f"  rpc ceiling {ceiling['rpc']:,.0f} blocks/s, copy ceiling {ceiling['copy']:,.0f}")
    print(f"{small:,} blocks end to end ({args.workers} workers) …", flush=True)
    knobs: dict[str, object] = {"datasets": list(DATASETS)}
    if args.blocks_per_workflow:
        knobs["blocks_per_workflow"] = args.blocks_per_workflow
    small_run = await run_loadtest(small, TXS_PER_BLOCK, knobs, workers=args.workers)
    print(f"{big:,} blocks end to end ({args.workers} workers) …", flush=True)
    big_run = await run_loadtest(big, TXS_PER_BLOCK, knobs, workers=args.workers)
    lower = min(ceiling.values())
    name = args.name or ("backlog" if not args.quick else "backlog-quick")
    plot_path = RESULTS / f"{name}.png"
    plot(big_run.series, plot_path, f"{big:,} blocks through Temporal into PostgreSQL")
    rss_ratio = big_run.peak_rss_bytes["worker"] / small_run.peak_rss_bytes["worker"]
    flags = "".join(f" {arg}" for arg in sys.argv[1:])
    result = {
        **provenance(f"make bench-backlog (.venv/bin/python bench/backlog.py{flags})"),
        "workers": args.workers,
        "datasets": list(DATASETS),
        **summary(big_run),
        "rpc_ceiling_blocks_per_second": ceiling["rpc"],
        "copy_ceiling_blocks_per_second": ceiling["copy"],
        "ceilings_by_processes": {
            "blocks": CEILING_BLOCKS,
            "runs": args.repeats,
            "median": by_processes,
            "each_run": runs,
        },
        "fraction_of_lower_ceiling": round(big_run.blocks_per_second / lower, 3),
        "fetch_and_store_bound_blocks_per_second": round(both, 1),
        "fraction_of_fetch_and_store_bound": round(big_run.blocks_per_second / both, 3),
        "worker_peak_rss_ratio_big_over_small": round(rss_ratio, 3),
        "plot": plot_path.name,
        "series": big_run.series,
        "small": summary(small_run),
    }
    path = write_result(name, result)
    print(
        f"\n{big:,} blocks: scheduled in {big_run.schedule_seconds} s, indexed in "
        f"{big_run.index_seconds} s ({big_run.blocks_per_second:,.0f} blocks/s = "
        f"{result['fraction_of_lower_ceiling']:.0%} of the lower ceiling {lower:,.0f}); "
        f"lost {big_run.lost_blocks}, duplicated {big_run.duplicate_blocks}, failed starts "
        f"{big_run.failed_starts:.0f}, timeout rate {big_run.activity_timeout_rate:.3%}; "
        f"worker RSS {rss_ratio:.2f}x of the {small:,}-block run; CPU seconds "
        f"{big_run.cpu_seconds}. wrote {path}"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
