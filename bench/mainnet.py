"""Mainnet-shaped blocks end to end through Temporal into PostgreSQL, beside both ceilings.

The simulated chain's `mainnet` profile (~150 transactions a block with calldata, ~2 logs a
transaction, receipts by eth_getBlockReceipts, 16 withdrawals), `--blocks` (20,000) blocks
indexed by `tindexer loadtest` — fresh Temporal dev server and PostgreSQL, `--workers` worker
processes (one per core) with metrics and tracing on, the chain with every dataset (blocks,
transactions, receipts, logs). The stored rows are then checked against what the simulated
chain serves: every block, transaction (by hash) and log (per block) exactly once.

In the same invocation, on the same machine, medians of `--repeats` runs, with one process and
with as many processes as workers (the higher is the ceiling):
  * fetch ceiling: Fetcher.get_blocks(receipts=True) — the indexer's own client, settings,
    decoding and checks — over `--fetch-blocks` blocks in ranges of `--chunk`, no Temporal and
    no database;
  * COPY ceiling: store_range of the same kind of blocks, fetched and decoded beforehand, with
    every dataset, into a fresh chain (`--copy-blocks` blocks in ranges of `--chunk`).
The fetch-and-store bound is 1 / (1/fetch + 1/copy): both keep every core busy here.

RPC payload: the bytes of eth_getBlockByNumber(n, true) and eth_getBlockReceipts results,
measured on 64 consecutive blocks (one per content slot of the profile), times the blocks.

    .venv/bin/python bench/mainnet.py                  # or `make bench-mainnet`
    .venv/bin/python bench/mainnet.py --blocks 5000 --repeats 1   # a quick look
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import os
import statistics
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
from bench.common import RESULTS, ROOT, provenance, write_result

PROFILE = "mainnet"
CEILING_CONCURRENCY = 4  # ranges in flight per ceiling process
BYTES_METRIC = "tindexer_worker_in_flight_bytes"  # the memory budget's (issue 14), if present
BUDGET_METRIC = "tindexer_worker_memory_budget_bytes"


# --- what the simulated chain serves ----------------------------------------------------------


def expected_content(blocks: int) -> dict[str, Any]:
    """Per-block transaction and log counts the simulated chain serves for blocks 0..blocks-1,
    and its RPC payload per block. A block's content is one of the profile's pool slots
    (block n: slot n mod pool_blocks, no reorg), so 64 rendered blocks give every count."""
    from indexer.simchain.profiles import PROFILES
    from indexer.simchain.server import SimChain, SimChainConfig

    profile = PROFILES[PROFILE]
    sim = SimChain(SimChainConfig(backlog=blocks, block_time=0, profile=PROFILE))
    slots = profile.pool_blocks
    logs_by_slot, txs_by_slot, payload = [], [], []
    for n in range(slots):
        receipts = sim.receipts_text(n)
        block = sim.block_text(n, True)
        assert block is not None
        logs_by_slot.append(receipts.count('"logIndex"'))
        txs_by_slot.append(receipts.count('"cumulativeGasUsed"'))  # one per receipt
    middle = max(blocks // 2 - slots // 2, 0)  # payload at the run's typical number width
    for n in range(middle, min(middle + slots, blocks)):
        text = sim.block_text(n, True)
        assert text is not None
        payload.append(len(text) + len(sim.receipts_text(n)))
    logs_per_block = [logs_by_slot[n % slots] for n in range(blocks)]
    txs_per_block = [txs_by_slot[n % slots] for n in range(blocks)]
    return {
        "logs_per_block": logs_per_block,
        "txs_per_block": txs_per_block,
        "transactions": sum(txs_per_block),
        "logs": sum(logs_per_block),
        "withdrawals": blocks * profile.withdrawals_per_block,
        "payload_bytes_per_block": statistics.fmean(payload),
    }


def checker(expected: dict[str, Any], blocks: int):  # type: ignore[no-untyped-def]
    """The loadtest `check`: stored rows against the simulated chain, exactly once each."""

    async def check(pool: Any, chain_id: int) -> dict[str, Any]:
        async with pool.acquire() as conn:
            tx_rows, tx_hashes, tx_receipts = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT hash), count(status) FROM transactions"
                " WHERE chain_id = $1",
                chain_id,
            )
            tx_by_block = dict(
                await conn.fetch(
                    "SELECT block_number, count(*) FROM transactions WHERE chain_id = $1"
                    " GROUP BY block_number",
                    chain_id,
                )
            )
            log_rows, log_keys = await conn.fetchrow(
                "SELECT count(*), count(DISTINCT (block_number, log_index)) FROM logs"
                " WHERE chain_id = $1",
                chain_id,
            )
            log_by_block = dict(
                await conn.fetch(
                    "SELECT block_number, count(*) FROM logs WHERE chain_id = $1"
                    " GROUP BY block_number",
                    chain_id,
                )
            )
            withdrawals = await conn.fetchval(
                "SELECT count(*) FROM withdrawals WHERE chain_id = $1", chain_id
            )
        tx_off = [n for n in range(blocks) if tx_by_block.get(n, 0) != expected["txs_per_block"][n]]
        log_off = [
            n for n in range(blocks) if log_by_block.get(n, 0) != expected["logs_per_block"][n]
        ]
        lost_logs = sum(
            max(expected["logs_per_block"][n] - log_by_block.get(n, 0), 0) for n in range(blocks)
        )
        extra_logs = sum(
            max(log_by_block.get(n, 0) - expected["logs_per_block"][n], 0) for n in range(blocks)
        )
        return {
            "transactions_stored": tx_rows,
            "transactions_expected": expected["transactions"],
            "lost_transactions": expected["transactions"] - tx_hashes,
            "duplicate_transactions": tx_rows - tx_hashes,
            "transactions_with_receipt": tx_receipts,
            "blocks_with_wrong_transaction_count": len(tx_off),
            "logs_stored": log_rows,
            "logs_expected": expected["logs"],
            "lost_logs": lost_logs,
            "duplicate_logs": (log_rows - log_keys) + extra_logs,
            "blocks_with_wrong_log_count": len(log_off),
            "withdrawals_stored": withdrawals,
            "withdrawals_expected": expected["withdrawals"],
        }

    return check


# --- ceilings ---------------------------------------------------------------------------------


async def fetch_ranges(url: str, ranges: Ranges, ready: Ready) -> tuple[float, float]:
    """Fetch-only: blocks and their receipts, decoded and checked, then dropped. (start, end)"""
    client = rpc_client(url)
    todo = iter(ranges)
    await client.get_blocks(0, 0, receipts=True)  # connection warm, receipts method known

    async def fetcher() -> None:
        for start, end in todo:
            await client.get_blocks(start, end, receipts=True)

    span = await timed(fetcher, CEILING_CONCURRENCY, ready)
    await client.close()
    return span


async def copy_ranges(
    url: str, database_url: str, chain_id: int, ranges: Ranges, ready: Ready
) -> tuple[float, float]:
    """COPY-only: the blocks with receipts fetched and decoded first, then store_range with
    every dataset into a fresh chain, timed alone. (start, end)"""
    from indexer.datasets import DATASETS

    client = rpc_client(url)
    prepared = [await client.get_blocks(start, end, receipts=True) for start, end in ranges]
    await client.close()
    return await store_prepared(
        database_url, chain_id, prepared, DATASETS, CEILING_CONCURRENCY, ready
    )


def _share(kind: str, args: tuple[Any, ...], barrier: Any, results: Any) -> None:
    run: Any = fetch_ranges if kind == "rpc" else copy_ranges
    results.put(asyncio.run(run(*args, barrier.wait)))


async def ceilings(fetch_blocks: int, copy_blocks: int, chunk: int, workers: int) -> Measured:
    """Both ceilings with one process and with `workers` processes: blocks/s, machine busy."""

    def ranges_of(blocks: int) -> Ranges:
        return [(s, min(s + chunk, blocks + 1) - 1) for s in range(1, blocks + 1, chunk)]

    fetch, copy = ranges_of(fetch_blocks), ranges_of(copy_blocks)
    backlog = max(fetch_blocks, copy_blocks) + 1
    return await measure(
        "tindexer-mainnet-ceiling-",
        {"backlog": backlog, "block_time": 0, "profile": PROFILE},
        workers,
        rpc=(fetch_blocks, lambda url, n: [(url, fetch[i::n]) for i in range(n)]),
        copy=(
            copy_blocks,
            lambda url, db, chain_id, n: [(url, db, chain_id, copy[i::n]) for i in range(n)],
        ),
        target=_share,
    )


# --- the plot ---------------------------------------------------------------------------------


def plot(series: list[dict[str, float]], path: Path, title: str, bytes_key: str | None) -> str:
    """Blocks/s and bytes in flight (the budget's metric, else the workers' RSS) over time."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    seconds = [s["seconds"] for s in series]
    rates = [0.0] + [
        (b["indexed"] - a["indexed"]) / (b["seconds"] - a["seconds"])
        for a, b in itertools.pairwise(series)
    ]
    figure, left = plt.subplots(figsize=(9, 4.5))
    left.plot(seconds, rates, color="tab:blue")
    left.set_xlabel("seconds since HeadScan started")
    left.set_ylabel("blocks indexed per second", color="tab:blue")
    right = left.twinx()
    if bytes_key is not None:
        right.plot(seconds, [s.get(bytes_key, 0) / 2**20 for s in series], color="tab:red")
        label = "bytes in flight, all workers (MiB)"
    else:
        rss_keys = sorted({k for s in series for k in s if k.startswith("rss_")})
        for key in rss_keys:
            right.plot(seconds, [s.get(key, 0) / 2**20 for s in series], label=key[4:])
        right.legend(loc="upper right")
        label = "worker RSS (MiB) — no bytes-in-flight metric on this commit"
    right.set_ylabel(label, color="tab:red")
    left.set_title(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)
    return label


