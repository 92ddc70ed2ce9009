"""Observability overhead: one backlog indexed with metrics, tracing and collectors on, then off.

Runs alternate (off, on, off, on, …) against one Temporal dev server, one PostgreSQL and one
simulated chain; each run indexes the whole backlog under a fresh chain name in a fresh worker
process, so no state (a global tracer provider, a registry) leaks from one run to the next.

    .venv/bin/python bench/overhead.py [--blocks 60000] [--runs 3]

"On" means: every metric recorded into the process registry served on /metrics and scraped
once a second, every collector (progress, task queues, Temporal health, SDK metrics,
PostgreSQL health, pool), the Temporal tracing interceptor plus our spans, exported in batches
over OTLP/HTTP to a local sink process. "Off" means: no server, no collectors, no tracing; the
metric calls in the code still run (they cannot be removed) but into a throwaway registry.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import json
import os
import platform
import statistics
import subprocess
import sys
import time
import uuid
from datetime import UTC, datetime
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

RESULT = ROOT / "bench" / "results" / "overhead.json"


async def one_run(args: argparse.Namespace) -> dict[str, float]:
    """Inside a fresh process: index the backlog once, with or without observability."""
    import aiohttp
    from prometheus_client import CollectorRegistry

    from exporter.metrics import Metrics
    from exporter.temporal_sdk import SdkMetrics
    from exporter.tracing import configure_tracing
    from indexer.config import ChainConfig
    from indexer.embedded import free_port
    from indexer.observability import serving_metrics
    from indexer.store.chains import upsert_chain
    from indexer.store.db import create_pool
    from indexer.store.ranges import coverage
    from indexer.temporal_client import connect_temporal, start_head_scan
    from indexer.worker import running_worker
    from indexer.workflows.task_queues import worker_task_queues

    on = args.mode == "on"
    metrics = Metrics(CollectorRegistry())
    sdk = SdkMetrics(metrics) if on else None
    if on:
        configure_tracing("tindexer-bench")
    client = await connect_temporal(args.temporal, runtime=sdk.runtime if sdk else None, tracing=on)
    pool = await create_pool(args.database_url, max_size=20)
    chain = ChainConfig(name=args.chain, rpc_url=args.rpc_url)
    row = await upsert_chain(pool, chain)
    task_queue = f"bench-{args.chain}"
    port = free_port()
    stack = contextlib.AsyncExitStack()
    if on:
        await stack.enter_async_context(
            serving_metrics(
                metrics,
                "127.0.0.1",
                port,
                pool=pool,
                database_url=args.database_url,
                client=client,
                sdk=sdk,
                task_queues=worker_task_queues(task_queue),
                progress=True,
            )
        )

    async def scrape_every_second() -> None:
        async with aiohttp.ClientSession() as session:
            while True:
                async with session.get(f"http://127.0.0.1:{port}/metrics") as response:
                    await response.read()
                await asyncio.sleep(1)

    scraper = asyncio.create_task(scrape_every_second()) if on else None
    last = args.blocks - 1
    async with stack, running_worker(client, pool, task_queue, metrics=metrics):
        started = time.perf_counter()
        await start_head_scan(client, args.chain, task_queue)
        while (await coverage(pool, row.id, 0, last)).missing_blocks:  # noqa: ASYNC110
            await asyncio.sleep(0.1)
        seconds = time.perf_counter() - started
        if scraper:
            scraper.cancel()
        await client.get_workflow_handle(f"headscan:{args.chain}").terminate()
    await pool.close()
    return {"seconds": seconds, "blocks_per_second": args.blocks / seconds}


def spawn_run(mode: str, args: argparse.Namespace, rpc_url: str, temporal: str, db: str) -> dict:
    env = {**os.environ}
    if mode == "on":
        env.update(
            OTEL_TRACES_EXPORTER="otlp",
            OTEL_EXPORTER_OTLP_ENDPOINT=f"http://127.0.0.1:{args.sink_port}",
        )
    else:
        env["OTEL_TRACES_EXPORTER"] = "none"
    command = [
        sys.executable,
        __file__,
        "--one-run",
        "--mode",
        mode,
        "--chain",
        f"b{uuid.uuid4().hex[:8]}",
        "--rpc-url",
        rpc_url,
        "--temporal",
        temporal,
        "--database-url",
        db,
        "--blocks",
        str(args.blocks),
    ]
    output = subprocess.run(command, env=env, capture_output=True, text=True, check=True)
    return json.loads(output.stdout.strip().splitlines()[-1])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--blocks", type=int, default=60_000)
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--one-run", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--mode", choices=["on", "off"])
    parser.add_argument("--chain")
    parser.add_argument("--rpc-url")
    parser.add_argument("--temporal")
    parser.add_argument("--database-url")
    args = parser.parse_args()
    if args.one_run:
        result = asyncio.run(one_run(args))
        print(json.dumps(result), flush=True)
        os._exit(0)  # skip interpreter teardown (a known Temporal SDK wart)

    from indexer import services
    from indexer.embedded import free_port

    work = Path(f"/tmp/tindexer-bench-{uuid.uuid4().hex[:6]}")
    work.mkdir()
    args.sink_port = free_port()
    temporal_port, sim_port = free_port(), free_port()
    with contextlib.ExitStack() as stack:
        db = stack.enter_context(services.database(os.environ.get("DATABASE_URL"), work / "pg"))
        stack.enter_context(
            services.temporal_dev_server(
                temporal_port, work / "temporal.log", db_file=work / "t.db"
            )
        )
        stack.enter_context(
            services.sim_chain(sim_port, work / "sim.log", backlog=args.blocks, block_time=0)
        )
        stack.enter_context(services.otlp_sink(args.sink_port, work / "sink.log"))
        rpc_url, temporal = f"http://127.0.0.1:{sim_port}", f"127.0.0.1:{temporal_port}"
        runs: dict[str, list[dict]] = {"off": [], "on": []}
        for i in range(args.runs):
            for mode in ("off", "on"):
                result = spawn_run(mode, args, rpc_url, temporal, db)
                runs[mode].append(result)
                print(
                    f"run {i + 1} {mode:>3}: {result['blocks_per_second']:8,.0f} blocks/s"
                    f" ({result['seconds']:.2f} s)",
                    flush=True,
                )
    median = {m: statistics.median(r["blocks_per_second"] for r in runs[m]) for m in runs}
    ratio = median["on"] / median["off"]
    report = {
        "benchmark": "overhead",
        "command": "make bench-overhead  (.venv/bin/python bench/overhead.py)",
        "date": datetime.now(UTC).isoformat(timespec="seconds"),
        "machine": f"{platform.node()} {platform.machine()} {os.cpu_count()} CPUs",
        "commit": subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        ).stdout.strip(),
        "blocks_per_run": args.blocks,
        "runs": runs,
        "median_blocks_per_second": median,
        "throughput_ratio_on_over_off": ratio,
        "throughput_lost_percent": (1 - ratio) * 100,
        "target_lost_percent": 3.0,
    }
    RESULT.write_text(json.dumps(report, indent=2) + "\n")
    print(
        f"\nmedian off {median['off']:,.0f} blocks/s, on {median['on']:,.0f} blocks/s:"
        f" on/off = {ratio:.3f} ({(1 - ratio) * 100:+.1f}% lost; target < 3%)"
    )
    print(f"wrote {RESULT}")


if __name__ == "__main__":
    main()