def _declared(name: str) -> bool:
    """Whether the exporter declares a metric of this name (on this commit): in
    exporter/metrics.py, or by area in exporter/metric_families/."""
    return any(f'"{name}"' in path.read_text() for path in (ROOT / "exporter").rglob("*.py"))


# --- main -------------------------------------------------------------------------------------


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=20_000, help="end-to-end backlog")
    parser.add_argument("--workers", type=int, default=os.cpu_count() or 1)
    parser.add_argument("--repeats", type=int, default=3, help="runs of each ceiling (median)")
    parser.add_argument("--fetch-blocks", type=int, default=1_200, help="fetch ceiling blocks")
    parser.add_argument("--copy-blocks", type=int, default=1_000, help="COPY ceiling blocks")
    parser.add_argument("--chunk", type=int, default=100, help="blocks per ceiling range")
    parser.add_argument("--name", default="mainnet", help="bench/results/<name>.json")
    parser.add_argument(
        "--max-worker-rss-gib",
        type=float,
        default=12.0,
        help="stop the run when the workers together hold more (a shared machine)",
    )
    parser.add_argument(
        "--blocks-per-workflow", type=int, help="the chain's range size (default: its default)"
    )
    args = parser.parse_args()
    from indexer.loadtest import run_loadtest

    bytes_metric = BYTES_METRIC if _declared(BYTES_METRIC) else None
    series_metrics = (BYTES_METRIC, BUDGET_METRIC) if bytes_metric else ()
    command = " ".join(["make bench-mainnet (.venv/bin/python bench/mainnet.py", *sys.argv[1:]])
    result: dict[str, Any] = provenance(command + ")")
    result["machine"]["memory_bytes"] = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")

    print(f"expected content of {args.blocks:,} {PROFILE} blocks …", flush=True)
    expected = expected_content(args.blocks)
    print(
        f"  {expected['transactions']:,} transactions, {expected['logs']:,} logs, "
        f"{expected['payload_bytes_per_block'] / 1e3:,.0f} kB of RPC payload a block",
        flush=True,
    )
    print(f"ceilings, medians of {args.repeats} …", flush=True)
    runs = [
        await ceilings(args.fetch_blocks, args.copy_blocks, args.chunk, args.workers)
        for _ in range(args.repeats)
    ]
    median = medians(runs)
    fetch, copy = best(median, "rpc"), best(median, "copy")
    bound = 1 / (1 / fetch + 1 / copy)
    print(f"  fetch {fetch:,.0f} blocks/s, COPY {copy:,.0f}, bound {bound:,.0f}", flush=True)

    print(f"{args.blocks:,} blocks end to end ({args.workers} workers) …", flush=True)
    knobs = (
        {}
        if args.blocks_per_workflow is None
        else {"blocks_per_workflow": args.blocks_per_workflow}
    )
    try:
        run = await run_loadtest(
            args.blocks,
            chain_knobs=knobs,
            workers=args.workers,
            profile=PROFILE,
            series_metrics=series_metrics,
            check=checker(expected, args.blocks),
            max_worker_rss_bytes=int(args.max_worker_rss_gib * 2**30),
        )
    except RuntimeError as exc:  # the memory guard, or a stalled run: the ceilings still count
        result.update(
            {
                "aborted": str(exc),
                "fetch_ceiling_blocks_per_second": fetch,
                "copy_ceiling_blocks_per_second": copy,
                "bound_blocks_per_second": round(bound, 1),
                "ceilings": {"median": median, "each_run": runs},
            }
        )
        path = write_result(f"{args.name}-aborted", result)
        raise SystemExit(f"end-to-end run stopped: {exc}; wrote {path}") from exc
    checks = run.checks
    seconds = run.index_seconds
    payload = expected["payload_bytes_per_block"] * args.blocks
    plot_path = RESULTS / f"{args.name}.png"
    plot_label = plot(
        run.series,
        plot_path,
        f"{args.blocks:,} mainnet-shaped blocks through Temporal into PostgreSQL",
        bytes_metric,
    )
    result.update(
        {
            "profile": PROFILE,
            "datasets": ["blocks", "transactions", "receipts", "logs"],
            "workers": args.workers,
            "chain_knobs": knobs,
            "blocks": args.blocks,
            "transactions": checks["transactions_stored"],
            "logs": checks["logs_stored"],
            "index_seconds": seconds,
            "schedule_seconds": run.schedule_seconds,
            "blocks_per_second": round(args.blocks / seconds, 1),
            "transactions_per_second": round(checks["transactions_stored"] / seconds, 1),
            "logs_per_second": round(checks["logs_stored"] / seconds, 1),
            "rpc_payload_bytes_per_block": round(expected["payload_bytes_per_block"]),
            "rpc_payload_megabytes_per_second": round(payload / seconds / 1e6, 1),
            "fetch_ceiling_blocks_per_second": fetch,
            "copy_ceiling_blocks_per_second": copy,
            "bound_blocks_per_second": round(bound, 1),
            "fraction_of_bound": round(args.blocks / seconds / bound, 3),
            "lost_blocks": run.lost_blocks,
            "duplicate_blocks": run.duplicate_blocks,
            "lost_transactions": checks["lost_transactions"],
            "duplicate_transactions": checks["duplicate_transactions"],
            "lost_logs": checks["lost_logs"],
            "duplicate_logs": checks["duplicate_logs"],
            "activity_timeout_rate": round(run.activity_timeout_rate, 5),
            "activity_timeouts": run.activity_timeouts,
            "activity_attempts": run.activity_attempts,
            "failed_starts": run.failed_starts,
            "rate_limited": run.rate_limited,
            "peak_rss_bytes": {
                ("chain" if k == "simulated_chain" else k): v for k, v in run.peak_rss_bytes.items()
            },
            "cpu_seconds": {
                ("chain" if k == "simulated_chain" else k): v for k, v in run.cpu_seconds.items()
            },
            "phase_seconds": run.phase_seconds,
            "phase_count": run.phase_count,
            "pg_query_p95_seconds": run.pg_query_p95_seconds,
            "pg_query_p95_seconds_by_query": run.pg_query_p95_seconds_by_query,
            "checks": checks,
            "ceilings": {
                "fetch_blocks": args.fetch_blocks,
                "copy_blocks": args.copy_blocks,
                "blocks_per_range": args.chunk,
                "ranges_in_flight_per_process": CEILING_CONCURRENCY,
                "runs": args.repeats,
                "median": median,
                "each_run": runs,
            },
            "bytes_in_flight_metric": bytes_metric,
            "plot": plot_path.name,
            "plot_right_axis": plot_label,
            "series": run.series,
            "load_average_at_end": [round(x, 2) for x in os.getloadavg()],
        }
    )
    path = write_result(args.name, result)
    rss = {k: f"{v / 2**20:,.0f} MiB" for k, v in result["peak_rss_bytes"].items()}
    print(
        f"\n{args.blocks:,} blocks in {seconds} s: {result['blocks_per_second']:,} blocks/s, "
        f"{result['transactions_per_second']:,} tx/s, {result['logs_per_second']:,} logs/s, "
        f"{result['rpc_payload_megabytes_per_second']} MB/s of RPC payload = "
        f"{result['fraction_of_bound']:.0%} of the bound {bound:,.0f} (fetch {fetch:,.0f}, "
        f"COPY {copy:,.0f}); lost {run.lost_blocks}/{checks['lost_transactions']}/"
        f"{checks['lost_logs']} (blocks/txs/logs), duplicated {run.duplicate_blocks}/"
        f"{checks['duplicate_transactions']}/{checks['duplicate_logs']}; timeout rate "
        f"{run.activity_timeout_rate:.3%}; peak RSS {rss}; CPU s {result['cpu_seconds']}; "
        f"wrote {path.relative_to(ROOT)}"
    )


if __name__ == "__main__":
    asyncio.run(main())
    sys.stdout.flush()
    os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)
